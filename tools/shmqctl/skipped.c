/*
 * skipped.c — `shmqctl group skipped GROUP [--topic T]`: the audit log
 * entries of a group, oldest first: what each executed reset skipped or
 * made the group read again, when, and who ran it.
 *
 * A line of the log that cannot be read is named on stderr (file and
 * line number) and the rest is listed all the same; the exit status is
 * then 1, so that a script notices the damage.
 *
 * Replays of an entry (kind "replayed") are listed with it, and where
 * they went.  An entry whose topic id is not that of the topic of its
 * name now is of an earlier topic, deleted since: its TOPIC is marked
 * "(old)", or "(deleted)" when there is no such topic now (--json:
 * "topic_current" false).  Entries written before topic ids were
 * logged cannot be told apart and are not marked.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../common/json.h"
#include "audit.h"

enum { TOPIC_UNKNOWN, TOPIC_CURRENT, TOPIC_OLD, TOPIC_DELETED };

/* Is e's topic the topic of that name now? */
static int
skipped_topic_state(struct ctl *ctl, const struct audit_entry *e)
{
	uint64_t now = 0;
	int rc;

	if (e->topic_id == 0) {
		return TOPIC_UNKNOWN;
	}
	rc = audit_topic_id(ctl, e->topic, &now);
	if (rc == -ENOENT) {
		return TOPIC_DELETED;
	}
	if (rc != 0) {
		return TOPIC_UNKNOWN;
	}
	return now == e->topic_id ? TOPIC_CURRENT : TOPIC_OLD;
}

/* Where a replay went: "topic=T", "group=G" or "topic=T,group=G";
 * "-" for other kinds. */
static const char *
skipped_destination(const struct audit_entry *e, char *buf, size_t cap)
{
	if (e->kind != AUDIT_REPLAYED) {
		return "-";
	}
	snprintf(buf, cap, "%s%s%s%s%s", e->to_topic[0] ? "topic=" : "",
	    e->to_topic, e->to_topic[0] && e->to_group[0] ? "," : "",
	    e->to_group[0] ? "group=" : "", e->to_group);
	return buf;
}

static int
skipped_wanted(
    const struct audit_entry *e, const char *group, const char *topic)
{
	return strcmp(e->group, group) == 0 &&
	    (topic == NULL || strcmp(e->topic, topic) == 0);
}

static void
skipped_json_entry(struct json *j, const struct audit_entry *e, int state)
{
	char hex[17] = "";

	json_begin_object(j);
	json_kuint(j, "id", e->id);
	json_kint(j, "time", e->time_ns);
	json_kstr(j, "group", e->group);
	json_kstr(j, "topic", e->topic);
	if (e->topic_id != 0) {
		snprintf(hex, sizeof(hex), "%016llx",
		    (unsigned long long)e->topic_id);
	}
	audit_json_name(j, "topic_id", hex);
	json_key(j, "topic_current");
	if (state == TOPIC_UNKNOWN) {
		json_null(j);
	} else {
		json_bool(j, state == TOPIC_CURRENT);
	}
	json_kuint(j, "partition", e->partition);
	json_kstr(j, "kind", audit_kind_name(e->kind));
	json_key(j, "applied");
	json_bool(j, e->applied);
	json_kuint(j, "from", e->from);
	json_kuint(j, "to", e->to);
	json_kuint(j, "records", e->sr.records);
	json_kuint(j, "lost", e->sr.lost);
	json_kuint(j, "pending", e->sr.pending);
	json_key(j, "first_timestamp");
	if (e->sr.has_times) {
		json_int(j, e->sr.first_ts);
	} else {
		json_null(j);
	}
	json_key(j, "last_timestamp");
	if (e->sr.has_times) {
		json_int(j, e->sr.last_ts);
	} else {
		json_null(j);
	}
	json_kuint(j, "uid", e->uid);
	json_kint(j, "pid", e->pid);
	json_kstr(j, "spec", e->spec);
	audit_json_name(j, "to_topic", e->to_topic);
	audit_json_name(j, "to_group", e->to_group);
	json_end_object(j);
}

static void
skipped_print_json(struct ctl *ctl, const struct audit_log *log,
    const char *group, const char *topic)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_begin_array(&j);
	for (i = 0; i < log->n; i++) {
		if (skipped_wanted(&log->e[i], group, topic)) {
			skipped_json_entry(&j, &log->e[i],
			    skipped_topic_state(ctl, &log->e[i]));
		}
	}
	json_end_array(&j);
}

static void
skipped_row(struct table *t, const struct audit_entry *e, int state)
{
	char b[3][48], dest[2 * SHMQ_NAME_MAX + 16];

	table_cell(t, "%llu", (unsigned long long)e->id);
	table_cell(t, "%s", audit_fmt_time(b[0], sizeof(b[0]), e->time_ns));
	table_cell(t, "%s%s", e->topic,
	    state == TOPIC_OLD           ? "(old)"
	        : state == TOPIC_DELETED ? "(deleted)"
	                                 : "");
	table_cell(t, "%u", e->partition);
	/* A void entry's reset failed before it moved this partition. */
	table_cell(t, "%s", e->applied ? audit_kind_name(e->kind) : "void");
	table_cell(t, "%llu", (unsigned long long)e->from);
	table_cell(t, "%llu", (unsigned long long)e->to);
	table_cell(t, "%llu", (unsigned long long)e->sr.records);
	table_cell(t, "%llu", (unsigned long long)e->sr.lost);
	table_cell(t, "%s",
	    e->sr.has_times
	        ? audit_fmt_time(b[1], sizeof(b[1]), e->sr.first_ts)
	        : "-");
	table_cell(t, "%s",
	    e->sr.has_times ? audit_fmt_time(b[2], sizeof(b[2]), e->sr.last_ts)
	                    : "-");
	table_cell(t, "%u", e->uid);
	table_cell(t, "%d", e->pid);
	table_cell(t, "%s", skipped_destination(e, dest, sizeof(dest)));
}

static int
skipped_print_text(struct ctl *ctl, const struct audit_log *log,
    const char *group, const char *topic)
{
	static const char *const headers[] = { "ID", "TIME", "TOPIC",
		"PARTITION", "KIND", "FROM", "TO", "RECORDS", "LOST",
		"FIRST-RECORD", "LAST-RECORD", "UID", "PID", "DESTINATION" };
	struct table *t;
	size_t i;
	int rc;

	t = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < log->n; i++) {
		if (skipped_wanted(&log->e[i], group, topic)) {
			skipped_row(t, &log->e[i],
			    skipped_topic_state(ctl, &log->e[i]));
		}
	}
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

int
group_skipped(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "topic", required_argument, NULL, 't' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *group = NULL, *topic = NULL;
	struct audit_log log;
	int c, rc;

	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		if (c == 't') {
			topic = optarg;
		} else if ((rc = ctl_common_option(ctl, cmd, c, argv)) >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "GROUP", &group)) != 0) {
		return rc;
	}
	if (!ctl_name_ok(group) || (topic != NULL && !ctl_name_ok(topic))) {
		return ctl_usage_error(
		    cmd, "bad name '%s'", ctl_name_ok(group) ? topic : group);
	}
	if ((rc = ctl_attach(ctl, 0)) != 0 ||
	    (rc = audit_read(ctl, &log)) != 0) {
		return rc;
	}
	if (ctl->json) {
		skipped_print_json(ctl, &log, group, topic);
	} else if (skipped_print_text(ctl, &log, group, topic) != 0) {
		audit_log_fini(&log);
		return ctl_fail(-ENOMEM, "group skipped");
	}
	rc = log.bad > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	if (log.bad > 0) {
		ctl_note("%s: %u bad lines (named above)", log.path, log.bad);
	}
	audit_log_fini(&log);
	return rc;
}
