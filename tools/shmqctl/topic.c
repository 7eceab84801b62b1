/*
 * topic.c — `shmqctl topic create|list|describe|delete|add-partitions`.
 *
 * Thin wrappers over the topic calls of shmq.h.  `list` collects the
 * names first and describes them afterwards, so that no library call is
 * made from inside the shmq_topic_list callback (topic calls are
 * serialised by the library, possibly with the lock held during the
 * walk).  A topic deleted between the two steps is skipped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "shmqctl.h"

/* Explain an -EINVAL from topic create, which has several causes. */
static void
topic_create_hint(const char *name, const shmq_topic_config_t *cfg)
{
	if (!ctl_name_ok(name)) {
		ctl_note("hint: names are 1..%d characters of [A-Za-z0-9._-], "
		         "not '.' or '..'",
		    SHMQ_NAME_MAX);
	} else if (cfg->partitions < 1 ||
	    cfg->partitions > SHMQ_PARTITIONS_MAX) {
		ctl_note(
		    "hint: --partitions must be 1..%d", SHMQ_PARTITIONS_MAX);
	} else {
		ctl_note("hint: --ring-size must be a power of two from 64K "
		         "to 64G");
	}
}

static int
topic_parse_overflow(const char *s, int *overflow)
{
	if (strcmp(s, "block") == 0) {
		*overflow = SHMQ_OVERFLOW_BLOCK;
	} else if (strcmp(s, "drop") == 0) {
		*overflow = SHMQ_OVERFLOW_DROP;
	} else {
		return -1;
	}
	return 0;
}

static int
topic_parse_fsync(const char *s, shmq_topic_config_t *cfg)
{
	if (strcmp(s, "always") == 0) {
		cfg->fsync = SHMQ_FSYNC_ALWAYS;
	} else if (strcmp(s, "never") == 0) {
		cfg->fsync = SHMQ_FSYNC_NEVER;
	} else if (strncmp(s, "interval=", 9) == 0 &&
	    ctl_parse_u32(s + 9, &cfg->fsync_interval_ms) == 0 &&
	    cfg->fsync_interval_ms > 0) {
		cfg->fsync = SHMQ_FSYNC_INTERVAL;
	} else {
		return -1;
	}
	return 0;
}

int
topic_create(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "partitions", required_argument, NULL, 'p' },
		{ "ring-size", required_argument, NULL, 's' },
		{ "overflow", required_argument, NULL, 'o' },
		{ "durability", required_argument, NULL, 'D' },
		{ "fsync", required_argument, NULL, 'F' },
		{ "segment-bytes", required_argument, NULL, 'B' },
		{ "retention-bytes", required_argument, NULL, 'R' },
		{ "retention-ms", required_argument, NULL, 'T' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	shmq_topic_config_t cfg;
	const char *name;
	int c, rc, have_partitions = 0;

	shmq_topic_config_init(&cfg);
	ctl_getopt_reset();
	while ((c = getopt_long(
	            argc, argv, ":p:s:o:D:F:B:R:T:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (ctl_parse_u32(optarg, &cfg.partitions) != 0) {
				return ctl_usage_error(
				    cmd, "bad --partitions '%s'", optarg);
			}
			have_partitions = 1;
			break;
		case 's':
			if (ctl_parse_size(optarg, &cfg.ring_size) != 0) {
				return ctl_usage_error(cmd,
				    "bad --ring-size '%s' (bytes, or with "
				    "suffix K, M, G)",
				    optarg);
			}
			break;
		case 'o':
			if (topic_parse_overflow(optarg, &cfg.overflow) != 0) {
				return ctl_usage_error(
				    cmd, "--overflow must be block or drop");
			}
			break;
		case 'D':
			if (strcmp(optarg, "persistent") == 0) {
				cfg.durability = SHMQ_DURABILITY_PERSISTENT;
			} else if (strcmp(optarg, "volatile") == 0) {
				cfg.durability = SHMQ_DURABILITY_VOLATILE;
			} else {
				return ctl_usage_error(cmd,
				    "--durability must be persistent or "
				    "volatile");
			}
			break;
		case 'F':
			if (topic_parse_fsync(optarg, &cfg) != 0) {
				return ctl_usage_error(cmd,
				    "--fsync must be always, never or "
				    "interval=MS");
			}
			break;
		case 'B':
			if (ctl_parse_size(optarg, &cfg.segment_bytes) != 0) {
				return ctl_usage_error(
				    cmd, "bad --segment-bytes '%s'", optarg);
			}
			break;
		case 'R':
			if (ctl_parse_size(optarg, &cfg.retention_bytes) !=
			    0) {
				return ctl_usage_error(
				    cmd, "bad --retention-bytes '%s'", optarg);
			}
			break;
		case 'T':
			if (ctl_parse_size(optarg, &cfg.retention_ms) != 0) {
				return ctl_usage_error(
				    cmd, "bad --retention-ms '%s'", optarg);
			}
			break;
		default:
			rc = ctl_common_option(ctl, cmd, c, argv);
			if (rc >= 0) {
				return rc;
			}
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "NAME", &name)) != 0) {
		return rc;
	}
	if (!have_partitions) {
		return ctl_usage_error(cmd, "missing --partitions N");
	}
	if ((rc = ctl_attach(ctl, 1)) != 0) {
		return rc;
	}
	rc = shmq_topic_create(ctl->q, name, &cfg);
	if (rc != 0) {
		ctl_fail(rc, "topic create %s", name);
		if (rc == -EINVAL) {
			topic_create_hint(name, &cfg);
		}
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

struct names {
	char **v;
	size_t n, cap;
};

static int
names_add(const char *name, void *arg)
{
	struct names *names = arg;

	if (names->n == names->cap) {
		size_t cap = names->cap ? 2 * names->cap : 16;
		char **v = realloc(names->v, cap * sizeof(*v));

		if (v == NULL) {
			return -ENOMEM;
		}
		names->v = v;
		names->cap = cap;
	}
	if ((names->v[names->n] = strdup(name)) == NULL) {
		return -ENOMEM;
	}
	names->n++;
	return 0;
}

static void
names_free(struct names *names)
{
	size_t i;

	for (i = 0; i < names->n; i++) {
		free(names->v[i]);
	}
	free(names->v);
}

static int
topic_list_json(struct ctl *ctl, const struct names *names)
{
	shmq_topic_config_t cfg;
	struct json j;
	size_t i;
	int rc;

	json_init(&j, stdout);
	json_begin_array(&j);
	for (i = 0; i < names->n; i++) {
		shmq_topic_config_init(&cfg);
		rc = shmq_topic_describe(ctl->q, names->v[i], &cfg);
		if (rc == -ENOENT) {
			continue;
		}
		if (rc != 0) {
			/* Close the array: stdout stays valid JSON. */
			json_end_array(&j);
			return ctl_fail(rc, "topic describe %s", names->v[i]);
		}
		json_begin_object(&j);
		json_kstr(&j, "name", names->v[i]);
		json_kuint(&j, "partitions", cfg.partitions);
		json_kuint(&j, "ring_size", cfg.ring_size);
		json_kstr(&j, "overflow", fmt_overflow(cfg.overflow));
		json_end_object(&j);
	}
	json_end_array(&j);
	return CTL_EXIT_OK;
}

int
topic_list(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct names names = { NULL, 0, 0 };
	size_t i;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_no_args(cmd, argc, argv)) != 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	rc = shmq_topic_list(ctl->q, names_add, &names);
	if (rc != 0) {
		rc = ctl_fail(rc, "topic list");
	} else if (ctl->json) {
		rc = topic_list_json(ctl, &names);
	} else {
		for (i = 0; i < names.n; i++) {
			puts(names.v[i]);
		}
	}
	names_free(&names);
	return rc;
}

static int
persistent(const shmq_topic_config_t *cfg)
{
	return cfg->durability == SHMQ_DURABILITY_PERSISTENT;
}

static void
topic_describe_json(const char *name, const shmq_topic_config_t *cfg,
    const shmq_partition_info_t *info)
{
	struct json j;
	uint32_t p;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "name", name);
	json_key(&j, "config");
	json_begin_object(&j);
	json_kuint(&j, "partitions", cfg->partitions);
	json_kuint(&j, "ring_size", cfg->ring_size);
	json_kstr(&j, "overflow", fmt_overflow(cfg->overflow));
	json_kstr(
	    &j, "durability", persistent(cfg) ? "persistent" : "volatile");
	if (persistent(cfg)) {
		/* What only a persistent topic uses. */
		json_kstr(&j, "fsync", fmt_fsync(cfg->fsync));
		if (cfg->fsync == SHMQ_FSYNC_INTERVAL) {
			json_kuint(
			    &j, "fsync_interval_ms", cfg->fsync_interval_ms);
		}
		json_kuint(&j, "segment_bytes", cfg->segment_bytes);
		json_kuint(&j, "retention_bytes", cfg->retention_bytes);
		json_kuint(&j, "retention_ms", cfg->retention_ms);
	}
	json_end_object(&j);
	if (persistent(cfg)) {
		json_key(&j, "replicator_running");
		json_bool(&j, cfg->partitions > 0 && info[0].persister);
	}
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (p = 0; p < cfg->partitions; p++) {
		const shmq_partition_info_t *in = &info[p];

		json_begin_object(&j);
		json_kuint(&j, "partition", p);
		json_kuint(&j, "log_start", in->log_start);
		json_kuint(&j, "committed", in->committed);
		json_kuint(&j, "end", in->end);
		json_kuint(&j, "ring_size", in->ring_size);
		json_kuint(&j, "ring_used", in->ring_used);
		json_kuint(&j, "records_in", in->records_in);
		json_kuint(&j, "bytes_in", in->bytes_in);
		json_kuint(&j, "aborted", in->aborted);
		json_kuint(&j, "producers", in->producers);
		json_kuint(&j, "consumers", in->consumers);
		json_kuint(&j, "leader_epoch", in->leader_epoch);
		json_kuint(&j, "durable", in->durable);
		json_kint(&j, "persist_error", in->persist_err);
		json_kuint(&j, "segments", in->segments);
		json_kuint(&j, "segment_bytes", in->segment_bytes);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

/* One "LABEL  value" line of the configuration block. */
static void kv(const char *label, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
kv(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-13s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* FSYNC, SEGMENT-SIZE, RETENTION and REPLICATOR of a persistent
 * topic. */
static void
topic_describe_disk_config(
    const shmq_topic_config_t *cfg, const shmq_partition_info_t *info)
{
	char a[16];

	if (cfg->fsync == SHMQ_FSYNC_INTERVAL) {
		kv("FSYNC", "interval=%u", cfg->fsync_interval_ms);
	} else {
		kv("FSYNC", "%s", fmt_fsync(cfg->fsync));
	}
	kv("SEGMENT-SIZE", "%s (%llu bytes)",
	    fmt_size(a, sizeof(a), cfg->segment_bytes),
	    (unsigned long long)cfg->segment_bytes);
	if (cfg->retention_bytes != 0 && cfg->retention_ms != 0) {
		kv("RETENTION", "%s (%llu bytes), %llu ms",
		    fmt_size(a, sizeof(a), cfg->retention_bytes),
		    (unsigned long long)cfg->retention_bytes,
		    (unsigned long long)cfg->retention_ms);
	} else if (cfg->retention_bytes != 0) {
		kv("RETENTION", "%s (%llu bytes)",
		    fmt_size(a, sizeof(a), cfg->retention_bytes),
		    (unsigned long long)cfg->retention_bytes);
	} else if (cfg->retention_ms != 0) {
		kv("RETENTION", "%llu ms",
		    (unsigned long long)cfg->retention_ms);
	} else {
		kv("RETENTION", "none (keep every segment)");
	}
	kv("REPLICATOR", "%s",
	    cfg->partitions > 0 && info[0].persister ? "running"
	                                             : "not running");
}

/* What each partition of a persistent topic has on disk. */
static int
topic_describe_disk(
    const shmq_topic_config_t *cfg, const shmq_partition_info_t *info)
{
	static const char *const headers[] = { "PARTITION", "DURABLE",
		"BEHIND", "SEGMENTS", "SEGMENT-BYTES", "STICKY-ERROR" };
	char b[16];
	struct table *t;
	int rc;

	printf("\n");
	t = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (uint32_t p = 0; p < cfg->partitions; p++) {
		const shmq_partition_info_t *in = &info[p];

		table_cell(t, "%u", p);
		table_cell(t, "%llu", (unsigned long long)in->durable);
		table_cell(t, "%llu",
		    (unsigned long long)(in->end > in->durable
		            ? in->end - in->durable
		            : 0));
		table_cell(t, "%llu", (unsigned long long)in->segments);
		table_cell(t, "%s", fmt_size(b, sizeof(b), in->segment_bytes));
		table_cell(t, "%s",
		    in->persist_err ? shmq_strerror(in->persist_err) : "-");
	}
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

static int
topic_describe_text(const char *name, const shmq_topic_config_t *cfg,
    const shmq_partition_info_t *info)
{
	static const char *const headers[] = { "PARTITION", "LOG-START",
		"COMMITTED", "END", "RING-USED", "RECORDS-IN", "PRODUCERS",
		"CONSUMERS" };
	struct table *t;
	char used[16], size[16];
	uint32_t p;
	int rc;

	kv("TOPIC", "%s", name);
	kv("PARTITIONS", "%u", cfg->partitions);
	kv("RING-SIZE", "%s (%llu bytes)",
	    fmt_size(size, sizeof(size), cfg->ring_size),
	    (unsigned long long)cfg->ring_size);
	kv("OVERFLOW", "%s", fmt_overflow(cfg->overflow));
	kv("DURABILITY", "%s", persistent(cfg) ? "persistent" : "volatile");
	if (persistent(cfg)) {
		topic_describe_disk_config(cfg, info);
	}
	printf("\n");
	t = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (t == NULL) {
		return ctl_fail(-ENOMEM, "topic describe %s", name);
	}
	for (p = 0; p < cfg->partitions; p++) {
		const shmq_partition_info_t *in = &info[p];
		double pct = 0;

		if (in->ring_size > 0) {
			pct = 100.0 * (double)in->ring_used /
			    (double)in->ring_size;
		}
		table_cell(t, "%u", p);
		table_cell(t, "%llu", (unsigned long long)in->log_start);
		table_cell(t, "%llu", (unsigned long long)in->committed);
		table_cell(t, "%llu", (unsigned long long)in->end);
		table_cell(t, "%s/%s (%.1f%%)",
		    fmt_size(used, sizeof(used), in->ring_used),
		    fmt_size(size, sizeof(size), in->ring_size), pct);
		table_cell(t, "%llu", (unsigned long long)in->records_in);
		table_cell(t, "%u", in->producers);
		table_cell(t, "%u", in->consumers);
	}
	rc = table_print(t, stdout);
	table_free(t);
	if (rc == 0 && persistent(cfg)) {
		rc = topic_describe_disk(cfg, info);
	}
	if (rc != 0) {
		return ctl_fail(rc, "topic describe %s", name);
	}
	return CTL_EXIT_OK;
}

int
topic_describe(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	shmq_topic_config_t cfg;
	shmq_partition_info_t *info = NULL;
	const char *name;
	uint32_t p;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "NAME", &name)) != 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	shmq_topic_config_init(&cfg);
	rc = shmq_topic_describe(ctl->q, name, &cfg);
	if (rc != 0) {
		return ctl_fail(rc, "topic describe %s", name);
	}
	info = calloc(cfg.partitions ? cfg.partitions : 1, sizeof(*info));
	if (info == NULL) {
		return ctl_fail(-ENOMEM, "topic describe %s", name);
	}
	/* Gather first, print after: an error then leaves no half table. */
	for (p = 0; p < cfg.partitions; p++) {
		rc = shmq_partition_info(ctl->q, name, p, &info[p]);
		if (rc != 0) {
			free(info);
			return ctl_fail(
			    rc, "topic describe %s partition %u", name, p);
		}
	}
	if (ctl->json) {
		topic_describe_json(name, &cfg, info);
		rc = CTL_EXIT_OK;
	} else {
		rc = topic_describe_text(name, &cfg, info);
	}
	free(info);
	return rc;
}

int
topic_delete(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *name;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "NAME", &name)) != 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	rc = shmq_topic_delete(ctl->q, name);
	if (rc != 0) {
		return ctl_fail(rc, "topic delete %s", name);
	}
	return CTL_EXIT_OK;
}

int
topic_add_partitions(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "total", required_argument, NULL, 'n' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	shmq_topic_config_t cfg;
	const char *name;
	uint32_t total = 0;
	int c, rc, have_total = 0;

	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (ctl_parse_u32(optarg, &total) != 0 || total == 0 ||
			    total > SHMQ_PARTITIONS_MAX) {
				return ctl_usage_error(cmd,
				    "bad --total '%s' (1..%d)", optarg,
				    SHMQ_PARTITIONS_MAX);
			}
			have_total = 1;
			break;
		default:
			rc = ctl_common_option(ctl, cmd, c, argv);
			if (rc >= 0) {
				return rc;
			}
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "NAME", &name)) != 0) {
		return rc;
	}
	if (!have_total) {
		return ctl_usage_error(cmd, "missing --total N");
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	shmq_topic_config_init(&cfg);
	rc = shmq_topic_describe(ctl->q, name, &cfg);
	if (rc == -ENOENT) {
		ctl_note("topic add-partitions %s: no such topic", name);
		return CTL_EXIT_FAIL;
	}
	if (rc != 0) {
		return ctl_fail(rc, "topic add-partitions %s", name);
	}
	if (total <= cfg.partitions) {
		return ctl_usage_error(cmd,
		    "topic %s has %u partitions; --total must be more (a "
		    "topic only grows)",
		    name, cfg.partitions);
	}
	rc = shmq_topic_add_partitions(ctl->q, name, total);
	if (rc == -EINVAL) {
		/* Grown by someone else since the look above. */
		shmq_topic_config_init(&cfg);
		if (shmq_topic_describe(ctl->q, name, &cfg) == 0 &&
		    total <= cfg.partitions) {
			return ctl_usage_error(cmd,
			    "topic %s has %u partitions; --total must be "
			    "more (a topic only grows)",
			    name, cfg.partitions);
		}
	}
	if (rc != 0) {
		return ctl_fail(rc, "topic add-partitions %s", name);
	}
	/* The one thing growing changes for existing data: say it. */
	ctl_note("WARNING: topic %s now has %u partitions (was %u).", name,
	    total, cfg.partitions);
	ctl_note("WARNING: keyed records hash over %u partitions from now "
	         "on: records with the same key may go to another partition "
	         "than before, so per-key order holds only among records "
	         "written after this change.",
	    total);
	ctl_note("WARNING: to keep a key's backlog in order, let consumers "
	         "drain it before producers send more, or move it with "
	         "'shmqctl relay'.");
	return CTL_EXIT_OK;
}
