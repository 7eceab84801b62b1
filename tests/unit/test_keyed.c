/*
 * test_keyed.c — order with parallelism (keyed.c): per-key order, keys
 * in parallel, and a group commit that never passes a record that has
 * not finished, also when the process is killed.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define KEYS 37u

/* The value of record i: its key's number and its rank within the key. */
struct kv {
	uint32_t key, seq;
};

/* Produce n records on partition 0 of "t", keyed "k<key>", with keys
 * taken round robin; returns nothing, fails the test on error. */
static void
produce_keyed(shmq_t *q, uint32_t n)
{
	shmq_producer_t *p = th_producer(q, "t");
	uint32_t seq[KEYS] = { 0 };
	for (uint32_t i = 0; i < n; i++) {
		char key[16];
		struct kv v = { .key = (i * 7u) % KEYS };
		v.seq = seq[v.key]++;
		int kl = snprintf(key, sizeof key, "k%u", v.key);
		shmq_msg_t m = { .key = key,
			.key_len = (size_t)kl,
			.value = &v,
			.value_len = sizeof v,
			.partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
}

static shmq_consumer_t *
group_consumer(shmq_t *q)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = "g";
	TH_OK(shmq_consumer_open(q, "t", &o, &c));
	return c;
}

/* The group's committed offset; 0 before its first commit. */
static uint64_t
committed_or_zero(shmq_t *q)
{
	shmq_group_partition_t gp;
	if (shmq_group_describe(q, "g", "t", &gp, 1) != 1 ||
	    gp.committed == UINT64_MAX) {
		return 0;
	}
	return gp.committed;
}

static uint64_t
committed(shmq_t *q)
{
	shmq_group_partition_t gp;
	CU_ASSERT_FATAL(shmq_group_describe(q, "g", "t", &gp, 1) == 1);
	return gp.committed;
}

/* Some work, of a random length, without sleeping. */
static void
work(unsigned *seed, unsigned max_us)
{
	int64_t end = th_mono_ms() * 1000 + rand_r(seed) % (max_us + 1);
	volatile unsigned x = 0;
	while (th_mono_ms() * 1000 < end) {
		x++;
	}
}

struct order {
	_Atomic uint32_t next[KEYS]; /* the next rank expected per key */
	_Atomic int worker[KEYS]; /* who had the key, -1 none */
	_Atomic unsigned processed, bad, active, max_active;
	_Atomic unsigned seed;
};

static int
order_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	struct order *o = arg;
	struct kv v;
	unsigned a = atomic_fetch_add(&o->active, 1) + 1;
	unsigned m = atomic_load(&o->max_active);
	while (a > m && !atomic_compare_exchange_weak(&o->max_active, &m, a)) {
	}
	memcpy(&v, r->value, sizeof v);
	int none = -1;
	if (v.key >= KEYS || r->value_len != sizeof v ||
	    (!atomic_compare_exchange_strong(
	         &o->worker[v.key], &none, (int)worker) &&
	        none != (int)worker) ||
	    atomic_load(&o->next[v.key]) != v.seq) {
		atomic_fetch_add(&o->bad, 1);
	}
	atomic_store(&o->next[v.key], v.seq + 1);
	unsigned seed = atomic_fetch_add(&o->seed, 7919);
	work(&seed, 200);
	atomic_fetch_sub(&o->active, 1);
	atomic_fetch_add(&o->processed, 1);
	return 0;
}

/* Every record once, each key's records in order and by one worker,
 * several workers at once, and the commit at the end of the log. */
static void
test_keyed_per_key_order_with_random_work(void)
{
	const uint32_t n = 3000;
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	produce_keyed(q, n);
	shmq_consumer_t *c = group_consumer(q);
	struct order *o = calloc(1, sizeof *o);
	for (unsigned i = 0; i < KEYS; i++) {
		atomic_store(&o->worker[i], -1);
	}
	atomic_store(&o->seed, th_seed("keyed order"));
	shmq_keyed_options_t ko;
	shmq_keyed_options_init(&ko);
	ko.workers = 4;
	ko.queue = 16; /* small: the dispatcher waits on full queues too */
	shmq_keyed_t *k = NULL;
	TH_OK(shmq_keyed_open(c, &ko, order_fn, o, &k));
	uint64_t handed = 0;
	int64_t deadline = th_mono_ms() + 60000;
	while (handed < n && th_mono_ms() < deadline) {
		ssize_t got = shmq_keyed_poll(k, 100);
		CU_ASSERT_FATAL(got >= 0);
		handed += (uint64_t)got;
	}
	CU_ASSERT_EQUAL(handed, n);
	TH_OK(shmq_keyed_drain(k, 30000));
	CU_ASSERT_EQUAL(atomic_load(&o->processed), n);
	CU_ASSERT_EQUAL(atomic_load(&o->bad), 0);
	CU_ASSERT(atomic_load(&o->max_active) >= 2);
	CU_ASSERT_EQUAL(committed(q), n);
	uint32_t want[KEYS] = { 0 };
	for (uint32_t i = 0; i < n; i++) {
		want[(i * 7u) % KEYS]++;
	}
	for (unsigned i = 0; i < KEYS; i++) {
		CU_ASSERT_EQUAL(atomic_load(&o->next[i]), want[i]);
	}
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	free(o);
	th_destroy(q);
}

/* One record held up: the commit stops just below it while the other
 * keys' records finish around it, and moves to the end once it ends. */
struct hold {
	uint64_t offset; /* the record that waits */
	_Atomic bool release, held;
	_Atomic unsigned processed;
};

static int
hold_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	struct hold *h = arg;
	(void)worker;
	if (r->offset == h->offset) {
		atomic_store(&h->held, true);
		int64_t deadline = th_mono_ms() + 30000;
		while (!atomic_load(&h->release) && th_mono_ms() < deadline) {
			sched_yield();
		}
	}
	atomic_fetch_add(&h->processed, 1);
	return 0;
}

static void
test_keyed_commit_stops_below_an_unfinished_record(void)
{
	const uint32_t n = 600;
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	produce_keyed(q, n);
	shmq_consumer_t *c = group_consumer(q);
	struct hold h = { .offset = 100 };
	shmq_keyed_options_t ko;
	shmq_keyed_options_init(&ko);
	ko.workers = 4;
	ko.queue = 1024; /* room for every record: nothing waits on it */
	shmq_keyed_t *k = NULL;
	TH_OK(shmq_keyed_open(c, &ko, hold_fn, &h, &k));
	/* Hand everything out; wait until all but the held record's
	 * worker's backlog are done (the other workers empty their
	 * queues), then look at the commit. */
	uint64_t handed = 0;
	int64_t deadline = th_mono_ms() + 30000;
	while (handed < n && th_mono_ms() < deadline) {
		ssize_t got = shmq_keyed_poll(k, 100);
		CU_ASSERT_FATAL(got >= 0);
		handed += (uint64_t)got;
	}
	CU_ASSERT_EQUAL_FATAL(handed, n);
	unsigned last = 0;
	while (!atomic_load(&h.held) || atomic_load(&h.processed) != last) {
		last = atomic_load(&h.processed);
		CU_ASSERT_FATAL(th_mono_ms() < deadline);
		CU_ASSERT_FATAL(shmq_keyed_poll(k, 20) >= 0);
	}
	CU_ASSERT(last > h.offset); /* records after it did finish */
	CU_ASSERT(last < n);
	CU_ASSERT_EQUAL(committed(q), h.offset);
	atomic_store(&h.release, true);
	TH_OK(shmq_keyed_drain(k, 30000));
	CU_ASSERT_EQUAL(atomic_load(&h.processed), n);
	CU_ASSERT_EQUAL(committed(q), n);
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	th_destroy(q);
}

/* fn fails on one record: the error comes back, nothing runs after it,
 * and the commit stays at or below that record, with every record below
 * the commit processed. */
static int
fail_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	_Atomic uint8_t *done = arg;
	(void)worker;
	if (r->offset == 50) {
		return -EIO;
	}
	atomic_store(&done[r->offset], 1);
	return 0;
}

static void
test_keyed_error_stops_the_commit_at_the_failed_record(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	produce_keyed(q, 200);
	shmq_consumer_t *c = group_consumer(q);
	shmq_keyed_t *k = NULL;
	static _Atomic uint8_t done[200];
	TH_OK(shmq_keyed_open(c, NULL, fail_fn, done, &k));
	ssize_t got = 0;
	int64_t deadline = th_mono_ms() + 30000;
	while (
	    (got = shmq_keyed_poll(k, 50)) >= 0 && th_mono_ms() < deadline) {
	}
	CU_ASSERT_EQUAL(got, -EIO);
	TH_FAIL(shmq_keyed_drain(k, 30000), -EIO);
	uint64_t cm = committed(q);
	CU_ASSERT(cm <= 50);
	TH_FAIL(shmq_keyed_close(k), -EIO);
	CU_ASSERT_EQUAL(committed(q), cm);
	for (uint64_t off = 0; off < cm; off++) {
		CU_ASSERT(atomic_load(&done[off]) == 1);
	}
	/* The consumer was sent back: it reads the lowest unprocessed
	 * record next. */
	char buf[64];
	shmq_record_t r;
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, cm);
	shmq_consumer_close(c);
	th_destroy(q);
}

static int
nop_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	(void)r;
	(void)arg;
	(void)worker;
	return 0;
}

static void
test_keyed_bad_arguments(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = group_consumer(q);
	shmq_keyed_t *k = NULL;
	shmq_keyed_options_t ko;
	TH_FAIL(shmq_keyed_open(NULL, NULL, nop_fn, NULL, &k), -EINVAL);
	TH_FAIL(shmq_keyed_open(c, NULL, NULL, NULL, &k), -EINVAL);
	TH_FAIL(shmq_keyed_open(c, NULL, nop_fn, NULL, NULL), -EINVAL);
	shmq_keyed_options_init(&ko);
	ko.workers = 0;
	TH_FAIL(shmq_keyed_open(c, &ko, nop_fn, NULL, &k), -EINVAL);
	ko.workers = SHMQ_KEYED_WORKERS_MAX + 1;
	TH_FAIL(shmq_keyed_open(c, &ko, nop_fn, NULL, &k), -EINVAL);
	shmq_keyed_options_init(&ko);
	ko.queue = 0;
	TH_FAIL(shmq_keyed_open(c, &ko, nop_fn, NULL, &k), -EINVAL);
	shmq_keyed_options_init(&ko);
	ko.size = 4;
	TH_FAIL(shmq_keyed_open(c, &ko, nop_fn, NULL, &k), -EINVAL);
	CU_ASSERT_PTR_NULL(k);
	TH_FAIL(shmq_keyed_poll(NULL, 0), -EINVAL);
	TH_FAIL(shmq_keyed_drain(NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(shmq_keyed_close(NULL), 0);
	TH_OK(shmq_keyed_open(c, NULL, nop_fn, NULL, &k));
	TH_FAIL(shmq_keyed_poll(k, -2), -EINVAL);
	CU_ASSERT_EQUAL(shmq_keyed_poll(k, 0), 0); /* nothing yet */
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	th_destroy(q);
}

/* kill -9 at random moments: whatever was committed had finished.  A
 * child processes records (random work, marking each done in shared
 * memory) until killed; the parent checks every offset below the
 * commit is marked, then starts another, until all are processed. */
#define CRASH_N 4000u

struct crash {
	char home[4096];
	_Atomic unsigned done_count;
	_Atomic uint8_t done[CRASH_N];
	unsigned seed;
};

static int
crash_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	struct crash *cr = arg;
	unsigned seed = (unsigned)r->offset * 2654435761u ^ cr->seed ^ worker;
	work(&seed, 100);
	if (r->offset < CRASH_N) {
		atomic_store(&cr->done[r->offset], 1);
	}
	atomic_fetch_add(&cr->done_count, 1);
	return 0;
}

static int
crash_child(void *arg)
{
	struct crash *cr = arg;
	shmq_t *q = th_attach_home(cr->home);
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_keyed_t *k = NULL;
	shmq_consumer_options_init(&o);
	o.group = "g";
	shmq_keyed_options_t ko;
	shmq_keyed_options_init(&ko);
	ko.workers = 4;
	ko.queue = 8;
	if (q == NULL || shmq_consumer_open(q, "t", &o, &c) != 0 ||
	    shmq_keyed_open(c, &ko, crash_fn, cr, &k) != 0) {
		return 2;
	}
	for (;;) {
		if (shmq_keyed_poll(k, 100) < 0) {
			return 3;
		}
	}
}

static void
test_keyed_kill9_never_commits_unfinished_work(void)
{
	unsigned seed = th_seed("keyed kills");
	unsigned rounds = th_soak(6);
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	produce_keyed(q, CRASH_N);
	struct crash *cr = th_shared(sizeof *cr);
	snprintf(cr->home, sizeof cr->home, "%s", shmq_home(q));
	cr->seed = seed;
	unsigned bad = 0, kills = 0;
	for (unsigned round = 0; round < rounds + 1; round++) {
		bool last = round == rounds;
		unsigned base = atomic_load(&cr->done_count);
		unsigned target = base + 1 + (unsigned)rand_r(&seed) % 600;
		pid_t pid = th_fork(crash_child, cr);
		int64_t deadline = th_mono_ms() + 60000;
		while (th_mono_ms() < deadline) {
			/* All committed ends any round: with many rounds
			 * (SHMQ_SOAK) the work can run out before they do. */
			uint64_t cm = committed_or_zero(q);
			if (cm >= CRASH_N ||
			    (!last &&
			        atomic_load(&cr->done_count) >= target)) {
				break;
			}
			sched_yield();
		}
		kill(pid, SIGKILL);
		CU_ASSERT(th_wait(pid) == 128 + SIGKILL);
		kills++;
		uint64_t cm = committed_or_zero(q);
		for (uint64_t off = 0; off < cm && off < CRASH_N; off++) {
			bad += atomic_load(&cr->done[off]) == 0;
		}
		if (last) {
			CU_ASSERT_EQUAL(cm, CRASH_N);
		}
	}
	for (unsigned off = 0; off < CRASH_N; off++) {
		CU_ASSERT_FATAL(atomic_load(&cr->done[off]) == 1);
	}
	CU_ASSERT_EQUAL(bad, 0);
	fprintf(stderr, "[%u kills, %u records processed for %u] ", kills,
	    atomic_load(&cr->done_count), CRASH_N);
	th_unshared(cr, sizeof *cr);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_keyed_per_key_order_with_random_work",
	    test_keyed_per_key_order_with_random_work },
	{ "test_keyed_commit_stops_below_an_unfinished_record",
	    test_keyed_commit_stops_below_an_unfinished_record },
	{ "test_keyed_error_stops_the_commit_at_the_failed_record",
	    test_keyed_error_stops_the_commit_at_the_failed_record },
	{ "test_keyed_bad_arguments", test_keyed_bad_arguments },
	{ "test_keyed_kill9_never_commits_unfinished_work",
	    test_keyed_kill9_never_commits_unfinished_work },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_keyed = { "keyed", tests };
