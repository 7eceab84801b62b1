/*
 * test_crash.c — producers killed with SIGKILL, at named points of the
 * send path and at random moments, under load.  Afterwards every
 * acknowledged record is present exactly once and in order, a record in
 * flight at the kill is present once or absent, no torn record is ever
 * delivered, and the partition keeps working (abandoned reservations
 * are reclaimed, a lock held by the dead is repaired).
 *
 * Every value is self-checking: producer id, sequence, length and a
 * checksum, then filler bytes derived from all three.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MAXP 1024u
#define VAL_MAX 600u
#define BATCH_MAX 8u

struct shared {
	char home[512];
	_Atomic uint64_t acked[MAXP]; /* records acknowledged, per producer */
	_Atomic uint64_t seen[MAXP]; /* records the verifier saw */
	_Atomic int started[MAXP];
	_Atomic int done; /* producers are all dead */
	_Atomic int verifier_ready;
	_Atomic uint64_t bad; /* torn/duplicate/out-of-order */
};

struct val {
	uint32_t producer;
	uint32_t seq;
	uint32_t len;
	uint32_t check;
};

static uint32_t
mix(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t h = a * 0x9e3779b1u ^ b * 0x85ebca77u ^ c * 0xc2b2ae3du;
	return h ^ (h >> 15);
}

static size_t
make_value(uint8_t *buf, uint32_t prod, uint32_t seq, uint32_t len)
{
	struct val v = { prod, seq, len, mix(prod, seq, len) };
	memcpy(buf, &v, sizeof v);
	for (uint32_t i = sizeof v; i < len; i++) {
		buf[i] = (uint8_t)mix(prod, seq, i);
	}
	return len;
}

/* 0 if intact; fills producer and seq. */
static int
check_value(const uint8_t *buf, size_t n, uint32_t *prod, uint32_t *seq)
{
	struct val v;
	if (n < sizeof v) {
		return -1;
	}
	memcpy(&v, buf, sizeof v);
	if (v.len != n || v.check != mix(v.producer, v.seq, v.len) ||
	    v.producer >= MAXP) {
		return -1;
	}
	for (uint32_t i = sizeof v; i < n; i++) {
		if (buf[i] != (uint8_t)mix(v.producer, v.seq, i)) {
			return -1;
		}
	}
	*prod = v.producer;
	*seq = v.seq;
	return 0;
}

static struct shared *sh;
static int target_point;

static void
die_at(int point)
{
	if (point == target_point) {
		raise(SIGKILL);
	}
}

struct pctx {
	uint32_t id;
	uint32_t count; /* UINT32_MAX: until killed */
	int point; /* 0: none */
	unsigned flags; /* producer flags */
	unsigned seed;
};

static int
producer_main(void *arg)
{
	struct pctx *x = arg;
	shmq_t *q = NULL;
	shmq_producer_t *p = NULL;
	shmq_producer_options_t o;
	uint8_t buf[BATCH_MAX][VAL_MAX];
	shmq_msg_t m[BATCH_MAX];
	unsigned seed = x->seed;

	if (shmq_attach(sh->home, NULL, &q) != 0) {
		return 10;
	}
	shmq_producer_options_init(&o);
	o.flags = x->flags;
	if (shmq_producer_open(q, "t", &o, &p) != 0) {
		return 11;
	}
	atomic_store(&sh->started[x->id], 1);
	uint32_t seq = 0;
	while (seq < x->count) {
		uint32_t n = 1 + (uint32_t)rand_r(&seed) % BATCH_MAX;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t len = sizeof(struct val) +
			    (uint32_t)rand_r(&seed) %
			        (VAL_MAX - sizeof(struct val));
			m[i] = (shmq_msg_t) { .value = buf[i],
				.value_len =
				    make_value(buf[i], x->id, seq + i, len),
				.partition = 0 };
		}
		ssize_t k = n == 1 ? (shmq_send(p, m) == 0 ? 1 : -1)
		                   : shmq_send_batch(p, m, n);
		if (k != (ssize_t)n) {
			return 12;
		}
		seq += n;
		/* Release: the verifier must find these once we are dead. */
		atomic_store_explicit(
		    &sh->acked[x->id], seq, memory_order_release);
		if (x->point != 0 && seq >= x->count / 2) {
			target_point = x->point;
			shmqi_test_hook = die_at;
		}
	}
	shmq_producer_close(p);
	shmq_detach(q);
	return 0;
}

/* Reads the partition as a group member (so a `block` topic never
 * overwrites what it has not read) and checks every record. */
static int
verifier_main(void *arg)
{
	(void)arg;
	shmq_t *q = NULL;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_t o;
	shmq_record_t r;
	static uint8_t buf[VAL_MAX];
	uint64_t next_off = 0;

	shmq_consumer_options_init(&o);
	o.group = "verify";
	if (shmq_attach(sh->home, NULL, &q) != 0 ||
	    shmq_consumer_open(q, "t", &o, &c) != 0) {
		return 20;
	}
	atomic_store(&sh->verifier_ready, 1);
	for (;;) {
		int rc = shmq_recv(c, buf, sizeof buf, &r, 20);
		if (rc == -EAGAIN) {
			shmq_partition_info_t pi;
			if (atomic_load(&sh->done) &&
			    shmq_partition_info(q, "t", 0, &pi) == 0 &&
			    pi.committed == pi.end && next_off >= pi.end) {
				break;
			}
			continue;
		}
		if (rc != 0) {
			return 21;
		}
		uint32_t prod, seq;
		if (r.offset < next_off ||
		    check_value(r.value, r.value_len, &prod, &seq) != 0 ||
		    atomic_load(&sh->seen[prod]) != seq) {
			atomic_fetch_add(&sh->bad, 1);
			fprintf(stderr, "bad record at offset %llu\n",
			    (unsigned long long)r.offset);
			return 22;
		}
		atomic_store(&sh->seen[prod], seq + 1);
		next_off = r.offset + 1;
		if (shmq_consumer_commit(c) != 0) {
			return 23;
		}
	}
	shmq_consumer_close(c);
	shmq_detach(q);
	return 0;
}

static shmq_t *
setup(uint64_t ring)
{
	shmq_t *q = th_attach();
	sh = th_shared(sizeof *sh);
	snprintf(sh->home, sizeof sh->home, "%s", shmq_home(q));
	th_topic(q, "t", 1, ring, SHMQ_OVERFLOW_BLOCK);
	return q;
}

static pid_t
start_verifier(void)
{
	pid_t v = th_fork(verifier_main, NULL);
	while (!atomic_load(&sh->verifier_ready)) {
		sched_yield();
	}
	return v;
}

/* After the producers are gone: the verifier must finish, clean, and
 * have seen every acknowledged record (plus at most one batch in
 * flight per killed producer). */
static void
finish(shmq_t *q, pid_t verifier, uint32_t nprod, bool killed)
{
	atomic_store(&sh->done, 1);
	int vrc = th_wait(verifier);
	if (vrc != 0) {
		fprintf(stderr, "verifier exit %d\n", vrc);
	}
	CU_ASSERT_EQUAL(vrc, 0);
	CU_ASSERT_EQUAL(atomic_load(&sh->bad), 0);
	for (uint32_t i = 0; i < nprod; i++) {
		uint64_t a = atomic_load(&sh->acked[i]);
		uint64_t s = atomic_load(&sh->seen[i]);
		CU_ASSERT(s >= a);
		CU_ASSERT(s <= a + (killed ? BATCH_MAX : 0));
		if (s < a) {
			fprintf(stderr, "producer %u: acked %llu seen %llu\n",
			    i, (unsigned long long)a, (unsigned long long)s);
		}
	}
	th_unshared(sh, sizeof *sh);
	th_destroy(q);
}

static void
run_point(int point, unsigned flags)
{
	shmq_t *q = setup(256 * 1024);
	pid_t v = start_verifier();
	struct pctx x = { .id = 0,
		.count = 2000,
		.point = point,
		.flags = flags,
		.seed = 7 };
	CU_ASSERT_EQUAL(th_wait(th_fork(producer_main, &x)), 128 + SIGKILL);
	/* The partition is not wedged: a new producer (exclusive or not)
	 * gets through, and the verifier sees its records. */
	struct pctx y = { .id = 1, .count = 500, .flags = flags, .seed = 8 };
	CU_ASSERT_EQUAL(th_wait(th_fork(producer_main, &y)), 0);
	finish(q, v, 2, true);
}

static void
test_crash_kill_inside_the_reservation_lock_is_repaired(void)
{
	run_point(POINT_RESERVE_LOCKED, 0);
}

static void
test_crash_kill_between_publishing_end_and_offset_is_repaired(void)
{
	run_point(POINT_RESERVE_PUBLISHED, 0);
}

static void
test_crash_kill_after_reserve_is_reclaimed(void)
{
	run_point(POINT_AFTER_RESERVE, 0);
}

static void
test_crash_kill_mid_copy_never_shows_a_torn_record(void)
{
	run_point(POINT_MID_COPY, 0);
}

static void
test_crash_kill_before_commit_is_reclaimed(void)
{
	run_point(POINT_BEFORE_COMMIT, 0);
}

static void
test_crash_kill_after_commit_keeps_the_record(void)
{
	run_point(POINT_AFTER_COMMIT, 0);
}

static void
test_crash_kill_of_exclusive_writer_mid_update_is_repaired(void)
{
	run_point(POINT_RESERVE_PUBLISHED, SHMQ_PRODUCER_EXCLUSIVE);
}

static void
test_crash_random_kills_under_load_lose_no_acked_record(void)
{
	unsigned seed = th_seed("random kills");
	unsigned rounds = th_soak(25);
	shmq_t *q = setup(128 * 1024);
	pid_t v = start_verifier();
	uint32_t id = 0;

	for (unsigned round = 0; round < rounds && id + 3 <= MAXP; round++) {
		pid_t pids[3];
		struct pctx x[3];
		/* Two shared-lock producers, or one exclusive one. */
		unsigned n = round % 4 == 3 ? 1 : 2;
		for (unsigned i = 0; i < n; i++) {
			x[i] = (struct pctx) { .id = id,
				.count = UINT32_MAX,
				.flags = n == 1 ? SHMQ_PRODUCER_EXCLUSIVE : 0,
				.seed = rand_r(&seed) };
			pids[i] = th_fork(producer_main, &x[i]);
			id++;
		}
		for (unsigned i = 0; i < n; i++) {
			/* Random moment: wait until it runs, then a random
			 * delay (a kill time, not a synchronisation). */
			while (!atomic_load(&sh->started[x[i].id])) {
				sched_yield();
			}
			struct timespec ts = { 0,
				(long)(rand_r(&seed) % 3000000) };
			nanosleep(&ts, NULL);
			kill(pids[i], SIGKILL);
			CU_ASSERT_EQUAL(th_wait(pids[i]), 128 + SIGKILL);
		}
	}
	/* Still usable after all that. */
	struct pctx last = { .id = id++, .count = 300, .seed = 1 };
	CU_ASSERT_EQUAL(th_wait(th_fork(producer_main, &last)), 0);
	finish(q, v, id, true);
}

static CU_TestInfo tests[] = {
	{ "test_crash_kill_inside_the_reservation_lock_is_repaired",
	    test_crash_kill_inside_the_reservation_lock_is_repaired },
	{ "test_crash_kill_between_publishing_end_and_offset_is_repaired",
	    test_crash_kill_between_publishing_end_and_offset_is_repaired },
	{ "test_crash_kill_after_reserve_is_reclaimed",
	    test_crash_kill_after_reserve_is_reclaimed },
	{ "test_crash_kill_mid_copy_never_shows_a_torn_record",
	    test_crash_kill_mid_copy_never_shows_a_torn_record },
	{ "test_crash_kill_before_commit_is_reclaimed",
	    test_crash_kill_before_commit_is_reclaimed },
	{ "test_crash_kill_after_commit_keeps_the_record",
	    test_crash_kill_after_commit_keeps_the_record },
	{ "test_crash_kill_of_exclusive_writer_mid_update_is_repaired",
	    test_crash_kill_of_exclusive_writer_mid_update_is_repaired },
	{ "test_crash_random_kills_under_load_lose_no_acked_record",
	    test_crash_random_kills_under_load_lose_no_acked_record },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_crash = { "crash", tests };
