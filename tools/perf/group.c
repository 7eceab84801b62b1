/*
 * group.c — how the workers join the instance and the "perf" group.
 *
 * A partition that changed owner during the run would be re-read from
 * the group's committed offset, which the checker would rightly report
 * as duplicates.  So before the start barrier the consumers look at the
 * group in rounds — the library rebalances when a member looks — until
 * a round in which nobody's partitions changed and every partition has
 * an owner.  Each then seeks its partitions to the end: on a reused
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
#include <string.h>

#include "perf.h"

/* A group that has not settled by then never will. */
#define PERF_SETTLE_NS (UINT64_C(10) * 1000000000u)
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
	co.spin_us = o->spin_us;
	co.reset = SHMQ_RESET_EARLIEST;
	rc = shmq_consumer_open(q, topic, &co, c);
	if (rc != 0) {
		return perf_fail("shmq_consumer_open", rc);
	}
	return 0;
}

/* One round: every member looks at the group once (the library
 * rebalances inside shmq_assignment) and publishes what it owns; a
 * barrier separates the looks from the verdict. */
static int
perf_group_round(struct perf_shared *sh, shmq_consumer_t *c, unsigned slot,
    unsigned members, uint32_t *parts, ssize_t *n)
{
	uint32_t before[SHMQ_PARTITIONS_MAX];
	ssize_t had = *n;

	memcpy(before, parts, sizeof(uint32_t) * (size_t)(had > 0 ? had : 0));
	if (members > 1 && perf_barrier_wait(&sh->sh_group) != 0) {
		return -1;
	}
	*n = shmq_assignment(c, parts, SHMQ_PARTITIONS_MAX);
	if (*n < 0) {
		return perf_fail("shmq_assignment", (int)*n);
	}
	atomic_store(&sh->sh_owned[slot], (uint32_t)*n);
	atomic_store(&sh->sh_changed[slot],
	    *n != had ||
	        memcmp(before, parts, sizeof(uint32_t) * (size_t)*n) != 0);
	if (members > 1 && perf_barrier_wait(&sh->sh_group) != 0) {
		return -1;
	}
	return 0;
}

/* After a round in which every member looked and nothing moved, the
 * assignment is the library's fixed point: with no member coming or
 * going it stays.  Every member reads the same values here, so all
 * reach the same verdict in the same round. */
static int
perf_group_stable(struct perf_shared *sh, unsigned base, unsigned members,
    uint32_t partitions)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = base; i < base + members; i++) {
		if (atomic_load(&sh->sh_changed[i])) {
			return 0;
		}
		sum += atomic_load(&sh->sh_owned[i]);
	}
	return sum == partitions;
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
	uint32_t parts[SHMQ_PARTITIONS_MAX] = { 0 };
	uint64_t deadline = perf_now_ns() + PERF_SETTLE_NS;
	ssize_t n = -1; /* the first round always counts as a change */

	for (;;) {
		if (perf_group_round(sh, c, slot, members, parts, &n) != 0) {
			return -1;
		}
		if (perf_group_stable(sh, base, members, partitions)) {
			break;
		}
		/* Each member times out on its own clock, but the others
		 * are released by the abort that follows. */
		if (perf_now_ns() > deadline) {
			perf_err("group \"%s\" did not settle %u partitions "
			         "over %u consumers (this one owns %zd)",
			    PERF_GROUP, (unsigned)partitions, members, n);
			return -1;
		}
	}
	return perf_group_seek_end(q, topic, c, parts, (size_t)n);
}
