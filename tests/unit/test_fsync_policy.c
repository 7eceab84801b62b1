/*
 * test_fsync_policy.c — what a DURABLE ack means under each fsync
 * policy, as shmq.h (enum shmq_fsync) and ARCHITECTURE.md §7 say:
 *
 *  - always and never: the durable watermark moves as soon as the write
 *    is done; under never nothing is flushed for it.
 *  - interval: the records are written to the segment at once, but the
 *    watermark (and so a DURABLE ack) moves only with the flush, which
 *    comes fsync_interval_ms after the previous one.
 *  - never and interval: a kill -9 of the persister right after DURABLE
 *    acks loses none of them.  The files are read back before any new
 *    persister runs (it would write again what the ring still holds).
 *    What is in the page cache belongs to the kernel, not to the dead
 *    process; a power loss, which would lose it, is not simulated here.
 *
 * Segments are read straight from the files, record by record (length,
 * type, contiguous offsets, CRC-32C), with no library reader in between.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

static void
topic_with(shmq_t *q, const char *name, int fsync, uint32_t interval_ms)
{
	shmq_topic_config_t c;
	th_persistent_config(&c, fsync);
	c.fsync_interval_ms = interval_ms;
	TH_OK(shmq_topic_create(q, name, &c));
}

struct child {
	char home[SHMQ_DIR_MAX];
	int poll_ms;
};

static int
persister_main(void *arg)
{
	const struct child *ch = arg;
	shmq_t *q = th_attach_home(ch->home);
	shmq_persister_t *ps = NULL;
	if (q == NULL || shmq_persister_open(q, NULL, NULL, NULL, &ps) != 0) {
		return 2;
	}
	for (;;) {
		if (shmq_persister_poll(ps, ch->poll_ms) < 0) {
			return 3;
		}
	}
}

static pid_t
start_persister(shmq_t *q, struct child *ch, int poll_ms)
{
	snprintf(ch->home, sizeof ch->home, "%s", shmq_home(q));
	ch->poll_ms = poll_ms;
	pid_t pid = th_fork(persister_main, ch);
	int64_t deadline = th_mono_ms() + 5000;
	while (
	    shmq_persister_running(q, NULL) != 1 && th_mono_ms() < deadline) {
		sched_yield();
	}
	CU_ASSERT(shmq_persister_running(q, NULL) == 1);
	return pid;
}

static void
kill_persister(shmq_t *q, pid_t pid)
{
	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(th_wait(pid), 128 + SIGKILL);
	CU_ASSERT_EQUAL(shmq_persister_running(q, NULL), 0); /* reaped */
}

/*
 * Rounds of: a persister in a child, a DURABLE producer sending batches
 * of 1..64 records (8-byte ids), and a kill -9 of the persister after a
 * random batch, the producer going on until its sends fail.  Right
 * after each kill, with no persister running, every id acknowledged so
 * far must be in the segment files: in order, once, with valid CRCs.
 */
static void
kill9_after_durable_acks(int fsync, uint32_t interval_ms)
{
	unsigned seed = th_seed("fsync policy kills");
	unsigned rounds = th_soak(3);
	shmq_t *q = th_attach();
	topic_with(q, "t", fsync, interval_ms);
	uint8_t *acked = calloc(1u << 20, 1);
	uint64_t id = 0, nacked = 0;
	shmq_msg_t m[64];
	uint64_t v[64];

	for (unsigned round = 0; round < rounds; round++) {
		struct child ch;
		/* Poll no longer than the interval: acks then come about
		 * one interval apart, not one poll. */
		pid_t pid = start_persister(
		    q, &ch, interval_ms ? (int)interval_ms : 100);
		shmq_producer_t *p =
		    th_producer_opts(q, "t", SHMQ_ACKS_DURABLE, 5000);
		unsigned kill_at = 10 + (unsigned)rand_r(&seed) % 30;
		bool alive = true;
		for (unsigned b = 0; b < 1000; b++) {
			size_t n = 1 + (size_t)rand_r(&seed) % 64;
			for (size_t k = 0; k < n; k++) {
				v[k] = id++;
				m[k] = (shmq_msg_t) { .value = &v[k],
					.value_len = 8,
					.partition = 0 };
			}
			ssize_t got = shmq_send_batch(p, m, n);
			for (ssize_t k = 0; k < got; k++) {
				acked[v[k]] = 1;
				nacked++;
			}
			if (got != (ssize_t)n) {
				/* Only the persister's death fails a send. */
				CU_ASSERT(!alive);
				break;
			}
			if (b == kill_at) {
				kill_persister(q, pid);
				alive = false;
			}
		}
		CU_ASSERT(!alive);
		if (alive) {
			kill_persister(q, pid);
		}
		shmq_producer_close(p);

		struct th_disk d;
		th_disk_read(q, "t", &d);
		CU_ASSERT(!d.bad);
		uint64_t found = 0;
		for (size_t i = 0; i < d.n; i++) {
			CU_ASSERT(i == 0 || d.ids[i] > d.ids[i - 1]);
			found += d.ids[i] < id && acked[d.ids[i]];
		}
		CU_ASSERT_EQUAL(found, nacked); /* none lost */
		if (found != nacked) {
			fprintf(stderr,
			    "round %u: %llu of %llu acked on disk\n", round,
			    (unsigned long long)found,
			    (unsigned long long)nacked);
		}
		th_disk_free(&d);
		CU_ASSERT(id < (1u << 20));
		if (id >= (1u << 20)) {
			break;
		}
	}
	fprintf(stderr, "[%llu acked] ", (unsigned long long)nacked);
	CU_ASSERT(nacked > 0);
	free(acked);
	th_destroy(q);
}

static void
test_fsync_never_kill9_after_durable_acks_loses_none(void)
{
	kill9_after_durable_acks(SHMQ_FSYNC_NEVER, 0);
}

static void
test_fsync_interval_kill9_after_durable_acks_loses_none(void)
{
	kill9_after_durable_acks(SHMQ_FSYNC_INTERVAL, 5);
}

/* Send n records (ids 0..n-1) with acks LEADER. */
static void
send_ids(shmq_t *q, uint64_t n)
{
	shmq_producer_t *p = th_producer(q, "t");
	for (uint64_t v = 0; v < n; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
}

static void
expect_ids_on_disk(shmq_t *q, uint64_t n)
{
	struct th_disk d;
	th_disk_read(q, "t", &d);
	CU_ASSERT(!d.bad);
	CU_ASSERT_EQUAL(d.torn, 0);
	CU_ASSERT_EQUAL(d.n, n);
	for (size_t i = 0; i < d.n && i < n; i++) {
		CU_ASSERT_EQUAL(d.ids[i], i);
	}
	/* shmq_partition_info counts the same files and bytes. */
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.segments, d.files);
	CU_ASSERT_EQUAL(pi.segment_bytes, d.bytes);
	th_disk_free(&d);
}

static uint64_t
durable(shmq_t *q)
{
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	return pi.durable;
}

/* always and never: one round writes the records, and the watermark is
 * past them when it returns. */
static void
test_fsync_always_and_never_move_the_watermark_with_the_write(void)
{
	static const int policies[] = { SHMQ_FSYNC_ALWAYS, SHMQ_FSYNC_NEVER };
	for (size_t i = 0; i < 2; i++) {
		shmq_t *q = th_attach();
		shmq_persister_t *ps = NULL;
		topic_with(q, "t", policies[i], 0);
		TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
		send_ids(q, 100);
		CU_ASSERT_EQUAL(durable(q), 0);
		CU_ASSERT(shmq_persister_poll(ps, 0) == 100);
		CU_ASSERT_EQUAL(durable(q), 100);
		expect_ids_on_disk(q, 100);
		shmq_persister_close(ps);
		th_destroy(q);
	}
}

/* interval: the round writes the records to the file at once, but the
 * watermark waits for the flush, one interval after the last one (the
 * persister's start flushes).  Times are bounds: t0 is taken before the
 * start, so no flush can come before t0 + interval. */
static void
test_fsync_interval_moves_the_watermark_at_the_flush(void)
{
	const uint32_t interval = 1500;
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	topic_with(q, "t", SHMQ_FSYNC_INTERVAL, interval);
	send_ids(q, 100);
	int64_t t0 = th_mono_ms();
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	(void)shmq_persister_poll(ps, 0);
	int64_t t1 = th_mono_ms();
	expect_ids_on_disk(q, 100); /* in the file already */
	if (t1 - t0 < interval) {
		CU_ASSERT_EQUAL(durable(q), 0); /* but not acknowledged */
	} else {
		fprintf(stderr,
		    "[slow: %lld ms, not checked before the "
		    "flush] ",
		    (long long)(t1 - t0));
	}
	int64_t deadline = t0 + interval + 10000;
	while (durable(q) < 100 && th_mono_ms() < deadline) {
		(void)shmq_persister_poll(ps, 50);
	}
	int64_t t2 = th_mono_ms();
	CU_ASSERT_EQUAL(durable(q), 100);
	CU_ASSERT(t2 - t0 >= interval);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* interval: a DURABLE send returns only once the flush has been made,
 * at least one interval after the persister started. */
static void
test_fsync_interval_durable_send_waits_for_the_flush(void)
{
	const uint32_t interval = 1000;
	shmq_t *q = th_attach();
	struct child ch;
	topic_with(q, "t", SHMQ_FSYNC_INTERVAL, interval);
	int64_t t0 = th_mono_ms();
	pid_t pid = start_persister(q, &ch, 100);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_DURABLE, -1);
	uint64_t v = 0;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	int rc = shmq_send(p, &m);
	int64_t t1 = th_mono_ms();
	TH_FAIL(rc, 0);
	CU_ASSERT(t1 - t0 >= interval);
	CU_ASSERT(t1 - t0 < interval + 10000);
	CU_ASSERT_EQUAL(durable(q), 1);
	kill_persister(q, pid);
	expect_ids_on_disk(q, 1);
	shmq_producer_close(p);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_fsync_always_and_never_move_the_watermark_with_the_write",
	    test_fsync_always_and_never_move_the_watermark_with_the_write },
	{ "test_fsync_interval_moves_the_watermark_at_the_flush",
	    test_fsync_interval_moves_the_watermark_at_the_flush },
	{ "test_fsync_interval_durable_send_waits_for_the_flush",
	    test_fsync_interval_durable_send_waits_for_the_flush },
	{ "test_fsync_never_kill9_after_durable_acks_loses_none",
	    test_fsync_never_kill9_after_durable_acks_loses_none },
	{ "test_fsync_interval_kill9_after_durable_acks_loses_none",
	    test_fsync_interval_kill9_after_durable_acks_loses_none },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_fsync_policy = { "fsync_policy", tests };
