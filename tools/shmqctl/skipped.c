/*
 * skipped.c — `shmqctl group skipped GROUP [--topic T]`: the audit log
 * entries of a group, oldest first: what each executed reset skipped or
 * made the group read again, when, and who ran it.
 *
 * A line of the log that cannot be read is named on stderr (file and
 * line number) and the rest is listed all the same; the exit status is
 * then 1, so that a script notices the damage.
 */
#include <errno.h>
#include <string.h>

#include "../common/json.h"
#include "audit.h"

static int
skipped_wanted(
    const struct audit_entry *e, const char *group, const char *topic)
{
	return strcmp(e->group, group) == 0 &&
	    (topic == NULL || strcmp(e->topic, topic) == 0);
}

static void
skipped_json_entry(struct json *j, const struct audit_entry *e)
{
	json_begin_object(j);
	json_kuint(j, "id", e->id);
	json_kint(j, "time", e->time_ns);
	json_kstr(j, "group", e->group);
	json_kstr(j, "topic", e->topic);
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
	json_end_object(j);
}

static void
skipped_print_json(
    const struct audit_log *log, const char *group, const char *topic)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_begin_array(&j);
	for (i = 0; i < log->n; i++) {
		if (skipped_wanted(&log->e[i], group, topic)) {
			skipped_json_entry(&j, &log->e[i]);
		}
	}
	json_end_array(&j);
}

static void
skipped_row(struct table *t, const struct audit_entry *e)
{
	char b[3][48];

	table_cell(t, "%llu", (unsigned long long)e->id);
	table_cell(t, "%s", audit_fmt_time(b[0], sizeof(b[0]), e->time_ns));
	table_cell(t, "%s", e->topic);
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
}

static int
skipped_print_text(
    const struct audit_log *log, const char *group, const char *topic)
{
	static const char *const headers[] = { "ID", "TIME", "TOPIC",
		"PARTITION", "KIND", "FROM", "TO", "RECORDS", "LOST",
		"FIRST-RECORD", "LAST-RECORD", "UID", "PID" };
	struct table *t;
	size_t i;
	int rc;

	t = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < log->n; i++) {
		if (skipped_wanted(&log->e[i], group, topic)) {
			skipped_row(t, &log->e[i]);
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
		skipped_print_json(&log, group, topic);
	} else if (skipped_print_text(&log, group, topic) != 0) {
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
