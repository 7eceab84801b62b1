/*
 * group.c — `shmqctl group list|describe|delete`.
 *
 * A shmq group is per topic (its state lives with the topic), so every
 * command but `list` names both: GROUP --topic TOPIC.  Describe shows
 * the group's view (committed offset, lag, owner) rather than the
 * topic's; `topic describe` shows the latter.  Its lag in bytes and
 * seconds, rates and drain time come from lag.c; the rates need two
 * looks at the group, --sample ms apart.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/json.h"
#include "lag.h"
#include "shmqctl.h"

void
group_hint(int err, const char *group, const char *topic)
{
	if (err == -ENOENT) {
		ctl_note("hint: group %s has no state on topic %s: it never "
		         "consumed it",
		    group, topic);
	} else if (err == -EBUSY) {
		ctl_note("hint: the group has live members; stop its "
		         "consumers first");
	}
}

/* Parse GROUP --topic TOPIC, the arguments of delete, and attach.
 * Returns -1 to go on, or the exit status to return at once (0 after
 * --help). */
static int
group_args(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
    const char **group, const char **topic)
{
	static const struct option longopts[] = {
		{ "topic", required_argument, NULL, 't' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	*topic = NULL;
	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		if (c == 't') {
			*topic = optarg;
			continue;
		}
		rc = ctl_common_option(ctl, cmd, c, argv);
		if (rc >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "GROUP", group)) != 0) {
		return rc;
	}
	if (*topic == NULL) {
		return ctl_usage_error(cmd, "missing --topic TOPIC");
	}
	rc = ctl_attach(ctl, 0);
	return rc != 0 ? rc : -1;
}

static int
group_list_text(const char *group, const char *topic, void *arg)
{
	(void)arg;
	printf("%s\t%s\n", group, topic);
	return 0;
}

static int
group_list_json(const char *group, const char *topic, void *arg)
{
	struct json *j = arg;

	json_begin_object(j);
	json_kstr(j, "group", group);
	json_kstr(j, "topic", topic);
	json_end_object(j);
	return 0;
}

int
group_list(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct json j;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_no_args(cmd, argc, argv)) != 0 ||
	    (rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	if (!ctl->json) {
		rc = shmq_group_list(ctl->q, group_list_text, NULL);
		return rc != 0 ? ctl_fail(rc, "group list") : CTL_EXIT_OK;
	}
	json_init(&j, stdout);
	json_begin_array(&j);
	rc = shmq_group_list(ctl->q, group_list_json, &j);
	/* Close the array even on error: stdout stays valid JSON. */
	json_end_array(&j);
	return rc != 0 ? ctl_fail(rc, "group list") : CTL_EXIT_OK;
}

/* The group's partitions: *parts (malloc'd) and the count, or a
 * negative error. */
static ssize_t
group_fetch(struct ctl *ctl, const char *group, const char *topic,
    shmq_group_partition_t **parts)
{
	shmq_topic_config_t cfg;
	size_t cap;
	ssize_t n;
	int rc;

	*parts = NULL;
	shmq_topic_config_init(&cfg);
	if ((rc = shmq_topic_describe(ctl->q, topic, &cfg)) != 0) {
		return rc;
	}
	cap = cfg.partitions > 0 ? cfg.partitions : 1;
	for (;;) {
		*parts = calloc(cap, sizeof(**parts));
		if (*parts == NULL) {
			return -ENOMEM;
		}
		n = shmq_group_describe(ctl->q, group, topic, *parts, cap);
		if (n < 0 || (size_t)n <= cap) {
			break;
		}
		/* More partitions than the topic said a moment ago. */
		free(*parts);
		cap = (size_t)n;
	}
	if (n < 0) {
		free(*parts);
		*parts = NULL;
	}
	return n;
}

/* What `group describe` was asked. */
struct describe_opts {
	const char *group;
	const char *topic;
	uint32_t sample_ms; /* 0: one look, no rates */
	uint64_t scan; /* records read per partition for bytes */
};

enum {
	OPT_SAMPLE = CTL_OPT_FIRST_LOCAL,
	OPT_SCAN,
};

/* As group_args, with describe's options. */
static int
describe_args(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv, struct describe_opts *o)
{
	static const struct option longopts[] = {
		{ "topic", required_argument, NULL, 't' },
		{ "sample", required_argument, NULL, OPT_SAMPLE },
		{ "scan", required_argument, NULL, OPT_SCAN },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	o->topic = NULL;
	o->sample_ms = LAG_SAMPLE_DEFAULT;
	o->scan = LAG_SCAN_DEFAULT;
	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->topic = optarg;
			continue;
		case OPT_SAMPLE:
			if (ctl_parse_u32(optarg, &o->sample_ms) != 0 ||
			    o->sample_ms > LAG_SAMPLE_MAX) {
				return ctl_usage_error(cmd,
				    "--sample must be 0..%u ms (0: no rates), "
				    "not '%s'",
				    LAG_SAMPLE_MAX, optarg);
			}
			continue;
		case OPT_SCAN:
			if (ctl_parse_u64(optarg, &o->scan) != 0 ||
			    o->scan == 0) {
				return ctl_usage_error(cmd,
				    "--scan must be a record count of at "
				    "least "
				    "1, not '%s'",
				    optarg);
			}
			continue;
		default:
			break;
		}
		rc = ctl_common_option(ctl, cmd, c, argv);
		if (rc >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "GROUP", &o->group)) != 0) {
		return rc;
	}
	if (o->topic == NULL) {
		return ctl_usage_error(cmd, "missing --topic TOPIC");
	}
	rc = ctl_attach(ctl, 0);
	return rc != 0 ? rc : -1;
}

/* A rate, or null when it was not measured. */
static void
json_krate(struct json *j, const char *key, int sampled, double v)
{
	json_key(j, key);
	if (sampled) {
		json_double(j, v);
	} else {
		json_null(j);
	}
}

/* The lag figures common to a partition and the totals. */
static void
json_lag(struct json *j, uint64_t bytes, int exact, int has_oldest,
    int64_t oldest_ns, double age_s, int sampled, double consume,
    double produce, enum lag_drain drain, double eta_s)
{
	json_kuint(j, "lag_bytes", bytes);
	json_key(j, "lag_bytes_exact");
	json_bool(j, exact);
	json_kdouble(j, "lag_age_s", age_s);
	json_key(j, "oldest_timestamp");
	if (has_oldest) {
		json_int(j, oldest_ns);
	} else {
		json_null(j);
	}
	json_krate(j, "consume_rate", sampled, consume);
	json_krate(j, "produce_rate", sampled, produce);
	json_kstr(j, "drain", lag_drain_name(drain));
	json_key(j, "eta_s");
	if (drain == LAG_DRAINING || drain == LAG_DRAINED) {
		json_double(j, eta_s);
	} else {
		json_null(j);
	}
}

static void
group_describe_json(const struct describe_opts *o, uint32_t members,
    const shmq_group_partition_t *parts, const struct lag_part *lp, size_t n,
    const struct lag_total *t)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "group", o->group);
	json_kstr(&j, "topic", o->topic);
	json_kuint(&j, "members", members);
	json_kuint(&j, "sample_ms", o->sample_ms);
	json_kuint(&j, "total_lag", t->records);
	json_lag(&j, t->bytes, t->bytes_exact, t->has_oldest, t->oldest_ns,
	    t->age_s, t->sampled, t->consume_rate, t->produce_rate, t->drain,
	    t->eta_s);
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (i = 0; i < n; i++) {
		json_begin_object(&j);
		json_kuint(&j, "partition", parts[i].partition);
		json_kuint(&j, "committed", parts[i].committed);
		json_kuint(&j, "end", parts[i].end);
		json_kuint(&j, "lag", parts[i].lag);
		json_lag(&j, lp[i].bytes, lp[i].bytes_exact, lp[i].has_oldest,
		    lp[i].oldest_ns, lp[i].age_s, lp[i].sampled,
		    lp[i].consume_rate, lp[i].produce_rate, lp[i].drain,
		    lp[i].eta_s);
		json_key(&j, "owner_pid");
		if (parts[i].owner_pid > 0) {
			json_int(&j, parts[i].owner_pid);
		} else {
			json_null(&j);
		}
		json_kuint(&j, "records_out", parts[i].records_out);
		json_kuint(&j, "bytes_out", parts[i].bytes_out);
		json_kuint(&j, "lost", parts[i].lost);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

/* The text of a drain estimate: a duration, "never", or "-". */
static const char *
fmt_eta(char *buf, size_t cap, enum lag_drain drain, double eta_s)
{
	switch (drain) {
	case LAG_DRAINED:
		return fmt_duration(buf, cap, 0.0);
	case LAG_DRAINING:
		return fmt_duration(buf, cap, eta_s);
	case LAG_NEVER:
		return "never";
	default:
		return "-";
	}
}

/* Lag bytes for humans; "~" marks an estimate (see --scan). */
static const char *
fmt_lag_bytes(char *buf, size_t cap, uint64_t bytes, int exact)
{
	char num[32];

	snprintf(buf, cap, "%s%s", exact ? "" : "~",
	    fmt_size(num, sizeof(num), bytes));
	return buf;
}

static void
group_describe_header(
    const struct describe_opts *o, uint32_t members, const struct lag_total *t)
{
	char b1[40], b2[40];

	printf("GROUP         %s\nTOPIC         %s\nMEMBERS       %u\n"
	       "TOTAL-LAG     %llu\n",
	    o->group, o->topic, members, (unsigned long long)t->records);
	printf("LAG-BYTES     %s (%s%llu bytes of keys and values)\n",
	    fmt_lag_bytes(b1, sizeof(b1), t->bytes, t->bytes_exact),
	    t->bytes_exact ? "" : "estimated: ", (unsigned long long)t->bytes);
	printf("LAG-AGE       %s\n",
	    t->has_oldest ? fmt_duration(b1, sizeof(b1), t->age_s) : "-");
	if (o->sample_ms == 0) {
		printf("RATES         - (not measured: --sample 0)\n");
	} else {
		printf("RATES         consume %.1f/s, produce %.1f/s "
		       "(sampled over %u ms)\n",
		    t->consume_rate, t->produce_rate, o->sample_ms);
	}
	printf("DRAIN-ETA     %s\n\n",
	    fmt_eta(b2, sizeof(b2), t->drain, t->eta_s));
}

static int
group_describe_text(const struct describe_opts *o, uint32_t members,
    const shmq_group_partition_t *parts, const struct lag_part *lp, size_t n,
    const struct lag_total *t)
{
	static const char *const headers[] = { "PARTITION", "COMMITTED", "END",
		"LAG", "LAG-BYTES", "LAG-AGE", "CONSUME/S", "PRODUCE/S", "ETA",
		"OWNER-PID", "RECORDS-OUT", "LOST" };
	struct table *tb;
	char buf[40];
	size_t i;
	int rc;

	group_describe_header(o, members, t);
	tb = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (tb == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const shmq_group_partition_t *gp = &parts[i];

		table_cell(tb, "%u", gp->partition);
		table_cell(tb, "%llu", (unsigned long long)gp->committed);
		table_cell(tb, "%llu", (unsigned long long)gp->end);
		table_cell(tb, "%llu", (unsigned long long)gp->lag);
		table_cell(tb, "%s",
		    fmt_lag_bytes(
		        buf, sizeof(buf), lp[i].bytes, lp[i].bytes_exact));
		table_cell(tb, "%s",
		    lp[i].has_oldest
		        ? fmt_duration(buf, sizeof(buf), lp[i].age_s)
		        : "-");
		if (lp[i].sampled) {
			table_cell(tb, "%.1f", lp[i].consume_rate);
			table_cell(tb, "%.1f", lp[i].produce_rate);
		} else {
			table_cell(tb, "-");
			table_cell(tb, "-");
		}
		table_cell(tb, "%s",
		    fmt_eta(buf, sizeof(buf), lp[i].drain, lp[i].eta_s));
		if (gp->owner_pid > 0) {
			table_cell(tb, "%ld", (long)gp->owner_pid);
		} else {
			table_cell(tb, "-");
		}
		table_cell(tb, "%llu", (unsigned long long)gp->records_out);
		table_cell(tb, "%llu", (unsigned long long)gp->lost);
	}
	rc = table_print(tb, stdout);
	table_free(tb);
	return rc;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Look at the group: *parts (malloc'd) and the count, after printing
 * why on failure (then the result is negative). */
static ssize_t
describe_look(struct ctl *ctl, const struct describe_opts *o,
    shmq_group_partition_t **parts)
{
	ssize_t n = group_fetch(ctl, o->group, o->topic, parts);

	if (n < 0) {
		ctl_fail((int)n, "group %s on topic %s", o->group, o->topic);
		group_hint((int)n, o->group, o->topic);
	}
	return n;
}

/* Sleep ms milliseconds, through signals' early wake-ups. */
static void
sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int
group_describe(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	shmq_group_partition_t *before = NULL, *parts = NULL;
	struct describe_opts o;
	struct lag_part *lp = NULL;
	struct lag_total tot;
	uint32_t members = 0;
	ssize_t n0 = 0, n;
	double t0 = 0.0, dt = 0.0;
	int rc;

	if ((rc = describe_args(ctl, cmd, argc, argv, &o)) >= 0) {
		return rc;
	}
	/* Tell a missing topic from a group that never read it. */
	if ((rc = ctl_check_partition(ctl, o.topic, UINT32_MAX, NULL)) != 0) {
		return rc;
	}
	/* Rates need two looks: one now, one after the window. */
	if (o.sample_ms > 0) {
		t0 = mono_s();
		if ((n0 = describe_look(ctl, &o, &before)) < 0) {
			return CTL_EXIT_FAIL;
		}
		sleep_ms(o.sample_ms);
	}
	if ((n = describe_look(ctl, &o, &parts)) < 0) {
		free(before);
		return CTL_EXIT_FAIL;
	}
	if (o.sample_ms > 0) {
		dt = mono_s() - t0;
	}
	rc = shmq_group_members(ctl->q, o.group, o.topic, &members);
	if (rc != 0) {
		ctl_fail(
		    rc, "group %s on topic %s: members", o.group, o.topic);
		goto out;
	}
	if ((lp = calloc(n > 0 ? (size_t)n : 1, sizeof(*lp))) == NULL) {
		ctl_fail(-ENOMEM, "group describe %s", o.group);
		rc = -ENOMEM;
		goto out;
	}
	lag_rates(before, (size_t)n0, parts, (size_t)n, dt, lp);
	rc = lag_scan(ctl->q, o.topic, parts, (size_t)n, o.scan, lp);
	if (rc != 0) {
		ctl_fail(rc, "group %s on topic %s: reading the lag's records",
		    o.group, o.topic);
		goto out;
	}
	lag_totals(parts, lp, (size_t)n, &tot);
	if (ctl->json) {
		group_describe_json(&o, members, parts, lp, (size_t)n, &tot);
	} else if ((rc = group_describe_text(
	                &o, members, parts, lp, (size_t)n, &tot)) != 0) {
		ctl_fail(rc, "group describe %s", o.group);
	}
out:
	free(before);
	free(parts);
	free(lp);
	return rc != 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

int
group_delete(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *group, *topic;
	int rc;

	if ((rc = group_args(ctl, cmd, argc, argv, &group, &topic)) >= 0) {
		return rc;
	}
	rc = shmq_group_delete(ctl->q, group, topic);
	if (rc != 0) {
		ctl_fail(rc, "group delete %s on topic %s", group, topic);
		group_hint(rc, group, topic);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}
