/*
 * test_deadwriter.c — what a producer killed inside the reservation lock
 * leaves behind, for the code that jumps by the sparse index.
 *
 * A producer killed after writing its headers and index entries, but
 * before publishing end_pos, leaves entries behind: after repair the
 * offsets are handed out again, and if the next record does not fit
 * before the ring's end, a PAD covers the dead headers without clearing
 * them.  Until the offset is handed out again (up to 63 records later),
 * the index entry points into the PAD's interior at a header that
 * carries the right offset.  Neither the retire walk (retire_skip) nor
 * a seek (shmqi_ring_locate) may start from there.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

struct dead_writer {
	char home[4096];
};

/* Reserve 50 empty records (offsets 15..64: 64 is an index stride) at
 * the end of the ring, then die inside the lock before publishing them,
 * as a producer killed in the header-writing loop of shmqi_ring_reserve
 * does. */
static int
die_mid_reserve(void *arg)
{
	struct dead_writer *dw = arg;
	shmq_t *q = NULL;
	struct topic_meta m;
	struct ring r;
	struct rsv_item it[50];
	uint64_t first;

	if (shmq_attach(dw->home, NULL, &q) != 0 ||
	    shmqi_topic_load(q, "t", &m) != 0 ||
	    shmqi_ring_open(q, "t", &m, 0, &r) != 0 ||
	    shmqi_ring_lock(&r) != 0) {
		return 2;
	}
	uint64_t e = atomic_load(&r.hdr->hdr_end_pos);
	uint64_t off = atomic_load(&r.hdr->hdr_end_off);
	memset(it, 0, sizeof it);
	if (shmqi_ring_reserve(&r, it, 50, &first) != 0) {
		return 3;
	}
	/* The stores of end_pos and end_off never happened. */
	atomic_store(&r.hdr->hdr_end_pos, e);
	atomic_store(&r.hdr->hdr_end_off, off);
	_exit(0); /* holding the robust mutex: the next locker repairs */
}

static char v[8192]; /* record values */

/* 15 records of 4096 bytes (end_pos 61440, end_off 15), then a writer
 * that dies inside the lock (die_mid_reserve). */
static shmq_t *
ring_with_a_dead_writer(shmq_producer_t **pp)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, -1);
	memset(v, 'v', sizeof v);
	for (unsigned i = 0; i < 15; i++) {
		shmq_msg_t m = { .value = v,
			.value_len = 4096 - SHMQ_RECORD_OVERHEAD,
			.partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	struct dead_writer *dw = th_shared(sizeof *dw);
	snprintf(dw->home, sizeof dw->home, "%s", shmq_home(q));
	CU_ASSERT_EQUAL_FATAL(th_wait(th_fork(die_mid_reserve, dw)), 0);
	th_unshared(dw, sizeof *dw);
	*pp = p;
	return q;
}

static void
test_retire_after_a_writer_died_inside_the_lock(void)
{
	shmq_producer_t *p = NULL;
	shmq_t *q = ring_with_a_dead_writer(&p);

	/* 8192-byte records: the first does not fit in the 4096 bytes
	 * left, so a PAD covers the dead headers; offset 64 is not handed
	 * out again for 49 more records, but the PAD is retired after 8. */
	for (unsigned i = 0; i < 12; i++) {
		shmq_msg_t m = { .value = v,
			.value_len = 8192 - SHMQ_RECORD_OVERHEAD,
			.partition = 0 };
		int rc = shmq_send(p, &m);
		if (rc != 0) {
			fprintf(stderr, "send %u: %d (%s)\n", i, rc,
			    shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT_EQUAL(m.offset, 15 + i);
	}
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT(pi.log_start <= pi.end);

	/* Everything still in the ring reads back in order. */
	shmq_consumer_t *c = th_reader(q, "t", 0);
	static char buf[16384];
	shmq_record_t r;
	uint64_t want = pi.log_start;
	int rc;
	while ((rc = shmq_recv(c, buf, sizeof buf, &r, 0)) == 0) {
		CU_ASSERT_EQUAL(r.offset, want);
		want = r.offset + 1;
	}
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT_EQUAL(want, 27);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* The same stale entry, seen by a reader (shmqi_ring_locate had the
 * bug before retire_skip existed).  Offsets 16..63 go out as small records
 * while the PAD is still live; a reader that seeks to 64, the end of the log,
 * is sent by the index to the dead header inside the PAD. */
static void
test_seek_to_the_end_after_a_writer_died_inside_the_lock(void)
{
	shmq_producer_t *p = NULL;
	shmq_t *q = ring_with_a_dead_writer(&p);
	shmq_msg_t big = { .value = v,
		.value_len = 8192 - SHMQ_RECORD_OVERHEAD,
		.partition = 0 };
	TH_OK(shmq_send(p, &big)); /* PAD over the dead headers */
	for (unsigned i = 16; i < 64; i++) {
		shmq_msg_t m = { .partition = 0 };
		TH_OK(shmq_send(p, &m));
		CU_ASSERT_EQUAL(m.offset, i);
	}
	shmq_consumer_t *c = th_reader(q, "t", 0);
	TH_OK(shmq_seek(c, 0, 64));
	shmq_record_t r;
	static char buf[16384];
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	shmq_msg_t m = { .value = "x", .value_len = 1, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 64);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "retire_after_a_writer_died_inside_the_lock",
	    test_retire_after_a_writer_died_inside_the_lock },
	{ "seek_to_the_end_after_a_writer_died_inside_the_lock",
	    test_seek_to_the_end_after_a_writer_died_inside_the_lock },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_deadwriter = { "deadwriter", tests };
