/*
 * test_ring.c — ring edges: padding at the end, exact fit, zero-length
 * and largest records, a ring full of incomplete records, batches split
 * at half a ring, and the committed watermark held by an earlier
 * reservation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

static int
send_value(shmq_producer_t *p, const void *v, size_t n, uint64_t *off)
{
	shmq_msg_t m = { .value = v, .value_len = n, .partition = 0 };
	int rc = shmq_send(p, &m);
	if (off != NULL) {
		*off = m.offset;
	}
	return rc;
}

/* Walk the ring's headers: no record crosses the end; count pads. */
static unsigned
check_layout(shmq_t *q, const char *t)
{
	struct topic_meta m;
	struct ring r;
	unsigned pads = 0;
	TH_OK(shmqi_topic_load(q, t, &m));
	TH_OK(shmqi_ring_open(q, t, &m, 0, &r));
	uint64_t p = atomic_load(&r.hdr->hdr_start_pos);
	uint64_t e = atomic_load(&r.hdr->hdr_end_pos);
	while (p < e) {
		struct rec_hdr *h = shmqi_rec_at(&r, p);
		uint32_t len = atomic_load(&h->rec_len);
		uint64_t ext = h->rec_type == REC_PAD
		    ? len
		    : shmqi_align8(len & REC_LEN_MASK);
		CU_ASSERT_FATAL(ext >= 8);
		CU_ASSERT((p & r.mask) + ext <= r.cap);
		pads += h->rec_type == REC_PAD;
		p += ext;
	}
	CU_ASSERT_EQUAL(p, e);
	shmqi_ring_close(&r);
	return pads;
}

static void
test_ring_pads_a_record_that_would_cross_the_end(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	char v[1000], buf[2048];
	shmq_record_t r;
	/* 1000 + 56 = 1056 bytes: 62 fit in 64 KiB, 64 bytes left over. */
	for (unsigned i = 0; i < 200; i++) {
		memset(v, (int)(i & 0xff), sizeof v);
		TH_OK(send_value(p, v, sizeof v, NULL));
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, i);
		CU_ASSERT_EQUAL(r.value_len, sizeof v);
		CU_ASSERT_EQUAL(((unsigned char *)r.value)[999], i & 0xff);
	}
	CU_ASSERT(check_layout(q, "t") >= 1);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_ring_exact_fit_needs_no_pad(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	/* 1024-byte extents divide 64 KiB exactly: three laps, no pad. */
	char v[1024 - SHMQ_RECORD_OVERHEAD];
	memset(v, 'x', sizeof v);
	for (unsigned i = 0; i < 3 * RING / 1024; i++) {
		TH_OK(send_value(p, v, sizeof v, NULL));
	}
	CU_ASSERT_EQUAL(check_layout(q, "t"), 0);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.end, 3 * RING / 1024);
	/* The last reservation also cleared the first REC_PEEK bytes after
	 * itself (the clear-ahead slot), which retired one more record. */
	CU_ASSERT_EQUAL(pi.ring_used, RING - 1024);
	CU_ASSERT_EQUAL(pi.log_start, 2 * RING / 1024 + 1);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_ring_carries_zero_length_records(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_msg_t m = { .partition = 0 };
	shmq_record_t r;
	TH_OK(shmq_send(p, &m));
	TH_OK(shmq_recv(c, NULL, 0, &r, 0));
	CU_ASSERT_EQUAL(r.key_len, 0);
	CU_ASSERT_EQUAL(r.value_len, 0);
	CU_ASSERT_EQUAL(r.offset, 0);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_ring_takes_the_largest_record_and_refuses_one_byte_more(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	size_t max = RING / SHMQ_RECORD_FRACTION - SHMQ_RECORD_OVERHEAD;
	char *v = malloc(max + 1), *buf = malloc(max);
	memset(v, 'y', max + 1);
	shmq_record_t r;
	for (int lap = 0; lap < 10; lap++) {
		TH_OK(send_value(p, v, max, NULL));
		TH_OK(shmq_recv(c, buf, max, &r, 0));
		CU_ASSERT_EQUAL(r.value_len, max);
	}
	TH_FAIL(send_value(p, v, max + 1, NULL), -EMSGSIZE);
	free(v);
	free(buf);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_ring_never_overwrites_an_incomplete_record(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *holder = th_producer_opts(q, "t", SHMQ_ACKS_NONE, -1);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_NONE, 100);
	shmq_slice_t s;
	char v[1000] = { 0 };
	TH_OK(shmq_reserve(holder, 0, 0, 8, &s));
	/* Even on a drop topic, the ring cannot lap a live reservation:
	 * after less than one ring's worth the sender times out. */
	int rc = 0;
	unsigned sent = 0;
	while (rc == 0 && sent < 1000) {
		rc = send_value(p, v, sizeof v, NULL);
		sent += rc == 0;
	}
	TH_FAIL(rc, -EAGAIN);
	CU_ASSERT(sent < RING / 1000);
	memcpy(s.value, "complete", 8);
	TH_OK(shmq_commit(holder, &s));
	TH_OK(send_value(p, v, sizeof v, NULL));
	shmq_producer_close(p);
	shmq_producer_close(holder);
	th_destroy(q);
}

static void
test_ring_splits_a_batch_larger_than_half_the_ring(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	shmq_msg_t m[60];
	char v[1000];
	memset(v, 'b', sizeof v);
	for (int i = 0; i < 60; i++) {
		m[i] = (shmq_msg_t) {
			.value = v, .value_len = sizeof v, .partition = 0
		};
	}
	CU_ASSERT_EQUAL(shmq_send_batch(p, m, 60), 60);
	for (int i = 0; i < 60; i++) {
		CU_ASSERT_EQUAL(m[i].offset, (uint64_t)i);
	}
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_ring_hides_records_behind_an_open_reservation(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *holder =
	    th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_NONE, -1);
	shmq_producer_t *lp = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 50);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_slice_t s;
	shmq_record_t r;
	char buf[64];
	uint64_t off;

	TH_OK(shmq_reserve(holder, 0, 0, 1, &s));
	CU_ASSERT_EQUAL(s.offset, 0);
	TH_OK(send_value(p, "b", 1, &off)); /* acks NONE: returns */
	CU_ASSERT_EQUAL(off, 1);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	/* acks LEADER waits for visibility, which offset 0 blocks; after
	 * its timeout it reports success all the same, because the record
	 * is appended: an error would invite a retry, i.e. a duplicate. */
	TH_OK(send_value(lp, "c", 1, &off));
	CU_ASSERT_EQUAL(off, 2);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	memcpy(s.value, "a", 1);
	TH_OK(shmq_commit(holder, &s));
	for (unsigned i = 0; i < 3; i++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, i);
		CU_ASSERT_EQUAL(((char *)r.value)[0], "abc"[i]);
	}
	shmq_consumer_close(c);
	shmq_producer_close(lp);
	shmq_producer_close(p);
	shmq_producer_close(holder);
	th_destroy(q);
}

/* Regression: a header 16 bytes before the end of the data area used
 * to be trusted, and reading its offset touched the first byte past the
 * mapping (SIGSEGV).  Now it is corrupt input: an error, never a read
 * out of bounds. */
static void
test_ring_rejects_a_header_that_crosses_the_end(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	struct topic_meta m;
	struct ring r;
	TH_OK(shmqi_topic_load(q, "t", &m));
	TH_OK(shmqi_ring_open(q, "t", &m, 0, &r));
	uint64_t at = RING - 16;
	struct rec_hdr *h = shmqi_rec_at(&r, at);
	h->rec_type = REC_DATA;
	atomic_store(&h->rec_len, 64);
	atomic_store(&r.hdr->hdr_start_pos, at);
	atomic_store(&r.hdr->hdr_start_off, 0);
	atomic_store(&r.hdr->hdr_end_pos, at + 64);
	atomic_store(&r.hdr->hdr_committed_pos, at + 64);
	atomic_store(&r.hdr->hdr_wrap_pos, at + 64);
	atomic_store(&r.hdr->hdr_end_off, 1);

	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_record_t rec;
	char buf[128];
	int rc = shmq_recv(c, buf, sizeof buf, &rec, 0);
	CU_ASSERT(rc == -EAGAIN || rc == SHMQ_ECORRUPT);
	uint64_t off;
	CU_ASSERT(shmq_offset_for_time(q, "t", 0, 0, &off) <= 0);
	/* The producer's next reservation walks over it too. */
	rc = send_value(p, "x", 1, NULL);
	CU_ASSERT(rc == 0 || rc == SHMQ_ECORRUPT || rc == SHMQ_EFAILED);
	shmqi_ring_close(&r);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_ring_rejects_a_header_that_crosses_the_end",
	    test_ring_rejects_a_header_that_crosses_the_end },
	{ "test_ring_pads_a_record_that_would_cross_the_end",
	    test_ring_pads_a_record_that_would_cross_the_end },
	{ "test_ring_exact_fit_needs_no_pad",
	    test_ring_exact_fit_needs_no_pad },
	{ "test_ring_carries_zero_length_records",
	    test_ring_carries_zero_length_records },
	{ "test_ring_takes_the_largest_record_and_refuses_one_byte_more",
	    test_ring_takes_the_largest_record_and_refuses_one_byte_more },
	{ "test_ring_never_overwrites_an_incomplete_record",
	    test_ring_never_overwrites_an_incomplete_record },
	{ "test_ring_splits_a_batch_larger_than_half_the_ring",
	    test_ring_splits_a_batch_larger_than_half_the_ring },
	{ "test_ring_hides_records_behind_an_open_reservation",
	    test_ring_hides_records_behind_an_open_reservation },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_ring = { "ring", tests };
