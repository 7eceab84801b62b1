/*
 * test_idem_edges.c — idempotent producers at their edges:
 * a named producer on a topic that grew, a retrying batch that mixes
 * explicit and assigned sequences, a repeat of a record that is not yet
 * visible (acks DURABLE), the recent window after a resume, and a resume
 * whose state-file hints name offsets that other records now hold.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../libshmq/internal.h"
#include "helpers.h"

static uint64_t the_val;

static shmq_msg_t
msg_to(uint32_t part)
{
	return (shmq_msg_t) {
		.value = &the_val, .value_len = 8, .partition = (int32_t)part
	};
}

static shmq_msg_t
msg_seq(uint32_t part, uint32_t seq)
{
	shmq_msg_t m = msg_to(part);
	m.sequence = seq;
	m.flags = SHMQ_MSG_SEQUENCE;
	return m;
}

/* ---- growth ---------------------------------------------------------- */

static char grow_home[SHMQ_DIR_MAX];

/* In a child: a crash there must not take the runner down. */
static int
grower_main(void *arg)
{
	(void)arg;
	shmq_t *q = th_attach_home(grow_home);
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	if (q == NULL) {
		return 10;
	}
	shmq_producer_options_init(&o);
	o.flags = SHMQ_PRODUCER_IDEMPOTENT;
	o.producer_name = "g";
	if (shmq_producer_open(q, "t", &o, &p) != 0) {
		return 11;
	}
	shmq_msg_t m = msg_to(0);
	if (shmq_send(p, &m) != 0) {
		return 12;
	}
	if (shmq_topic_add_partitions(q, "t", 8) != 0) {
		return 13;
	}
	m = msg_to(7); /* a new partition: the state file grows */
	if (shmq_send(p, &m) != 0) {
		return 14;
	}
	m = msg_to(0); /* an old partition again */
	if (shmq_send(p, &m) != 0 || m.sequence != 1) {
		return 15;
	}
	shmq_producer_close(p);
	shmq_detach(q);
	return 0;
}

/* A named producer keeps sending to its old partitions after it sent
 * to one added since its open (which grows its state file). */
static void
test_idem_edge_named_producer_survives_topic_growth(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	snprintf(grow_home, sizeof grow_home, "%s", shmq_home(q));
	int st = th_wait(th_fork(grower_main, NULL));
	if (st != 0) {
		fprintf(stderr, "grower: status %d\n", st);
	}
	CU_ASSERT_EQUAL(st, 0);
	th_destroy(q);
}

/* ---- retrying batches -------------------------------------------------- */

/* With retries, a batch whose first record names the next sequence and
 * whose second lets the producer assign one appends both (as it does
 * without retries): the assigned one is the sequence after. */
static void
test_idem_edge_retrying_batch_mixes_explicit_and_assigned(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	for (int retries = 0; retries <= 1; retries++) {
		shmq_producer_t *p = th_idem_producer(
		    q, "t", NULL, SHMQ_ACKS_LEADER, -1, retries);
		uint32_t next;
		TH_OK(shmq_producer_next_sequence(p, 0, &next));
		uint64_t end = th_end_offset(q, "t", 0);
		shmq_msg_t b[2] = { msg_seq(0, next), msg_to(0) };
		CU_ASSERT_EQUAL(shmq_send_batch(p, b, 2), 2);
		CU_ASSERT_EQUAL(b[1].sequence, next + 1);
		CU_ASSERT_EQUAL(b[1].flags & SHMQ_MSG_DUPLICATE, 0);
		CU_ASSERT_EQUAL(b[1].offset, end + 1);
		CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end + 2);
		shmq_producer_close(p);
	}
	th_destroy(q);
}

/* ---- repeats and durability ------------------------------------------ */

/* acks DURABLE: a record appended behind another producer's open
 * reservation is neither visible nor on disk, so its send times out.
 * Sending its sequence again must not report it durable while it is
 * not: it times out again, and succeeds (the original offset) once
 * the reservation is settled and the record persisted. */
static void
test_idem_edge_repeat_of_invisible_record_waits_for_durable(void)
{
	shmq_t *q = th_attach();
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	pid_t ps = th_start_persister(q);
	shmq_producer_t *plain = th_producer(q, "t");
	shmq_slice_t s;
	TH_OK(shmq_reserve(plain, 0, 0, 8, &s));
	shmq_producer_t *p =
	    th_idem_producer(q, "t", "d", SHMQ_ACKS_DURABLE, 200, 0);
	shmq_msg_t m = msg_to(0);
	TH_FAIL(shmq_send(p, &m), -ETIMEDOUT);
	CU_ASSERT_EQUAL(m.offset, 1);
	uint32_t seq = m.sequence;
	m = msg_seq(0, seq);
	int rc = shmq_send(p, &m);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	if (rc == 0) {
		/* Only acceptable if the record really is on disk. */
		CU_ASSERT(pi.durable >= 2);
	} else {
		TH_FAIL(rc, -ETIMEDOUT);
	}
	TH_OK(shmq_abort(plain, &s));
	m = msg_seq(0, seq);
	TH_OK(shmq_send(p, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, 1);
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT(pi.durable >= 2);
	CU_ASSERT_EQUAL(pi.end, 2);
	shmq_producer_close(p);
	shmq_producer_close(plain);
	th_stop_persister(q, ps);
	th_destroy(q);
}

/* ---- resume -------------------------------------------------------- */

/* shmq.h: a repeat gets the original offset for the 128 most recent
 * records of the identity in the partition, also after a resume. */
static void
test_idem_edge_window_after_resume_covers_128(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 20, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p =
	    th_idem_producer(q, "t", "w", SHMQ_ACKS_LEADER, -1, 0);
	for (int i = 0; i < 100; i++) {
		shmq_msg_t m = msg_to(0);
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
	p = th_idem_producer(q, "t", "w", SHMQ_ACKS_LEADER, -1, 0);
	shmq_msg_t m = msg_seq(0, 10); /* the 90th most recent */
	TH_OK(shmq_send(p, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, 10);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A reboot loses records that never reached the disk (acks LEADER, no
 * persister ran); the state file on disk still names them.  Once other
 * producers have appended at those offsets, a resend of a lost
 * sequence must not be answered "already appended" (SHMQ_EDUPLICATE,
 * or SHMQ_MSG_DUPLICATE): none of the identity's records is in the
 * log, and the caller would treat the lost record as sent. */
static void
test_idem_edge_resume_ignores_hints_for_lost_records(void)
{
	shmq_t *q = th_attach();
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	shmq_producer_t *p =
	    th_idem_producer(q, "t", "lost", SHMQ_ACKS_LEADER, -1, 0);
	for (int i = 0; i < 10; i++) {
		shmq_msg_t m = msg_to(0);
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
	th_wipe_tmpfs(q); /* the reboot: nothing was on disk */
	shmq_t *q2 = th_reattach(q);
	CU_ASSERT_EQUAL(th_end_offset(q2, "t", 0), 0);
	shmq_producer_t *plain = th_producer(q2, "t");
	for (int i = 0; i < 20; i++) {
		shmq_msg_t m = msg_to(0);
		TH_OK(shmq_send(plain, &m));
	}
	shmq_producer_close(plain);
	p = th_idem_producer(q2, "t", "lost", SHMQ_ACKS_LEADER, -1, 0);
	shmq_msg_t m = msg_seq(0, 3);
	int rc = shmq_send(p, &m);
	CU_ASSERT(rc != SHMQ_EDUPLICATE);
	CU_ASSERT_EQUAL(m.flags & SHMQ_MSG_DUPLICATE, 0);
	shmq_producer_close(p);
	shmq_detach(q2);
	th_destroy(q);
}

/* ---- sequences running out ------------------------------------------ */

/* (producer_id, sequence) names a record uniquely (shmq.h, struct
 * shmq_record): once a partition's sequence UINT32_MAX is used, a fresh
 * send must not start again at 0.  The identity's record with sequence
 * UINT32_MAX - 1 is forged into the log (the sequence a long-lived
 * producer reaches) and found by the resume scan. */
static void
test_idem_edge_sequence_never_wraps_to_reuse(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p =
	    th_idem_producer(q, "t", "wrap", SHMQ_ACKS_LEADER, -1, 0);
	uint64_t pid;
	TH_OK(shmq_producer_identity(p, &pid, NULL));
	shmq_msg_t m = msg_to(0);
	TH_OK(shmq_send(p, &m)); /* sequence 0 */
	shmq_producer_close(p);
	shmq_producer_t *plain = th_producer(q, "t");
	shmq_slice_t s;
	TH_OK(shmq_reserve(plain, 0, 0, 8, &s));
	struct rec_hdr *rh = (struct rec_hdr *)s.value - 1;
	rh->rec_producer_id = pid;
	rh->rec_sequence = UINT32_MAX - 1;
	memset(s.value, 0, 8);
	TH_OK(shmq_commit(plain, &s));
	shmq_producer_close(plain);
	p = th_idem_producer(q, "t", "wrap", SHMQ_ACKS_LEADER, -1, 0);
	uint32_t next;
	TH_OK(shmq_producer_next_sequence(p, 0, &next));
	CU_ASSERT_EQUAL_FATAL(next, UINT32_MAX);
	m = msg_to(0);
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.sequence, UINT32_MAX);
	m = msg_to(0);
	int rc = shmq_send(p, &m);
	if (rc == 0) {
		CU_ASSERT(m.sequence != 0); /* 0 is in the log already */
	}
	/* The last sequence can still be settled by a repeat. */
	m = msg_seq(0, UINT32_MAX);
	TH_OK(shmq_send(p, &m));
	CU_ASSERT(m.flags & SHMQ_MSG_DUPLICATE);
	CU_ASSERT_EQUAL(m.offset, 2);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A resumed identity reads its partition's log back at its first send
 * there.  When that read fails with a retriable error (here: the first
 * file open of the send fails with -EAGAIN, once), a producer without
 * retries returns it with nothing appended, and one with retries tries
 * again and appends the record once, with the next sequence. */
static void
test_idem_edge_failed_read_back_is_retried(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *a =
	    th_idem_producer(q, "t", "w", SHMQ_ACKS_LEADER, -1, 0);
	shmq_msg_t m = msg_to(0);
	TH_OK(shmq_send(a, &m));
	shmq_producer_close(a);
	for (int retries = 0; retries <= 1; retries++) {
		shmq_producer_t *b = th_idem_producer(
		    q, "t", "w", SHMQ_ACKS_LEADER, -1, retries);
		uint64_t end = th_end_offset(q, "t", 0);
		m = msg_to(0);
		shmqi_fault_set(1, -EAGAIN, false);
		int rc = shmq_send(b, &m);
		shmqi_fault_set(0, 0, false);
		if (retries == 0) {
			TH_FAIL(rc, -EAGAIN);
			CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end);
		} else {
			TH_OK(rc);
			CU_ASSERT_EQUAL(m.offset, end);
			CU_ASSERT_EQUAL(m.sequence, 1);
			CU_ASSERT_EQUAL(m.flags, 0);
			CU_ASSERT_EQUAL(th_end_offset(q, "t", 0), end + 1);
		}
		shmq_producer_close(b);
	}
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "idem_edge_named_producer_survives_topic_growth",
	    test_idem_edge_named_producer_survives_topic_growth },
	{ "idem_edge_retrying_batch_mixes_explicit_and_assigned",
	    test_idem_edge_retrying_batch_mixes_explicit_and_assigned },
	{ "idem_edge_repeat_of_invisible_record_waits_for_durable",
	    test_idem_edge_repeat_of_invisible_record_waits_for_durable },
	{ "idem_edge_window_after_resume_covers_128",
	    test_idem_edge_window_after_resume_covers_128 },
	{ "idem_edge_resume_ignores_hints_for_lost_records",
	    test_idem_edge_resume_ignores_hints_for_lost_records },
	{ "idem_edge_sequence_never_wraps_to_reuse",
	    test_idem_edge_sequence_never_wraps_to_reuse },
	{ "idem_edge_failed_read_back_is_retried",
	    test_idem_edge_failed_read_back_is_retried },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_idem_edges = { "idem_edges", tests };
