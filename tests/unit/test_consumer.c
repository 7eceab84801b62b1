/*
 * test_consumer.c — consumer semantics: reset policies, seeking (through
 * the sparse index), zero-copy views, cross-process delivery exactly once
 * and in order, wrap-around, lapping on `drop` topics, lag, offsets for
 * times, and reclaiming a reservation abandoned by a killed producer.
 *
 * Record contents are a deterministic function of the offset, so every
 * byte a consumer sees can be checked: a torn or misplaced record fails.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- local helpers ------------------------------------------------------ */

static int64_t
real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A hung test must not hang the run: fail loudly instead. */
static void
on_alarm(int sig)
{
	static const char msg[] = "\ntest_consumer: watchdog expired, a "
	                          "consumer or producer hung\n";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0) {
		_exit(124);
	}
	_exit(124);
}

static void
watchdog(unsigned secs)
{
	signal(SIGALRM, secs ? on_alarm : SIG_DFL);
	alarm(secs);
}

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The value bytes of the record at offset `off` (salted by `salt`). */
static void
fill(uint64_t salt, uint64_t off, uint8_t *b, size_t n)
{
	uint64_t x = mix64(off ^ (salt << 32));
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			x = mix64(x + i);
		}
		b[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
}

static bool
check(uint64_t salt, uint64_t off, const void *p, size_t n)
{
	uint8_t want[4096];
	const uint8_t *b = p;
	size_t done = 0;
	/* regenerate in one go (records here are at most a few KiB) */
	if (n > sizeof want) {
		return false;
	}
	fill(salt, off, want, n);
	for (; done < n; done++) {
		if (b[done] != want[done]) {
			return false;
		}
	}
	return true;
}

/* Value length of the record at `off`: 0..max, salted. */
static size_t
len_for(uint64_t salt, uint64_t off, size_t max)
{
	return (size_t)(mix64(off * 31 + salt) % (max + 1));
}

static shmq_consumer_t *
consumer_opts(shmq_t *q, const char *topic, uint32_t part, int reset, int idle)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.reset = reset;
	o.idle = idle;
	TH_OK(shmq_consumer_open(q, topic, &o, &c));
	TH_OK(shmq_assign(c, &part, 1));
	return c;
}

/* The one member of group "g", auto-committing what it read, so that it
 * gates the producers of a `block` topic. */
static shmq_consumer_t *
member(shmq_t *q, const char *topic, int idle)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = "g";
	o.idle = idle;
	o.flags = SHMQ_CONSUMER_AUTO_COMMIT;
	TH_OK(shmq_consumer_open(q, topic, &o, &c));
	return c;
}

/* Send the record for offset-derived content; checks the offset. */
static int
send_rec(shmq_producer_t *p, int32_t part, uint64_t salt, uint64_t want_off,
    size_t vlen)
{
	uint8_t buf[4096];
	shmq_msg_t m;
	if (vlen > sizeof buf) {
		return -EMSGSIZE;
	}
	fill(salt, want_off, buf, vlen);
	memset(&m, 0, sizeof m);
	m.value = buf;
	m.value_len = vlen;
	m.partition = part;
	int rc = shmq_send(p, &m);
	if (rc == 0 && m.offset != want_off) {
		fprintf(stderr, "send: offset %llu, want %llu\n",
		    (unsigned long long)m.offset,
		    (unsigned long long)want_off);
		return -EPROTO;
	}
	return rc;
}

/* Receive one record and check it is `off` with content fill(salt, off)
 * of length `vlen`. */
static void
expect(shmq_consumer_t *c, uint64_t salt, uint64_t off, size_t vlen)
{
	uint8_t buf[4096];
	shmq_record_t r;
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, off);
	CU_ASSERT_EQUAL(r.value_len, vlen);
	CU_ASSERT_EQUAL(r.key_len, 0);
	if (r.offset != off || r.value_len != vlen) {
		fprintf(stderr, "got offset %llu len %zu, want %llu len %zu\n",
		    (unsigned long long)r.offset, r.value_len,
		    (unsigned long long)off, vlen);
		return;
	}
	CU_ASSERT(check(salt, off, r.value, r.value_len));
}

static void
expect_empty(shmq_consumer_t *c)
{
	uint8_t buf[64];
	shmq_record_t r;
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
}

/* ---- standalone positions -------------------------------------------------
 */

static void
test_standalone_consumer_reads_from_offset_0_by_default(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");

	for (uint64_t i = 0; i < 10; i++) {
		TH_OK(send_rec(p, 0, 1, i, 10 + i));
		TH_OK(send_rec(p, 1, 2, i, 20 + i));
	}
	shmq_consumer_t *c = th_reader(q, "t", 0);
	for (uint64_t i = 0; i < 10; i++) {
		expect(c, 1, i, 10 + i); /* partition 1 never shows up */
	}
	expect_empty(c);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_reset_latest_sees_only_records_sent_after_the_first_poll(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");

	for (uint64_t i = 0; i < 5; i++) {
		TH_OK(send_rec(p, 0, 1, i, 8));
	}
	shmq_consumer_t *c =
	    consumer_opts(q, "t", 0, SHMQ_RESET_LATEST, SHMQ_IDLE_SPIN_PARK);
	expect_empty(c);
	for (uint64_t i = 5; i < 10; i++) {
		TH_OK(send_rec(p, 0, 1, i, 8));
	}
	for (uint64_t i = 5; i < 10; i++) {
		expect(c, 1, i, 8);
	}
	expect_empty(c);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_reset_error_fails_with_eoutofrange_beyond_the_end(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c =
	    consumer_opts(q, "t", 0, SHMQ_RESET_ERROR, SHMQ_IDLE_SPIN_PARK);
	uint8_t buf[64];
	shmq_record_t r;

	for (uint64_t i = 0; i < 5; i++) {
		TH_OK(send_rec(p, 0, 1, i, 8));
	}
	TH_OK(shmq_seek(c, 0, 100));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EOUTOFRANGE);
	TH_FAIL(shmq_peek(c, &r, 0), SHMQ_EOUTOFRANGE);
	TH_OK(shmq_seek(c, 0, 6)); /* one past the end */
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EOUTOFRANGE);
	/* in range works: the middle, and exactly the end */
	TH_OK(shmq_seek(c, 0, 3));
	expect(c, 1, 3, 8);
	TH_OK(shmq_seek(c, 0, 5));
	expect_empty(c);
	TH_OK(send_rec(p, 0, 1, 5, 8));
	expect(c, 1, 5, 8);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_reset_error_fails_with_eoutofrange_below_the_log_start(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c =
	    consumer_opts(q, "t", 0, SHMQ_RESET_ERROR, SHMQ_IDLE_SPIN_PARK);
	shmq_partition_info_t info;
	uint8_t buf[256];
	shmq_record_t r;

	for (uint64_t i = 0; i < 2000; i++) { /* several laps */
		TH_OK(send_rec(p, 0, 1, i, 100));
	}
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_FATAL(info.log_start > 0);
	TH_OK(shmq_seek(c, 0, 0));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EOUTOFRANGE);
	TH_OK(shmq_seek(c, 0, info.log_start - 1));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EOUTOFRANGE);
	TH_OK(shmq_seek(c, 0, info.log_start));
	expect(c, 1, info.log_start, 100);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* Seek to each offset in `offs` and read a few records from there. */
static void
seek_and_read(shmq_consumer_t *c, uint64_t salt, const uint64_t *offs,
    size_t n, uint64_t end, size_t maxlen)
{
	for (size_t k = 0; k < n; k++) {
		TH_OK(shmq_seek(c, 0, offs[k]));
		for (uint64_t o = offs[k]; o < offs[k] + 3 && o < end; o++) {
			expect(c, salt, o, len_for(salt, o, maxlen));
		}
	}
}

static void
test_seek_reads_from_exactly_that_offset(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 4 * MIB, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	const uint64_t N = 1000;
	const uint64_t offs[] = { 0, 1, 63, 64, 65, 127, 128, 129, 500, 511,
		512, 640, 997, 63, 0, 999 };

	for (uint64_t i = 0; i < N; i++) {
		TH_OK(send_rec(p, 0, 7, i, len_for(7, i, 300)));
	}
	seek_and_read(c, 7, offs, sizeof offs / sizeof offs[0], N, 300);
	/* after the last one, the log's end */
	expect_empty(c);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_seek_in_a_wrapped_ring_reads_from_exactly_that_offset(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;
	/* 64 KiB holds ~500 of these: 12000 records wrap the ring many
	 * times and the sparse index (64 slots x 64 offsets) twice. */
	const uint64_t N = 12000;

	for (uint64_t i = 0; i < N; i++) {
		TH_OK(send_rec(p, 0, 9, i, len_for(9, i, 200)));
	}
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	uint64_t L = info.log_start;
	CU_ASSERT_FATAL(L > 4096 && info.end == N);
	uint64_t b64 = (L + 63) & ~63ull; /* first multiple of 64 >= L */
	const uint64_t offs[] = { L, L + 1, b64, b64 + 1,
		b64 - 1 > L ? b64 - 1 : L, b64 + 64, b64 + 63, b64 + 65, L + 2,
		N - 64, N - 65, N - 1 };
	seek_and_read(c, 9, offs, sizeof offs / sizeof offs[0], N, 200);
	expect_empty(c);
	/* below the log start: the reset policy (earliest) */
	TH_OK(shmq_seek(c, 0, L - 1));
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	expect(c, 9, info.log_start, len_for(9, info.log_start, 200));
	TH_OK(shmq_seek(c, 0, 64));
	expect(c, 9, info.log_start, len_for(9, info.log_start, 200));
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_seek_to_beginning_and_end(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;

	for (uint64_t i = 0; i < 20; i++) {
		TH_OK(send_rec(p, 0, 3, i, 16));
	}
	expect(c, 3, 0, 16);
	expect(c, 3, 1, 16);
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_END));
	expect_empty(c);
	TH_OK(send_rec(p, 0, 3, 20, 16));
	expect(c, 3, 20, 16);
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_BEGINNING));
	expect(c, 3, 0, 16);
	/* after the ring wrapped, the beginning is the oldest retained */
	for (uint64_t i = 21; i < 3000; i++) {
		TH_OK(send_rec(p, 0, 3, i, 16));
	}
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_FATAL(info.log_start > 0);
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_BEGINNING));
	expect(c, 3, info.log_start, 16);
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_END));
	expect_empty(c);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- zero-copy reads ------------------------------------------------------
 */

static void
test_peek_view_matches_what_was_sent_and_agrees_with_recv(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *a = th_reader(q, "t", 0);
	shmq_consumer_t *b = th_reader(q, "t", 0);
	uint8_t key[64], val[2048], buf[4096];

	for (uint64_t i = 0; i < 200; i++) {
		shmq_msg_t m;
		size_t kl = i % 5 == 0 ? 0 : (size_t)(i % 40);
		size_t vl = len_for(5, i, sizeof val);
		fill(6, i, key, kl);
		fill(5, i, val, vl);
		memset(&m, 0, sizeof m);
		m.key = kl ? key : NULL;
		m.key_len = kl;
		m.value = val;
		m.value_len = vl;
		m.partition = 0;
		TH_OK(shmq_send(p, &m));

		shmq_record_t ra, rb;
		TH_OK(shmq_recv(a, buf, sizeof buf, &ra, 1000));
		TH_OK(shmq_peek(b, &rb, 1000));
		CU_ASSERT_EQUAL(ra.offset, i);
		CU_ASSERT_EQUAL(rb.offset, i);
		CU_ASSERT_EQUAL(rb.partition, 0);
		CU_ASSERT_EQUAL(rb.key_len, kl);
		CU_ASSERT_EQUAL(rb.value_len, vl);
		CU_ASSERT_EQUAL(ra.key_len, rb.key_len);
		CU_ASSERT_EQUAL(ra.value_len, rb.value_len);
		CU_ASSERT_EQUAL(ra.timestamp, rb.timestamp);
		CU_ASSERT_EQUAL(rb.timestamp, m.timestamp);
		if (rb.key_len == kl && rb.value_len == vl) {
			CU_ASSERT(kl == 0 || memcmp(rb.key, key, kl) == 0);
			CU_ASSERT(memcmp(rb.value, val, vl) == 0);
			CU_ASSERT(kl == 0 || memcmp(ra.key, key, kl) == 0);
			CU_ASSERT(memcmp(ra.value, val, vl) == 0);
		}
		/* the view points into the ring, not into our buffer */
		CU_ASSERT(rb.value < (const void *)buf ||
		    rb.value >= (const void *)(buf + sizeof buf));
		TH_OK(shmq_release(b, &rb));
	}
	expect_empty(a);
	expect_empty(b);
	shmq_consumer_close(a);
	shmq_consumer_close(b);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- cross-process delivery ----------------------------------------------
 */

struct xp {
	char home[4096];
	uint64_t count;
	uint32_t id; /* producer id */
	pthread_barrier_t *start;
};

/* Child: send `count` records to partition 0, value = sequence. */
static int
seq_producer(void *arg)
{
	struct xp *x = arg;
	shmq_t *q = th_attach_home(x->home);
	shmq_producer_t *p = NULL;
	if (q == NULL || shmq_producer_open(q, "t", NULL, &p) != 0) {
		return 2;
	}
	for (uint64_t i = 0; i < x->count; i++) {
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.value = &i;
		m.value_len = sizeof i;
		m.partition = 0;
		int rc = shmq_send(p, &m);
		if (rc != 0) {
			fprintf(stderr, "seq_producer: send %llu: %s\n",
			    (unsigned long long)i, shmq_strerror(rc));
			return 3;
		}
	}
	shmq_detach(q);
	return 0;
}

static void
receive_in_order(int idle)
{
	shmq_t *q = th_attach();
	struct xp x;
	/* A 1 MiB ring laps several times: the group's gate holds the
	 * producer back (so nothing is overrun at any $SHMQ_SOAK), and
	 * both sides sleep and wake each other across processes. */
	th_topic(q, "t", 1, MIB, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = member(q, "t", idle);
	snprintf(x.home, sizeof x.home, "%s", shmq_home(q));
	x.count = th_soak(100000);
	x.id = 0;
	x.start = NULL;
	watchdog(60);
	pid_t pid = th_fork(seq_producer, &x);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < x.count; i++) {
		uint64_t v = UINT64_MAX;
		shmq_record_t r;
		int rc = shmq_recv(c, &v, sizeof v, &r, -1);
		if (rc != 0 || r.offset != i || v != i ||
		    r.value_len != sizeof v) {
			fprintf(stderr,
			    "record %llu: rc %d offset %llu value "
			    "%llu\n",
			    (unsigned long long)i, rc,
			    (unsigned long long)r.offset,
			    (unsigned long long)v);
			bad++;
			break;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	watchdog(0);
	expect_empty(c);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_records_from_another_process_arrive_once_and_in_order(void)
{
	receive_in_order(SHMQ_IDLE_SPIN_PARK);
}

static void
test_records_from_another_process_arrive_once_and_in_order_busy_spin(void)
{
	receive_in_order(SHMQ_IDLE_BUSY_SPIN);
}

struct pv {
	uint32_t id;
	uint32_t pad;
	uint64_t seq;
};

static int
id_producer(void *arg)
{
	struct xp *x = arg;
	shmq_t *q = th_attach_home(x->home);
	shmq_producer_t *p = NULL;
	if (q == NULL || shmq_producer_open(q, "t", NULL, &p) != 0) {
		return 2;
	}
	pthread_barrier_wait(x->start);
	for (uint64_t i = 0; i < x->count; i++) {
		struct pv v = { x->id, 0, i };
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.value = &v;
		m.value_len = sizeof v;
		m.partition = 0;
		if (shmq_send(p, &m) != 0) {
			return 3;
		}
	}
	shmq_detach(q);
	return 0;
}

static void
test_three_producer_processes_into_one_partition_lose_nothing(void)
{
	shmq_t *q = th_attach();
	const uint32_t NP = 3;
	struct xp x[3];
	pthread_barrierattr_t ba;
	pthread_barrier_t *start = th_shared(sizeof *start);
	uint64_t next[3] = { 0, 0, 0 };
	pid_t pid[3];

	th_topic(q, "t", 1, MIB, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = member(q, "t", SHMQ_IDLE_SPIN_PARK);
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(start, &ba, NP);
	uint64_t per = th_soak(40000);
	watchdog(60);
	for (uint32_t k = 0; k < NP; k++) {
		snprintf(x[k].home, sizeof x[k].home, "%s", shmq_home(q));
		x[k].count = per;
		x[k].id = k;
		x[k].start = start;
		pid[k] = th_fork(id_producer, &x[k]);
	}
	uint64_t bad = 0, switches = 0;
	uint32_t last = UINT32_MAX;
	for (uint64_t i = 0; i < per * NP && bad == 0; i++) {
		struct pv v = { UINT32_MAX, 0, 0 };
		shmq_record_t r;
		int rc = shmq_recv(c, &v, sizeof v, &r, 10000);
		if (rc != 0 || r.offset != i || r.value_len != sizeof v ||
		    v.id >= NP || v.seq != next[v.id]) {
			fprintf(stderr,
			    "record %llu: rc %d offset %llu id %u "
			    "seq %llu\n",
			    (unsigned long long)i, rc,
			    (unsigned long long)r.offset, v.id,
			    (unsigned long long)v.seq);
			bad++;
			break;
		}
		next[v.id]++;
		switches += v.id != last;
		last = v.id;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (uint32_t k = 0; k < NP; k++) {
		CU_ASSERT_EQUAL(th_wait(pid[k]), 0);
		CU_ASSERT_EQUAL(next[k], per);
	}
	watchdog(0);
	expect_empty(c);
	fprintf(
	    stderr, "[%llu producer switches] ", (unsigned long long)switches);
	pthread_barrier_destroy(start);
	th_unshared(start, sizeof *start);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* ---- wrap-around
 * ------------------------------------------------------------ */

struct wrap {
	char home[4096];
	uint64_t count;
	uint64_t salt;
};

#define WRAP_MAX_VALUE 2048u

static int
wrap_producer(void *arg)
{
	struct wrap *w = arg;
	shmq_t *q = th_attach_home(w->home);
	shmq_producer_t *p = NULL;
	uint8_t val[WRAP_MAX_VALUE];
	if (q == NULL || shmq_producer_open(q, "t", NULL, &p) != 0) {
		return 2;
	}
	for (uint64_t i = 0; i < w->count; i++) {
		size_t vl = len_for(w->salt, i, WRAP_MAX_VALUE);
		shmq_msg_t m;
		fill(w->salt, i, val, vl);
		memset(&m, 0, sizeof m);
		m.key = i % 3 == 0 ? &i : NULL;
		m.key_len = i % 3 == 0 ? sizeof i : 0;
		m.value = val;
		m.value_len = vl;
		m.partition = 0;
		int rc = shmq_send(p, &m);
		if (rc != 0 || m.offset != i) {
			fprintf(stderr, "wrap_producer: %llu: %s\n",
			    (unsigned long long)i, shmq_strerror(rc));
			return 3;
		}
	}
	shmq_detach(q);
	return 0;
}

static bool
wrap_check(const struct wrap *w, uint64_t i, const shmq_record_t *r)
{
	size_t kl = i % 3 == 0 ? sizeof i : 0;
	uint64_t k = 0;
	if (r->offset != i || r->key_len != kl ||
	    r->value_len != len_for(w->salt, i, WRAP_MAX_VALUE)) {
		return false;
	}
	if (kl != 0) {
		memcpy(&k, r->key, sizeof k);
		if (k != i) {
			return false;
		}
	}
	return check(w->salt, i, r->value, r->value_len);
}

static void
test_wrap_around_for_many_laps_never_tears_a_record(void)
{
	shmq_t *q = th_attach();
	shmq_partition_info_t info;
	struct wrap w;
	uint8_t buf[WRAP_MAX_VALUE + 16];

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	/* A group member: its gate holds the producer back. */
	shmq_consumer_t *c = member(q, "t", SHMQ_IDLE_SPIN_PARK);
	snprintf(w.home, sizeof w.home, "%s", shmq_home(q));
	w.count = th_soak(20000);
	w.salt = th_seed("wrap");
	watchdog(60);
	pid_t pid = th_fork(wrap_producer, &w);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < w.count && bad == 0; i++) {
		shmq_record_t r;
		int rc;
		if (i % 2 == 0) {
			rc = shmq_recv(c, buf, sizeof buf, &r, 10000);
			if (rc == 0 && !wrap_check(&w, i, &r)) {
				rc = -EPROTO;
			}
		} else {
			rc = shmq_peek(c, &r, 10000);
			if (rc == 0) {
				bool ok = wrap_check(&w, i, &r);
				rc = shmq_release(c, &r);
				rc = rc == 0 && !ok ? -EPROTO : rc;
			}
		}
		if (rc != 0) {
			fprintf(stderr,
			    "record %llu: %d (%s) at offset %llu\n",
			    (unsigned long long)i, rc, shmq_strerror(rc),
			    (unsigned long long)r.offset);
			bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	watchdog(0);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.end, w.count);
	/* it really went round many times */
	CU_ASSERT(info.bytes_in > 100 * (uint64_t)SHMQ_RING_SIZE_MIN);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* ---- drop topics: lapping -------------------------------------------------
 */

static void
test_lapped_consumer_gets_elapsed_then_continues_from_the_oldest(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;
	uint8_t buf[256];
	shmq_record_t r;
	const uint64_t N = 2010;

	for (uint64_t i = 0; i < 10; i++) {
		TH_OK(send_rec(p, 0, 4, i, 100));
	}
	for (uint64_t i = 0; i < 3; i++) {
		expect(c, 4, i, 100);
	}
	for (uint64_t i = 10; i < N; i++) { /* ~5 laps */
		TH_OK(send_rec(p, 0, 4, i, 100));
	}
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_FATAL(info.log_start > 3);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ELAPPED);
	CU_ASSERT_EQUAL(r.partition, 0);
	CU_ASSERT(r.lost > 0);
	CU_ASSERT_EQUAL(r.lost, info.log_start - 3);
	/* then from the oldest retained record, every one, in order */
	for (uint64_t i = info.log_start; i < N; i++) {
		expect(c, 4, i, 100);
	}
	expect_empty(c);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/*
 * A consumer that has read everything before the PAD at the end of the
 * data area sits on the PAD.  When the writer overwrites only the PAD,
 * not the record after it, nothing was lost: the next poll must return
 * that record, not SHMQ_ELAPPED with lost == 0.
 */
static void
test_consumer_on_a_pad_is_not_lapped_when_only_the_pad_is_overwritten(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;
	uint8_t buf[1024];
	shmq_record_t r;
	/* 1000-byte records: 65 fill [0, 65000), a 536-byte PAD follows */
	const size_t big = 1000 - SHMQ_RECORD_OVERHEAD;
	uint64_t off = 0;

	for (; off < 65; off++) {
		TH_OK(send_rec(p, 0, 12, off, big));
	}
	for (uint64_t i = 0; i < 65; i++) {
		expect(c, 12, i, big); /* now positioned at the PAD */
	}
	/* PAD + offset 65 at the start of lap 1, then 64 more: lap 1 is
	 * laid out like lap 0 and ends at 65536 + 65000. */
	for (; off < 130; off++) {
		TH_OK(send_rec(p, 0, 12, off, big));
	}
	/* A small record goes into lap 1's tail: it overwrites lap 0's
	 * PAD, but not offset 65 (which starts at 65536). */
	TH_OK(send_rec(p, 0, 12, off, 8));
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL_FATAL(info.log_start, 65);
	int rc = shmq_recv(c, buf, sizeof buf, &r, 1000);
	if (rc == SHMQ_ELAPPED) {
		fprintf(stderr, "SHMQ_ELAPPED at offset %llu, lost %llu ",
		    (unsigned long long)r.offset, (unsigned long long)r.lost);
		CU_ASSERT(r.lost > 0);
		rc = shmq_recv(c, buf, sizeof buf, &r, 1000);
	}
	TH_OK(rc);
	CU_ASSERT_EQUAL(r.offset, 65);
	CU_ASSERT(r.value_len == big && check(12, 65, r.value, big));
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

struct dropper {
	char home[4096];
	uint64_t count;
	uint32_t id;
};

#define DROP_MAX_VALUE 4000u

/* A self-checking value: the offset, then fill(8, offset). */
static bool
drop_value_ok(const shmq_record_t *r)
{
	uint64_t o;
	if (r->key_len != 0 || r->value_len < sizeof o ||
	    r->value_len > DROP_MAX_VALUE) {
		return false;
	}
	memcpy(&o, r->value, sizeof o);
	return o == r->offset &&
	    check(8, o, (const uint8_t *)r->value + sizeof o,
	        r->value_len - sizeof o);
}

/* Child: `count` zero-copy records whose content depends on the offset
 * the reservation hands out; lengths vary. */
static int
drop_producer(void *arg)
{
	struct dropper *d = arg;
	shmq_t *q = th_attach_home(d->home);
	shmq_producer_t *p = NULL;
	shmq_producer_options_t o;
	uint64_t x = d->id + 1;
	shmq_producer_options_init(&o);
	o.acks = SHMQ_ACKS_NONE;
	if (q == NULL || shmq_producer_open(q, "t", &o, &p) != 0) {
		return 2;
	}
	for (uint64_t i = 0; i < d->count; i++) {
		shmq_slice_t s;
		x = mix64(x);
		size_t vl = 8 + (size_t)(x % (DROP_MAX_VALUE - 7));
		int rc = shmq_reserve(p, 0, 0, vl, &s);
		if (rc != 0) {
			fprintf(
			    stderr, "drop_producer: %s\n", shmq_strerror(rc));
			return 3;
		}
		memcpy(s.value, &s.offset, sizeof s.offset);
		fill(8, s.offset, (uint8_t *)s.value + 8, vl - 8);
		if ((rc = shmq_commit(p, &s)) != 0) {
			fprintf(stderr, "drop_producer: commit: %s\n",
			    shmq_strerror(rc));
			return 4;
		}
	}
	shmq_detach(q);
	return 0;
}

/*
 * Two producer processes overrun a 64 KiB `drop` ring while a consumer
 * reads it, alternating copy and zero-copy reads.  Every record returned
 * must be whole (its bytes are a function of its offset), offsets must
 * increase strictly, and each SHMQ_ELAPPED must report lost > 0.
 */
static void
test_consumer_overrun_by_concurrent_producers_never_sees_a_torn_record(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	struct dropper d[2];
	pid_t pid[2];
	uint8_t buf[DROP_MAX_VALUE];
	uint64_t total = 0;

	for (uint32_t k = 0; k < 2; k++) {
		snprintf(d[k].home, sizeof d[k].home, "%s", shmq_home(q));
		d[k].count = th_soak(30000);
		d[k].id = k;
		total += d[k].count;
	}
	watchdog(60);
	for (uint32_t k = 0; k < 2; k++) {
		pid[k] = th_fork(drop_producer, &d[k]);
	}
	uint64_t last = 0, got = 0, laps = 0, lost = 0, stale = 0, bad = 0;
	bool any = false;
	while (bad == 0 && (!any || last < total - 1)) {
		shmq_record_t r;
		bool peeked = (got & 1) != 0;
		int rc = peeked ? shmq_peek(c, &r, 10000)
		                : shmq_recv(c, buf, sizeof buf, &r, 10000);
		if (rc == SHMQ_ELAPPED) {
			laps++;
			lost += r.lost;
			if (r.lost == 0) {
				fprintf(stderr,
				    "SHMQ_ELAPPED with lost 0 at "
				    "offset %llu (last %llu)\n",
				    (unsigned long long)r.offset,
				    (unsigned long long)last);
				bad++;
			}
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "poll: %s\n", shmq_strerror(rc));
			bad++;
			break;
		}
		bool ok = (!any || r.offset > last) && drop_value_ok(&r);
		if (peeked) {
			int rrc = shmq_release(c, &r);
			if (rrc == SHMQ_ESTALE) {
				stale++; /* contents void: not checked */
				continue;
			}
			if (rrc != 0) {
				fprintf(stderr, "release: %s\n",
				    shmq_strerror(rrc));
				bad++;
			}
		}
		if (!ok) {
			fprintf(stderr,
			    "torn or misplaced record at offset "
			    "%llu (last %llu)\n",
			    (unsigned long long)r.offset,
			    (unsigned long long)last);
			bad++;
		}
		last = r.offset;
		any = true;
		got++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (uint32_t k = 0; k < 2; k++) {
		CU_ASSERT_EQUAL(th_wait(pid[k]), 0);
	}
	watchdog(0);
	fprintf(stderr, "[%llu read, %llu laps, %llu lost, %llu stale] ",
	    (unsigned long long)got, (unsigned long long)laps,
	    (unsigned long long)lost, (unsigned long long)stale);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_release_of_a_view_overwritten_while_borrowed_returns_estale(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;
	shmq_record_t r;

	TH_OK(send_rec(p, 0, 2, 0, 100));
	TH_OK(send_rec(p, 0, 2, 1, 100));
	TH_OK(shmq_peek(c, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	TH_OK(shmq_release(c, &r)); /* not overwritten: fine */
	TH_OK(shmq_peek(c, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 1);
	for (uint64_t i = 2; i < 1000; i++) { /* > 2 laps */
		TH_OK(send_rec(p, 0, 2, i, 100));
	}
	TH_FAIL(shmq_release(c, &r), SHMQ_ESTALE);
	/* then it goes on as after a lap: from the oldest record */
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_FATAL(info.log_start > 2);
	expect(c, 2, info.log_start, 100);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- lag and times
 * ------------------------------------------------------------ */

static void
test_consumer_lag_counts_records_between_position_and_end(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = NULL;
	uint32_t both[2] = { 0, 1 };
	uint64_t lag = 99;

	TH_OK(shmq_consumer_open(q, "t", NULL, &c));
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 0); /* nothing assigned */
	for (uint64_t i = 0; i < 10; i++) {
		TH_OK(send_rec(p, 0, 1, i, 8));
	}
	for (uint64_t i = 0; i < 5; i++) {
		TH_OK(send_rec(p, 1, 1, i, 8));
	}
	TH_OK(shmq_assign(c, both, 2));
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 15);
	TH_OK(shmq_seek(c, 1, 5)); /* partition 1 at its end */
	for (uint64_t i = 0; i < 3; i++) {
		expect(c, 1, i, 8);
	}
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 7);
	TH_OK(send_rec(p, 1, 1, 5, 8));
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 8);
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_END));
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 1);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* With reset LATEST a freshly assigned partition is positioned at the end
 * (shmq_assign: "each from the reset policy's position"): no lag. */
static void
test_consumer_lag_of_a_reset_latest_consumer_starts_at_zero(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t lag = 99;

	for (uint64_t i = 0; i < 10; i++) {
		TH_OK(send_rec(p, 0, 1, i, 8));
	}
	shmq_consumer_t *c =
	    consumer_opts(q, "t", 0, SHMQ_RESET_LATEST, SHMQ_IDLE_SPIN_PARK);
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 0);
	expect_empty(c); /* resolves the position */
	TH_OK(shmq_consumer_lag(c, &lag));
	CU_ASSERT_EQUAL(lag, 0);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
send_at(shmq_producer_t *p, int64_t ts)
{
	shmq_msg_t m;
	memset(&m, 0, sizeof m);
	m.partition = 0;
	m.timestamp = ts;
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.timestamp, ts);
}

static void
test_offset_for_time_finds_the_first_record_at_or_after_a_time(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t off = 99;

	for (int64_t i = 0; i < 7; i++) {
		send_at(p, 1000000 + i);
	}
	for (int64_t i = 0; i < 5; i++) {
		send_at(p, 2000000 + i);
	}
	TH_OK(shmq_offset_for_time(q, "t", 0, 1500000, &off));
	CU_ASSERT_EQUAL(off, 7);
	TH_OK(shmq_offset_for_time(q, "t", 0, 2000000, &off));
	CU_ASSERT_EQUAL(off, 7);
	TH_OK(shmq_offset_for_time(q, "t", 0, 2000001, &off));
	CU_ASSERT_EQUAL(off, 8);
	TH_OK(shmq_offset_for_time(q, "t", 0, 1000006, &off));
	CU_ASSERT_EQUAL(off, 6);
	TH_OK(shmq_offset_for_time(q, "t", 0, 0, &off));
	CU_ASSERT_EQUAL(off, 0);
	TH_OK(shmq_offset_for_time(q, "t", 0, 2000005, &off));
	CU_ASSERT_EQUAL(off, 12); /* after everything: the end */
	TH_FAIL(shmq_offset_for_time(q, "t", 1, 0, &off), -EINVAL);
	TH_FAIL(shmq_offset_for_time(q, "nope", 0, 0, &off), -ENOENT);
	TH_FAIL(shmq_offset_for_time(q, "t", 0, 0, NULL), -EINVAL);
	shmq_producer_close(p);
	th_destroy(q);
}

/*
 * The same with the producer's own timestamps ("0 = now") and a time the
 * caller reads from CLOCK_REALTIME between the two bursts: every record
 * sent after that moment must be found from it.
 */
static void
test_offset_for_time_of_a_clock_reading_between_two_bursts(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	int64_t last1 = 0, first2 = 0;
	uint64_t off = 99;

	for (uint64_t i = 0; i < 7; i++) {
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.partition = 0;
		TH_OK(shmq_send(p, &m));
		last1 = m.timestamp;
	}
	int64_t mark = real_ns();
	for (uint64_t i = 0; i < 5; i++) {
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.partition = 0;
		TH_OK(shmq_send(p, &m));
		first2 = i == 0 ? m.timestamp : first2;
	}
	CU_ASSERT(last1 <= mark);
	CU_ASSERT(first2 >= mark);
	TH_OK(shmq_offset_for_time(q, "t", 0, mark, &off));
	CU_ASSERT_EQUAL(off, 7);
	if (off != 7) {
		fprintf(stderr,
		    "burst 1 ends at %lld, mark %lld, burst 2 "
		    "starts at %lld: offset %llu ",
		    (long long)last1, (long long)mark, (long long)first2,
		    (unsigned long long)off);
	}
	TH_OK(shmq_offset_for_time(q, "t", 0, real_ns() + 1000000000, &off));
	CU_ASSERT_EQUAL(off, 12);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- reclaim
 * ------------------------------------------------------------------ */

static int
reserve_and_die(void *arg)
{
	struct dropper *d = arg;
	shmq_t *q = th_attach_home(d->home);
	shmq_producer_t *p = NULL;
	shmq_slice_t s;
	if (q == NULL || shmq_producer_open(q, "t", NULL, &p) != 0 ||
	    shmq_reserve(p, 0, 0, 32, &s) != 0 || s.offset != 0) {
		return 2;
	}
	memset(s.value, 'x', 32);
	raise(SIGKILL);
	return 3;
}

static int
late_producer(void *arg)
{
	struct dropper *d = arg;
	shmq_t *q = th_attach_home(d->home);
	shmq_producer_t *p = NULL;
	shmq_producer_options_t o;
	/* acks NONE: this producer does not wait for visibility, so the
	 * reclaim is left to the consumer. */
	shmq_producer_options_init(&o);
	o.acks = SHMQ_ACKS_NONE;
	if (q == NULL || shmq_producer_open(q, "t", &o, &p) != 0) {
		return 2;
	}
	for (uint64_t i = 1; i <= d->count; i++) {
		int rc = send_rec(p, 0, 11, i, 24);
		if (rc != 0) {
			fprintf(
			    stderr, "late_producer: %s\n", shmq_strerror(rc));
			return 3;
		}
	}
	shmq_detach(q);
	return 0;
}

static void
test_reservation_of_a_killed_producer_is_reclaimed(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_partition_info_t info;
	struct dropper d;

	memset(&d, 0, sizeof d);

	snprintf(d.home, sizeof d.home, "%s", shmq_home(q));
	d.count = 3;
	CU_ASSERT_EQUAL_FATAL(
	    th_wait(th_fork(reserve_and_die, &d)), 128 + SIGKILL);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.end, 1);
	CU_ASSERT_EQUAL(info.committed, 0);

	shmq_consumer_t *c = th_reader(q, "t", 0);
	watchdog(30);
	int64_t t0 = th_mono_ms();
	pid_t pid = th_fork(late_producer, &d);
	for (uint64_t i = 1; i <= d.count; i++) {
		expect(c, 11, i, 24); /* offset 0 is a gap */
	}
	int64_t dt = th_mono_ms() - t0;
	CU_ASSERT(dt < 1000);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	watchdog(0);
	expect_empty(c);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT(info.aborted >= 1);
	CU_ASSERT_EQUAL(info.end, 4);
	CU_ASSERT_EQUAL(info.committed, 4);
	/* a new reader from the beginning skips the gap too */
	shmq_consumer_t *c2 = th_reader(q, "t", 0);
	expect(c2, 11, 1, 24);
	shmq_consumer_close(c2);
	fprintf(stderr, "[reclaimed in %lld ms] ", (long long)dt);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* ---- liveness across fork ----------------------------------------------- */

struct forker {
	char home[4096];
	int hold[2]; /* the grandchild blocks on hold[0] until EOF */
	int ready[2]; /* the member says it joined, then dies */
};

/* A group member that forks a helper (which never touches shmq) and
 * then is killed. */
static int
member_that_forks_and_dies(void *arg)
{
	struct forker *f = arg;
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	char b;

	close(f->hold[1]);
	close(f->ready[0]);
	shmq_t *q = th_attach_home(f->home);
	shmq_consumer_options_init(&o);
	o.group = "g";
	if (q == NULL || shmq_consumer_open(q, "t", &o, &c) != 0) {
		return 2;
	}
	pid_t g = fork();
	if (g == 0) {
		close(f->ready[1]);
		while (read(f->hold[0], &b, 1) > 0) {
		}
		_exit(0);
	}
	if (g < 0 || write(f->ready[1], "j", 1) != 1) {
		return 3;
	}
	raise(SIGKILL);
	return 4;
}

/*
 * Liveness is an OFD lock, and a forked child shares its parent's open
 * file descriptions.  When a group member dies, a child it forked that
 * never used shmq must not keep the member alive: the group must show
 * no members and its gate must stop holding `block` producers back.
 */
static void
test_dead_member_is_not_kept_alive_by_a_child_it_forked(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	struct forker f;
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	static uint8_t val[4000];
	uint32_t members = 99;
	char b;
	int rc = 0;

	memset(&f, 0, sizeof f);
	snprintf(f.home, sizeof f.home, "%s", shmq_home(q));
	CU_ASSERT_FATAL(pipe(f.hold) == 0 && pipe(f.ready) == 0);
	pid_t pid = th_fork(member_that_forks_and_dies, &f);
	close(f.hold[0]);
	close(f.ready[1]);
	CU_ASSERT_EQUAL(read(f.ready[0], &b, 1), 1);
	close(f.ready[0]);
	CU_ASSERT_EQUAL(th_wait(pid), 128 + SIGKILL);

	/* The grandchild closes its inherited descriptors (pthread_atfork)
	 * when it first runs, which under load can be after the member's
	 * death: give it that moment, with a deadline. */
	int64_t deadline = th_mono_ms() + 2000;
	do {
		TH_OK(shmq_group_members(q, "g", "t", &members));
	} while (
	    members != 0 && th_mono_ms() < deadline && sched_yield() == 0);
	CU_ASSERT_EQUAL(members, 0);
	shmq_producer_options_init(&po);
	po.timeout_ms = 300;
	TH_OK(shmq_producer_open(q, "t", &po, &p));
	int sent = 0;
	for (; sent < 40; sent++) { /* 2.5 rings */
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.value = val;
		m.value_len = sizeof val;
		m.partition = 0;
		if ((rc = shmq_send(p, &m)) != 0) {
			break;
		}
	}
	TH_FAIL(rc, 0); /* not fatal: the grandchild must be let go */
	CU_ASSERT_EQUAL(sent, 40);
	close(f.hold[1]); /* lets the grandchild go */
	shmq_producer_close(p);
	th_destroy(q);
}

/* Regression: spin_us was not honoured.  The clock was read only every
 * 64 empty polls, and with the backoff those took 50-170 us, so a
 * consumer asked not to spin (spin_us = 0) spun anyway before parking.
 * Now it parks after its first empty poll. */
static void
test_consumer_with_spin_us_zero_parks_without_spinning(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	char buf[16];
	const uint32_t p0 = 0;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_init(&o);
	o.spin_us = 0;
	TH_OK(shmq_consumer_open(q, "t", &o, &c));
	TH_OK(shmq_assign(c, &p0, 1));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 20), -EAGAIN);
	CU_ASSERT(c->parks >= 1);
	/* One empty poll per wake-up (20 ms: a handful at most). */
	CU_ASSERT(c->empty_polls <= c->parks + 1);
	if (c->empty_polls > c->parks + 1) {
		fprintf(stderr, "[%llu empty polls for %llu parks] ",
		    (unsigned long long)c->empty_polls,
		    (unsigned long long)c->parks);
	}
	shmq_consumer_close(c);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "consumer_with_spin_us_zero_parks_without_spinning",
	    test_consumer_with_spin_us_zero_parks_without_spinning },
	{ "standalone_consumer_reads_from_offset_0_by_default",
	    test_standalone_consumer_reads_from_offset_0_by_default },
	{ "reset_latest_sees_only_records_sent_after_the_first_poll",
	    test_reset_latest_sees_only_records_sent_after_the_first_poll },
	{ "reset_error_fails_with_eoutofrange_beyond_the_end",
	    test_reset_error_fails_with_eoutofrange_beyond_the_end },
	{ "reset_error_fails_with_eoutofrange_below_the_log_start",
	    test_reset_error_fails_with_eoutofrange_below_the_log_start },
	{ "seek_reads_from_exactly_that_offset",
	    test_seek_reads_from_exactly_that_offset },
	{ "seek_in_a_wrapped_ring_reads_from_exactly_that_offset",
	    test_seek_in_a_wrapped_ring_reads_from_exactly_that_offset },
	{ "seek_to_beginning_and_end", test_seek_to_beginning_and_end },
	{ "peek_view_matches_what_was_sent_and_agrees_with_recv",
	    test_peek_view_matches_what_was_sent_and_agrees_with_recv },
	{ "records_from_another_process_arrive_once_and_in_order",
	    test_records_from_another_process_arrive_once_and_in_order },
	{ "records_from_another_process_arrive_once_and_in_order_busy_spin",
	    test_records_from_another_process_arrive_once_and_in_order_busy_spin },
	{ "three_producer_processes_into_one_partition_lose_nothing",
	    test_three_producer_processes_into_one_partition_lose_nothing },
	{ "wrap_around_for_many_laps_never_tears_a_record",
	    test_wrap_around_for_many_laps_never_tears_a_record },
	{ "lapped_consumer_gets_elapsed_then_continues_from_the_oldest",
	    test_lapped_consumer_gets_elapsed_then_continues_from_the_oldest },
	{ "consumer_on_a_pad_is_not_lapped_when_only_the_pad_is_overwritten",
	    test_consumer_on_a_pad_is_not_lapped_when_only_the_pad_is_overwritten },
	{ "consumer_overrun_by_concurrent_producers_never_sees_a_torn_record",
	    test_consumer_overrun_by_concurrent_producers_never_sees_a_torn_record },
	{ "release_of_a_view_overwritten_while_borrowed_returns_estale",
	    test_release_of_a_view_overwritten_while_borrowed_returns_estale },
	{ "consumer_lag_counts_records_between_position_and_end",
	    test_consumer_lag_counts_records_between_position_and_end },
	{ "consumer_lag_of_a_reset_latest_consumer_starts_at_zero",
	    test_consumer_lag_of_a_reset_latest_consumer_starts_at_zero },
	{ "offset_for_time_finds_the_first_record_at_or_after_a_time",
	    test_offset_for_time_finds_the_first_record_at_or_after_a_time },
	{ "offset_for_time_of_a_clock_reading_between_two_bursts",
	    test_offset_for_time_of_a_clock_reading_between_two_bursts },
	{ "dead_member_is_not_kept_alive_by_a_child_it_forked",
	    test_dead_member_is_not_kept_alive_by_a_child_it_forked },
	{ "reservation_of_a_killed_producer_is_reclaimed",
	    test_reservation_of_a_killed_producer_is_reclaimed },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_consumer = { "consumer", tests };
