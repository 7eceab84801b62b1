/*
 * shmqctl.h — declarations shared by the files of shmqctl.
 *
 * shmqctl is a noun-verb CLI (`shmqctl topic create ...`) over the
 * public API in shmq.h only.  main.c parses the global options and
 * dispatches to one function per command; each command parses its own
 * options with getopt_long and returns the process exit status.
 */
#ifndef SHMQCTL_H
#define SHMQCTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shmq.h"

/* Exit statuses (ecosystem.md §3.2). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

/* Long-only options every command accepts, numbered above any char. */
enum {
	CTL_OPT_JSON = 0x100,
	CTL_OPT_HOME,
	CTL_OPT_FIRST_LOCAL, /* commands number their own from here */
};

/* Entries for each command's struct option array. */
/* clang-format off */
#define CTL_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "json", no_argument, NULL, CTL_OPT_JSON }, \
	{ "home", required_argument, NULL, CTL_OPT_HOME }
/* clang-format on */

struct ctl {
	const char *home; /* --home, or NULL for $SHMQ_HOME */
	int json; /* --json */
	shmq_t *q; /* attached by ctl_attach, detached by main */
};

struct ctl_cmd;

/* Commands: argv[0] is the verb (or the command word), options may
 * follow positionals; the result is the exit status. */
typedef int ctl_run_fn(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv);

struct ctl_cmd {
	const char *name; /* "topic create" */
	const char *usage; /* synopsis and options, for --help */
	ctl_run_fn *run;
};

ctl_run_fn topic_create, topic_list, topic_describe, topic_delete;
ctl_run_fn topic_add_partitions;
ctl_run_fn produce_run, consume_run;
ctl_run_fn group_list, group_describe, group_delete, reset_offsets;
ctl_run_fn info_run;
ctl_run_fn status_run;
ctl_run_fn relay_run; /* relay.c */

/* util.c: diagnostics, attaching, option plumbing */

/* Print "shmqctl: <cmd>: <message>" and a --help hint; returns
 * CTL_EXIT_USAGE. */
int ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "shmqctl: <what>: <shmq_strerror(err)>"; returns
 * CTL_EXIT_FAIL. */
int ctl_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "shmqctl: <message>" (warnings, hints). */
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Attach to the instance unless attached; `create` makes a missing
 * home.  Returns 0 or an exit status (after printing why). */
int ctl_attach(struct ctl *ctl, int create);

/* Start a getopt_long loop over a command's argv. */
void ctl_getopt_reset(void);
/* Handle an option that ctl_getopt's caller did not recognise: the
 * common ones, --help, and getopt's errors.  Returns -1 to go on, or an
 * exit status to return at once. */
int ctl_common_option(
    struct ctl *ctl, const struct ctl_cmd *cmd, int c, char **argv);
/* Parse a command that takes only the common options: -1 to go on, or
 * the exit status (help printed, or a usage error). */
int ctl_common_only(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv);
/* Take the single positional argument `what` (e.g. "TOPIC"): *out is
 * set, or a usage error is returned. */
int ctl_one_arg(const struct ctl_cmd *cmd, int argc, char **argv,
    const char *what, const char **out);
/* No positional arguments allowed. */
int ctl_no_args(const struct ctl_cmd *cmd, int argc, char **argv);

/* Check that `topic` exists and, unless `partition` is UINT32_MAX,
 * has that partition; *partitions (if not NULL) gets the count.
 * Returns 0 or an exit status (after printing why). */
int ctl_check_partition(struct ctl *ctl, const char *topic, uint32_t partition,
    uint32_t *partitions);

/* Flush stdout; on a write error print it and return CTL_EXIT_FAIL. */
int ctl_flush_stdout(void);

/* Strict number parsing: the whole string, no overflow.  Return 0 or
 * -1. */
int ctl_parse_u64(const char *s, uint64_t *v);
int ctl_parse_i64(const char *s, int64_t *v);
int ctl_parse_u32(const char *s, uint32_t *v);
/* Bytes with an optional binary suffix: K, M, G, T (also KB/KiB...). */
int ctl_parse_size(const char *s, uint64_t *v);
/* Milliseconds: -1 (forever) or 0..INT_MAX. */
int ctl_parse_timeout(const char *s, int *ms);
/* Does `name` satisfy shmq.h's rule for names?  For hints only: the
 * library has the last word. */
int ctl_name_ok(const char *name);
/* SIGINT and SIGTERM call fn, without SA_RESTART. */
void ctl_catch_signals(void (*fn)(int));

/* group.c: a hint after a group call failed with -ENOENT or -EBUSY. */
void group_hint(int err, const char *group, const char *topic);

/* datetime.c: ISO 8601 "YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM|±HHMM]"
 * (no zone: local time) to ns since the epoch.  Returns 0 or -1. */
int ctl_parse_datetime(const char *s, int64_t *ns);

/* out.c: human output */

/* A text table: upper-case headers, left-aligned columns sized to the
 * data, two spaces apart. */
struct table;
struct table *table_new(size_t ncols, const char *const *headers);
/* Append the next cell (rows fill left to right).  An allocation
 * failure is remembered and reported by table_print. */
void table_cell(struct table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print the table; returns 0 or -ENOMEM. */
int table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

/* "16M", "1.5K", "512": a byte count for humans (buf >= 16 bytes). */
const char *fmt_size(char *buf, size_t cap, uint64_t bytes);
/* "block" / "drop". */
const char *fmt_overflow(int overflow);
/* "always" / "interval" / "never" (without the interval's ms). */
const char *fmt_fsync(int fsync);

#endif /* SHMQCTL_H */
