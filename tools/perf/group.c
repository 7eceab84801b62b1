/*
 * group.c — how the workers join the instance and the "perf" group.
 *
 * A partition that changed owner during the run would be re-read from
 * the group's committed offset, which the checker would rightly report
 * as duplicates.  So before the start barrier the consumers keep
 * polling — that is when the library rebalances — until their published
 * ownership counts add up to every partition, spread as evenly as
 * possible.  Each then seeks its partitions to the end: on a reused
 * topic old records are not part of this run.
 *
 * On a `block` topic the library holds ring space for a group up to its
 * committed offset, not its read position, so consumers must commit as
 * they go or the producers stop once a ring is full.  They commit every
 * perf_commit_every() records: often enough to leave most of the ring
 * to the producers, rarely enough to cost little.
 */
#include <errno.h>
#include <stdio.h>

#include "perf.h"

/* A group that has not settled by then never will. */
#define PERF_SETTLE_NS (UINT64_C(10) * 1000000000u)
/* Poll in short steps so the loop notices the others' progress. */
#define PERF_SETTLE_POLL_MS 1
/* At most 1/8 of a ring stays uncommitted; more than 1024 records
 * between commits gains nothing measurable. */
#define PERF_COMMIT_RING_SHARE 8
#define PERF_COMMIT_MAX 1024
/* Bytes a record takes in the ring: header, value, 8-byte alignment. */
#define PERF_REC_ALIGN 8

int
perf_fail(const char *what, int err)
{
	perf_err("%s: %s", what, shmq_strerror(err));
	return -1;
}

uint64_t
perf_commit_every(const struct perf_opts *o, const struct perf_target *t)
{
	uint64_t rec =
	    (SHMQ_RECORD_OVERHEAD + o->record_size + PERF_REC_ALIGN - 1) &
	    ~(uint64_t)(PERF_REC_ALIGN - 1);
	uint64_t n = t->ring_size / rec / PERF_COMMIT_RING_SHARE;

	if (n > PERF_COMMIT_MAX) {
		n = PERF_COMMIT_MAX;
	}
	return n == 0 ? 1 : n;
}

int
perf_attach(const struct perf_target *t, shmq_t **q)
{
	int rc;

	rc = shmq_attach(t->home, NULL, q);
	if (rc != 0) {
		return perf_fail("shmq_attach", rc);
	}
	return 0;
}

int
perf_consumer_open(const struct perf_opts *o, shmq_t *q, const char *topic,
    shmq_consumer_t **c)
{
	shmq_consumer_options_t co;
	int rc;

	shmq_consumer_options_init(&co);
	co.group = PERF_GROUP;
	co.idle = o->idle;
	co.reset = SHMQ_RESET_EARLIEST;
	rc = shmq_consumer_open(q, topic, &co, c);
	if (rc != 0) {
		return perf_fail("shmq_consumer_open", rc);
	}
	return 0;
}

/* Every consumer of the group has published, the counts cover every
 * partition, and no two differ by more than one. */
static int
perf_group_settled(struct perf_shared *sh, unsigned base, unsigned members,
    uint32_t partitions)
{
	uint32_t lo = UINT32_MAX;
	uint32_t hi = 0;
	uint64_t sum = 0;
	uint32_t n;
	unsigned i;

	for (i = base; i < base + members; i++) {
		n = atomic_load(&sh->sh_owned[i]);
		sum += n;
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	return sum == partitions && hi - lo <= 1;
}

static int
perf_group_poll(shmq_consumer_t *c)
{
	shmq_record_t r;
	int rc;

	rc = shmq_peek(c, &r, PERF_SETTLE_POLL_MS);
	if (rc == 0) {
		/* An old record of a reused topic: skipped by the seek. */
		rc = shmq_release(c, &r);
	}
	if (rc != 0 && rc != -EAGAIN) {
		return perf_fail("shmq_peek (joining the group)", rc);
	}
	return 0;
}

/*
 * Start each partition at its end, and commit that: the ring space a
 * group holds follows its committed offset, so on a reused, full ring a
 * seek alone would leave the producers waiting for a group that has
 * nothing to read.
 */
static int
perf_group_seek_end(shmq_t *q, const char *topic, shmq_consumer_t *c,
    const uint32_t *parts, size_t n)
{
	shmq_partition_info_t info;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = shmq_partition_info(q, topic, parts[i], &info);
		if (rc != 0) {
			return perf_fail("shmq_partition_info", rc);
		}
		rc = shmq_seek(c, parts[i], info.committed);
		if (rc != 0) {
			return perf_fail("shmq_seek", rc);
		}
		rc = shmq_consumer_commit_offset(c, parts[i], info.committed);
		if (rc != 0) {
			return perf_fail("shmq_consumer_commit_offset", rc);
		}
	}
	return 0;
}

int
perf_group_settle(struct perf_shared *sh, shmq_t *q, const char *topic,
    shmq_consumer_t *c, unsigned slot, unsigned base, unsigned members,
    uint32_t partitions)
{
	uint32_t parts[SHMQ_PARTITIONS_MAX];
	uint64_t deadline = perf_now_ns() + PERF_SETTLE_NS;
	ssize_t n;

	for (;;) {
		if (perf_group_poll(c) != 0) {
			return -1;
		}
		n = shmq_assignment(c, parts, SHMQ_PARTITIONS_MAX);
		if (n < 0) {
			return perf_fail("shmq_assignment", (int)n);
		}
		atomic_store(&sh->sh_owned[slot], (uint32_t)n);
		if (perf_group_settled(sh, base, members, partitions)) {
			break;
		}
		if (perf_aborted(&sh->sh_barrier)) {
			return -1;
		}
		if (perf_now_ns() > deadline) {
			perf_err("group \"%s\" did not spread %u partitions "
			         "over %u consumers (this one owns %zd)",
			    PERF_GROUP, (unsigned)partitions, members, n);
			return -1;
		}
	}
	return perf_group_seek_end(q, topic, c, parts, (size_t)n);
}
