/*
 * barrier.c — a process-shared start barrier on a futex.
 *
 * Each arrival increments b_arrived; the last one resets it and bumps
 * b_gen, which every waiter watches.  Waiters spin briefly first, so
 * that on an idle machine they all leave within a cache-line hand-off
 * of each other and the measured run starts together, then sleep on
 * b_gen with a shared (not private) futex, because the waiters are
 * separate processes.  b_abort releases everyone when a process failed,
 * so that no survivor waits forever for a dead party.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf.h"

/* About 10-50 µs of spinning: longer than a wake-up costs. */
#define BARRIER_SPINS 20000

static void
barrier_futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	/* EAGAIN (the word already moved) and EINTR both just mean
	 * "look again"; the caller loops. */
	syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAIT, val, NULL,
	    NULL, 0);
}

static void
barrier_futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAKE, INT_MAX, NULL,
	    NULL, 0);
}

void
perf_barrier_init(struct perf_barrier *b, uint32_t parties)
{
	atomic_init(&b->b_arrived, 0);
	atomic_init(&b->b_gen, 0);
	atomic_init(&b->b_abort, 0);
	b->b_parties = parties;
}

int
perf_aborted(const struct perf_barrier *b)
{
	return atomic_load_explicit(&b->b_abort, memory_order_acquire) != 0;
}

void
perf_barrier_abort(struct perf_barrier *b)
{
	atomic_store_explicit(&b->b_abort, 1, memory_order_release);
	/* Bump the generation too: waiters sleep on b_gen, not b_abort. */
	atomic_fetch_add_explicit(&b->b_gen, 1, memory_order_acq_rel);
	barrier_futex_wake(&b->b_gen);
}

int
perf_barrier_wait(struct perf_barrier *b)
{
	uint32_t gen;
	unsigned spins = 0;

	/* Read the generation before arriving, or the last arrival could
	 * bump it in between and this process would wait a whole round.
	 * Then look for an abort: one that bumped the generation before
	 * the read above is seen here (the bump follows the flag). */
	gen = atomic_load_explicit(&b->b_gen, memory_order_acquire);
	if (perf_aborted(b)) {
		return -1;
	}
	if (atomic_fetch_add_explicit(&b->b_arrived, 1, memory_order_acq_rel) +
	        1 ==
	    b->b_parties) {
		atomic_store_explicit(&b->b_arrived, 0, memory_order_relaxed);
		/* Release: what the others wrote before arriving is visible
		 * to everyone who sees the new generation. */
		atomic_fetch_add_explicit(&b->b_gen, 1, memory_order_release);
		barrier_futex_wake(&b->b_gen);
		return perf_aborted(b) ? -1 : 0;
	}
	while (atomic_load_explicit(&b->b_gen, memory_order_acquire) == gen) {
		if (++spins < BARRIER_SPINS) {
			continue;
		}
		barrier_futex_wait(&b->b_gen, gen);
	}
	return perf_aborted(b) ? -1 : 0;
}
