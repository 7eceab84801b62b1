/*
 * relay.c — `shmqctl relay --from TOPIC --to TOPIC2`: move a topic's
 * records into another topic (typically one with more partitions),
 * placed by key, as a consumer group of the source.
 *
 * The loop reads a batch from the source (as group member), orders it
 * by target partition (stably), sends it to the target with
 * shmq_send_batch at the chosen ack level, and only once the send has
 * returned success for a record is that record's source offset
 * committed (per source partition, the offset after the last
 * acknowledged record, never past one not acknowledged).  So a crash
 * anywhere re-sends at most the batch in flight: at-least-once, never
 * a loss.  Per-key order holds
 * because a key's records come from one source partition in offset
 * order, and the target's producer puts every record of a key into the
 * same target partition (SHMQ_PARTITION_ANY: murmur2, as any producer)
 * in the order sent.  Records without a key are pinned to the source
 * partition modulo the target's partition count, so they keep their
 * order too (the sticky partitioner would spread them over partitions).
 * Timestamps are copied.
 *
 * Drain mode (the default) snapshots each source partition's end at
 * the start and stops once every partition this member reads has been
 * read to it (a tail of aborted offsets, gaps, counts as read once the
 * partition's committed watermark has passed the snapshot) and the
 * group has committed the others (read by other members) up to it.  --follow
 * goes on until SIGINT/SIGTERM: the batch in flight is finished and
 * committed, the summary printed, and the status is 0.  A second
 * signal ends the process at once (what it had not committed is sent
 * again by the next run).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/json.h"
#include "progress.h"
#include "shmqctl.h"

/* Default and largest --batch (records per send and per commit). */
#define RELAY_BATCH_DEFAULT 1000u
#define RELAY_BATCH_MAX 65536u
/* A batch also ends once its keys and values fill this many bytes
 * (always at least one record), so memory stays bounded. */
#define RELAY_BATCH_BYTES (4u * 1024u * 1024u)
#define RELAY_BUF_INIT (1024u * 1024u)
/* Longest single wait (for records, or for room with acks leader), so
 * that a signal and a due progress redraw are seen this soon. */
#define RELAY_SLICE_MS 100
/* Per-partition arrays have room for every partition a topic may have,
 * not just those it had at the start: `topic add-partitions` may grow
 * either topic while the relay runs.  The source's new partitions are
 * relayed as they come (drain mode does not wait for them: they were
 * not in the snapshot); the target's are used by the producer, keys
 * then hashing over the new count. */
#define RELAY_PARTS SHMQ_PARTITIONS_MAX
/* The default group: this prefix and the target's name. */
#define RELAY_GROUP_PREFIX "relay."

enum {
	OPT_FROM = CTL_OPT_FIRST_LOCAL,
	OPT_TO,
	OPT_FOLLOW,
	OPT_MAX,
	OPT_NO_PROGRESS,
};

enum relay_stop {
	STOP_NONE,
	STOP_DRAINED, /* drain mode: the backlog as at the start is done */
	STOP_MAX, /* --max records relayed */
	STOP_SIGNAL,
	STOP_ERROR,
};

struct relay {
	const char *from, *to, *group;
	const char *home; /* the instance's, for hints */
	char group_buf[SHMQ_NAME_MAX + 1];
	int acks; /* -1 until chosen */
	uint32_t batch;
	int has_max;
	uint64_t max;
	int follow;
	int progress; /* -1: on a terminal; 0: never */
	uint32_t nsrc, ndst;
	int dst_persistent;
	shmq_consumer_t *c;
	shmq_producer_t *p;
	/* Per source partition. */
	uint64_t *pos; /* next offset to read, as far as seen */
	uint64_t *snap_end; /* drain: the end at the start */
	uint8_t *gapped; /* drain: the rest up to snap_end is gaps */
	uint64_t *commit_to; /* the batch's commit (0: none) */
	uint32_t *owned; /* this member's partitions */
	uint8_t *mine; /* drain: owned[] as flags */
	shmq_group_partition_t *gp; /* drain: the group's offsets */
	int told_waiting, told_moved; /* notes given once */
	uint32_t pending; /* drain: partitions not read to snap_end */
	/* The batch: msgs[i] came from (src_part[i], src_off[i]); keys and
	 * values are in buf, which only grows while the batch is empty,
	 * so the pointers into it stay valid. */
	shmq_msg_t *msgs;
	uint32_t *src_part;
	uint64_t *src_off;
	size_t n;
	/* relay_sort's second copy of the three, and its counts. */
	shmq_msg_t *msgs2;
	uint32_t *src_part2;
	uint64_t *src_off2;
	size_t *count; /* ndst + 1 */
	char *buf;
	size_t cap, used;
	/* What was relayed (acknowledged and committed). */
	uint64_t records, bytes, lost;
	uint64_t *dst_records, *dst_bytes; /* per target partition */
	uint32_t dst_seen; /* target partitions to report: ndst, or more
	                    * if the target grew */
	int64_t start_ns;
	enum relay_stop stop;
	struct progress pg;
};

static volatile sig_atomic_t relay_signal;

/* The first SIGINT/SIGTERM asks the loop to stop after the batch in
 * flight; a second one (say, while a send waits for room that never
 * comes) ends the process at once, which is safe: what it had not
 * committed is relayed again by the next run. */
static void
relay_on_signal(int sig)
{
	static const char msg[] =
	    "\nshmqctl: relay: stopping after the batch in flight (again to "
	    "stop at once)\n";
	ssize_t rc;

	if (relay_signal != 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	relay_signal = sig;
	rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)rc;
}

static void
relay_catch_signals(void)
{
	ctl_catch_signals(relay_on_signal);
}

/* ---- options ------------------------------------------------------------ */

static int
relay_number(const struct ctl_cmd *cmd, const char *opt, const char *s,
    uint64_t lo, uint64_t hi, uint64_t *v)
{
	if (ctl_parse_u64(s, v) != 0 || *v < lo || *v > hi) {
		return ctl_usage_error(cmd,
		    "bad %s '%s': a number from %llu to %llu", opt, s,
		    (unsigned long long)lo, (unsigned long long)hi);
	}
	return -1;
}

/* One option: -1 to go on, or an exit status. */
static int
relay_option(struct ctl *ctl, const struct ctl_cmd *cmd, struct relay *rl,
    int c, char **argv)
{
	uint64_t v = 0;
	int rc;

	switch (c) {
	case OPT_FROM:
		rl->from = optarg;
		return -1;
	case OPT_TO:
		rl->to = optarg;
		return -1;
	case 'g':
		rl->group = optarg;
		return -1;
	case OPT_FOLLOW:
		rl->follow = 1;
		return -1;
	case OPT_NO_PROGRESS:
		rl->progress = 0;
		return -1;
	case 'a':
		if (strcmp(optarg, "leader") == 0) {
			rl->acks = SHMQ_ACKS_LEADER;
		} else if (strcmp(optarg, "durable") == 0) {
			rl->acks = SHMQ_ACKS_DURABLE;
		} else {
			return ctl_usage_error(
			    cmd, "--acks must be leader or durable");
		}
		return -1;
	case 'b':
		rc = relay_number(
		    cmd, "--batch", optarg, 1, RELAY_BATCH_MAX, &v);
		rl->batch = (uint32_t)v;
		return rc;
	case OPT_MAX:
		rc = relay_number(cmd, "--max", optarg, 1, UINT64_MAX, &v);
		rl->max = v;
		rl->has_max = 1;
		return rc;
	default:
		return ctl_common_option(ctl, cmd, c, argv);
	}
}

/* -1 to go on, else an exit status (0 after --help). */
static int
relay_options(struct ctl *ctl, const struct ctl_cmd *cmd, struct relay *rl,
    int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "group", required_argument, NULL, 'g' },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "acks", required_argument, NULL, 'a' },
		{ "batch", required_argument, NULL, 'b' },
		{ "max", required_argument, NULL, OPT_MAX },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	ctl_getopt_reset();
	while (
	    (c = getopt_long(argc, argv, ":g:a:b:h", longopts, NULL)) != -1) {
		if ((rc = relay_option(ctl, cmd, rl, c, argv)) >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_no_args(cmd, argc, argv)) != 0) {
		return rc;
	}
	if (rl->from == NULL || rl->to == NULL) {
		return ctl_usage_error(
		    cmd, "give --from TOPIC and --to TOPIC");
	}
	if (!ctl_name_ok(rl->from) || !ctl_name_ok(rl->to)) {
		return ctl_usage_error(cmd, "bad topic name '%s'",
		    ctl_name_ok(rl->from) ? rl->to : rl->from);
	}
	if (strcmp(rl->from, rl->to) == 0) {
		return ctl_usage_error(cmd,
		    "--from and --to are the same topic '%s': a relay would "
		    "read its own records forever",
		    rl->from);
	}
	if (rl->group == NULL) {
		/* Named after the target, so that a second run on the
		 * same pair resumes where the first stopped. */
		if (strlen(RELAY_GROUP_PREFIX) + strlen(rl->to) >
		    SHMQ_NAME_MAX) {
			return ctl_usage_error(cmd,
			    "the default group '" RELAY_GROUP_PREFIX
			    "%s' would be longer than %d bytes: give "
			    "--group",
			    rl->to, SHMQ_NAME_MAX);
		}
		snprintf(rl->group_buf, sizeof(rl->group_buf),
		    RELAY_GROUP_PREFIX "%s", rl->to);
		rl->group = rl->group_buf;
	} else if (!ctl_name_ok(rl->group)) {
		return ctl_usage_error(cmd, "bad group name '%s'", rl->group);
	}
	return -1;
}

/* ---- set-up ------------------------------------------------------------- */

/* A topic that does not exist is a usage error (status 2), as a
 * mistyped name is; any other failure is status 1. */
static int
relay_describe(const struct ctl_cmd *cmd, struct ctl *ctl, const char *topic,
    shmq_topic_config_t *cfg)
{
	int rc;

	shmq_topic_config_init(cfg);
	rc = shmq_topic_describe(ctl->q, topic, cfg);
	if (rc == -ENOENT) {
		return ctl_usage_error(cmd, "no topic '%s'", topic);
	}
	if (rc != 0) {
		return ctl_fail(rc, "relay: topic %s", topic);
	}
	return 0;
}

/* The ack level: as asked, else durable for a persistent target (the
 * source offset is then committed only once the copy is on the
 * target's disk), leader for a volatile one.  Durable needs a running
 * replicator: refused up front, with the two ways out. */
static int
relay_choose_acks(const struct ctl_cmd *cmd, struct ctl *ctl, struct relay *rl)
{
	pid_t pid;
	int rc;

	if (rl->acks == SHMQ_ACKS_DURABLE && !rl->dst_persistent) {
		return ctl_usage_error(cmd,
		    "--acks durable needs a persistent target; topic %s is "
		    "volatile",
		    rl->to);
	}
	if (rl->acks < 0) {
		rl->acks =
		    rl->dst_persistent ? SHMQ_ACKS_DURABLE : SHMQ_ACKS_LEADER;
	}
	if (rl->acks != SHMQ_ACKS_DURABLE) {
		return 0;
	}
	rc = shmq_persister_running(ctl->q, &pid);
	if (rc < 0) {
		return ctl_fail(rc, "relay: is shmq-replicator running");
	}
	if (rc == 0) {
		ctl_note("relay: topic %s is persistent and acks are durable, "
		         "but no shmq-replicator runs for %s",
		    rl->to, shmq_home(ctl->q));
		ctl_note("hint: start it with: shmq-replicator --home %s; or "
		         "relay with --acks leader",
		    shmq_home(ctl->q));
		return CTL_EXIT_FAIL;
	}
	return 0;
}

static int
relay_alloc(struct relay *rl)
{
	rl->pos = calloc(RELAY_PARTS, sizeof(*rl->pos));
	rl->snap_end = calloc(RELAY_PARTS, sizeof(*rl->snap_end));
	rl->gapped = calloc(RELAY_PARTS, sizeof(*rl->gapped));
	rl->commit_to = calloc(RELAY_PARTS, sizeof(*rl->commit_to));
	rl->owned = calloc(RELAY_PARTS, sizeof(*rl->owned));
	rl->mine = calloc(RELAY_PARTS, sizeof(*rl->mine));
	rl->gp = calloc(RELAY_PARTS, sizeof(*rl->gp));
	rl->msgs = calloc(rl->batch, sizeof(*rl->msgs));
	rl->src_part = calloc(rl->batch, sizeof(*rl->src_part));
	rl->src_off = calloc(rl->batch, sizeof(*rl->src_off));
	rl->msgs2 = calloc(rl->batch, sizeof(*rl->msgs2));
	rl->src_part2 = calloc(rl->batch, sizeof(*rl->src_part2));
	rl->src_off2 = calloc(rl->batch, sizeof(*rl->src_off2));
	rl->count = calloc(rl->ndst + 1, sizeof(*rl->count));
	rl->dst_records = calloc(RELAY_PARTS, sizeof(*rl->dst_records));
	rl->dst_bytes = calloc(RELAY_PARTS, sizeof(*rl->dst_bytes));
	rl->cap = RELAY_BUF_INIT;
	rl->buf = malloc(rl->cap);
	if (rl->pos == NULL || rl->snap_end == NULL || rl->gapped == NULL ||
	    rl->commit_to == NULL || rl->owned == NULL || rl->mine == NULL ||
	    rl->gp == NULL || rl->msgs == NULL || rl->src_part == NULL ||
	    rl->src_off == NULL || rl->msgs2 == NULL ||
	    rl->src_part2 == NULL || rl->src_off2 == NULL ||
	    rl->count == NULL || rl->dst_records == NULL ||
	    rl->dst_bytes == NULL || rl->buf == NULL) {
		return ctl_fail(-ENOMEM, "relay");
	}
	return 0;
}

static void
relay_free(struct relay *rl)
{
	shmq_producer_close(rl->p);
	shmq_consumer_close(rl->c);
	free(rl->pos);
	free(rl->snap_end);
	free(rl->gapped);
	free(rl->commit_to);
	free(rl->owned);
	free(rl->mine);
	free(rl->gp);
	free(rl->msgs);
	free(rl->src_part);
	free(rl->src_off);
	free(rl->msgs2);
	free(rl->src_part2);
	free(rl->src_off2);
	free(rl->count);
	free(rl->dst_records);
	free(rl->dst_bytes);
	free(rl->buf);
}

/* Join the group, then take the snapshot: where the group stands in
 * each partition (its committed offset, or the log start) and, for
 * drain mode, each partition's end. */
static int
relay_open(struct ctl *ctl, struct relay *rl)
{
	shmq_consumer_options_t co;
	shmq_producer_options_t po;
	shmq_group_partition_t *gp;
	shmq_partition_info_t info;
	uint32_t members = 0, i;
	ssize_t n;
	int rc;

	if (shmq_group_members(ctl->q, rl->group, rl->from, &members) == 0 &&
	    members > 0) {
		ctl_note("relay: group %s already has %u live member%s on "
		         "topic %s: they share its partitions",
		    rl->group, members, members == 1 ? "" : "s", rl->from);
	}
	shmq_consumer_options_init(&co);
	co.group = rl->group;
	co.reset = SHMQ_RESET_EARLIEST;
	rc = shmq_consumer_open(ctl->q, rl->from, &co, &rl->c);
	if (rc != 0) {
		return ctl_fail(
		    rc, "relay: topic %s: join group %s", rl->from, rl->group);
	}
	shmq_producer_options_init(&po);
	po.acks = rl->acks;
	/* Leader: wait for room in slices, to see signals.  Durable: a
	 * wait that ended early would leave appended records whose ack
	 * is unknown, so it waits as long as it takes (a second signal
	 * ends the process). */
	po.timeout_ms = rl->acks == SHMQ_ACKS_DURABLE ? -1 : RELAY_SLICE_MS;
	rc = shmq_producer_open(ctl->q, rl->to, &po, &rl->p);
	if (rc != 0) {
		return ctl_fail(rc, "relay: topic %s: open producer", rl->to);
	}
	if ((gp = calloc(rl->nsrc, sizeof(*gp))) == NULL) {
		return ctl_fail(-ENOMEM, "relay");
	}
	/* The group exists now (joining made it): pos[] is its committed
	 * offset per partition, moved up to the log start below. */
	n = shmq_group_describe(ctl->q, rl->group, rl->from, gp, rl->nsrc);
	for (i = 0; n > 0 && i < (uint32_t)n && i < rl->nsrc; i++) {
		if (gp[i].partition < rl->nsrc) {
			rl->pos[gp[i].partition] = gp[i].committed;
		}
	}
	for (i = 0; rc == 0 && i < rl->nsrc; i++) {
		rc = shmq_partition_info(ctl->q, rl->from, i, &info);
		if (rl->pos[i] < info.log_start) {
			rl->pos[i] = info.log_start;
		}
		rl->snap_end[i] = info.end;
	}
	free(gp);
	if (n < 0 || rc != 0) {
		return ctl_fail(n < 0 ? (int)n : rc,
		    "relay: group %s on topic %s", rl->group, rl->from);
	}
	return 0;
}

/* ---- progress ----------------------------------------------------------- */

/* Drain: what is left of the backlog as at the start. */
static uint64_t
relay_remaining(const struct relay *rl)
{
	uint64_t left = 0;
	uint32_t i;

	for (i = 0; i < rl->nsrc; i++) {
		if (!rl->gapped[i] && rl->pos[i] < rl->snap_end[i]) {
			left += rl->snap_end[i] - rl->pos[i];
		}
	}
	return left;
}

static void
relay_tick(struct relay *rl, int force)
{
	uint64_t lag = 0;

	if (!(force ? rl->pg.on : progress_due(&rl->pg))) {
		return;
	}
	if (rl->follow) {
		(void)shmq_consumer_lag(rl->c, &lag);
		progress_draw(&rl->pg, "relay", rl->records, 0, lag);
	} else {
		progress_draw(
		    &rl->pg, "relay", rl->records, 1, relay_remaining(rl));
	}
}

/* ---- the batch ---------------------------------------------------------- */

/* Commit what the target acknowledged: the first k records of the
 * batch.  Per source partition, the offset after its last acknowledged
 * record, but never past one that is not acknowledged: relay_sort puts
 * the batch in target partition order, so when a send stops part-way,
 * a partition's acknowledged records need not be the lower ones (those
 * above the commit are then sent again by the next run). */
static int
relay_commit(struct relay *rl, size_t k)
{
	uint32_t part;
	size_t i;
	int rc, err = 0;

	for (i = 0; i < k; i++) {
		part = rl->src_part[i];
		if (rl->src_off[i] + 1 > rl->commit_to[part]) {
			rl->commit_to[part] = rl->src_off[i] + 1;
		}
	}
	for (i = k; i < rl->n; i++) {
		part = rl->src_part[i];
		if (rl->src_off[i] < rl->commit_to[part]) {
			rl->commit_to[part] = rl->src_off[i];
		}
	}
	for (part = 0; part < RELAY_PARTS; part++) {
		if (rl->commit_to[part] == 0) {
			continue;
		}
		rc = shmq_consumer_commit_offset(
		    rl->c, part, rl->commit_to[part]);
		if (rc == SHMQ_ENOTOWNER) {
			/* A rebalance gave the partition to another member
			 * while this batch was read: it starts from the
			 * group's last commit, so what this batch sent of
			 * it is sent again (at-least-once), never skipped.
			 * Not a failure: members join and leave. */
			if (!rl->told_moved) {
				ctl_note(
				    "relay: topic %s partition %u moved to "
				    "another member of group %s: it "
				    "sends this batch's records of it "
				    "again",
				    rl->from, part, rl->group);
				rl->told_moved = 1;
			}
			rc = 0;
		}
		if (rc != 0 && err == 0) {
			err = ctl_fail(rc,
			    "relay: commit group %s on topic %s partition %u",
			    rl->group, rl->from, part);
		}
		rl->commit_to[part] = 0;
	}
	return err;
}

/* The target partition of the batch's record i, as relay_place will
 * have it chosen: by key (the producer's partitioner, which is
 * shmq_partition_for_key), or keyless with its source partition. */
static uint32_t
relay_target(const struct relay *rl, size_t i)
{
	const shmq_msg_t *m = &rl->msgs[i];
	int32_t part;

	if (m->key_len == 0) {
		return rl->src_part[i] % rl->ndst;
	}
	part = shmq_partition_for_key(m->key, m->key_len, rl->ndst);
	return part >= 0 ? (uint32_t)part : 0;
}

/* Order the batch by target partition, keeping the order within each
 * (a stable counting sort).  A key has one target partition, so its
 * records keep their order; keyless records of a source partition
 * too.  shmq_send_batch makes one reservation per run of records for
 * one partition, and with acks durable waits for the disk once per
 * run: sorted, a batch has at most one run per target partition, not
 * one per change of key. */
static void
relay_sort(struct relay *rl)
{
	shmq_msg_t *mt;
	uint32_t *pt, t;
	uint64_t *ot;
	size_t i, at;

	memset(rl->count, 0, (rl->ndst + 1) * sizeof(*rl->count));
	for (i = 0; i < rl->n; i++) {
		rl->count[relay_target(rl, i) + 1]++;
	}
	for (t = 1; t <= rl->ndst; t++) {
		rl->count[t] += rl->count[t - 1];
	}
	for (i = 0; i < rl->n; i++) {
		at = rl->count[relay_target(rl, i)]++;
		rl->msgs2[at] = rl->msgs[i];
		rl->src_part2[at] = rl->src_part[i];
		rl->src_off2[at] = rl->src_off[i];
	}
	mt = rl->msgs;
	rl->msgs = rl->msgs2;
	rl->msgs2 = mt;
	pt = rl->src_part;
	rl->src_part = rl->src_part2;
	rl->src_part2 = pt;
	ot = rl->src_off;
	rl->src_off = rl->src_off2;
	rl->src_off2 = ot;
}

/* Where the batch's record i goes: by key, or (keyless) with the
 * others of its source partition.  Set before every attempt, as a send
 * writes the partition it used back. */
static void
relay_place(struct relay *rl, size_t i)
{
	shmq_msg_t *m = &rl->msgs[i];

	m->partition = m->key_len > 0 ? SHMQ_PARTITION_ANY
	                              : (int32_t)(rl->src_part[i] % rl->ndst);
}

/* Send the batch, waiting for room (acks leader) in slices; then commit
 * what was acknowledged.  A signal while waiting for room stops it with
 * the acknowledged part committed. */
static int
relay_send(struct relay *rl)
{
	size_t done = 0, i;
	ssize_t k;
	int rc = 0, crc;

	relay_sort(rl);
	while (done < rl->n) {
		for (i = done; i < rl->n; i++) {
			relay_place(rl, i);
		}
		k = shmq_send_batch(rl->p, rl->msgs + done, rl->n - done);
		if (k > 0) {
			for (i = done; i < done + (size_t)k; i++) {
				const shmq_msg_t *m = &rl->msgs[i];

				if ((uint32_t)m->partition >= rl->dst_seen) {
					rl->dst_seen =
					    (uint32_t)m->partition + 1;
				}
				rl->dst_records[m->partition]++;
				rl->dst_bytes[m->partition] +=
				    m->key_len + m->value_len;
				rl->records++;
				rl->bytes += m->key_len + m->value_len;
			}
			done += (size_t)k;
			continue;
		}
		if (k == -EAGAIN && rl->acks != SHMQ_ACKS_DURABLE) {
			/* No room yet: nothing of this attempt was
			 * appended, so trying again cannot duplicate. */
			if (relay_signal != 0) {
				rl->stop = STOP_SIGNAL;
				break;
			}
			relay_tick(rl, 0);
			continue;
		}
		rl->stop = STOP_ERROR;
		rc = ctl_fail((int)k,
		    "relay: send to topic %s (%zu of a batch of %zu sent; the "
		    "rest is not committed and is relayed again by the next "
		    "run)",
		    rl->to, done, rl->n);
		if (k == SHMQ_ENOREPLICATOR) {
			ctl_note("hint: start it with: shmq-replicator --home "
			         "%s",
			    rl->home);
		}
		break;
	}
	crc = relay_commit(rl, done);
	rl->n = 0;
	rl->used = 0;
	if (crc != 0) {
		rl->stop = STOP_ERROR;
		return crc;
	}
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* Note that record r of the source was read: its partition's position,
 * and whether the partition's backlog (drain mode) is now done. */
static void
relay_advance(struct relay *rl, const shmq_record_t *r)
{
	uint32_t part = r->partition;
	int was_pending;

	if (part >= RELAY_PARTS) {
		return;
	}
	was_pending = !rl->gapped[part] && rl->pos[part] < rl->snap_end[part];
	if (r->offset + 1 > rl->pos[part]) {
		rl->pos[part] = r->offset + 1;
	}
	if (was_pending && rl->pos[part] >= rl->snap_end[part]) {
		rl->pending--;
	}
}

/* Append the record just copied into buf to the batch. */
static void
relay_add(struct relay *rl, const shmq_record_t *r)
{
	shmq_msg_t *m = &rl->msgs[rl->n];

	memset(m, 0, sizeof(*m));
	m->key = r->key_len > 0 ? r->key : NULL;
	m->key_len = r->key_len;
	m->value = r->value_len > 0 ? r->value : NULL;
	m->value_len = r->value_len;
	m->timestamp = r->timestamp; /* the source's, not the relay's */
	rl->src_part[rl->n] = r->partition;
	rl->src_off[rl->n] = r->offset;
	rl->n++;
	rl->used += r->key_len + r->value_len;
	relay_advance(rl, r);
}

/* Grow buf (only while the batch is empty: its records point into
 * it) so that a record of `need` bytes fits. */
static int
relay_grow(struct relay *rl, size_t need)
{
	size_t cap = rl->cap * 2 > need ? rl->cap * 2 : need;
	char *buf = realloc(rl->buf, cap);

	if (buf == NULL) {
		return -ENOMEM;
	}
	rl->buf = buf;
	rl->cap = cap;
	return 0;
}

/* Read records into the batch, waiting up to wait_ms for the first and
 * not at all for the rest, until it is full (--batch, or its bytes),
 * --max is reached, drain mode has read the whole backlog, or nothing
 * more is there.  0, or an error (after printing it); records read
 * before the error stay in the batch, to be sent. */
static int
relay_fill(struct relay *rl, int wait_ms)
{
	shmq_record_t r;
	int rc, timeout = wait_ms;

	while (rl->n < rl->batch &&
	    (rl->n == 0 || rl->used < RELAY_BATCH_BYTES)) {
		if ((rl->has_max && rl->records + rl->n >= rl->max) ||
		    (!rl->follow && rl->pending == 0)) {
			return 0;
		}
		rc = shmq_recv(rl->c, rl->buf + rl->used, rl->cap - rl->used,
		    &r, timeout);
		timeout = 0;
		if (rc == 0) {
			relay_add(rl, &r);
			continue;
		}
		if (rc == -EAGAIN || rc == -EINTR) {
			return 0;
		}
		if (rc == SHMQ_ELAPPED) {
			/* A `drop` source overran the group: those records
			 * are gone for it, and for the target. */
			ctl_note("relay: topic %s partition %u: %llu records "
			         "lost (overrun by producers)",
			    rl->from, r.partition, (unsigned long long)r.lost);
			rl->lost += r.lost;
			continue;
		}
		if (rc == -EMSGSIZE) {
			/* The record stays queued: send what is read
			 * first, or make room for it. */
			if (rl->n > 0) {
				return 0;
			}
			if ((rc = relay_grow(rl, r.key_len + r.value_len)) ==
			    0) {
				continue;
			}
		}
		if (rc == SHMQ_ECORRUPT) {
			return ctl_fail(rc,
			    "relay: topic %s partition %u offset %llu (see "
			    "'group reset-offsets %s --topic %s --to-offset "
			    "%llu --partition %u' to skip it knowingly)",
			    rl->from, r.partition,
			    (unsigned long long)r.offset, rl->group, rl->from,
			    (unsigned long long)r.offset + 1, r.partition);
		}
		return ctl_fail(rc, "relay: read topic %s", rl->from);
	}
	return 0;
}

/* Drain mode: has the backlog as at the start been relayed?  Every
 * partition this member reads must be read up to its end as at the
 * start; every other one of the snapshot (read by another member, or
 * by none while the group rebalances: a member that just joined owns
 * nothing until the others let go) must have the group's committed
 * offset there.  Checking this member's partitions alone would end a
 * relay that joined a live group at once, its share not yet given. */
static int
relay_owned_done(struct ctl *ctl, struct relay *rl, int *err)
{
	ssize_t n, i, ng;
	uint32_t part;
	int others = 0;

	n = shmq_assignment(rl->c, rl->owned, RELAY_PARTS);
	if (n < 0) {
		*err =
		    ctl_fail((int)n, "relay: group %s assignment", rl->group);
		return 0;
	}
	memset(rl->mine, 0, RELAY_PARTS * sizeof(*rl->mine));
	for (i = 0; i < n && i < RELAY_PARTS; i++) {
		part = rl->owned[i];
		rl->mine[part] = 1;
		if (!rl->gapped[part] && rl->pos[part] < rl->snap_end[part]) {
			return 0;
		}
	}
	for (part = 0; part < rl->nsrc; part++) {
		others |= !rl->mine[part] && !rl->gapped[part] &&
		    rl->pos[part] < rl->snap_end[part];
	}
	if (!others) {
		return 1;
	}
	ng = shmq_group_describe(
	    ctl->q, rl->group, rl->from, rl->gp, RELAY_PARTS);
	if (ng < 0) {
		*err = ctl_fail((int)ng, "relay: group %s on topic %s",
		    rl->group, rl->from);
		return 0;
	}
	for (i = 0; i < ng && i < RELAY_PARTS; i++) {
		part = rl->gp[i].partition;
		if (part >= rl->nsrc || rl->mine[part] || rl->gapped[part] ||
		    rl->pos[part] >= rl->snap_end[part] ||
		    rl->gp[i].committed < rl->snap_end[part]) {
			continue;
		}
		/* Another member relayed it: done here too. */
		rl->pos[part] = rl->gp[i].committed;
		rl->pending--;
	}
	for (part = 0; part < rl->nsrc; part++) {
		if (!rl->mine[part] && !rl->gapped[part] &&
		    rl->pos[part] < rl->snap_end[part]) {
			if (!rl->told_waiting) {
				ctl_note("relay: waiting for partition %u of "
				         "topic %s, which another member of "
				         "group %s reads, to be committed up "
				         "to offset %llu",
				    part, rl->from, rl->group,
				    (unsigned long long)rl->snap_end[part]);
				rl->told_waiting = 1;
			}
			return 0;
		}
	}
	return 1;
}

/* After a wait that found nothing: has every unfinished partition this
 * member reads been fully written (committed watermark) up to its
 * snapshot?  If so, and a read right after still finds nothing, the
 * offsets left below the snapshot are gaps (reservations that were
 * aborted) or records lost to an overrun: there is nothing to wait
 * for.  The watermark is read before that read, so a record that
 * becomes visible in between is read, not missed. */
static int
relay_only_gaps_left(struct ctl *ctl, struct relay *rl)
{
	shmq_partition_info_t info;
	ssize_t n, i;
	uint32_t part;

	n = shmq_assignment(rl->c, rl->owned, RELAY_PARTS);
	for (i = 0; i < n && i < RELAY_PARTS; i++) {
		part = rl->owned[i];
		if (rl->gapped[part] || rl->pos[part] >= rl->snap_end[part]) {
			continue;
		}
		if (shmq_partition_info(ctl->q, rl->from, part, &info) != 0 ||
		    info.committed < rl->snap_end[part]) {
			return 0;
		}
	}
	return n >= 0;
}

static void
relay_mark_gapped(struct relay *rl)
{
	ssize_t n, i;
	uint32_t part;

	n = shmq_assignment(rl->c, rl->owned, RELAY_PARTS);
	for (i = 0; i < n && i < RELAY_PARTS; i++) {
		part = rl->owned[i];
		if (!rl->gapped[part] && rl->pos[part] < rl->snap_end[part]) {
			rl->gapped[part] = 1;
			rl->pending--;
		}
	}
}

static int
relay_loop(struct ctl *ctl, struct relay *rl)
{
	int rc, err = 0, idle = 0, confirm = 0;

	for (;;) {
		if (relay_signal != 0) {
			rl->stop = STOP_SIGNAL;
			return 0;
		}
		if (rl->has_max && rl->records >= rl->max) {
			rl->stop = STOP_MAX;
			return 0;
		}
		if (!rl->follow && relay_owned_done(ctl, rl, &err)) {
			rl->stop = STOP_DRAINED;
			return 0;
		}
		if (err != 0) {
			rl->stop = STOP_ERROR;
			return err;
		}
		/* Wait only when the last look found nothing, and not
		 * while confirming that only gaps are left. */
		rc = relay_fill(rl, idle && !confirm ? RELAY_SLICE_MS : 0);
		if (rl->n > 0) {
			idle = confirm = 0;
			err = relay_send(rl);
			relay_tick(rl, 0);
			if (rc != 0 || err != 0) {
				rl->stop = STOP_ERROR;
				return rc != 0 ? rc : err;
			}
			if (rl->stop != STOP_NONE) {
				return 0;
			}
			continue;
		}
		if (rc != 0) {
			rl->stop = STOP_ERROR;
			return rc;
		}
		if (confirm) {
			relay_mark_gapped(rl);
			confirm = 0;
			continue;
		}
		if (idle && !rl->follow) {
			confirm = relay_only_gaps_left(ctl, rl);
		}
		idle = 1;
		relay_tick(rl, 0);
	}
}

/* ---- summary ------------------------------------------------------------ */

static const char *
relay_stop_name(enum relay_stop s)
{
	switch (s) {
	case STOP_DRAINED:
		return "drained";
	case STOP_MAX:
		return "max";
	case STOP_SIGNAL:
		return "signal";
	case STOP_ERROR:
		return "error";
	default:
		return "none";
	}
}

static const char *
relay_acks_name(int acks)
{
	return acks == SHMQ_ACKS_DURABLE ? "durable" : "leader";
}

static void
relay_print_json(const struct relay *rl, double secs)
{
	struct json j;
	uint32_t i;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "from", rl->from);
	json_kstr(&j, "to", rl->to);
	json_kstr(&j, "group", rl->group);
	json_kstr(&j, "acks", relay_acks_name(rl->acks));
	json_kstr(&j, "mode", rl->follow ? "follow" : "drain");
	json_kstr(&j, "stopped", relay_stop_name(rl->stop));
	json_kuint(&j, "records", rl->records);
	json_kuint(&j, "bytes", rl->bytes);
	json_kdouble(&j, "seconds", secs);
	json_kdouble(&j, "records_per_s",
	    secs > 0.0 ? (double)rl->records / secs : 0.0);
	json_kuint(&j, "lost", rl->lost);
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (i = 0; i < rl->dst_seen; i++) {
		json_begin_object(&j);
		json_kuint(&j, "partition", i);
		json_kuint(&j, "records", rl->dst_records[i]);
		json_kuint(&j, "bytes", rl->dst_bytes[i]);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

static int
relay_print_text(const struct relay *rl, double secs)
{
	static const char *const h[] = { "PARTITION", "RECORDS", "BYTES" };
	char b[24];
	struct table *t;
	uint32_t i;
	int rc;

	printf("RELAYED  %llu records, %s (%llu bytes) in %.3fs: %.0f "
	       "records/s\n",
	    (unsigned long long)rl->records, fmt_size(b, sizeof(b), rl->bytes),
	    (unsigned long long)rl->bytes, secs,
	    secs > 0.0 ? (double)rl->records / secs : 0.0);
	printf("FROM     %s (group %s)\n", rl->from, rl->group);
	printf("TO       %s (acks %s)\n", rl->to, relay_acks_name(rl->acks));
	printf("STOPPED  %s\n", relay_stop_name(rl->stop));
	printf("LOST     %llu\n\n", (unsigned long long)rl->lost);
	if ((t = table_new(3, h)) == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < rl->dst_seen; i++) {
		table_cell(t, "%u", i);
		table_cell(t, "%llu", (unsigned long long)rl->dst_records[i]);
		table_cell(t, "%llu", (unsigned long long)rl->dst_bytes[i]);
	}
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

/* ---- the command -------------------------------------------------------- */

static int
relay_prepare(struct ctl *ctl, const struct ctl_cmd *cmd, struct relay *rl)
{
	shmq_topic_config_t src, dst;
	uint32_t i;
	int rc;

	if ((rc = relay_describe(cmd, ctl, rl->from, &src)) != 0 ||
	    (rc = relay_describe(cmd, ctl, rl->to, &dst)) != 0) {
		return rc;
	}
	rl->home = shmq_home(ctl->q);
	rl->nsrc = src.partitions;
	rl->ndst = dst.partitions;
	rl->dst_seen = rl->ndst;
	rl->dst_persistent = dst.durability == SHMQ_DURABILITY_PERSISTENT;
	if ((rc = relay_choose_acks(cmd, ctl, rl)) != 0 ||
	    (rc = relay_alloc(rl)) != 0 || (rc = relay_open(ctl, rl)) != 0) {
		return rc;
	}
	for (i = 0; i < rl->nsrc; i++) {
		rl->pending += rl->pos[i] < rl->snap_end[i];
	}
	return 0;
}

int
relay_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct relay rl;
	double secs;
	int rc, prc;

	memset(&rl, 0, sizeof(rl));
	rl.acks = -1;
	rl.batch = RELAY_BATCH_DEFAULT;
	rl.progress = -1;
	if ((rc = relay_options(ctl, cmd, &rl, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	relay_catch_signals();
	rc = relay_prepare(ctl, cmd, &rl);
	if (rc != 0) {
		relay_free(&rl);
		return rc;
	}
	progress_init(&rl.pg, stderr, rl.progress);
	rl.start_ns = progress_now_ns();
	relay_tick(&rl, 1);
	rc = relay_loop(ctl, &rl) != 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	relay_tick(&rl, 1);
	progress_end(&rl.pg);
	secs = (double)(progress_now_ns() - rl.start_ns) / 1e9;
	if (ctl->json) {
		relay_print_json(&rl, secs);
	} else if ((prc = relay_print_text(&rl, secs)) != 0) {
		rc = ctl_fail(prc, "relay");
	}
	relay_free(&rl);
	return rc;
}
