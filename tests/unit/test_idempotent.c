/*
 * test_idempotent.c — idempotent producers: records carry identity and
 * per-partition sequences; a repeated sequence returns the original
 * offset and appends nothing; gaps and stale instances are refused; the
 * state is rebuilt from the log after a crash, a persister restart and
 * a reboot; retries ride out a missing persister without a second copy.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../libshmq/internal.h"
#include "helpers.h"

/* Open an idempotent producer (name may be NULL); fails the test on
 * error. */
static shmq_producer_t *
idem_producer(shmq_t *q, const char *topic, const char *name, int acks)
{
	return th_idem_producer(q, topic, name, acks, -1, 0);
}

static int
send_u64(shmq_producer_t *p, uint32_t part, uint64_t v, shmq_msg_t *m)
{
	static _Thread_local uint64_t val;
	val = v;
	*m = (shmq_msg_t) {
		.value = &val, .value_len = 8, .partition = (int32_t)part
	};
	return shmq_send(p, m);
}

static int
resend_u64(
    shmq_producer_t *p, uint32_t part, uint64_t v, uint32_t seq, shmq_msg_t *m)
{
	static _Thread_local uint64_t val;
	val = v;
	*m = (shmq_msg_t) { .value = &val,
		.value_len = 8,
		.partition = (int32_t)part,
		.sequence = seq,
		.flags = SHMQ_MSG_SEQUENCE };
	return shmq_send(p, m);
}

struct logrec {
	uint64_t off, val, pid;
	uint32_t seq;
	uint16_t epoch;
};

/* Every record of the partition, from its start to its end now. */
static size_t
read_log(shmq_t *q, const char *topic, uint32_t part, struct logrec *out,
    size_t cap)
{
	shmq_partition_info_t pi;
	shmq_record_t r;
	uint64_t v;
	size_t n = 0;
	TH_OK(shmq_partition_info(q, topic, part, &pi));
	shmq_consumer_t *c = th_reader(q, topic, part);
	while (n < cap) {
		int rc = shmq_recv(c, &v, sizeof v, &r, 0);
		if (rc == -EAGAIN) {
			break;
		}
		TH_OK(rc);
		memcpy(&v, r.value, sizeof v);
		out[n++] = (struct logrec) { r.offset, v, r.producer_id,
			r.sequence, r.producer_epoch };
		if (r.offset + 1 >= pi.end) {
			break;
		}
	}
	shmq_consumer_close(c);
	return n;
}

/* Records carry the producer's id, epoch and per-partition sequences
 * from 0; a plain producer's carry none. */
static void
test_idem_records_carry_identity_and_sequences(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = idem_producer(q, "t", NULL, SHMQ_ACKS_LEADER);
	shmq_producer_t *plain = th_producer(q, "t");
	uint64_t pid;
	uint16_t epoch;
	TH_OK(shmq_producer_identity(p, &pid, &epoch));
	CU_ASSERT(pid != 0);
	shmq_msg_t m;
	for (uint64_t v = 0; v < 6; v++) {
		TH_OK(send_u64(p, 0, v, &m));
		CU_ASSERT_EQUAL(m.sequence, v);
		CU_ASSERT_EQUAL(m.flags & SHMQ_MSG_DUPLICATE, 0);
	}
	TH_OK(send_u64(plain, 0, 100, &m));
	uint64_t vals[4] = { 6, 7, 8, 9 };
	shmq_msg_t b[4];
	for (int i = 0; i < 4; i++) {
		b[i] = (shmq_msg_t) { .value = &vals[i],
			.value_len = 8,
			.partition = i < 2 ? 0 : 1 };
	}
	CU_ASSERT_EQUAL(shmq_send_batch(p, b, 4), 4);
	CU_ASSERT_EQUAL(b[1].sequence, 7);
	CU_ASSERT_EQUAL(b[3].sequence, 1); /* partition 1 counts apart */
	uint32_t next;
	TH_OK(shmq_producer_next_sequence(p, 0, &next));
	CU_ASSERT_EQUAL(next, 8);
	struct logrec lr[16];
	size_t n = read_log(q, "t", 0, lr, 16);
	CU_ASSERT_EQUAL_FATAL(n, 9);
	uint32_t want = 0;
	for (size_t i = 0; i < n; i++) {
		if (lr[i].val == 100) {
			CU_ASSERT_EQUAL(lr[i].pid, 0);
			continue;
		}
		CU_ASSERT_EQUAL(lr[i].pid, pid);
		CU_ASSERT_EQUAL(lr[i].epoch, epoch);
		CU_ASSERT_EQUAL(lr[i].seq, want);
		CU_ASSERT_EQUAL(lr[i].val, want);
		want++;
	}
	n = read_log(q, "t", 1, lr, 16);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(n == 2 && lr[0].seq == 0 && lr[1].seq == 1);
	shmq_producer_close(plain);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A repeated sequence returns the original offset and appends nothing;
 * a gap is refused; a sequence older than the window says so; in a
 * batch, repeats are answered and the fresh rest appended. */
static void
test_idem_repeat_returns_the_original_offset(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 20, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = idem_producer(q, "t", "a", SHMQ_ACKS_LEADER);
	shmq_msg_t m;
	uint64_t offs[5];
	for (uint64_t v = 0; v < 5; v++) {
		TH_OK(send_u64(p, 0, v, &m));
		offs[v] = m.offset;
	}
	uint64_t end = th_end_offset(q, "t", 0);
	TH_OK(resend_u64(p, 0, 2, 2, &m));
	CU_ASSERT_EQUAL(m.offset, offs[2]);
	CU_ASSERT_EQUAL(m.partition, 0);
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end);
	TH_FAIL(resend_u64(p, 0, 7, 7, &m), SHMQ_ESEQUENCE);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end);
	/* The next sequence named explicitly is simply appended. */
	TH_OK(resend_u64(p, 0, 5, 5, &m));
	CU_ASSERT_EQUAL(m.offset, end);
	CU_ASSERT_EQUAL(m.flags & SHMQ_MSG_DUPLICATE, 0);
	for (uint64_t v = 6; v < 200; v++) {
		TH_OK(send_u64(p, 0, v, &m));
	}
	end = th_end_offset(q, "t", 0);
	TH_FAIL(resend_u64(p, 0, 0, 0, &m), SHMQ_EDUPLICATE);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end);
	/* Batch: 198 and 199 are in the log, 200 and 201 are new. */
	uint64_t vals[4] = { 198, 199, 200, 201 };
	shmq_msg_t b[4];
	for (int i = 0; i < 4; i++) {
		b[i] = (shmq_msg_t) { .value = &vals[i],
			.value_len = 8,
			.partition = 0,
			.sequence = (uint32_t)vals[i],
			.flags = SHMQ_MSG_SEQUENCE };
	}
	CU_ASSERT_EQUAL(shmq_send_batch(p, b, 4), 4);
	CU_ASSERT(b[0].flags & b[1].flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(b[1].offset, end - 1);
	CU_ASSERT_EQUAL(b[2].flags & SHMQ_MSG_DUPLICATE, 0);
	CU_ASSERT_EQUAL(b[2].offset, end);
	CU_ASSERT_EQUAL(b[3].offset, end + 1);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end + 2);
	shmq_producer_close(p);
	th_destroy(q);
}

/* Bad options and calls get -EINVAL, not a silent downgrade. */
static void
test_idem_options_are_checked(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	shmq_producer_options_init(&o);
	o.retries = -1; /* retries without idempotence */
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	shmq_producer_options_init(&o);
	o.producer_name = "x"; /* a name without idempotence */
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	o.flags = SHMQ_PRODUCER_IDEMPOTENT;
	o.producer_name = "a/b";
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	o.producer_name = "ok";
	o.retries = -2;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	o.retries = 3;
	o.retry_backoff_ms = 100;
	o.retry_backoff_max_ms = 10;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	CU_ASSERT_PTR_NULL(p);
	p = idem_producer(q, "t", "ok", SHMQ_ACKS_LEADER);
	shmq_slice_t s;
	TH_FAIL(shmq_reserve(p, 0, 0, 8, &s), -EINVAL);
	uint32_t seq;
	TH_FAIL(shmq_producer_next_sequence(p, 1, &seq), -EINVAL);
	shmq_producer_t *plain = th_producer(q, "t");
	TH_FAIL(shmq_producer_identity(plain, NULL, NULL), -EINVAL);
	TH_FAIL(shmq_producer_next_sequence(plain, 0, &seq), -EINVAL);
	shmq_producer_close(plain);
	shmq_producer_close(p);
	th_destroy(q);
}

/* Opening the same name again resumes the identity with a higher epoch
 * and the next sequence from the log, and fences the older handle for
 * good. */
static void
test_idem_resume_by_name_fences_the_older_instance(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *a = idem_producer(q, "t", "w", SHMQ_ACKS_LEADER);
	shmq_msg_t m;
	uint64_t last = 0;
	for (uint64_t v = 0; v < 10; v++) {
		TH_OK(send_u64(a, 0, v, &m));
		last = m.offset;
	}
	uint64_t pa, pb;
	uint16_t ea, eb;
	TH_OK(shmq_producer_identity(a, &pa, &ea));
	shmq_t *q2 = th_reattach(q);
	shmq_producer_t *b = idem_producer(q2, "t", "w", SHMQ_ACKS_LEADER);
	TH_OK(shmq_producer_identity(b, &pb, &eb));
	CU_ASSERT_EQUAL(pa, pb);
	CU_ASSERT_EQUAL(eb, (uint16_t)(ea + 1));
	uint32_t next;
	TH_OK(shmq_producer_next_sequence(b, 0, &next));
	CU_ASSERT_EQUAL(next, 10);
	uint64_t end = th_end_offset(q, "t", 0);
	TH_FAIL(send_u64(a, 0, 99, &m), SHMQ_EFENCED);
	TH_FAIL(send_u64(a, 0, 99, &m), SHMQ_EFENCED);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end);
	TH_OK(resend_u64(b, 0, 9, 9, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, last);
	TH_OK(send_u64(b, 0, 10, &m));
	CU_ASSERT_EQUAL(m.sequence, 10);
	shmq_producer_close(a);
	shmq_producer_close(b);
	shmq_detach(q2);
	th_destroy(q);
}

/* ---- processes ----------------------------------------------------- */

#define CRASH_RECORDS 3000u
#define RESEND_BACK 16u

struct shared {
	char home[SHMQ_DIR_MAX];
	_Atomic uint64_t acked; /* records known sent (by the restarts) */
	_Atomic uint64_t sent; /* the fencing child's count */
	_Atomic int go;
	unsigned seed; /* this round's */
};
static struct shared *sh;

static int die_point;
static void
die_at(int point)
{
	if (point == die_point) {
		raise(SIGKILL);
	}
}

/* In a child: attach to the shared home and open the idempotent
 * producer `name`, with o's other settings (NULL: the defaults).  NULL
 * on failure (the child then exits with an error code). */
static shmq_producer_t *
child_producer(shmq_t **q, const char *name, shmq_producer_options_t *o)
{
	shmq_producer_options_t d;
	shmq_producer_t *p = NULL;
	if (o == NULL) {
		shmq_producer_options_init(&d);
		o = &d;
	}
	o->flags |= SHMQ_PRODUCER_IDEMPOTENT;
	o->producer_name = name;
	if ((*q = th_attach_home(sh->home)) == NULL ||
	    shmq_producer_open(*q, "t", o, &p) != 0) {
		return NULL;
	}
	return p;
}

/* Where a round's producer dies: inside a send (each point of the
 * append protocol; before the commit the reservation is left for a
 * reclaimer to abort), or after a send returned and before the process
 * counted it. */
static const int crash_points[] = { 0, POINT_RESERVE_PUBLISHED,
	POINT_AFTER_RESERVE, POINT_MID_COPY, POINT_BEFORE_COMMIT,
	POINT_AFTER_COMMIT };
#define NPOINTS (sizeof crash_points / sizeof crash_points[0])

/* A producer that restarts from what it knows was acknowledged, minus
 * some: every record from there is sent again with its own sequence
 * (value i has sequence i), as a process that lost its last moments
 * must.  It kills itself (SIGKILL) at this round's point. */
static int
resender_main(void *arg)
{
	unsigned round = (unsigned)(uintptr_t)arg;
	shmq_t *q;
	shmq_producer_t *p = child_producer(&q, "crashy", NULL);
	if (p == NULL) {
		return 11;
	}
	unsigned seed = sh->seed + round;
	uint64_t from = atomic_load(&sh->acked);
	from = from > RESEND_BACK ? from - RESEND_BACK : 0;
	uint64_t kill_at = from + 20 + (uint64_t)rand_r(&seed) % 300;
	int point = crash_points[round % NPOINTS];
	for (uint64_t i = from; i < CRASH_RECORDS; i++) {
		shmq_msg_t m;
		if (i == kill_at && point != 0) {
			die_point = point;
			shmqi_test_hook = die_at;
		}
		if (resend_u64(p, 0, i, (uint32_t)i, &m) != 0) {
			return 12;
		}
		if (i == kill_at) {
			raise(SIGKILL); /* sent, but never counted */
		}
		if (i >= atomic_load(&sh->acked)) {
			/* Release: the parent's check after our death must
			 * find what we counted. */
			atomic_store_explicit(
			    &sh->acked, i + 1, memory_order_release);
		}
	}
	shmq_producer_close(p);
	shmq_detach(q);
	return 0;
}

/* Each round's producer dies by SIGKILL at a random record, at one of
 * the points of a send, and the next resends what it is not sure of:
 * the log holds every value exactly once, in order, with sequence ==
 * value.  Without idempotence each restart would append up to
 * RESEND_BACK records again. */
static void
test_idem_crash_and_resend_leaves_each_record_once(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 20, SHMQ_OVERFLOW_BLOCK);
	sh = th_shared(sizeof *sh);
	snprintf(sh->home, sizeof sh->home, "%s", shmq_home(q));
	sh->seed = th_seed("idem crash");
	unsigned rounds = 0, killed = 0;
	for (; rounds < 200; rounds++) {
		pid_t pid = th_fork(resender_main, (void *)(uintptr_t)rounds);
		int st = th_wait(pid);
		CU_ASSERT(st == 0 || st == 128 + SIGKILL);
		killed += st == 128 + SIGKILL;
		if (st == 0) {
			break;
		}
	}
	CU_ASSERT_EQUAL_FATAL(atomic_load(&sh->acked), CRASH_RECORDS);
	CU_ASSERT(killed >= NPOINTS); /* every point was hit */
	struct logrec *lr = calloc(CRASH_RECORDS * 2, sizeof *lr);
	size_t n = read_log(q, "t", 0, lr, CRASH_RECORDS * 2);
	CU_ASSERT_EQUAL(n, CRASH_RECORDS);
	for (size_t i = 0; i < n; i++) {
		if (lr[i].val != i || lr[i].seq != i) {
			fprintf(stderr, "record %zu: value %llu seq %u\n", i,
			    (unsigned long long)lr[i].val, lr[i].seq);
			CU_FAIL("value or sequence out of place");
			break;
		}
	}
	/* The deaths before a commit left reservations that were
	 * aborted: their sequences were sent again, not taken for
	 * duplicates (else a value would be missing above). */
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT(pi.aborted >= 1);
	free(lr);
	th_unshared(sh, sizeof *sh);
	th_destroy(q);
}

static int
fenced_main(void *arg)
{
	(void)arg;
	shmq_t *q;
	shmq_producer_t *p = child_producer(&q, "race", NULL);
	if (p == NULL) {
		return 11;
	}
	unsigned after = 0; /* sends since the newcomer wrote */
	for (uint64_t i = 0;; i++) {
		shmq_msg_t m;
		int rc = send_u64(p, 0, i, &m);
		if (rc == SHMQ_EFENCED) {
			break;
		}
		if (rc != 0) {
			return 12;
		}
		atomic_store(&sh->sent, i + 1);
		if (atomic_load(&sh->go) != 0 && ++after > 1000) {
			return 13; /* never fenced */
		}
	}
	shmq_producer_close(p);
	shmq_detach(q);
	return 0;
}

/* Another process takes the name over while the first one sends flat
 * out: the log holds one unbroken run of sequences, the first
 * instance's then the second's, with no sequence twice — the barrier
 * makes the newcomer count every record the older instance got in. */
static void
test_idem_takeover_while_sending_keeps_sequences_unbroken(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 24, SHMQ_OVERFLOW_BLOCK);
	sh = th_shared(sizeof *sh);
	snprintf(sh->home, sizeof sh->home, "%s", shmq_home(q));
	pid_t pid = th_fork(fenced_main, NULL);
	int64_t deadline = th_mono_ms() + 10000;
	while (atomic_load(&sh->sent) < 2000 && th_mono_ms() < deadline) {
		sched_yield();
	}
	CU_ASSERT_FATAL(atomic_load(&sh->sent) >= 2000);
	shmq_producer_t *b = idem_producer(q, "t", "race", SHMQ_ACKS_LEADER);
	shmq_msg_t m;
	for (int i = 0; i < 100; i++) {
		TH_OK(send_u64(b, 0, 1u << 30, &m));
	}
	atomic_store(&sh->go, 1);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	uint16_t eb;
	TH_OK(shmq_producer_identity(b, NULL, &eb));
	size_t cap = (1u << 24) / 64 + 16;
	struct logrec *lr = calloc(cap, sizeof *lr);
	size_t n = read_log(q, "t", 0, lr, cap);
	size_t first_b = n;
	CU_ASSERT_FATAL(n > 100);
	for (size_t i = 0; i < n; i++) {
		/* The ring may have dropped the oldest: count from the
		 * first record still there. */
		CU_ASSERT_EQUAL_FATAL(lr[i].seq, lr[0].seq + i);
		if (lr[i].epoch == eb && first_b == n) {
			first_b = i;
		}
		/* Once the newcomer wrote, the older one never did again. */
		CU_ASSERT_FATAL(first_b == n || lr[i].epoch == eb);
	}
	CU_ASSERT_EQUAL(n - first_b, 100);
	/* Every send the older instance saw succeed is in the log, and
	 * the newcomer went on right after the last of them. */
	CU_ASSERT_EQUAL(lr[first_b].seq, atomic_load(&sh->sent));
	free(lr);
	shmq_producer_close(b);
	th_unshared(sh, sizeof *sh);
	th_destroy(q);
}

/* ---- persistent topics ---------------------------------------------- */

/* A DURABLE send that fails after appending (the persister died) is
 * settled by sending the same sequence again once one runs: the
 * original offset comes back, durable, and the log has one copy. */
static void
test_idem_ambiguous_durable_send_is_settled_by_a_repeat(void)
{
	shmq_t *q = th_attach();
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	pid_t pid = th_start_persister(q);
	shmq_producer_t *p = idem_producer(q, "t", "d", SHMQ_ACKS_DURABLE);
	shmq_msg_t m;
	TH_OK(send_u64(p, 0, 0, &m));
	th_stop_persister(q, pid);
	TH_FAIL(send_u64(p, 0, 1, &m), SHMQ_ENOREPLICATOR);
	uint32_t seq = m.sequence;
	uint64_t end = th_end_offset(q, "t", 0);
	CU_ASSERT_EQUAL(end, 2); /* appended, not known to be on disk */
	pid = th_start_persister(q);
	TH_OK(resend_u64(p, 0, 1, seq, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, 1);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT(pi.durable >= 2);
	CU_ASSERT_EQUAL(pi.end, 2);
	shmq_producer_close(p);
	th_stop_persister(q, pid);
	th_destroy(q);
}

static int
retrier_main(void *arg)
{
	(void)arg;
	shmq_t *q;
	shmq_producer_options_t o;
	shmq_producer_options_init(&o);
	o.acks = SHMQ_ACKS_DURABLE;
	o.timeout_ms = 100;
	o.retries = -1;
	o.retry_backoff_ms = 5;
	o.retry_backoff_max_ms = 20;
	shmq_producer_t *p = child_producer(&q, "r", &o);
	if (p == NULL) {
		return 11;
	}
	atomic_store(&sh->sent, 1); /* open: the parent may stop it */
	while (atomic_load(&sh->go) == 0) {
		sched_yield(); /* until the persister is gone */
	}
	shmq_msg_t m;
	int rc = send_u64(p, 0, 42, &m);
	shmq_producer_close(p);
	shmq_detach(q);
	return rc != 0 ? 12 : m.offset != 0 ? 13 : 0;
}

/* retries = -1: a DURABLE send without a persister keeps trying (the
 * record went in at the first attempt) and returns once a persister
 * runs again, with one copy in the log. */
static void
test_idem_retries_ride_out_a_missing_persister(void)
{
	shmq_t *q = th_attach();
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	sh = th_shared(sizeof *sh);
	snprintf(sh->home, sizeof sh->home, "%s", shmq_home(q));
	pid_t ps = th_start_persister(q);
	pid_t pid = th_fork(retrier_main, NULL);
	int64_t deadline = th_mono_ms() + 10000;
	while (atomic_load(&sh->sent) == 0 && th_mono_ms() < deadline) {
		sched_yield();
	}
	th_stop_persister(q, ps);
	atomic_store(&sh->go, 1);
	/* The first attempt appends; then it waits and retries. */
	while (th_end_offset(q, "t", 0) == 0 && th_mono_ms() < deadline) {
		sched_yield();
	}
	CU_ASSERT_EQUAL_FATAL(th_end_offset(q, "t", 0), 1);
	CU_ASSERT_EQUAL(waitpid(pid, NULL, WNOHANG), 0); /* still trying */
	ps = th_start_persister(q);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), 1);
	th_stop_persister(q, ps);
	th_unshared(sh, sizeof *sh);
	th_destroy(q);
}

/* After a reboot (tmpfs wiped: rings gone, the log on disk) the name
 * resumes: the next sequence and the recent offsets come from the
 * segments. */
static void
test_idem_state_survives_a_reboot(void)
{
	shmq_t *q = th_attach();
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	pid_t ps = th_start_persister(q);
	shmq_producer_t *p = idem_producer(q, "t", "boot", SHMQ_ACKS_DURABLE);
	shmq_msg_t m;
	uint64_t id1, id2;
	TH_OK(shmq_producer_identity(p, &id1, NULL));
	for (uint64_t v = 0; v < 20; v++) {
		TH_OK(send_u64(p, 0, v, &m));
	}
	shmq_producer_close(p);
	th_stop_persister(q, ps);
	th_wipe_tmpfs(q);
	shmq_t *q2 = th_reattach(q);
	ps = th_start_persister(q2);
	p = idem_producer(q2, "t", "boot", SHMQ_ACKS_DURABLE);
	TH_OK(shmq_producer_identity(p, &id2, NULL));
	CU_ASSERT_EQUAL(id1, id2);
	uint32_t next;
	TH_OK(shmq_producer_next_sequence(p, 0, &next));
	CU_ASSERT_EQUAL(next, 20);
	TH_OK(resend_u64(p, 0, 5, 5, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, 5);
	TH_OK(send_u64(p, 0, 20, &m));
	CU_ASSERT_EQUAL(m.offset, 20);
	CU_ASSERT_EQUAL(m.sequence, 20);
	shmq_producer_close(p);
	th_stop_persister(q2, ps);
	shmq_detach(q2);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "idem_records_carry_identity_and_sequences",
	    test_idem_records_carry_identity_and_sequences },
	{ "idem_repeat_returns_the_original_offset",
	    test_idem_repeat_returns_the_original_offset },
	{ "idem_options_are_checked", test_idem_options_are_checked },
	{ "idem_resume_by_name_fences_the_older_instance",
	    test_idem_resume_by_name_fences_the_older_instance },
	{ "idem_crash_and_resend_leaves_each_record_once",
	    test_idem_crash_and_resend_leaves_each_record_once },
	{ "idem_takeover_while_sending_keeps_sequences_unbroken",
	    test_idem_takeover_while_sending_keeps_sequences_unbroken },
	{ "idem_ambiguous_durable_send_is_settled_by_a_repeat",
	    test_idem_ambiguous_durable_send_is_settled_by_a_repeat },
	{ "idem_retries_ride_out_a_missing_persister",
	    test_idem_retries_ride_out_a_missing_persister },
	{ "idem_state_survives_a_reboot", test_idem_state_survives_a_reboot },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_idempotent = { "idempotent", tests };
