/*
 * test_contract.c — promises of shmq.h that a code review found broken
 * (issue 2, review of the core), one test each, named after the promise.
 * Every test here failed before its fix.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

static shmq_consumer_t *
g_member(shmq_t *q, const char *topic)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = "g";
	TH_OK(shmq_consumer_open(q, topic, &o, &c));
	return c;
}

static int
send_byte(shmq_producer_t *p, char v, size_t len)
{
	char buf[1000];
	memset(buf, v, sizeof buf);
	shmq_msg_t m = { .value = buf, .value_len = len, .partition = 0 };
	return shmq_send(p, &m);
}

/* A member that seeks back below its committed offset reads records
 * producers may overwrite: it must be lap-checked (ELAPPED), never fail
 * the partition with torn data. */
static void
test_contract_member_reading_below_its_gate_is_lap_checked(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = g_member(q, "t");
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 0);
	char buf[2000];
	shmq_record_t r;
	int sent = 0;
	while (send_byte(p, (char)('A' + sent % 26), 1000) == 0) {
		sent++;
	}
	while (shmq_recv(c, buf, sizeof buf, &r, 0) == 0) {
	}
	TH_OK(shmq_consumer_commit(c));
	TH_OK(shmq_seek_to(c, 0, SHMQ_SEEK_BEGINNING));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	for (int i = 0; i < 20; i++) {
		TH_OK(send_byte(p, (char)('a' + i), 1000));
	}
	for (int i = 0; i < 40; i++) {
		int rc = shmq_recv(c, buf, sizeof buf, &r, 0);
		if (rc == SHMQ_ELAPPED || rc == -EAGAIN) {
			continue;
		}
		TH_OK(rc);
		/* What is returned is intact: its bytes match its offset. */
		char want = r.offset < (uint64_t)sent
		    ? (char)('A' + r.offset % 26)
		    : (char)('a' + (r.offset - (uint64_t)sent));
		CU_ASSERT_EQUAL(buf[0], want);
		CU_ASSERT_EQUAL(buf[999], want);
	}
	TH_OK(send_byte(p, 'z', 10)); /* the partition did not fail */
	shmq_producer_close(p);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* A view stays valid until shmq_release, even across a commit. */
static void
test_contract_commit_while_borrowing_keeps_the_view(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = g_member(q, "t");
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 0);
	shmq_record_t r;
	char buf[2000];
	for (int i = 0; i < 5; i++) {
		TH_OK(send_byte(p, 'A', 1000));
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	}
	TH_OK(send_byte(p, 'B', 1000));
	TH_OK(shmq_peek(c, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 5);
	TH_OK(shmq_consumer_commit(c));
	int more = 0;
	while (send_byte(p, 'Z', 1000) == 0) {
		more++;
	}
	const char *v = r.value;
	CU_ASSERT_EQUAL(v[0], 'B');
	CU_ASSERT_EQUAL(v[999], 'B');
	TH_OK(shmq_release(c, &r));
	TH_OK(send_byte(p, 'Y', 1000)); /* released: the gate moved on */
	CU_ASSERT(more < (int)(RING / 1000));
	shmq_producer_close(p);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* A send that fails appended nothing: a batch whose commit is refused
 * part-way reports what it did append and leaves nothing reserved. */
static int stall_calls;

static void
stall_second_commit(int point)
{
	/* A simulated stall (a fault injected into the producer), longer
	 * than stall_ms, so that a waiting reader reclaims the record. */
	if (point == POINT_BEFORE_COMMIT && ++stall_calls == 2) {
		usleep(700 * 1000);
	}
}

static volatile int reader_stop;

static void *
waiting_reader(void *arg)
{
	shmq_consumer_t *c = arg;
	shmq_record_t r;
	char buf[16];
	while (!reader_stop) {
		(void)shmq_recv(c, buf, sizeof buf, &r, 50);
	}
	return NULL;
}

static void
test_contract_batch_refused_part_way_leaves_nothing_reserved(void)
{
	shmq_t *q0 = th_attach();
	shmq_t *q = th_attach_opts(shmq_home(q0), 50, 300);
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_msg_t m[10];
	for (int i = 0; i < 10; i++) {
		m[i] = (shmq_msg_t) {
			.value = "x", .value_len = 1, .partition = 0
		};
	}
	pthread_t th;
	reader_stop = 0;
	stall_calls = 0;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, waiting_reader, c) == 0);
	shmqi_test_hook = stall_second_commit;
	ssize_t n = shmq_send_batch(p, m, 10);
	shmqi_test_hook = NULL;
	CU_ASSERT_EQUAL(n, 1);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.committed, pi.end); /* nothing left reserved */
	CU_ASSERT_EQUAL(pi.aborted, 9);
	reader_stop = 1;
	pthread_join(th, NULL);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_detach(q);
	th_destroy(q0);
}

/* A failed exclusive open must not clear the live exclusive writer's
 * mark: when that writer dies mid-update, the next one repairs. */
static void
die_published(int point)
{
	if (point == POINT_RESERVE_PUBLISHED) {
		raise(SIGKILL);
	}
}

struct excl_arg {
	char home[SHMQ_DIR_MAX];
	int ready[2], go[2];
};

static int
exclusive_writer(void *arg)
{
	struct excl_arg *a = arg;
	shmq_producer_options_t po;
	shmq_producer_t *x = NULL;
	shmq_t *q = th_attach_home(a->home);
	char b = 1;
	shmq_producer_options_init(&po);
	po.flags = SHMQ_PRODUCER_EXCLUSIVE;
	if (q == NULL || shmq_producer_open(q, "t", &po, &x) != 0 ||
	    send_byte(x, 'f', 5) != 0 || write(a->ready[1], &b, 1) != 1 ||
	    read(a->go[0], &b, 1) != 1) {
		return 2;
	}
	shmqi_test_hook = die_published;
	(void)send_byte(x, 'd', 5);
	return 3;
}

static void
test_contract_failed_exclusive_open_keeps_the_writers_mark(void)
{
	shmq_t *q = th_attach();
	struct excl_arg a;
	shmq_producer_options_t po;
	shmq_producer_t *y = NULL;
	char b = 1;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	snprintf(a.home, sizeof a.home, "%s", shmq_home(q));
	CU_ASSERT_FATAL(pipe(a.ready) == 0 && pipe(a.go) == 0);
	pid_t pid = th_fork(exclusive_writer, &a);
	CU_ASSERT_EQUAL(read(a.ready[0], &b, 1), 1);
	shmq_producer_options_init(&po);
	po.flags = SHMQ_PRODUCER_EXCLUSIVE;
	TH_FAIL(shmq_producer_open(q, "t", &po, &y), -EBUSY);
	CU_ASSERT_EQUAL(write(a.go[1], &b, 1), 1);
	CU_ASSERT_EQUAL(th_wait(pid), 128 + SIGKILL);
	shmq_producer_t *z = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_msg_t m = { .value = "after", .value_len = 5, .partition = 0 };
	TH_OK(shmq_send(z, &m));
	CU_ASSERT_EQUAL(m.offset, 2); /* offset 1 was the dead writer's */
	shmq_record_t r;
	char buf[64];
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 2);
	shmq_consumer_close(c);
	shmq_producer_close(z);
	for (int i = 0; i < 2; i++) {
		close(a.ready[i]);
		close(a.go[i]);
	}
	th_destroy(q);
}

/* Scribbled watermarks give an error within the timeout, not a loop. */
static int
scribbled_reader(void *arg)
{
	shmq_t *q = th_attach_home(arg);
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	char buf[64];
	uint32_t p0 = 0;
	uint64_t off;
	alarm(10); /* a hang is a failed test, not a stuck run */
	if (q == NULL || shmq_consumer_open(q, "t", NULL, &c) != 0 ||
	    shmq_assign(c, &p0, 1) != 0) {
		return 2;
	}
	int rc = shmq_recv(c, buf, sizeof buf, &r, 100);
	int trc = shmq_offset_for_time(q, "t", 0, 0, &off);
	return rc < 0 && rc != -EAGAIN && trc < 0 ? 0 : 1;
}

static void
test_contract_scribbled_watermark_is_an_error_not_a_loop(void)
{
	shmq_t *q = th_attach();
	struct topic_meta m;
	struct ring r;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	TH_OK(send_byte(p, 'a', 10));
	TH_OK(shmqi_topic_load(q, "t", &m));
	TH_OK(shmqi_ring_open(q, "t", &m, 0, &r));
	struct rec_hdr *h = shmqi_rec_at(&r, 0);
	h->rec_type = REC_PAD;
	atomic_store(&h->rec_len, (uint32_t)RING);
	atomic_store(&r.hdr->hdr_committed_pos, 1ull << 62);
	atomic_store(&r.hdr->hdr_end_pos, 1ull << 62);
	shmqi_ring_close(&r);
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	CU_ASSERT_EQUAL(th_wait(th_fork(scribbled_reader, home)), 0);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A handle's own open slice is alive: never reclaimed as "dead", and
 * a LEADER send behind it returns instead of waiting on itself. */
static void
test_contract_own_open_slice_is_not_reclaimed(void)
{
	shmq_t *q0 = th_attach();
	shmq_t *q = th_attach_opts(shmq_home(q0), 50, 0);
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_slice_t s;
	shmq_record_t r;
	char buf[16];
	TH_OK(shmq_reserve(p, 0, 0, 1, &s));
	TH_OK(send_byte(p, 'b', 1)); /* returns: behind our own slice */
	/* A reader waiting past reclaim_ms must not take the slice. */
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 200), -EAGAIN);
	memcpy(s.value, "a", 1);
	TH_OK(shmq_commit(p, &s));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT_EQUAL(buf[0], 'a');
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 1);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_detach(q);
	th_destroy(q0);
}

/* A group deleted between a consumer's open of its file and its join
 * is not joined: its gates are gone. */
static void
test_contract_deleted_group_cannot_be_joined(void)
{
	shmq_t *q = th_attach();
	struct topic_meta m;
	struct group g;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = g_member(q, "t");
	shmq_consumer_close(c); /* the group exists, with no member */
	TH_OK(shmqi_topic_load(q, "t", &m));
	TH_OK(shmqi_group_open(q, "g", "t", &m, false, &g));
	TH_OK(shmq_group_delete(q, "g", "t"));
	TH_FAIL(shmqi_group_join(&g), SHMQ_EDELETED);
	shmqi_group_close(&g);
	c = g_member(q, "t"); /* a fresh group is made instead */
	uint32_t n = 0;
	TH_OK(shmq_group_members(q, "g", "t", &n));
	CU_ASSERT_EQUAL(n, 1);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* mode 0660 means group-shared files, whatever the umask. */
static void
test_contract_group_mode_survives_the_umask(void)
{
	char tmpl[] = "/tmp/shmq-test-XXXXXX";
	shmq_options_t o;
	shmq_t *q = NULL;
	struct stat st;
	char path[SHMQ_PATH_MAX];
	mode_t old = umask(022);
	CU_ASSERT_FATAL(mkdtemp(tmpl) != NULL);
	shmq_options_init(&o);
	o.mode = 0660;
	CU_ASSERT_FATAL(chmod(tmpl, 0770) == 0);
	TH_OK(shmq_attach(tmpl, &o, &q));
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	snprintf(path, sizeof path, "%s/t.0.ring", shmq_shm_dir(q));
	CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
	CU_ASSERT(
	    stat(shmq_shm_dir(q), &st) == 0 && (st.st_mode & 0777) == 0770);
	snprintf(path, sizeof path, "%s/topics/t.topic", shmq_home(q));
	CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
	umask(old);
	shmq_producer_close(p);
	th_destroy(q);
}

/* Closing a producer aborts its open slices at once. */
static void
test_contract_producer_close_aborts_open_slices(void)
{
	shmq_t *q0 = th_attach();
	shmq_t *q = th_attach_opts(shmq_home(q0), 1000, 10000);
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_slice_t s;
	TH_OK(shmq_reserve(p, 0, 0, 4, &s));
	shmq_producer_close(p);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.aborted, 1);
	CU_ASSERT_EQUAL(pi.committed, pi.end);
	shmq_detach(q);
	th_destroy(q0);
}

/* Garbage between the watermarks (a commit word with an impossible
 * length) fails the partition: before, the watermark stuck there for
 * good and every LEADER send waited out its timeout. */
static void
test_contract_garbage_at_the_watermark_fails_the_partition(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *a = th_producer(q, "t");
	shmq_producer_t *b = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 100);
	shmq_slice_t s;
	TH_OK(shmq_reserve(a, 0, 0, 8, &s));
	struct rec_hdr *h = (struct rec_hdr *)s.value - 1;
	atomic_store(&h->rec_len, REC_ABORTED | 0x078a8a84u);
	(void)send_byte(b, 'x', 8);
	TH_FAIL(send_byte(b, 'y', 8), SHMQ_EFAILED);
	shmq_producer_close(b);
	shmq_producer_close(a);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_contract_garbage_at_the_watermark_fails_the_partition",
	    test_contract_garbage_at_the_watermark_fails_the_partition },
	{ "test_contract_member_reading_below_its_gate_is_lap_checked",
	    test_contract_member_reading_below_its_gate_is_lap_checked },
	{ "test_contract_commit_while_borrowing_keeps_the_view",
	    test_contract_commit_while_borrowing_keeps_the_view },
	{ "test_contract_batch_refused_part_way_leaves_nothing_reserved",
	    test_contract_batch_refused_part_way_leaves_nothing_reserved },
	{ "test_contract_failed_exclusive_open_keeps_the_writers_mark",
	    test_contract_failed_exclusive_open_keeps_the_writers_mark },
	{ "test_contract_scribbled_watermark_is_an_error_not_a_loop",
	    test_contract_scribbled_watermark_is_an_error_not_a_loop },
	{ "test_contract_own_open_slice_is_not_reclaimed",
	    test_contract_own_open_slice_is_not_reclaimed },
	{ "test_contract_deleted_group_cannot_be_joined",
	    test_contract_deleted_group_cannot_be_joined },
	{ "test_contract_group_mode_survives_the_umask",
	    test_contract_group_mode_survives_the_umask },
	{ "test_contract_producer_close_aborts_open_slices",
	    test_contract_producer_close_aborts_open_slices },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_contract = { "contract", tests };
