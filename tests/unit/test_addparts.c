/*
 * test_addparts.c — growing a topic (shmq_topic_add_partitions) under
 * live handles: a producer opened before the growth places keyed records
 * over the new count and writes the new partitions; group members get
 * the new partitions at their next rebalance and read every record
 * exactly once; a running persister persists a new partition; and the
 * metadata write reports success once its rename is done, even if the
 * directory's fsync then fails.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

/* ---- an fsync that fails for directories, on demand ---------------------
 *
 * No fault seam sits between the rename and the directory's fsync in
 * shmqi_write_atomic_at, so this suite interposes fsync itself (libshmq
 * is linked statically into the test binary).  Unarmed it is the plain
 * system call, for every suite. */
static _Atomic int dir_fsync_fails;

int
fsync(int fd)
{
	struct stat st;
	if (atomic_load(&dir_fsync_fails) && fstat(fd, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

static uint32_t
partitions_of(shmq_t *q, const char *topic)
{
	shmq_topic_config_t c;
	shmq_topic_config_init(&c);
	TH_OK(shmq_topic_describe(q, topic, &c));
	return c.partitions;
}

static void
test_addparts_refuses_what_is_not_growth(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 3, RING, SHMQ_OVERFLOW_BLOCK);
	TH_FAIL(shmq_topic_add_partitions(q, "t", 3), -EINVAL);
	TH_FAIL(shmq_topic_add_partitions(q, "t", 2), -EINVAL);
	TH_FAIL(shmq_topic_add_partitions(q, "t", SHMQ_PARTITIONS_MAX + 1),
	    -EINVAL);
	TH_FAIL(shmq_topic_add_partitions(q, "nope", 4), -ENOENT);
	TH_FAIL(shmq_topic_add_partitions(q, "../t", 4), -EINVAL);
	CU_ASSERT_EQUAL(partitions_of(q, "t"), 3);
	TH_OK(shmq_topic_add_partitions(q, "t", 7));
	CU_ASSERT_EQUAL(partitions_of(q, "t"), 7);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 6, &pi));
	TH_FAIL(shmq_partition_info(q, "t", 7, &pi), -EINVAL);
	th_destroy(q);
}

/* A producer opened at 2 partitions sends keyed records after the topic
 * grew to 5: each lands where the partitioner puts it over 5, some on
 * the new partitions, and they are there to read.  The same producer
 * also writes a new partition by number, and its sticky partitioner
 * comes round to the new ones. */
static void
test_addparts_live_producer_hashes_over_the_new_count(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_t po;
	shmq_producer_options_init(&po);
	po.sticky_records = 1; /* the sticky partition moves every record */
	shmq_producer_t *p = NULL;
	TH_OK(shmq_producer_open(q, "t", &po, &p));
	char key[16];
	shmq_msg_t m = { .key = "before",
		.key_len = 6,
		.value = "v",
		.value_len = 1,
		.partition = SHMQ_PARTITION_ANY };
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.partition, shmq_partition_for_key("before", 6, 2));
	m = (shmq_msg_t) { .value = "v", .value_len = 1, .partition = 4 };
	TH_FAIL(shmq_send(p, &m), -EINVAL); /* no partition 4 yet */

	TH_OK(shmq_topic_add_partitions(q, "t", 5));

	uint64_t on[5] = { 0 };
	const int n = 200;
	for (int i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof key, "k%d", i);
		m = (shmq_msg_t) { .key = key,
			.key_len = (size_t)kl,
			.value = &i,
			.value_len = sizeof i,
			.partition = SHMQ_PARTITION_ANY };
		TH_OK(shmq_send(p, &m));
		CU_ASSERT_EQUAL_FATAL(
		    m.partition, shmq_partition_for_key(key, (size_t)kl, 5));
		CU_ASSERT_EQUAL(m.offset,
		    on[m.partition] +
		        (m.partition == shmq_partition_for_key("before", 6, 2)
		                ? 1
		                : 0));
		on[m.partition]++;
	}
	CU_ASSERT(on[2] + on[3] + on[4] > 0);
	/* Read the new partitions back: every keyed record is there. */
	for (uint32_t part = 2; part < 5; part++) {
		shmq_consumer_t *c = th_reader(q, "t", part);
		shmq_record_t r;
		char buf[64];
		for (uint64_t k = 0; k < on[part]; k++) {
			TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
			CU_ASSERT_EQUAL(r.partition, part);
			CU_ASSERT_EQUAL(r.offset, k);
			CU_ASSERT_EQUAL(
			    shmq_partition_for_key(r.key, r.key_len, 5),
			    (int32_t)part);
		}
		TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
		shmq_consumer_close(c);
	}
	/* By number, and keyless: the new partitions are writable. */
	m = (shmq_msg_t) { .value = "v", .value_len = 1, .partition = 4 };
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.partition, 4);
	bool seen[5] = { false };
	for (int i = 0; i < 10; i++) {
		m = (shmq_msg_t) { .value = "v",
			.value_len = 1,
			.partition = SHMQ_PARTITION_ANY };
		TH_OK(shmq_send(p, &m));
		CU_ASSERT_FATAL(m.partition >= 0 && m.partition < 5);
		seen[m.partition] = true;
	}
	CU_ASSERT(seen[2] && seen[3] && seen[4]);
	/* And the describe of every partition shows this producer. */
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 4, &pi));
	CU_ASSERT_EQUAL(pi.producers, 1);
	shmq_producer_close(p);
	th_destroy(q);
}

/* The records a consumer has read, per partition: each offset once. */
struct seen {
	uint32_t parts;
	uint64_t count[8];
	uint8_t hit[8][256];
	int dup;
};

static int
drain(shmq_consumer_t *c, struct seen *s)
{
	shmq_record_t r;
	char buf[64];
	int got = 0, rc;
	while ((rc = shmq_recv(c, buf, sizeof buf, &r, 0)) == 0) {
		CU_ASSERT_FATAL(r.partition < s->parts && r.offset < 256);
		s->dup += s->hit[r.partition][r.offset]++ != 0;
		s->count[r.partition]++;
		got++;
		TH_OK(shmq_consumer_commit(c));
	}
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	return got;
}

static void
send_to(shmq_producer_t *p, uint32_t part, int n)
{
	for (int i = 0; i < n; i++) {
		shmq_msg_t m = { .value = &i,
			.value_len = sizeof i,
			.partition = (int32_t)part };
		TH_OK(shmq_send(p, &m));
	}
}

/* Two members opened at 2 partitions, each owning one; the topic grows
 * to 4.  Each takes one new partition at its next rebalance (no
 * partition changes hands), and together they read every record of
 * every partition exactly once — also those sent to the new partitions
 * before anyone owned them, although the members' reset policy is
 * LATEST (a new partition's group offset starts at 0). */
static void
test_addparts_live_group_gets_the_new_partitions(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_t co;
	shmq_consumer_options_init(&co);
	co.group = "g";
	co.reset = SHMQ_RESET_LATEST;
	shmq_consumer_t *a = NULL, *b = NULL;
	TH_OK(shmq_consumer_open(q, "t", &co, &a));
	TH_OK(shmq_consumer_open(q, "t", &co, &b));
	struct seen s = { .parts = 4 };
	/* Position both (LATEST) and settle the assignment: one each. */
	drain(a, &s);
	drain(b, &s);
	drain(a, &s);
	uint32_t pa[8], pb[8];
	CU_ASSERT_EQUAL(shmq_assignment(a, pa, 8), 1);
	CU_ASSERT_EQUAL(shmq_assignment(b, pb, 8), 1);
	shmq_producer_t *p = th_producer(q, "t");
	send_to(p, 0, 20);
	send_to(p, 1, 20);

	TH_OK(shmq_topic_add_partitions(q, "t", 4));
	/* Sent before any member looked: partitions 2 and 3 have no
	 * owner yet. */
	for (uint32_t part = 0; part < 4; part++) {
		send_to(p, part, 30);
	}
	int64_t deadline = th_mono_ms() + 5000;
	uint64_t total = 0;
	while (total < 2 * 20 + 4 * 30 && th_mono_ms() < deadline) {
		total += (uint64_t)drain(a, &s);
		total += (uint64_t)drain(b, &s);
	}
	CU_ASSERT_EQUAL(total, 2 * 20 + 4 * 30);
	CU_ASSERT_EQUAL(s.dup, 0);
	CU_ASSERT_EQUAL(s.count[0], 50);
	CU_ASSERT_EQUAL(s.count[1], 50);
	CU_ASSERT_EQUAL(s.count[2], 30);
	CU_ASSERT_EQUAL(s.count[3], 30);
	for (uint32_t part = 0; part < 4; part++) {
		for (uint64_t o = 0; o < s.count[part]; o++) {
			CU_ASSERT_EQUAL(s.hit[part][o], 1);
		}
	}
	/* Two each, sticky: each kept the partition it had. */
	uint32_t na = (uint32_t)shmq_assignment(a, pa, 8);
	uint32_t nb = (uint32_t)shmq_assignment(b, pb, 8);
	CU_ASSERT_EQUAL(na, 2);
	CU_ASSERT_EQUAL(nb, 2);
	CU_ASSERT(pa[0] < 2 && pb[0] < 2 && pa[1] >= 2 && pb[1] >= 2);
	/* The group's table has 4 entries, all committed to the end. */
	shmq_group_partition_t gp[8];
	CU_ASSERT_EQUAL(shmq_group_describe(q, "g", "t", gp, 8), 4);
	CU_ASSERT_EQUAL(gp[3].committed, 30);
	CU_ASSERT_EQUAL(gp[3].lag, 0);
	/* A member that joins later (a third, opened with the grown
	 * metadata) rebalances over 4 as well: nobody owns twice. */
	shmq_consumer_t *c3 = NULL;
	TH_OK(shmq_consumer_open(q, "t", &co, &c3));
	drain(c3, &s);
	drain(a, &s);
	drain(b, &s);
	drain(c3, &s);
	CU_ASSERT_EQUAL(s.dup, 0);
	uint32_t owned = (uint32_t)shmq_assignment(a, pa, 8) +
	    (uint32_t)shmq_assignment(b, pb, 8) +
	    (uint32_t)shmq_assignment(c3, pb, 8);
	CU_ASSERT_EQUAL(owned, 4);
	shmq_consumer_close(c3);
	shmq_producer_close(p);
	shmq_consumer_close(a);
	shmq_consumer_close(b);
	th_destroy(q);
}

/* A group with no live member is grown by the admin: the next member
 * (opened before the growth, so with the old metadata) reads the new
 * partitions from their start.  A standalone consumer keeps its
 * assignment but may assign a partition added since its open. */
static void
test_addparts_idle_group_and_standalone_consumer(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	shmq_consumer_options_t co;
	shmq_consumer_options_init(&co);
	co.group = "g";
	shmq_consumer_t *g = NULL, *solo = th_reader(q, "t", 0);
	TH_OK(shmq_consumer_open(q, "t", &co, &g));
	shmq_consumer_close(g); /* the group file stays, no member */
	TH_OK(shmq_consumer_open(q, "t", &co, &g)); /* old metadata */
	shmq_producer_t *p = th_producer(q, "t");
	TH_OK(shmq_topic_add_partitions(q, "t", 3));
	shmq_group_partition_t gp[4];
	CU_ASSERT_EQUAL(shmq_group_describe(q, "g", "t", gp, 4), 3);
	send_to(p, 2, 5);
	struct seen s = { .parts = 3 };
	int64_t deadline = th_mono_ms() + 5000;
	while (s.count[2] < 5 && th_mono_ms() < deadline) {
		drain(g, &s);
	}
	CU_ASSERT_EQUAL(s.count[2], 5);
	CU_ASSERT_EQUAL(s.dup, 0);
	/* The standalone reader still reads partition 0 only. */
	uint32_t parts[4];
	CU_ASSERT_EQUAL(shmq_assignment(solo, parts, 4), 1);
	CU_ASSERT_EQUAL(parts[0], 0);
	uint32_t two = 2;
	TH_OK(shmq_assign(solo, &two, 1));
	shmq_record_t r;
	char buf[16];
	TH_OK(shmq_recv(solo, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.partition, 2);
	CU_ASSERT_EQUAL(r.offset, 0);
	uint32_t nine = 9;
	TH_FAIL(shmq_assign(solo, &nine, 1), -EINVAL);
	shmq_consumer_close(solo);
	shmq_consumer_close(g);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A persistent topic grows while a persister runs: a DURABLE producer
 * opened before the growth sends to a new partition, and the send
 * returns once the persister (which noticed the new partition by
 * itself) has it on disk. */
static void
test_addparts_persister_persists_a_new_partition(void)
{
	shmq_t *q = th_attach();
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	shmq_topic_config_t tc;
	th_persistent_config(&tc, SHMQ_FSYNC_ALWAYS);
	tc.partitions = 1;
	TH_OK(shmq_topic_create(q, "t", &tc));
	pid_t pid = th_fork(th_persister_main, home);
	th_wait_persister(q, true);
	shmq_producer_t *p =
	    th_producer_opts(q, "t", SHMQ_ACKS_DURABLE, 10000);
	send_to(p, 0, 3);
	TH_OK(shmq_topic_add_partitions(q, "t", 3));
	send_to(p, 2, 7);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 2, &pi));
	CU_ASSERT_EQUAL(pi.durable, 7);
	CU_ASSERT_EQUAL(pi.end, 7);
	CU_ASSERT(pi.segments >= 1);
	CU_ASSERT(pi.segment_bytes > 0);
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.durable, 3);
	shmq_producer_close(p);
	kill(pid, SIGKILL);
	CU_ASSERT(th_wait(pid) == 128 + SIGKILL);
	th_destroy(q);
}

/* The metadata is renamed into place, then the directory's fsync fails:
 * the topic exists for everybody, so create and add-partitions report
 * success (create used to return the fsync's error, and a retry then
 * got -EEXIST). */
static void
test_addparts_metadata_write_succeeds_once_renamed(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t tc;
	shmq_topic_config_init(&tc);
	tc.durability = SHMQ_DURABILITY_VOLATILE;
	tc.ring_size = RING;
	tc.partitions = 2;
	atomic_store(&dir_fsync_fails, 1);
	int rc = shmq_topic_create(q, "t", &tc);
	int grc = shmq_topic_add_partitions(q, "t", 3);
	atomic_store(&dir_fsync_fails, 0);
	TH_OK(rc);
	TH_OK(grc);
	CU_ASSERT_EQUAL(partitions_of(q, "t"), 3);
	TH_FAIL(shmq_topic_create(q, "t", &tc), -EEXIST);
	/* A failure before the rename is still a failure, and leaves no
	 * topic behind (the first step of the atomic write fails). */
	long n;
	for (n = 1; n < 64; n++) {
		shmqi_fault_set(n, -EIO, false);
		rc = shmq_topic_create(q, "u", &tc);
		shmqi_fault_set(0, 0, false);
		shmq_topic_config_t c;
		int drc = shmq_topic_describe(q, "u", &c);
		CU_ASSERT(rc == 0 ? drc == 0 : drc == -ENOENT);
		if (rc == 0) {
			break;
		}
		CU_ASSERT_EQUAL(rc, -EIO);
	}
	CU_ASSERT(n > 1 && n < 64); /* some step failed, then all passed */
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_addparts_refuses_what_is_not_growth",
	    test_addparts_refuses_what_is_not_growth },
	{ "test_addparts_live_producer_hashes_over_the_new_count",
	    test_addparts_live_producer_hashes_over_the_new_count },
	{ "test_addparts_live_group_gets_the_new_partitions",
	    test_addparts_live_group_gets_the_new_partitions },
	{ "test_addparts_idle_group_and_standalone_consumer",
	    test_addparts_idle_group_and_standalone_consumer },
	{ "test_addparts_persister_persists_a_new_partition",
	    test_addparts_persister_persists_a_new_partition },
	{ "test_addparts_metadata_write_succeeds_once_renamed",
	    test_addparts_metadata_write_succeeds_once_renamed },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_addparts = { "addparts", tests };
