/*
 * replay.c — `shmqctl group replay-skipped ID`: bring back the records
 * that audit entry ID skipped.
 *
 *  --to-topic T2   copies the records of each skipped range, in offset
 *                  order, into T2 with their keys, values and
 *                  timestamps.  A keyed record goes to T2's partition
 *                  for its key (murmur2, as any producer would put it),
 *                  so per-key order holds whatever T2's partition
 *                  count; a keyless one to the source partition modulo
 *                  T2's count, so keyless records keep their order too.
 *  --to-group G2   sets G2's committed offsets.  With --to-topic, on
 *                  T2 at the first copied record of each partition:
 *                  G2 then reads exactly the copies.  Alone, on the
 *                  source topic at the start of each range: G2 reads
 *                  the range and then goes on past its end, because a
 *                  committed offset has no end (said on stderr).
 *
 * The range may have left the log since the reset: a volatile ring
 * overwrites it, retention deletes a persistent topic's old segments
 * (a persistent topic otherwise serves it from the segments).  The
 * records that are gone are counted (the entry knows how many the
 * range held) and the replay is refused, naming the count, unless
 * --partial asks for the rest.
 *
 * An entry of a topic since deleted (and perhaps made again under the
 * same name: another topic id) is refused.  A replay done is itself
 * appended to the audit log: one "replayed" line per partition, with
 * the entry's id, the destination and the records brought back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/json.h"
#include "audit.h"

/* A replay into a `block` topic waits this long for room. */
#define REPLAY_SEND_TIMEOUT_MS 30000

struct replay {
	uint64_t id;
	uint32_t partition; /* UINT32_MAX: every partition of the entry */
	const char *to_topic;
	const char *to_group;
	int partial;
	int fresh; /* the target group did not exist */
	struct audit_entry *e; /* the entry's partitions (applied skips) */
	size_t n;
	uint64_t *readable; /* per e[i]: records still in the log */
	uint64_t *start; /* per e[i]: the first offset still in the log */
	uint32_t nout; /* partitions of the group's topic */
	uint64_t *offsets; /* per partition: G2's new committed offset */
};

enum {
	OPT_TO_TOPIC = CTL_OPT_FIRST_LOCAL,
	OPT_TO_GROUP,
	OPT_PARTIAL,
};

/* -1 to go on, else an exit status (0 after --help). */
static int
replay_options(struct ctl *ctl, const struct ctl_cmd *cmd, struct replay *rp,
    int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "partition", required_argument, NULL, 'p' },
		{ "to-topic", required_argument, NULL, OPT_TO_TOPIC },
		{ "to-group", required_argument, NULL, OPT_TO_GROUP },
		{ "partial", no_argument, NULL, OPT_PARTIAL },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *id;
	int c, rc;

	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":p:h", longopts, NULL)) != -1) {
		if (c == 'p') {
			if (ctl_parse_u32(optarg, &rp->partition) != 0 ||
			    rp->partition == UINT32_MAX) {
				return ctl_usage_error(
				    cmd, "bad --partition '%s'", optarg);
			}
		} else if (c == OPT_TO_TOPIC) {
			rp->to_topic = optarg;
		} else if (c == OPT_TO_GROUP) {
			rp->to_group = optarg;
		} else if (c == OPT_PARTIAL) {
			rp->partial = 1;
		} else if ((rc = ctl_common_option(ctl, cmd, c, argv)) >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "ID", &id)) != 0) {
		return rc;
	}
	if (ctl_parse_u64(id, &rp->id) != 0 || rp->id == 0) {
		return ctl_usage_error(cmd,
		    "bad ID '%s': the number of an audit entry (see "
		    "'shmqctl group skipped GROUP')",
		    id);
	}
	if (rp->to_topic == NULL && rp->to_group == NULL) {
		return ctl_usage_error(
		    cmd, "give --to-topic TOPIC, --to-group GROUP, or both");
	}
	if ((rp->to_topic != NULL && !ctl_name_ok(rp->to_topic)) ||
	    (rp->to_group != NULL && !ctl_name_ok(rp->to_group))) {
		return ctl_usage_error(cmd, "bad name '%s'",
		    rp->to_topic != NULL && !ctl_name_ok(rp->to_topic)
		        ? rp->to_topic
		        : rp->to_group);
	}
	return -1;
}

/* Keep the applied skip entries of rp->id (and --partition). */
static int
replay_select(struct replay *rp, const struct audit_log *log)
{
	size_t i, found = 0, voids = 0;

	rp->e = calloc(log->n ? log->n : 1, sizeof(*rp->e));
	if (rp->e == NULL) {
		return ctl_fail(-ENOMEM, "group replay-skipped");
	}
	for (i = 0; i < log->n; i++) {
		const struct audit_entry *e = &log->e[i];

		if (e->id != rp->id || e->kind == AUDIT_REPLAYED) {
			continue;
		}
		if (e->kind == AUDIT_REPLAY) {
			ctl_note(
			    "audit entry %llu moved group %s back on topic "
			    "%s: it skipped nothing",
			    (unsigned long long)rp->id, e->group, e->topic);
			return CTL_EXIT_FAIL;
		}
		found++;
		if (rp->partition != UINT32_MAX &&
		    e->partition != rp->partition) {
			continue;
		}
		if (!e->applied) {
			voids++;
			continue;
		}
		rp->e[rp->n++] = *e;
	}
	if (rp->n > 0) {
		return 0;
	}
	if (found == 0) {
		ctl_note("%s: no audit entry %llu%s", log->path,
		    (unsigned long long)rp->id,
		    log->bad > 0 ? " (but some lines are bad)" : "");
	} else if (voids > 0) {
		ctl_note("audit entry %llu: the reset failed before it moved "
		         "the group: nothing was skipped",
		    (unsigned long long)rp->id);
	} else {
		ctl_note("audit entry %llu has no partition %u",
		    (unsigned long long)rp->id, rp->partition);
	}
	return CTL_EXIT_FAIL;
}

/* An entry's ranges are offsets of the topic that had its topic id: a
 * topic made again under the same name is another log.  Entries from
 * before the id was logged are taken as they are. */
static int
replay_check_topic(struct ctl *ctl, const struct replay *rp)
{
	const struct audit_entry *e = &rp->e[0];
	uint64_t now = 0;
	int rc;

	if (e->topic_id == 0) {
		return 0;
	}
	rc = audit_topic_id(ctl, e->topic, &now);
	if (rc == -ENOENT) {
		ctl_note("audit entry %llu is of topic %s (id %016llx), which "
		         "has been deleted: nothing replayed",
		    (unsigned long long)rp->id, e->topic,
		    (unsigned long long)e->topic_id);
		return CTL_EXIT_FAIL;
	}
	if (rc != 0) {
		return ctl_fail(rc, "topic %s", e->topic);
	}
	if (now != e->topic_id) {
		ctl_note("audit entry %llu is of an earlier topic %s (id "
		         "%016llx), deleted since: topic %s now is another "
		         "topic (id %016llx): nothing replayed",
		    (unsigned long long)rp->id, e->topic,
		    (unsigned long long)e->topic_id, e->topic,
		    (unsigned long long)now);
		return CTL_EXIT_FAIL;
	}
	return 0;
}

/* How much of each range is still in the log: rp->start[] and
 * rp->readable[] (counted only where some of it is gone). */
static int
replay_available(struct ctl *ctl, struct replay *rp)
{
	shmq_partition_info_t info;
	struct scan_result sr;
	size_t i;
	int rc;

	for (i = 0; i < rp->n; i++) {
		const struct audit_entry *e = &rp->e[i];

		rc =
		    shmq_partition_info(ctl->q, e->topic, e->partition, &info);
		if (rc != 0) {
			return ctl_fail(rc, "topic %s partition %u", e->topic,
			    e->partition);
		}
		rp->start[i] =
		    info.log_start > e->from ? info.log_start : e->from;
		if (rp->start[i] > e->to) {
			rp->start[i] = e->to; /* all gone: G2 starts after */
		}
		rp->readable[i] = e->sr.records;
		if (rp->start[i] == e->from) {
			continue;
		}
		rc = scan_range(ctl->q, e->topic, e->partition, e->from, e->to,
		    NULL, NULL, &sr);
		if (rc != 0) {
			return ctl_fail(rc, "topic %s partition %u", e->topic,
			    e->partition);
		}
		rp->readable[i] =
		    sr.records < e->sr.records ? sr.records : e->sr.records;
	}
	return 0;
}

/* Refuse (unless --partial) when records of the ranges are gone. */
static int
replay_check_lost(struct ctl *ctl, const struct replay *rp)
{
	shmq_topic_config_t cfg;
	uint64_t gone;
	size_t i;
	int bad = 0;

	shmq_topic_config_init(&cfg);
	(void)shmq_topic_describe(ctl->q, rp->e[0].topic, &cfg);
	for (i = 0; i < rp->n; i++) {
		const struct audit_entry *e = &rp->e[i];

		gone = e->sr.records - rp->readable[i];
		if (gone == 0) {
			continue;
		}
		bad = 1;
		ctl_note(
		    "audit entry %llu, topic %s partition %u: %llu of the "
		    "%llu skipped records can no longer be replayed (the "
		    "log now starts at offset %llu): %s; %llu remain",
		    (unsigned long long)e->id, e->topic, e->partition,
		    (unsigned long long)gone,
		    (unsigned long long)e->sr.records,
		    (unsigned long long)rp->start[i],
		    cfg.durability == SHMQ_DURABILITY_VOLATILE
		        ? "the topic is volatile and its ring has overwritten "
		          "them"
		        : "retention has deleted their segments",
		    (unsigned long long)rp->readable[i]);
	}
	if (bad && !rp->partial) {
		ctl_note("nothing replayed; --partial replays the records "
		         "that remain");
		return CTL_EXIT_FAIL;
	}
	return 0;
}

/* ---- --to-topic --------------------------------------------------------- */

struct copy {
	shmq_producer_t *p;
	uint32_t source_partition;
	uint32_t nparts; /* of the target */
	uint64_t *first; /* per target partition: first copied offset */
	uint64_t copied;
};

static int
replay_copy_one(const shmq_record_t *r, void *arg)
{
	struct copy *cp = arg;
	shmq_msg_t m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.key = r->key_len > 0 ? r->key : NULL;
	m.key_len = r->key_len;
	m.value = r->value_len > 0 ? r->value : NULL;
	m.value_len = r->value_len;
	m.timestamp = r->timestamp;
	/* By key, as any producer would; keyless records stay together
	 * so that they keep their order. */
	m.partition = r->key_len > 0
	    ? SHMQ_PARTITION_ANY
	    : (int32_t)(cp->source_partition % cp->nparts);
	if ((rc = shmq_send(cp->p, &m)) != 0) {
		return rc;
	}
	if (cp->first[m.partition] == UINT64_MAX) {
		cp->first[m.partition] = m.offset;
	}
	cp->copied++;
	return 0;
}

static int
replay_to_topic(struct ctl *ctl, struct replay *rp, uint64_t *copied)
{
	shmq_producer_options_t po;
	struct scan_result sr;
	struct copy cp;
	size_t i;
	int rc;

	memset(&cp, 0, sizeof(cp));
	cp.nparts = rp->nout;
	cp.first = rp->offsets;
	shmq_producer_options_init(&po);
	po.timeout_ms = REPLAY_SEND_TIMEOUT_MS;
	rc = shmq_producer_open(ctl->q, rp->to_topic, &po, &cp.p);
	if (rc != 0) {
		return ctl_fail(rc, "topic %s", rp->to_topic);
	}
	for (i = 0; rc == 0 && i < rp->n; i++) {
		const struct audit_entry *e = &rp->e[i];
		uint64_t before = cp.copied;

		cp.source_partition = e->partition;
		rc = scan_range(ctl->q, e->topic, e->partition, rp->start[i],
		    e->to, replay_copy_one, &cp, &sr);
		copied[i] = cp.copied - before;
	}
	shmq_producer_close(cp.p);
	if (rc != 0) {
		return ctl_fail(rc,
		    "replay of audit entry %llu into topic %s (%llu records "
		    "copied before the error)",
		    (unsigned long long)rp->id, rp->to_topic,
		    (unsigned long long)cp.copied);
	}
	return 0;
}

/* ---- --to-group --------------------------------------------------------- */

/* The library sets offsets only of a group that exists, and a group
 * comes into being when a member first joins: join and leave at once,
 * committing nothing. */
static int
replay_group_create(struct ctl *ctl, const char *group, const char *topic)
{
	shmq_consumer_options_t co;
	shmq_consumer_t *c = NULL;
	int rc;

	shmq_consumer_options_init(&co);
	co.group = group;
	rc = shmq_consumer_open(ctl->q, topic, &co, &c);
	shmq_consumer_close(c);
	return rc;
}

/* The target group must have no live members; make it if missing. */
static int
replay_group_ready(struct ctl *ctl, struct replay *rp, const char *topic)
{
	const char *group = rp->to_group;
	uint32_t members = 0;
	int rc = shmq_group_members(ctl->q, group, topic, &members);

	if (rc == -ENOENT) {
		rp->fresh = 1;
		rc = replay_group_create(ctl, group, topic);
	} else if (rc == 0 && members > 0) {
		rc = -EBUSY;
	}
	if (rc != 0) {
		ctl_fail(rc, "group %s on topic %s", group, topic);
		group_hint(rc, group, topic);
		return CTL_EXIT_FAIL;
	}
	return 0;
}

/* G2's offsets when it reads the source topic: each range's start;
 * other partitions at their end if G2 is new (it would otherwise read
 * them from the log start), else as they are (UINT64_MAX). */
static int
replay_plan_source(struct ctl *ctl, struct replay *rp)
{
	shmq_partition_info_t info;
	uint32_t p;
	size_t i;
	int rc;

	for (p = 0; p < rp->nout; p++) {
		rp->offsets[p] = UINT64_MAX;
		if (!rp->fresh) {
			continue;
		}
		rc = shmq_partition_info(ctl->q, rp->e[0].topic, p, &info);
		if (rc != 0) {
			return ctl_fail(rc, "topic %s", rp->e[0].topic);
		}
		rp->offsets[p] = info.end;
	}
	for (i = 0; i < rp->n; i++) {
		rp->offsets[rp->e[i].partition] = rp->start[i];
	}
	return 0;
}

/* G2's offsets on T2 after the copy: the first copy in each partition,
 * the end where none went (UINT64_MAX marks those on entry). */
static int
replay_plan_copy(struct ctl *ctl, struct replay *rp)
{
	shmq_partition_info_t info;
	uint32_t p;
	int rc;

	for (p = 0; p < rp->nout; p++) {
		if (rp->offsets[p] != UINT64_MAX) {
			continue;
		}
		rc = shmq_partition_info(ctl->q, rp->to_topic, p, &info);
		if (rc != 0) {
			return ctl_fail(rc, "topic %s", rp->to_topic);
		}
		rp->offsets[p] = info.end;
	}
	return 0;
}

static int
replay_set_group(struct ctl *ctl, const struct replay *rp, const char *topic)
{
	uint32_t p;
	int rc;

	for (p = 0; p < rp->nout; p++) {
		if (rp->offsets[p] == UINT64_MAX) {
			continue;
		}
		rc = shmq_group_set_offset(
		    ctl->q, rp->to_group, topic, p, rp->offsets[p]);
		if (rc != 0) {
			ctl_fail(rc, "group %s on topic %s partition %u",
			    rp->to_group, topic, p);
			group_hint(rc, rp->to_group, topic);
			return CTL_EXIT_FAIL;
		}
	}
	return 0;
}

/* ---- the audit log --------------------------------------------------------
 */

/* Append the replay to the log: a "replayed" line per partition with
 * the entry's id, the range read, the records brought back and where
 * to. */
static int
replay_record(struct ctl *ctl, const struct replay *rp, const uint64_t *copied)
{
	struct audit_entry *e;
	struct timespec now;
	char path[PATH_MAX] = "";
	uint64_t id = rp->id;
	size_t i;
	int rc;

	if ((e = calloc(rp->n, sizeof(*e))) == NULL) {
		return ctl_fail(-ENOMEM, "group replay-skipped");
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (i = 0; i < rp->n; i++) {
		e[i] = rp->e[i]; /* group, topic, topic_id, partition, to */
		e[i].kind = AUDIT_REPLAYED;
		e[i].from = rp->start[i];
		memset(&e[i].sr, 0, sizeof(e[i].sr));
		e[i].sr.records =
		    rp->to_topic != NULL ? copied[i] : rp->readable[i];
		e[i].sr.lost = rp->e[i].sr.records - rp->readable[i];
		e[i].time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		e[i].uid = (uint32_t)getuid();
		e[i].pid = (int32_t)getpid();
		e[i].spec[0] = '\0';
		snprintf(e[i].to_topic, sizeof(e[i].to_topic), "%s",
		    rp->to_topic != NULL ? rp->to_topic : "");
		snprintf(e[i].to_group, sizeof(e[i].to_group), "%s",
		    rp->to_group != NULL ? rp->to_group : "");
	}
	rc = audit_append(ctl, e, rp->n, &id, path, sizeof(path));
	free(e);
	if (rc != 0) {
		return ctl_fail(rc,
		    "audit log %s: audit entry %llu was replayed, but the "
		    "replay is not recorded",
		    path, (unsigned long long)rp->id);
	}
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void
replay_print_json(
    const struct replay *rp, const uint64_t *copied, const char *gtopic)
{
	struct json j;
	uint32_t p;
	size_t i;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kuint(&j, "id", rp->id);
	json_kstr(&j, "group", rp->e[0].group);
	json_kstr(&j, "topic", rp->e[0].topic);
	json_kstr(&j, "to_topic", rp->to_topic);
	json_kstr(&j, "to_group", rp->to_group);
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (i = 0; i < rp->n; i++) {
		const struct audit_entry *e = &rp->e[i];

		json_begin_object(&j);
		json_kuint(&j, "partition", e->partition);
		json_kuint(&j, "from", e->from);
		json_kuint(&j, "to", e->to);
		json_kuint(&j, "records", e->sr.records);
		json_kuint(&j, "replayed",
		    rp->to_topic != NULL ? copied[i] : rp->readable[i]);
		json_kuint(&j, "lost", e->sr.records - rp->readable[i]);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_key(&j, "group_offsets");
	if (rp->to_group == NULL) {
		json_null(&j);
	} else {
		json_begin_object(&j);
		json_kstr(&j, "topic", gtopic);
		json_key(&j, "partitions");
		json_begin_array(&j);
		for (p = 0; p < rp->nout; p++) {
			if (rp->offsets[p] == UINT64_MAX) {
				continue;
			}
			json_begin_object(&j);
			json_kuint(&j, "partition", p);
			json_kuint(&j, "committed", rp->offsets[p]);
			json_end_object(&j);
		}
		json_end_array(&j);
		json_end_object(&j);
	}
	json_end_object(&j);
}

static int
replay_print_text(
    const struct replay *rp, const uint64_t *copied, const char *gtopic)
{
	static const char *const h1[] = { "PARTITION", "FROM", "TO", "RECORDS",
		"REPLAYED", "LOST" };
	static const char *const h2[] = { "PARTITION", "COMMITTED" };
	struct table *t;
	uint32_t p;
	size_t i;
	int rc;

	printf("ENTRY  %llu\nGROUP  %s\nTOPIC  %s\n",
	    (unsigned long long)rp->id, rp->e[0].group, rp->e[0].topic);
	if (rp->to_topic != NULL) {
		printf("TO-TOPIC  %s\n", rp->to_topic);
	}
	putchar('\n');
	if ((t = table_new(6, h1)) == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < rp->n; i++) {
		const struct audit_entry *e = &rp->e[i];

		table_cell(t, "%u", e->partition);
		table_cell(t, "%llu", (unsigned long long)e->from);
		table_cell(t, "%llu", (unsigned long long)e->to);
		table_cell(t, "%llu", (unsigned long long)e->sr.records);
		table_cell(t, "%llu",
		    (unsigned long long)(rp->to_topic != NULL
		            ? copied[i]
		            : rp->readable[i]));
		table_cell(t, "%llu",
		    (unsigned long long)(e->sr.records - rp->readable[i]));
	}
	rc = table_print(t, stdout);
	table_free(t);
	if (rc != 0 || rp->to_group == NULL) {
		return rc;
	}
	printf("\nTO-GROUP  %s on topic %s\n\n", rp->to_group, gtopic);
	if ((t = table_new(2, h2)) == NULL) {
		return -ENOMEM;
	}
	for (p = 0; p < rp->nout; p++) {
		if (rp->offsets[p] != UINT64_MAX) {
			table_cell(t, "%u", p);
			table_cell(
			    t, "%llu", (unsigned long long)rp->offsets[p]);
		}
	}
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

/* ---- the command -------------------------------------------------------- */

/* Check the targets and size the per-partition arrays. */
static int
replay_prepare(struct ctl *ctl, struct replay *rp)
{
	const char *gtopic = rp->to_topic ? rp->to_topic : rp->e[0].topic;
	uint32_t p;
	int rc;

	if ((rc = ctl_check_partition(
	         ctl, rp->e[0].topic, UINT32_MAX, &rp->nout)) != 0) {
		return rc;
	}
	if (rp->to_topic != NULL &&
	    (rc = ctl_check_partition(
	         ctl, rp->to_topic, UINT32_MAX, &rp->nout)) != 0) {
		return rc;
	}
	if (rp->to_group != NULL &&
	    (rc = replay_group_ready(ctl, rp, gtopic)) != 0) {
		return rc;
	}
	rp->readable = calloc(rp->n, sizeof(*rp->readable));
	rp->start = calloc(rp->n, sizeof(*rp->start));
	rp->offsets = calloc(rp->nout, sizeof(*rp->offsets));
	if (rp->readable == NULL || rp->start == NULL || rp->offsets == NULL) {
		return ctl_fail(-ENOMEM, "group replay-skipped");
	}
	for (p = 0; p < rp->nout; p++) {
		rp->offsets[p] = UINT64_MAX;
	}
	return 0;
}

static int
replay_run(struct ctl *ctl, struct replay *rp)
{
	const char *gtopic = rp->to_topic ? rp->to_topic : rp->e[0].topic;
	uint64_t *copied;
	int rc;

	if ((rc = replay_check_topic(ctl, rp)) != 0 ||
	    (rc = replay_prepare(ctl, rp)) != 0 ||
	    (rc = replay_available(ctl, rp)) != 0 ||
	    (rc = replay_check_lost(ctl, rp)) != 0) {
		return rc;
	}
	if ((copied = calloc(rp->n, sizeof(*copied))) == NULL) {
		return ctl_fail(-ENOMEM, "group replay-skipped");
	}
	if (rp->to_topic != NULL) {
		rc = replay_to_topic(ctl, rp, copied);
		if (rc == 0 && rp->to_group != NULL) {
			rc = replay_plan_copy(ctl, rp);
		}
	} else {
		rc = replay_plan_source(ctl, rp);
	}
	if (rc == 0 && rp->to_group != NULL) {
		rc = replay_set_group(ctl, rp, gtopic);
	}
	if (rc == 0) {
		rc = replay_record(ctl, rp, copied);
	}
	if (rc == 0) {
		if (ctl->json) {
			replay_print_json(rp, copied, gtopic);
		} else if (replay_print_text(rp, copied, gtopic) != 0) {
			rc = ctl_fail(-ENOMEM, "group replay-skipped");
		}
	}
	if (rc == 0 && rp->to_group != NULL && rp->to_topic == NULL) {
		ctl_note(
		    "group %s reads topic %s from the skipped ranges on, "
		    "and goes on past their ends; to read only the range, "
		    "replay it into a topic: --to-topic T --to-group %s",
		    rp->to_group, gtopic, rp->to_group);
	}
	free(copied);
	return rc;
}

int
group_replay_skipped(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct replay rp;
	struct audit_log log;
	int rc;

	memset(&rp, 0, sizeof(rp));
	memset(&log, 0, sizeof(log));
	rp.partition = UINT32_MAX;
	if ((rc = replay_options(ctl, cmd, &rp, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0 ||
	    (rc = audit_read(ctl, &log)) != 0) {
		return rc;
	}
	rc = replay_select(&rp, &log);
	if (rc == 0) {
		rc = replay_run(ctl, &rp);
	}
	audit_log_fini(&log);
	free(rp.e);
	free(rp.readable);
	free(rp.start);
	free(rp.offsets);
	return rc;
}
