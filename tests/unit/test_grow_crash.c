/*
 * test_grow_crash.c — growing a topic (shmq_topic_add_partitions) when
 * something goes wrong half-way, and the idempotent producer's retrying
 * send across a growth.
 *
 * - The admin dies right after renaming the grown metadata into place,
 *   before it announced the new count in the rings: producers and group
 *   members that were open keep the old count, while every handle opened
 *   afterwards uses the new one (keyed records of one key then go to two
 *   partitions at once).  A later admin call, or any later opener, must
 *   finish the announcement.
 * - An idempotent producer with retries pins a batch's sequences per
 *   partition before the first attempt; a partition added since its
 *   open gets a sequence like any other (first: 0), with no read or
 *   write outside what the pinning allocated.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

/* ---- the admin dies right after its metadata rename ---------------------
 *
 * renameat is interposed (libshmq is linked statically into the test
 * binary, and shmqi_write_atomic_at renames with it).  Unarmed it is the
 * plain system call, for every suite.  Armed (only ever in a forked
 * child), a rename onto a name ending in ".topic" is done and then the
 * process kills itself: the state a power cut or kill -9 leaves. */
static volatile sig_atomic_t die_after_topic_rename;

int renameat(
    int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

int
renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	long rc =
	    syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, 0u);
	size_t n = strlen(newpath);
	if (rc == 0 && die_after_topic_rename && n > 6 &&
	    strcmp(newpath + n - 6, ".topic") == 0) {
		kill(getpid(), SIGKILL);
	}
	return (int)rc;
}

struct grow_args {
	char home[SHMQ_DIR_MAX];
	const char *topic;
	uint32_t total;
};

static int
admin_dies_after_rename(void *arg)
{
	struct grow_args *a = arg;
	shmq_t *q = NULL;
	if (shmq_attach(a->home, NULL, &q) != 0) {
		return 3;
	}
	die_after_topic_rename = 1;
	(void)shmq_topic_add_partitions(q, a->topic, a->total);
	return 4; /* not reached: killed after the rename */
}

static void
crash_mid_growth(shmq_t *q, const char *topic, uint32_t total)
{
	struct grow_args a = { .topic = topic, .total = total };
	snprintf(a.home, sizeof a.home, "%s", shmq_home(q));
	pid_t pid = th_fork(admin_dies_after_rename, &a);
	CU_ASSERT_EQUAL_FATAL(th_wait(pid), 128 + SIGKILL);
	/* The grown metadata is in place: the topic has `total` now. */
	shmq_topic_config_t c;
	shmq_topic_config_init(&c);
	TH_OK(shmq_topic_describe(q, topic, &c));
	CU_ASSERT_EQUAL_FATAL(c.partitions, total);
}

/* A key whose partition over `from` differs from its partition over
 * `to`: the one that shows which count a producer hashes over. */
static int
moving_key(char *key, size_t cap, uint32_t from, uint32_t to)
{
	for (int i = 0;; i++) {
		int kl = snprintf(key, cap, "key-%d", i);
		if (shmq_partition_for_key(key, (size_t)kl, from) !=
		    shmq_partition_for_key(key, (size_t)kl, to)) {
			return kl;
		}
	}
}

static int32_t
send_key(shmq_producer_t *p, const char *key, int kl)
{
	shmq_msg_t m = { .key = key,
		.key_len = (size_t)kl,
		.value = "v",
		.value_len = 1,
		.partition = SHMQ_PARTITION_ANY };
	TH_OK(shmq_send(p, &m));
	return m.partition;
}

/* The admin died between its rename and the announcement; it runs the
 * same command again.  The topic has the count asked for (a topic only
 * grows, so the call may say -EINVAL), but the producer that was open
 * all along must now place keyed records over the new count, as every
 * producer opened since does. */
static void
test_grow_admin_retry_finishes_a_crashed_growth(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *old = th_producer(q, "t");
	char key[32];
	int kl = moving_key(key, sizeof key, 2, 4);
	CU_ASSERT_EQUAL(send_key(old, key, kl),
	    shmq_partition_for_key(key, (size_t)kl, 2));

	crash_mid_growth(q, "t", 4);
	int rc = shmq_topic_add_partitions(q, "t", 4);
	CU_ASSERT(rc == 0 || rc == -EINVAL);

	CU_ASSERT_EQUAL(send_key(old, key, kl),
	    shmq_partition_for_key(key, (size_t)kl, 4));
	shmq_producer_close(old);
	th_destroy(q);
}

/* The admin died between its rename and the announcement, and nobody
 * runs it again.  A producer opened afterwards uses the new count; the
 * producer and the group member that were open must follow: the keyed
 * records of one key go to one partition, and the member reads the
 * partitions the new producer writes. */
static void
test_grow_opener_finishes_a_crashed_growth(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_DROP);
	shmq_producer_t *old = th_producer(q, "t");
	shmq_consumer_options_t co;
	shmq_consumer_options_init(&co);
	co.group = "g";
	shmq_consumer_t *member = NULL;
	TH_OK(shmq_consumer_open(q, "t", &co, &member));
	char key[32];
	int kl = moving_key(key, sizeof key, 2, 4);

	crash_mid_growth(q, "t", 4);
	shmq_producer_t *fresh = th_producer(q, "t");
	int32_t want = shmq_partition_for_key(key, (size_t)kl, 4);
	CU_ASSERT_EQUAL(send_key(fresh, key, kl), want);
	CU_ASSERT_EQUAL(send_key(old, key, kl), want);

	/* The new producer writes partition 3: the member gets it. */
	shmq_msg_t m = { .value = "x", .value_len = 1, .partition = 3 };
	TH_OK(shmq_send(fresh, &m));
	shmq_record_t r;
	char buf[64];
	bool got3 = false;
	int64_t deadline = th_mono_ms() + 3000;
	while (!got3 && th_mono_ms() < deadline) {
		int rc = shmq_recv(member, buf, sizeof buf, &r, 100);
		if (rc == 0) {
			got3 = r.partition == 3;
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(rc, -EAGAIN);
	}
	CU_ASSERT(got3);
	shmq_consumer_close(member);
	shmq_producer_close(fresh);
	shmq_producer_close(old);
	th_destroy(q);
}

/* ---- an idempotent producer's retrying send to a new partition ---------- */

static int
idempotent_retrying_send(void *home)
{
	shmq_t *q = NULL;
	if (shmq_attach(home, NULL, &q) != 0) {
		return 3;
	}
	shmq_producer_options_t po;
	shmq_producer_options_init(&po);
	po.flags = SHMQ_PRODUCER_IDEMPOTENT;
	po.retries = 2;
	shmq_producer_t *p = NULL;
	if (shmq_producer_open(q, "t", &po, &p) != 0) {
		return 4;
	}
	shmq_msg_t m = { .value = "a", .value_len = 1, .partition = 0 };
	if (shmq_send(p, &m) != 0) {
		return 5;
	}
	if (shmq_topic_add_partitions(q, "t", 8) != 0) {
		return 6;
	}
	/* Partition 6 is new to the producer: its first sequence is 0,
	 * and the record is appended at offset 0. */
	for (int i = 0; i < 3; i++) {
		m = (shmq_msg_t) {
			.value = "b", .value_len = 1, .partition = 6
		};
		int rc = shmq_send(p, &m);
		if (rc != 0) {
			fprintf(stderr, "send to the new partition: %d (%s)\n",
			    rc, shmq_strerror(rc));
			return 7;
		}
		if (m.partition != 6 || m.offset != (uint64_t)i) {
			return 8;
		}
	}
	uint32_t next = 0;
	if (shmq_producer_next_sequence(p, 6, &next) != 0 || next != 3) {
		return 9;
	}
	shmq_producer_close(p);
	shmq_detach(q);
	return 0;
}

/* In a child: a failure may be a damaged heap. */
static void
test_grow_idempotent_retrying_send_to_a_new_partition(void)
{
	shmq_t *q = th_attach();
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	pid_t pid = th_fork(idempotent_retrying_send, home);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	th_destroy(q);
}

/* A member whose own growth fails (here: opening the new ring, as with
 * a full /dev/shm) is not stopped by it: it reads on from the
 * partitions it has, and takes the new one at a later look. */
static void
test_grow_member_whose_growth_fails_reads_on(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_options_t co;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	uint64_t v = 1, got;
	th_topic(q, "t", 1, 1 << 16, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_init(&co);
	co.group = "g";
	TH_OK(shmq_consumer_open(q, "t", &co, &c));
	shmq_producer_t *p = th_producer(q, "t");
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	TH_OK(shmq_topic_add_partitions(q, "t", 2));
	/* The member's next look grows it; every seam call fails then. */
	shmqi_fault_set(1, -ENOSPC, true);
	int rc = shmq_recv(c, &got, sizeof got, &r, 0);
	shmqi_fault_set(0, 0, false);
	TH_OK(rc);
	CU_ASSERT(rc == 0 && r.partition == 0 && got == 1);
	v = 2;
	m = (shmq_msg_t) { .value = &v, .value_len = 8, .partition = 1 };
	TH_OK(shmq_send(p, &m));
	/* Within a slice or two of GROUP_SLICE_MS it tries again. */
	TH_OK(shmq_recv(c, &got, sizeof got, &r, 2000));
	CU_ASSERT(r.partition == 1 && got == 2);
	shmq_producer_close(p);
	shmq_consumer_close(c);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_grow_admin_retry_finishes_a_crashed_growth",
	    test_grow_admin_retry_finishes_a_crashed_growth },
	{ "test_grow_opener_finishes_a_crashed_growth",
	    test_grow_opener_finishes_a_crashed_growth },
	{ "test_grow_idempotent_retrying_send_to_a_new_partition",
	    test_grow_idempotent_retrying_send_to_a_new_partition },
	{ "test_grow_member_whose_growth_fails_reads_on",
	    test_grow_member_whose_growth_fails_reads_on },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_grow_crash = { "grow_crash", tests };
