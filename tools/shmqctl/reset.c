/*
 * reset.c — `shmqctl group reset-offsets`: plan, then maybe apply, new
 * committed offsets for a group (kafka-consumer-groups --reset-offsets).
 *
 * The plan is computed for every selected partition before anything is
 * changed: the group's committed offset now, and the new one from the
 * spec, clamped to [log_start, end] of the partition so that the group
 * never points outside the log.  Only --execute applies it, and only to
 * a group without live members (the library refuses with -EBUSY
 * otherwise, as Kafka requires an inactive group); members are checked
 * first so that a busy group is refused before any partition moves.
 *
 * Every partition that moves is read over the range it moves across
 * (scan.c): how many records the group skips (forwards) or reads again
 * (backwards), and the timestamps of the first and last.  The dry run
 * shows it; --execute writes it to the audit log (audit.c) *before*
 * the offsets move, so that no skip happens without its record.  If a
 * move then fails, "void" lines take back the entries of the
 * partitions that did not move.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/json.h"
#include "audit.h"

enum reset_spec {
	SPEC_EARLIEST = 1,
	SPEC_LATEST,
	SPEC_OFFSET,
	SPEC_SHIFT,
	SPEC_DATETIME,
};

enum {
	OPT_TO_EARLIEST = CTL_OPT_FIRST_LOCAL,
	OPT_TO_LATEST,
	OPT_TO_OFFSET,
	OPT_SHIFT_BY,
	OPT_TO_DATETIME,
	OPT_DRY_RUN,
};

struct reset {
	const char *group;
	const char *topic;
	uint32_t partition; /* UINT32_MAX: all */
	int spec; /* enum reset_spec */
	int nspecs;
	uint64_t offset; /* --to-offset */
	int64_t shift; /* --shift-by */
	int64_t ts_ns; /* --to-datetime */
	const char *spec_arg; /* the spec's argument as given, or NULL */
	int execute;
	int dry_run;
	uint64_t topic_id; /* --execute: of the topic reset, for the log */
};

struct plan {
	uint32_t partition;
	int has_current;
	uint64_t current;
	uint64_t target;
	int kind; /* AUDIT_SKIP, AUDIT_REPLAY, or 0: no move */
	struct scan_result sr; /* the range moved across */
};

/* One option of reset-offsets: -1 to go on, -2 if it is not its own,
 * else an exit status. */
static int
reset_option(struct reset *rs, const struct ctl_cmd *cmd, int c)
{
	switch (c) {
	case 't':
		rs->topic = optarg;
		break;
	case 'p':
		if (ctl_parse_u32(optarg, &rs->partition) != 0 ||
		    rs->partition == UINT32_MAX) {
			return ctl_usage_error(
			    cmd, "bad --partition '%s'", optarg);
		}
		break;
	case 'x':
		rs->execute = 1;
		break;
	case OPT_DRY_RUN:
		rs->dry_run = 1;
		break;
	case OPT_TO_EARLIEST:
		rs->spec = SPEC_EARLIEST;
		break;
	case OPT_TO_LATEST:
		rs->spec = SPEC_LATEST;
		break;
	case OPT_TO_OFFSET:
		rs->spec = SPEC_OFFSET;
		if (ctl_parse_u64(optarg, &rs->offset) != 0) {
			return ctl_usage_error(
			    cmd, "bad --to-offset '%s'", optarg);
		}
		break;
	case OPT_SHIFT_BY:
		rs->spec = SPEC_SHIFT;
		if (ctl_parse_i64(optarg, &rs->shift) != 0) {
			return ctl_usage_error(
			    cmd, "bad --shift-by '%s'", optarg);
		}
		break;
	case OPT_TO_DATETIME:
		rs->spec = SPEC_DATETIME;
		if (ctl_parse_datetime(optarg, &rs->ts_ns) != 0) {
			return ctl_usage_error(cmd,
			    "bad --to-datetime '%s' (ISO 8601, e.g. "
			    "2026-11-21T10:00:00Z)",
			    optarg);
		}
		break;
	default:
		return -2;
	}
	if (c >= OPT_TO_EARLIEST && c <= OPT_TO_DATETIME) {
		rs->nspecs++;
		rs->spec_arg = optarg;
	}
	return -1;
}

/* -1 to go on, else an exit status (0 after --help). */
static int
reset_options(struct ctl *ctl, const struct ctl_cmd *cmd, struct reset *rs,
    int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "topic", required_argument, NULL, 't' },
		{ "partition", required_argument, NULL, 'p' },
		{ "execute", no_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "to-earliest", no_argument, NULL, OPT_TO_EARLIEST },
		{ "to-latest", no_argument, NULL, OPT_TO_LATEST },
		{ "to-offset", required_argument, NULL, OPT_TO_OFFSET },
		{ "shift-by", required_argument, NULL, OPT_SHIFT_BY },
		{ "to-datetime", required_argument, NULL, OPT_TO_DATETIME },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	ctl_getopt_reset();
	while (
	    (c = getopt_long(argc, argv, ":t:p:xh", longopts, NULL)) != -1) {
		rc = reset_option(rs, cmd, c);
		if (rc == -2) {
			rc = ctl_common_option(ctl, cmd, c, argv);
		}
		if (rc >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "GROUP", &rs->group)) != 0) {
		return rc;
	}
	if (rs->topic == NULL) {
		return ctl_usage_error(cmd, "missing --topic TOPIC");
	}
	if (rs->nspecs != 1) {
		return ctl_usage_error(cmd,
		    "give exactly one of --to-earliest, --to-latest, "
		    "--to-offset, --shift-by, --to-datetime");
	}
	if (rs->execute && rs->dry_run) {
		return ctl_usage_error(
		    cmd, "--execute and --dry-run exclude each other");
	}
	return -1;
}

/* current + shift, saturating at 0 and UINT64_MAX (clamped later). */
static uint64_t
reset_shift(uint64_t current, int64_t shift)
{
	uint64_t mag;

	if (shift >= 0) {
		mag = (uint64_t)shift;
		return current > UINT64_MAX - mag ? UINT64_MAX : current + mag;
	}
	/* -(shift + 1) + 1 avoids overflow at INT64_MIN. */
	mag = (uint64_t)(-(shift + 1)) + 1;
	return current < mag ? 0 : current - mag;
}

/* The new offset of one partition, clamped to the log. */
static int
reset_target(struct ctl *ctl, const struct reset *rs, struct plan *pl)
{
	shmq_partition_info_t info;
	uint64_t t = 0;
	int rc;

	rc = shmq_partition_info(ctl->q, rs->topic, pl->partition, &info);
	if (rc != 0) {
		return ctl_fail(
		    rc, "topic %s partition %u", rs->topic, pl->partition);
	}
	switch (rs->spec) {
	case SPEC_EARLIEST:
		t = info.log_start;
		break;
	case SPEC_LATEST:
		t = info.end;
		break;
	case SPEC_OFFSET:
		t = rs->offset;
		break;
	case SPEC_SHIFT:
		if (!pl->has_current) {
			ctl_note("group %s on topic %s: no committed offset "
			         "to shift",
			    rs->group, rs->topic);
			return CTL_EXIT_FAIL;
		}
		t = reset_shift(pl->current, rs->shift);
		break;
	case SPEC_DATETIME:
		rc = shmq_offset_for_time(
		    ctl->q, rs->topic, pl->partition, rs->ts_ns, &t);
		if (rc != 0) {
			return ctl_fail(rc,
			    "topic %s partition %u: offset "
			    "for time",
			    rs->topic, pl->partition);
		}
		break;
	}
	if (t < info.log_start) {
		t = info.log_start;
	}
	if (t > info.end) {
		t = info.end;
	}
	pl->target = t;
	return 0;
}

/* The plan for every selected partition: *plans (malloc'd), *n. */
static int
reset_plan(
    struct ctl *ctl, const struct reset *rs, struct plan **plans, size_t *n)
{
	shmq_group_partition_t *gp = NULL;
	uint32_t parts, p;
	ssize_t ng;
	size_t i;
	int rc;

	*plans = NULL;
	rc = ctl_check_partition(ctl, rs->topic, rs->partition, &parts);
	if (rc != 0) {
		return rc;
	}
	gp = calloc(parts, sizeof(*gp));
	*plans = calloc(parts, sizeof(**plans));
	if (gp == NULL || *plans == NULL) {
		free(gp);
		return ctl_fail(-ENOMEM, "group reset-offsets");
	}
	/* -ENOENT: the group never read this topic; it has no offsets. */
	ng = shmq_group_describe(ctl->q, rs->group, rs->topic, gp, parts);
	if (ng < 0 && ng != -ENOENT) {
		free(gp);
		return ctl_fail(
		    (int)ng, "group %s on topic %s", rs->group, rs->topic);
	}
	*n = 0;
	for (p = 0; p < parts; p++) {
		struct plan *pl = &(*plans)[*n];

		if (rs->partition != UINT32_MAX && p != rs->partition) {
			continue;
		}
		pl->partition = p;
		for (i = 0; ng > 0 && i < (size_t)ng && i < parts; i++) {
			if (gp[i].partition == p) {
				pl->has_current = 1;
				pl->current = gp[i].committed;
			}
		}
		if ((rc = reset_target(ctl, rs, pl)) != 0) {
			free(gp);
			return rc;
		}
		(*n)++;
	}
	free(gp);
	return 0;
}

/* Read the range each moving partition moves across. */
static int
reset_scan(struct ctl *ctl, const struct reset *rs, struct plan *pl, size_t n)
{
	uint64_t lo, hi;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (!pl[i].has_current || pl[i].target == pl[i].current) {
			continue;
		}
		pl[i].kind =
		    pl[i].target > pl[i].current ? AUDIT_SKIP : AUDIT_REPLAY;
		lo = pl[i].kind == AUDIT_SKIP ? pl[i].current : pl[i].target;
		hi = pl[i].kind == AUDIT_SKIP ? pl[i].target : pl[i].current;
		rc = scan_range(ctl->q, rs->topic, pl[i].partition, lo, hi,
		    NULL, NULL, &pl[i].sr);
		if (rc != 0) {
			return ctl_fail(rc,
			    "topic %s partition %u: read offsets "
			    "%llu..%llu",
			    rs->topic, pl[i].partition, (unsigned long long)lo,
			    (unsigned long long)hi);
		}
		if (pl[i].sr.pending > 0) {
			ctl_note(
			    "topic %s partition %u: %llu offsets below %llu "
			    "were still being written; not counted",
			    rs->topic, pl[i].partition,
			    (unsigned long long)pl[i].sr.pending,
			    (unsigned long long)hi);
		}
	}
	return 0;
}

static const char *
reset_spec_name(int spec)
{
	switch (spec) {
	case SPEC_EARLIEST:
		return "to-earliest";
	case SPEC_LATEST:
		return "to-latest";
	case SPEC_OFFSET:
		return "to-offset";
	case SPEC_SHIFT:
		return "shift-by";
	default:
		return "to-datetime";
	}
}

/* The audit entry of one partition; kind AUDIT_VOID takes it back. */
static void
reset_entry(const struct reset *rs, const struct plan *pl, int kind,
    struct audit_entry *e)
{
	struct timespec now;

	memset(e, 0, sizeof(*e));
	e->kind = kind;
	snprintf(e->group, sizeof(e->group), "%s", rs->group);
	snprintf(e->topic, sizeof(e->topic), "%s", rs->topic);
	e->topic_id = rs->topic_id;
	e->partition = pl->partition;
	e->from = pl->kind == AUDIT_SKIP ? pl->current : pl->target;
	e->to = pl->kind == AUDIT_SKIP ? pl->target : pl->current;
	e->sr = pl->sr;
	clock_gettime(CLOCK_REALTIME, &now);
	e->time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	e->uid = (uint32_t)getuid();
	e->pid = (int32_t)getpid();
	snprintf(e->spec, sizeof(e->spec), "%s%s%s", reset_spec_name(rs->spec),
	    rs->spec_arg != NULL ? " " : "",
	    rs->spec_arg != NULL ? rs->spec_arg : "");
}

/* Append an entry of `kind` for every moving plan from pl[first] on.
 * *id: 0 for a new one (then set), or the id the entries keep. */
static int
reset_audit(struct ctl *ctl, const struct reset *rs, const struct plan *pl,
    size_t n, size_t first, int kind, uint64_t *id, char *path, size_t cap)
{
	struct audit_entry *e;
	size_t i, k = 0;
	int rc;

	if ((e = calloc(n, sizeof(*e))) == NULL) {
		return -ENOMEM;
	}
	for (i = first; i < n; i++) {
		if (pl[i].kind != 0) {
			reset_entry(
			    rs, &pl[i], kind ? kind : pl[i].kind, &e[k++]);
		}
	}
	rc = k > 0 ? audit_append(ctl, e, k, id, path, cap) : 0;
	free(e);
	return rc;
}

static int
reset_fail(int rc, const struct reset *rs)
{
	ctl_fail(
	    rc, "group reset-offsets %s on topic %s", rs->group, rs->topic);
	group_hint(rc, rs->group, rs->topic);
	return CTL_EXIT_FAIL;
}

/* Record, then move.  *id is the audit entry's (0: nothing moved). */
static int
reset_apply(struct ctl *ctl, const struct reset *rs, const struct plan *pl,
    size_t n, uint64_t *id, char *path, size_t cap)
{
	uint32_t members = 0;
	size_t i;
	int rc;

	*id = 0;
	rc = shmq_group_members(ctl->q, rs->group, rs->topic, &members);
	if (rc == -ENOENT) {
		/* No group state yet: setting an offset may create it. */
		rc = 0;
	} else if (rc == 0 && members > 0) {
		rc = -EBUSY;
	}
	if (rc != 0) {
		return reset_fail(rc, rs);
	}
	rc = reset_audit(ctl, rs, pl, n, 0, 0, id, path, cap);
	if (rc != 0) {
		return ctl_fail(rc, "audit log %s: nothing was reset", path);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		rc = shmq_group_set_offset(ctl->q, rs->group, rs->topic,
		    pl[i].partition, pl[i].target);
	}
	if (rc == 0) {
		return 0;
	}
	reset_fail(rc, rs);
	/* pl[i - 1] failed: it and the rest did not move. */
	if (*id != 0 &&
	    (rc = reset_audit(
	         ctl, rs, pl, n, i - 1, AUDIT_VOID, id, path, cap)) != 0) {
		ctl_fail(rc,
		    "audit log %s: entry %llu names partitions that did not "
		    "move, from partition %u on",
		    path, (unsigned long long)*id, pl[i - 1].partition);
	}
	return CTL_EXIT_FAIL;
}

static void
reset_json_range(struct json *j, const struct plan *pl)
{
	json_key(j, "change");
	if (pl->kind == 0) {
		json_null(j);
		return;
	}
	json_str(j, audit_kind_name(pl->kind));
	json_kuint(
	    j, "from", pl->kind == AUDIT_SKIP ? pl->current : pl->target);
	json_kuint(j, "to", pl->kind == AUDIT_SKIP ? pl->target : pl->current);
	json_kuint(j, "records", pl->sr.records);
	json_kuint(j, "lost", pl->sr.lost);
	json_kuint(j, "pending", pl->sr.pending);
	json_key(j, "first_timestamp");
	if (pl->sr.has_times) {
		json_int(j, pl->sr.first_ts);
	} else {
		json_null(j);
	}
	json_key(j, "last_timestamp");
	if (pl->sr.has_times) {
		json_int(j, pl->sr.last_ts);
	} else {
		json_null(j);
	}
}

static void
reset_print_json(
    const struct reset *rs, const struct plan *pl, size_t n, uint64_t id)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "group", rs->group);
	json_kstr(&j, "topic", rs->topic);
	json_key(&j, "executed");
	json_bool(&j, rs->execute);
	json_key(&j, "audit_id");
	if (id != 0) {
		json_uint(&j, id);
	} else {
		json_null(&j);
	}
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (i = 0; i < n; i++) {
		json_begin_object(&j);
		json_kuint(&j, "partition", pl[i].partition);
		json_key(&j, "committed");
		if (pl[i].has_current) {
			json_uint(&j, pl[i].current);
		} else {
			json_null(&j);
		}
		json_kuint(&j, "new_offset", pl[i].target);
		reset_json_range(&j, &pl[i]);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

/* The ranges the moving partitions skip or read again. */
static int
reset_print_ranges(const struct plan *pl, size_t n)
{
	static const char *const headers[] = { "PARTITION", "CHANGE", "FROM",
		"TO", "RECORDS", "LOST", "FIRST-RECORD", "LAST-RECORD" };
	char t1[48], t2[48];
	struct table *t;
	size_t i;
	int rc;

	t = table_new(8, headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct plan *p = &pl[i];

		if (p->kind == 0) {
			continue;
		}
		table_cell(t, "%u", p->partition);
		table_cell(t, "%s", audit_kind_name(p->kind));
		table_cell(t, "%llu",
		    (unsigned long long)(p->kind == AUDIT_SKIP ? p->current
		                                               : p->target));
		table_cell(t, "%llu",
		    (unsigned long long)(p->kind == AUDIT_SKIP ? p->target
		                                               : p->current));
		table_cell(t, "%llu", (unsigned long long)p->sr.records);
		table_cell(t, "%llu", (unsigned long long)p->sr.lost);
		table_cell(t, "%s",
		    p->sr.has_times
		        ? audit_fmt_time(t1, sizeof(t1), p->sr.first_ts)
		        : "-");
		table_cell(t, "%s",
		    p->sr.has_times
		        ? audit_fmt_time(t2, sizeof(t2), p->sr.last_ts)
		        : "-");
	}
	putchar('\n');
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

static int
reset_print_text(const struct reset *rs, const struct plan *pl, size_t n,
    uint64_t id, const char *path)
{
	static const char *const headers[] = { "PARTITION", "COMMITTED",
		"NEW-OFFSET" };
	struct table *t;
	size_t i, moved = 0;
	int rc;

	printf("GROUP  %s\nTOPIC  %s\n\n", rs->group, rs->topic);
	t = table_new(3, headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		table_cell(t, "%u", pl[i].partition);
		if (pl[i].has_current) {
			table_cell(
			    t, "%llu", (unsigned long long)pl[i].current);
		} else {
			table_cell(t, "-");
		}
		table_cell(t, "%llu", (unsigned long long)pl[i].target);
		moved += pl[i].kind != 0;
	}
	rc = table_print(t, stdout);
	table_free(t);
	if (rc == 0 && moved > 0) {
		rc = reset_print_ranges(pl, n);
	}
	if (rc == 0 && id != 0) {
		printf("\nAUDIT  entry %llu in %s\n", (unsigned long long)id,
		    path);
	}
	return rc;
}

int
reset_offsets(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct reset rs;
	struct plan *plans = NULL;
	char path[PATH_MAX] = "";
	uint64_t id = 0;
	size_t n = 0;
	int rc;

	memset(&rs, 0, sizeof(rs));
	rs.partition = UINT32_MAX;
	if ((rc = reset_options(ctl, cmd, &rs, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	rc = reset_plan(ctl, &rs, &plans, &n);
	if (rc == 0) {
		rc = reset_scan(ctl, &rs, plans, n);
	}
	/* The id tells this topic from one deleted before under the same
	 * name (audit.h). */
	if (rc == 0 && rs.execute &&
	    (rc = audit_topic_id(ctl, rs.topic, &rs.topic_id)) != 0) {
		rc = reset_fail(rc, &rs);
	}
	if (rc == 0 && rs.execute) {
		rc = reset_apply(ctl, &rs, plans, n, &id, path, sizeof(path));
	}
	if (rc == 0) {
		if (ctl->json) {
			reset_print_json(&rs, plans, n, id);
		} else if (reset_print_text(&rs, plans, n, id, path) != 0) {
			rc = ctl_fail(-ENOMEM, "group reset-offsets");
		}
	}
	if (rc == 0 && !rs.execute) {
		ctl_note("dry run: nothing changed; add --execute to apply");
	}
	free(plans);
	return rc;
}
