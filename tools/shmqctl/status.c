/*
 * status.c — `shmqctl status`: is the instance's shmq-replicator running,
 * and per persistent partition how far behind the disk is and what it
 * holds (segments and their bytes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "shmqctl.h"

struct status_row {
	char topic[SHMQ_NAME_MAX + 1];
	uint32_t partition;
	shmq_partition_info_t info;
};

struct status_rows {
	shmq_t *q;
	struct status_row *v;
	size_t n, cap;
	int rc;
};

static int
status_topic(const char *name, void *arg)
{
	struct status_rows *rs = arg;
	shmq_topic_config_t cfg;
	if (shmq_topic_describe(rs->q, name, &cfg) != 0 ||
	    cfg.durability != SHMQ_DURABILITY_PERSISTENT) {
		return 0;
	}
	for (uint32_t p = 0; p < cfg.partitions; p++) {
		if (rs->n == rs->cap) {
			size_t cap = rs->cap ? rs->cap * 2 : 16;
			struct status_row *v = realloc(rs->v, cap * sizeof *v);
			if (v == NULL) {
				return rs->rc = -ENOMEM;
			}
			rs->v = v;
			rs->cap = cap;
		}
		struct status_row *row = &rs->v[rs->n];
		snprintf(row->topic, sizeof row->topic, "%s", name);
		row->partition = p;
		if (shmq_partition_info(rs->q, name, p, &row->info) == 0) {
			rs->n++;
		}
	}
	return 0;
}

static void
status_json(pid_t pid, int running, const struct status_rows *rs)
{
	struct json j;
	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "replicator_running");
	json_bool(&j, running == 1);
	json_kint(&j, "replicator_pid", running == 1 ? pid : 0);
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (size_t i = 0; i < rs->n; i++) {
		const struct status_row *r = &rs->v[i];
		json_begin_object(&j);
		json_kstr(&j, "topic", r->topic);
		json_kuint(&j, "partition", r->partition);
		json_kuint(&j, "end", r->info.end);
		json_kuint(&j, "durable", r->info.durable);
		json_kint(&j, "persist_error", r->info.persist_err);
		json_kuint(&j, "log_start", r->info.log_start);
		json_kuint(&j, "segments", r->info.segments);
		json_kuint(&j, "segment_bytes", r->info.segment_bytes);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

int
status_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct status_rows rs = { 0 };
	pid_t pid = 0;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_no_args(cmd, argc, argv)) != 0 ||
	    (rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	int running = shmq_persister_running(ctl->q, &pid);
	if (running < 0) {
		return ctl_fail(running, "status");
	}
	rs.q = ctl->q;
	rc = shmq_topic_list(ctl->q, status_topic, &rs);
	if (rc == 0) {
		rc = rs.rc;
	}
	if (rc != 0) {
		free(rs.v);
		return ctl_fail(rc, "status");
	}
	if (ctl->json) {
		status_json(pid, running, &rs);
		free(rs.v);
		return CTL_EXIT_OK;
	}
	if (running == 1) {
		printf("REPLICATOR  running (pid %d)\n", (int)pid);
	} else {
		printf("REPLICATOR  not running (start it with: "
		       "shmq-replicator --home %s)\n",
		    shmq_home(ctl->q));
	}
	if (rs.n > 0) {
		printf("\n%-24s %-9s %-12s %-12s %-10s %-8s %-8s %s\n",
		    "TOPIC", "PARTITION", "END", "DURABLE", "BEHIND",
		    "SEGMENTS", "BYTES", "ERROR");
	}
	for (size_t i = 0; i < rs.n; i++) {
		const struct status_row *r = &rs.v[i];
		uint64_t behind = r->info.end > r->info.durable
		    ? r->info.end - r->info.durable
		    : 0;
		char bytes[16];
		printf("%-24s %-9u %-12llu %-12llu %-10llu %-8llu %-8s %s\n",
		    r->topic, r->partition, (unsigned long long)r->info.end,
		    (unsigned long long)r->info.durable,
		    (unsigned long long)behind,
		    (unsigned long long)r->info.segments,
		    fmt_size(bytes, sizeof bytes, r->info.segment_bytes),
		    r->info.persist_err ? shmq_strerror(r->info.persist_err)
		                        : "-");
	}
	free(rs.v);
	return CTL_EXIT_OK;
}
