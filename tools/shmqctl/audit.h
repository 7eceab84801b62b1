/*
 * audit.h — the instance's audit log of offset resets, and the commands
 * built on it (`group skipped`, `group replay-skipped`).
 *
 * `group reset-offsets --execute` writes one line per partition whose
 * committed offset it moves, all with one id: a move forwards skipped
 * the records in between (kind "skip"), a move backwards makes the
 * group read them again (kind "replay").  `group replay-skipped ID`
 * then appends a line per partition it replayed, with the entry's id
 * (kind "replayed"), so that the log says where a skip went.  Every line
 * names the topic's id too (topic_id): a topic deleted and created
 * again under the same name is another topic, whose offsets the old
 * entries do not describe.  Lines written before that field have
 * topic_id 0 (unknown).  The log is HOME/audit/skipped.log, one JSON
 * object per line.
 */
#ifndef SHMQCTL_AUDIT_H
#define SHMQCTL_AUDIT_H

#include <limits.h>
#include <stdint.h>

#include "shmqctl.h"

enum audit_kind {
	AUDIT_SKIP = 1, /* moved forwards: [from, to) will not be read */
	AUDIT_REPLAY, /* moved backwards: [from, to) is read again */
	AUDIT_VOID, /* the reset failed: entry (id, partition) never
	             * happened */
	AUDIT_REPLAYED, /* replay-skipped brought back [from, to) of
	                 * entry id: records copied (or readable, for a
	                 * group alone) into to_topic and/or to_group */
};

/* What a read of [from, to) of one partition found (scan.c). */
struct scan_result {
	uint64_t records; /* records read in the range */
	uint64_t lost; /* offsets of the range no longer in the log */
	uint64_t pending; /* offsets not yet committed by producers */
	int has_times; /* records > 0: the next two are set */
	int64_t first_ts; /* timestamp of the first record (ns) */
	int64_t last_ts; /* ... and of the last one */
};

struct audit_entry {
	uint64_t id; /* one per reset, shared by its partitions */
	int kind; /* enum audit_kind */
	char group[SHMQ_NAME_MAX + 1];
	char topic[SHMQ_NAME_MAX + 1];
	uint64_t topic_id; /* 0: not recorded (an older line) */
	uint32_t partition;
	uint64_t from, to; /* the offset range [from, to) */
	struct scan_result sr; /* what the range held at the reset */
	int64_t time_ns; /* when (CLOCK_REALTIME) */
	uint32_t uid;
	int32_t pid;
	char spec[64]; /* the reset's spec, e.g. "to-latest" */
	/* AUDIT_REPLAYED: where to ("" for none of the two) */
	char to_topic[SHMQ_NAME_MAX + 1];
	char to_group[SHMQ_NAME_MAX + 1];
	/* Read back only: */
	int applied; /* no "void" line names this entry */
	unsigned line; /* line number in the log */
};

struct audit_log {
	char path[PATH_MAX];
	struct audit_entry *e; /* kinds SKIP, REPLAY, REPLAYED, in log order */
	size_t n;
	unsigned bad; /* lines that could not be read (reported) */
};

/* Append entries e[0..n): one write of whole lines, under an
 * exclusive lock of the log, then fsync.  *id is 0 for a new id (one
 * above the highest in the log: set in each entry and in *id), or the
 * id they keep (void lines).  Returns 0 or -errno; path names the log
 * either way. */
int audit_append(struct ctl *ctl, struct audit_entry *e, size_t n,
    uint64_t *id, char *path, size_t cap);

/* Read the log: every line that parses, in order, with the void ones
 * folded into `applied`.  A bad line is reported on stderr with its
 * number, counted in log->bad, and skipped.  A missing log is empty.
 * Returns 0 or an exit status (after printing why). */
int audit_read(struct ctl *ctl, struct audit_log *log);
void audit_log_fini(struct audit_log *log);

/* The id of topic `topic` now (from its metadata file, HOME/topics/
 * TOPIC.topic: the library has no call that returns it); -ENOENT if
 * there is no such topic. */
int audit_topic_id(struct ctl *ctl, const char *topic, uint64_t *id);

/* auditfmt.c: the entry as one JSON line ending in "\n" (*line is
 * malloc'd), or -ENOMEM. */
int audit_format(const struct audit_entry *e, char **line, size_t *len);
/* key: name, or null for "" (struct json: ../common/json.h). */
struct json;
void audit_json_name(struct json *j, const char *key, const char *name);
/* Parse one line (without its "\n"): 0, or -1 with *why saying what
 * is wrong (a static string, valid until the next call). */
int audit_parse(
    const char *line, size_t len, struct audit_entry *e, const char **why);

/* "skip", "replay", "void", "replayed". */
const char *audit_kind_name(int kind);
/* ns since the epoch as UTC "2026-11-21T10:00:00.123Z" (cap >= 40). */
const char *audit_fmt_time(char *buf, size_t cap, int64_t ns);

/* scan.c: read the records of [from, to) of one partition in order,
 * calling fn (if not NULL) for each; fn's nonzero result stops the
 * scan and is returned.  Offsets below the log start count as lost;
 * offsets producers have reserved but not committed are waited for
 * briefly, then counted as pending.  Returns 0, fn's result, or a
 * negative error. */
typedef int scan_fn(const shmq_record_t *r, void *arg);
int scan_range(shmq_t *q, const char *topic, uint32_t partition, uint64_t from,
    uint64_t to, scan_fn *fn, void *arg, struct scan_result *res);

ctl_run_fn group_skipped, group_replay_skipped;

#endif /* SHMQCTL_AUDIT_H */
