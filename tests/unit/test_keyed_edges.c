/*
 * test_keyed_edges.c — the keyed facility (keyed.c) at its edges: a
 * `block` topic whose producer waits for our commit, poll's timeout
 * against full FIFOs and seeks back, an fn error and the records after
 * it, consumers it must refuse, rebalances, and a consumer used again
 * after close.  Each test states the guarantee it checks.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define RKEYS 37u

/* Same hash and pick as keyed.c, to aim keys at workers. */
static unsigned
rv_worker(const char *key, unsigned nworkers)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; key[i] != '\0'; i++) {
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	}
	return h % nworkers;
}

/* A key "w<n>" that keyed.c gives to worker `want` of `nworkers`. */
static void
rv_key_for(unsigned want, unsigned nworkers, char *buf, size_t cap)
{
	for (unsigned n = 0;; n++) {
		snprintf(buf, cap, "w%u", n);
		if (rv_worker(buf, nworkers) == want) {
			return;
		}
	}
}

static void
rv_send(shmq_producer_t *p, const char *key, uint32_t part, const void *v,
    size_t vlen)
{
	shmq_msg_t m = { .key = key,
		.key_len = key ? strlen(key) : 0,
		.value = v,
		.value_len = vlen,
		.partition = (int32_t)part };
	TH_OK(shmq_send(p, &m));
}

/* Records 0..n-1 on `part`, key "k<(i*7)%37>", value = i. */
static void
rv_produce(shmq_t *q, uint32_t part, uint32_t from, uint32_t n)
{
	shmq_producer_t *p = th_producer(q, "t");
	for (uint32_t i = from; i < from + n; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%u", (i * 7u) % RKEYS);
		rv_send(p, key, part, &i, sizeof i);
	}
	shmq_producer_close(p);
}

static shmq_consumer_t *
rv_group(shmq_t *q, unsigned flags)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = "g";
	o.flags = flags;
	TH_OK(shmq_consumer_open(q, "t", &o, &c));
	return c;
}

static uint64_t
rv_committed(shmq_t *q, uint32_t part)
{
	shmq_group_partition_t gp[8];
	ssize_t n = shmq_group_describe(q, "g", "t", gp, 8);
	CU_ASSERT_FATAL(n > (ssize_t)part);
	return gp[part].committed;
}

static void
rv_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- a fn that holds chosen offsets until released ------------------ */

struct rv_hold {
	uint32_t part; /* the partition held offsets are on */
	uint64_t off[4]; /* held offsets, UINT64_MAX: unused */
	_Atomic bool release[4];
	_Atomic bool held[4];
	_Atomic bool finished[4];
	int fail_off; /* offset whose fn returns -EIO, -1 none */
	_Atomic unsigned processed;
	_Atomic unsigned after_fail_same_key; /* see test 1 */
	char fail_key[32];
	size_t fail_key_len;
	_Atomic bool failed;
	_Atomic uint8_t seen[512];
};

static void
rv_hold_init(struct rv_hold *h, uint32_t part)
{
	memset(h, 0, sizeof *h);
	h->part = part;
	for (int i = 0; i < 4; i++) {
		h->off[i] = UINT64_MAX;
	}
	h->fail_off = -1;
}

static int
rv_hold_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	struct rv_hold *h = arg;
	(void)worker;
	if (r->partition == h->part) {
		for (int i = 0; i < 4; i++) {
			if (r->offset != h->off[i]) {
				continue;
			}
			atomic_store(&h->held[i], true);
			int64_t dl = th_mono_ms() + 30000;
			while (!atomic_load(&h->release[i]) &&
			    th_mono_ms() < dl) {
				rv_sleep_ms(1);
			}
			atomic_store(&h->finished[i], true);
		}
	}
	if (atomic_load(&h->failed) && r->key_len == h->fail_key_len &&
	    memcmp(r->key, h->fail_key, r->key_len) == 0) {
		atomic_fetch_add(&h->after_fail_same_key, 1);
	}
	if (h->fail_off >= 0 && r->offset == (uint64_t)h->fail_off) {
		memcpy(h->fail_key, r->key, r->key_len);
		h->fail_key_len = r->key_len;
		atomic_store(&h->failed, true);
		return -EIO;
	}
	if (r->offset < 512) {
		atomic_store(&h->seen[r->offset], 1);
	}
	atomic_fetch_add(&h->processed, 1);
	return 0;
}

static shmq_keyed_t *
rv_keyed(shmq_consumer_t *c, unsigned workers, unsigned queue,
    shmq_keyed_fn fn, void *arg)
{
	shmq_keyed_options_t ko;
	shmq_keyed_t *k = NULL;
	shmq_keyed_options_init(&ko);
	ko.workers = workers;
	ko.queue = queue;
	TH_OK(shmq_keyed_open(c, &ko, fn, arg, &k));
	return k;
}

/* Poll until at least `n` more records were handed out (fails on error). */
static void
rv_hand_out(shmq_keyed_t *k, uint64_t n)
{
	uint64_t handed = 0;
	int64_t dl = th_mono_ms() + 20000;
	while (handed < n && th_mono_ms() < dl) {
		ssize_t got = shmq_keyed_poll(k, 20);
		CU_ASSERT_FATAL(got >= 0);
		handed += (uint64_t)got;
	}
	/* More, when the consumer reads again what was not processed. */
	CU_ASSERT_FATAL(handed >= n);
}

/* 1. fn fails on a record: no later record of the same key runs (it
 * would be applied before the failed one, which is read again after a
 * restart): workers run nothing once an error stopped the facility. */
static void
test_keyed_fn_error_stops_later_records_of_the_same_key(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 0, 0, 200);
	shmq_consumer_t *c = rv_group(q, 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	h->fail_off = 50;
	shmq_keyed_t *k = rv_keyed(c, 4, 256, rv_hold_fn, h);
	int64_t dl = th_mono_ms() + 10000;
	while (shmq_keyed_poll(k, 20) >= 0 && th_mono_ms() < dl) {
	}
	TH_FAIL(shmq_keyed_drain(k, 10000), -EIO);
	fprintf(stderr, "[%u records of the failed key ran after it] ",
	    atomic_load(&h->after_fail_same_key));
	CU_ASSERT_EQUAL(atomic_load(&h->after_fail_same_key), 0);
	TH_FAIL(shmq_keyed_close(k), -EIO);
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

/* 2. shmq_keyed_poll(k, 0) never blocks, also when a slow record has
 * filled its partition's FIFO (one slow record on worker 0, every other
 * record on worker 1): the record stays pending for the next call. */
struct rv_release_after {
	_Atomic bool *flag;
	int ms;
};

static void *
rv_release_thread(void *arg)
{
	struct rv_release_after *ra = arg;
	rv_sleep_ms(ra->ms);
	atomic_store(ra->flag, true);
	return NULL;
}

static void
test_keyed_poll_timeout0_returns_on_a_full_partition_fifo(void)
{
	const unsigned n = 100;
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	char slow[16], fast[16];
	rv_key_for(0, 2, slow, sizeof slow);
	rv_key_for(1, 2, fast, sizeof fast);
	shmq_producer_t *p = th_producer(q, "t");
	for (uint32_t i = 0; i < n; i++) {
		rv_send(p, i == 0 ? slow : fast, 0, &i, sizeof i);
	}
	shmq_producer_close(p);
	shmq_consumer_t *c = rv_group(q, 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	h->off[0] = 0;
	shmq_keyed_t *k = rv_keyed(c, 2, 1, rv_hold_fn, h);
	struct rv_release_after ra = { &h->release[0], 3000 };
	pthread_t t;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, rv_release_thread, &ra) == 0);
	int64_t worst = 0;
	uint64_t handed = 0;
	int64_t dl = th_mono_ms() + 20000;
	while (handed < n && th_mono_ms() < dl) {
		int64_t t0 = th_mono_ms();
		ssize_t got = shmq_keyed_poll(k, 0);
		int64_t took = th_mono_ms() - t0;
		worst = took > worst ? took : worst;
		CU_ASSERT_FATAL(got >= 0);
		handed += (uint64_t)got;
	}
	fprintf(stderr, "[longest shmq_keyed_poll(k, 0): %lld ms] ",
	    (long long)worst);
	CU_ASSERT(worst < 500);
	pthread_join(t, NULL);
	TH_OK(shmq_keyed_drain(k, 10000));
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

/* 2b. The same after a seek back between polls: the partition's records
 * in flight must finish before its FIFO starts over, and poll(k, 0)
 * returns at once instead of waiting for them. */
static void
test_keyed_poll_timeout0_returns_after_a_seek_back(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 0, 0, 10);
	shmq_consumer_t *c = rv_group(q, 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	h->off[0] = 5;
	shmq_keyed_t *k = rv_keyed(c, 4, 64, rv_hold_fn, h);
	rv_hand_out(k, 10);
	TH_OK(shmq_seek(c, 0, 0)); /* read it all again */
	struct rv_release_after ra = { &h->release[0], 3000 };
	pthread_t t;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, rv_release_thread, &ra) == 0);
	int64_t t0 = th_mono_ms();
	ssize_t got = shmq_keyed_poll(k, 0);
	int64_t took = th_mono_ms() - t0;
	fprintf(stderr, "[shmq_keyed_poll(k, 0) after a seek: %lld ms] ",
	    (long long)took);
	CU_ASSERT(got >= 0);
	CU_ASSERT(took < 500);
	pthread_join(t, NULL);
	TH_OK(shmq_keyed_drain(k, 10000));
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

/* 3. On a `block` topic the producer waits for the group's commit
 * (its gate): finished work is committed while the dispatcher waits
 * for a record, every slice, not only when poll returns. */
struct rv_slow {
	_Atomic unsigned processed;
};

static int
rv_slow_fn(const shmq_record_t *r, void *arg, unsigned worker)
{
	struct rv_slow *s = arg;
	(void)r;
	(void)worker;
	rv_sleep_ms(20);
	atomic_fetch_add(&s->processed, 1);
	return 0;
}

struct rv_prod {
	shmq_t *q;
	unsigned n;
};

static void *
rv_prod_thread(void *arg)
{
	struct rv_prod *pa = arg;
	shmq_producer_t *p = th_producer(pa->q, "t");
	static char v[2000];
	for (uint32_t i = 0; i < pa->n; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%u", i % RKEYS);
		memcpy(v, &i, sizeof i);
		rv_send(p, key, 0, v, sizeof v);
	}
	shmq_producer_close(p);
	return NULL;
}

struct rv_disp {
	shmq_keyed_t *k;
	unsigned n;
	_Atomic int timeout_ms;
	_Atomic bool stop;
	_Atomic unsigned handed;
};

static void *
rv_disp_thread(void *arg)
{
	struct rv_disp *d = arg;
	while (!atomic_load(&d->stop)) {
		ssize_t got =
		    shmq_keyed_poll(d->k, atomic_load(&d->timeout_ms));
		if (got < 0) {
			break;
		}
		atomic_fetch_add(&d->handed, (unsigned)got);
	}
	return NULL;
}

static void
test_keyed_block_topic_commits_while_poll_waits(void)
{
	const unsigned n = 200;
	shmq_t *q = th_attach();
	/* 64 KiB: about 30 records of 2 KB. */
	th_topic(q, "t", 1, 64u * 1024u, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = rv_group(q, 0);
	struct rv_slow s = { 0 };
	shmq_keyed_t *k = rv_keyed(c, 4, 64, rv_slow_fn, &s);
	/* The group's gate exists once the member has polled. */
	CU_ASSERT(shmq_keyed_poll(k, 0) == 0);
	struct rv_prod pa = { q, n };
	struct rv_disp d = { .k = k, .n = n, .timeout_ms = 8000 };
	pthread_t tp, td;
	CU_ASSERT_FATAL(pthread_create(&td, NULL, rv_disp_thread, &d) == 0);
	CU_ASSERT_FATAL(pthread_create(&tp, NULL, rv_prod_thread, &pa) == 0);
	/* 200 records x 20 ms / 4 workers = 1 s of work. */
	int64_t dl = th_mono_ms() + 6000;
	while (th_mono_ms() < dl && rv_committed(q, 0) != n) {
		rv_sleep_ms(10);
	}
	uint64_t cm = rv_committed(q, 0);
	fprintf(stderr,
	    "[after 6 s: handed %u, processed %u, committed %llu of %u] ",
	    atomic_load(&d.handed), atomic_load(&s.processed),
	    (unsigned long long)cm, n);
	CU_ASSERT_EQUAL(cm, n);
	/* Finish: stop the dispatcher, and end its long poll with one
	 * more record. */
	atomic_store(&d.timeout_ms, 10);
	atomic_store(&d.stop, true);
	pthread_join(tp, NULL);
	shmq_producer_t *p = th_producer(q, "t");
	uint32_t last = n;
	rv_send(p, "k0", 0, &last, sizeof last);
	shmq_producer_close(p);
	pthread_join(td, NULL);
	TH_OK(shmq_keyed_drain(k, 10000));
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	th_destroy(q);
}

/* 4. A standalone consumer (shmq_assign) has no group commit, so
 * shmq_keyed_open refuses it (-EINVAL); accepting it and processing every
 * record would do too. */
static void
test_keyed_standalone_consumer_is_refused(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 0, 0, 10);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	shmq_keyed_t *k = NULL;
	int orc = shmq_keyed_open(c, NULL, rv_hold_fn, h, &k);
	if (orc == -EINVAL) { /* rejecting it would be fine too */
		shmq_consumer_close(c);
		free(h);
		th_destroy(q);
		return;
	}
	TH_OK(orc);
	ssize_t got = shmq_keyed_poll(k, 100);
	fprintf(stderr, "[poll on a standalone consumer: %zd] ", got);
	CU_ASSERT_EQUAL(got, 10);
	(void)shmq_keyed_drain(k, 10000);
	CU_ASSERT_EQUAL(atomic_load(&h->processed), 10);
	(void)shmq_keyed_close(k);
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

/* 5. A consumer with SHMQ_CONSUMER_AUTO_COMMIT would commit past
 * records still running (every shmq_recv commits what the previous one
 * returned): shmq_keyed_open refuses it, or the commit must stay below
 * the running record. */
static void
test_keyed_auto_commit_consumer_is_refused(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 0, 0, 300);
	shmq_consumer_t *c = rv_group(q, SHMQ_CONSUMER_AUTO_COMMIT);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	h->off[0] = 100;
	shmq_keyed_t *k = NULL;
	shmq_keyed_options_t ko;
	shmq_keyed_options_init(&ko);
	ko.queue = 1024;
	int orc = shmq_keyed_open(c, &ko, rv_hold_fn, h, &k);
	if (orc == -EINVAL) { /* rejecting it would be fine */
		shmq_consumer_close(c);
		free(h);
		th_destroy(q);
		return;
	}
	TH_OK(orc);
	rv_hand_out(k, 300);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);
	}
	/* The stream goes on while record 100 runs. */
	rv_produce(q, 0, 300, 10);
	rv_hand_out(k, 10);
	CU_ASSERT_FATAL(!atomic_load(&h->finished[0]));
	uint64_t cm = rv_committed(q, 0);
	fprintf(stderr, "[record 100 running, committed %llu] ",
	    (unsigned long long)cm);
	CU_ASSERT(cm <= 100);
	atomic_store(&h->release[0], true);
	TH_OK(shmq_keyed_drain(k, 10000));
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

/* 6. A partition rebalanced away (our commit refused) and given back
 * while one of our old records still runs: once everything is done the
 * partition is committed again, to its end. */
static void
test_keyed_partition_given_back_commits_again(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 1, 0, 20);
	shmq_consumer_t *a = rv_group(q, 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 1);
	h->off[0] = 2;
	h->off[1] = 5;
	shmq_keyed_t *k = rv_keyed(a, 4, 64, rv_hold_fn, h);
	rv_hand_out(k, 20);
	int64_t dl = th_mono_ms() + 10000;
	while (!atomic_load(&h->held[0]) && th_mono_ms() < dl) {
		CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);
	}
	/* Records 0 and 1 finish and are committed at a later poll. */
	while (rv_committed(q, 1) != 2 && th_mono_ms() < dl) {
		CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);
	}
	CU_ASSERT_EQUAL_FATAL(rv_committed(q, 1), 2);

	/* B joins; A gives partition 1 up at its next poll, B takes it,
	 * reads 2..19 and commits 20. */
	shmq_consumer_t *b = rv_group(q, 0);
	CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);
	char buf[256];
	shmq_record_t r;
	unsigned got = 0;
	dl = th_mono_ms() + 10000;
	while (got < 18 && th_mono_ms() < dl) {
		int rc = shmq_recv(b, buf, sizeof buf, &r, 20);
		if (rc == 0) {
			CU_ASSERT_EQUAL(r.partition, 1);
			got++;
		}
	}
	CU_ASSERT_EQUAL_FATAL(got, 18);
	TH_OK(shmq_consumer_commit(b));
	CU_ASSERT_EQUAL_FATAL(rv_committed(q, 1), 20);

	/* Record 2 ends: A's commit past it (to 5) may be refused. */
	atomic_store(&h->release[0], true);
	while (!atomic_load(&h->finished[0]) && th_mono_ms() < dl) {
		rv_sleep_ms(1);
	}
	CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);

	/* More records; B leaves; A gets partition 1 back from 20 while
	 * its record 5 still runs. */
	rv_produce(q, 1, 20, 10);
	shmq_consumer_close(b);
	rv_hand_out(k, 10);
	CU_ASSERT(!atomic_load(&h->finished[1]));
	atomic_store(&h->release[1], true);
	TH_OK(shmq_keyed_drain(k, 10000));
	for (int i = 0; i < 5; i++) {
		CU_ASSERT(shmq_keyed_poll(k, 10) >= 0);
	}
	uint64_t cm = rv_committed(q, 1);
	fprintf(stderr, "[all 30 processed by someone, committed %llu] ",
	    (unsigned long long)cm);
	CU_ASSERT_EQUAL(cm, 30);
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(a);
	free(h);
	th_destroy(q);
}

/* 7. After shmq_keyed_close the consumer stays open, sent back to the
 * lowest record not processed: a new keyed facility on it (recovering
 * from an fn error) processes the failed record instead of committing
 * past it. */
static void
test_keyed_reusing_the_consumer_after_close_skips_nothing(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1u << 20, SHMQ_OVERFLOW_BLOCK);
	rv_produce(q, 0, 0, 200);
	shmq_consumer_t *c = rv_group(q, 0);
	struct rv_hold *h = calloc(1, sizeof *h);
	rv_hold_init(h, 0);
	h->fail_off = 50;
	shmq_keyed_t *k = rv_keyed(c, 4, 256, rv_hold_fn, h);
	int64_t dl = th_mono_ms() + 10000;
	while (shmq_keyed_poll(k, 20) >= 0 && th_mono_ms() < dl) {
	}
	TH_FAIL(shmq_keyed_close(k), -EIO);
	CU_ASSERT(rv_committed(q, 0) <= 50);
	/* Start over on the same consumer; fn no longer fails. */
	h->fail_off = -1;
	k = rv_keyed(c, 4, 256, rv_hold_fn, h);
	rv_produce(q, 0, 200, 10); /* the stream goes on */
	rv_hand_out(k, 10);
	TH_OK(shmq_keyed_drain(k, 10000));
	uint64_t cm = rv_committed(q, 0);
	fprintf(stderr, "[committed %llu; record 50 processed: %d] ",
	    (unsigned long long)cm, atomic_load(&h->seen[50]));
	CU_ASSERT(cm <= 50 || atomic_load(&h->seen[50]) == 1);
	TH_OK(shmq_keyed_close(k));
	shmq_consumer_close(c);
	free(h);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_keyed_fn_error_stops_later_records_of_the_same_key",
	    test_keyed_fn_error_stops_later_records_of_the_same_key },
	{ "test_keyed_poll_timeout0_returns_on_a_full_partition_fifo",
	    test_keyed_poll_timeout0_returns_on_a_full_partition_fifo },
	{ "test_keyed_poll_timeout0_returns_after_a_seek_back",
	    test_keyed_poll_timeout0_returns_after_a_seek_back },
	{ "test_keyed_block_topic_commits_while_poll_waits",
	    test_keyed_block_topic_commits_while_poll_waits },
	{ "test_keyed_standalone_consumer_is_refused",
	    test_keyed_standalone_consumer_is_refused },
	{ "test_keyed_auto_commit_consumer_is_refused",
	    test_keyed_auto_commit_consumer_is_refused },
	{ "test_keyed_partition_given_back_commits_again",
	    test_keyed_partition_given_back_commits_again },
	{ "test_keyed_reusing_the_consumer_after_close_skips_nothing",
	    test_keyed_reusing_the_consumer_after_close_skips_nothing },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_keyed_edges = { "keyed_edges", tests };
