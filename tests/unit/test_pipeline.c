/*
 * test_pipeline.c — the persister's pipeline (persist.c,
 * persist_uring.c) at its edges: more partitions than one futex_waitv
 * takes, a topics directory dated in the future, and several producers
 * keeping writes and flushes in flight at once while the durable
 * watermark is checked against the segment files.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "helpers.h"
#include "internal.h"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0) {
	}
}

/* ---- 1. wait_commits with more than SHMQ_PARTITIONS_MAX partitions --- */

#define BIG 600u /* two topics of BIG: more than SHMQ_PARTITIONS_MAX */

/* Send one record to every partition of `topic`. */
static void
touch_all(shmq_t *q, const char *topic, uint32_t parts)
{
	shmq_producer_t *p = th_producer(q, topic);
	for (uint32_t i = 0; i < parts; i++) {
		uint64_t v = i;
		shmq_msg_t m = { .value = &v, .value_len = 8 };
		m.partition = (int32_t)i;
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
}

/* Rings whose commit_waiters is not 0 while nobody waits, not counted
 * before (a count that wrapped stays wrapped). */
static unsigned
bad_waiters(struct ring *r, size_t n, uint32_t *example)
{
	static bool seen[2 * 1024];
	unsigned bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t w = atomic_load(&r[i].hdr->hdr_commit_waiters);
		if (w != 0 && !seen[i]) {
			seen[i] = true;
			*example = w;
			bad++;
		}
	}
	return bad;
}

/* wait_commits() registers at most SHMQ_PARTITIONS_MAX partitions, but
 * clears pp->waiting only for the partitions its first loop visits; the
 * final loop decrements commit_waiters of every partition whose flag is
 * set.  A partition past the cap keeps the flag of an earlier call in
 * which it was registered (fewer partitions were registered then,
 * because some lingered), so its ring's commit_waiters is decremented
 * without an increment: it wraps to UINT32_MAX, or (with a consumer or
 * a LEADER producer asleep on it) drops that sleeper's count, whose
 * wake-up is then skipped by committers. */
static void
test_pipeline_commit_waiters_stay_balanced_past_the_partition_cap(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);

	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	const char *names[2] = { "a", "b" };
	for (int t = 0; t < 2; t++) {
		th_persistent_config(&c, SHMQ_FSYNC_NEVER);
		c.partitions = BIG;
		TH_OK(shmq_topic_create(q, names[t], &c));
	}
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	(void)shmq_persister_poll(ps, 0);

	static struct ring rings[2 * BIG];
	for (int t = 0; t < 2; t++) {
		struct topic_meta m;
		TH_OK(shmqi_topic_load(q, names[t], &m));
		for (uint32_t i = 0; i < BIG; i++) {
			TH_OK(shmqi_ring_open(
			    q, names[t], &m, i, &rings[t * BIG + i]));
		}
	}

	unsigned bad = 0;
	uint32_t example = 0;
	for (int t = 0; t < 2; t++) {
		/* Records on every partition of one topic: its partitions
		 * linger (fsync never, a write in the last 10 ms), so the
		 * next wait registers only the other topic's BIG partitions
		 * and visits all 2*BIG. */
		touch_all(q, names[t], BIG);
		CU_ASSERT_EQUAL(shmq_persister_poll(ps, 0), (ssize_t)BIG);
		CU_ASSERT_EQUAL(shmq_persister_poll(ps, 1), 0);
		bad += bad_waiters(rings, 2 * BIG, &example);
		/* Then nothing lingers: the cap is reached before the end
		 * of the list. */
		/* The condition under test is time itself: 10 ms
		 * (BUSY_NS) without a write end the lingering. */
		sleep_ms(30);
		CU_ASSERT_EQUAL(shmq_persister_poll(ps, 1), 0);
		bad += bad_waiters(rings, 2 * BIG, &example);
	}
	if (bad != 0) {
		fprintf(stderr,
		    "\n    %u ring(s) left with commit_waiters != 0 "
		    "(e.g. %u) by an idle persister ",
		    bad, example);
	}
	CU_ASSERT_EQUAL(bad, 0);

	for (size_t i = 0; i < 2 * BIG; i++) {
		/* Leave the counts as the persister found them. */
		atomic_store(&rings[i].hdr->hdr_commit_waiters, 0);
		shmqi_ring_close(&rings[i]);
	}
	shmq_persister_close(ps);
	th_destroy(q);
}

/* ---- 2. topics_changed with a directory mtime ahead of the clock ----- */

/* read-type system calls of this process so far (/proc/self/io). */
static long
syscr(void)
{
	char buf[512];
	long v = -1;
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	ssize_t k = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (k > 0) {
		buf[k] = '\0';
		char *s = strstr(buf, "syscr:");
		if (s != NULL) {
			v = strtol(s + 6, NULL, 10);
		}
	}
	return v;
}

/* Read-type calls made by `polls` idle polls (the two calls syscr()
 * itself makes are taken off). */
static long
reads_per_polls(shmq_persister_t *ps, int polls)
{
	long a = syscr();
	for (int i = 0; i < polls; i++) {
		(void)shmq_persister_poll(ps, 0);
	}
	return syscr() - a - 1;
}

/* topics_changed() scans again while HOME/topics changed less than
 * 50 ms ago, measured as CLOCK_REALTIME - mtime.  A directory whose
 * mtime is ahead of the clock (the clock stepped back after a topic was
 * created — NTP, a VM restore, an RTC that was wrong at boot — or a
 * HOME restored with such times) gives a negative age, so every poll
 * runs scan(): every topic file read, retention walked for every
 * partition, the shm directory read for groups — at up to 4000 polls a
 * second under load (LINGER_NS), until the clock catches up. */
static void
test_pipeline_a_topics_dir_mtime_ahead_of_the_clock_does_not_scan_each_poll(
    void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	c.partitions = 4;
	TH_OK(shmq_topic_create(q, "t", &c));
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	char dir[SHMQ_PATH_MAX];
	snprintf(dir, sizeof dir, "%s/topics", shmq_home(q));
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 60; /* the creation, a minute ago */
	ts[1] = ts[0];
	TH_OK(utimensat(AT_FDCWD, dir, ts, 0) != 0 ? -errno : 0);
	(void)shmq_persister_poll(ps, 0); /* a change: one scan is due */
	long base = reads_per_polls(ps, 200);

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += 3600; /* an hour ahead */
	ts[1] = ts[0];
	TH_OK(utimensat(AT_FDCWD, dir, ts, 0) != 0 ? -errno : 0);
	(void)shmq_persister_poll(ps, 0); /* a change: one scan is due */
	int64_t t0 = th_mono_ms();
	long ahead = reads_per_polls(ps, 200);
	int64_t dt = th_mono_ms() - t0;
	fprintf(stderr,
	    "\n    200 idle polls: %ld reads (mtime in the past), %ld reads, "
	    "%lld ms (mtime an hour ahead) ",
	    base, ahead, (long long)dt);
	CU_ASSERT(base < 20);
	CU_ASSERT(ahead < 20);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* ---- 3. the pipeline under load: durable never ahead of the disk ---- */

#define P3_PRODUCERS 3
#define P3_RECORDS 2400u /* a multiple of P3_BATCH */
#define P3_KEY \
	2000u /* records of 2 KiB: a batch of 48 KiB */ /* per producer */
#define P3_BATCH 24

struct p3_arg {
	char home[SHMQ_DIR_MAX];
	int k;
};

static int
p3_producer(void *arg)
{
	struct p3_arg *a = arg;
	shmq_t *q = th_attach_home(a->home);
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	if (q == NULL) {
		return 2;
	}
	shmq_producer_options_init(&po);
	po.acks = a->k == 0 ? SHMQ_ACKS_DURABLE : SHMQ_ACKS_LEADER;
	po.timeout_ms = 20000;
	if (shmq_producer_open(q, "t", &po, &p) != 0) {
		return 3;
	}
	uint64_t v[P3_BATCH];
	shmq_msg_t m[P3_BATCH];
	static uint8_t key[P3_KEY];
	memset(key, 'k', sizeof key);
	for (uint32_t i = 0; i < P3_RECORDS; i += P3_BATCH) {
		for (int j = 0; j < P3_BATCH; j++) {
			v[j] = (uint64_t)a->k << 32 | (i + (uint32_t)j);
			memset(&m[j], 0, sizeof m[j]);
			m[j].value = &v[j];
			m[j].value_len = 8;
			m[j].key = key;
			m[j].key_len = P3_KEY;
		}
		if (shmq_send_batch(p, m, P3_BATCH) != P3_BATCH) {
			return 4;
		}
	}
	shmq_producer_close(p);
	return 0;
}

/* Several producers (one of them DURABLE) keep a persistent partition
 * busy, so that writes overlap flushes and segments roll under the
 * pipeline.  Sampled while it runs: the durable offset never passes
 * what the segment files hold (written, whole records).  At the end:
 * every record on disk once, each producer's in order. */
static void
pipeline_under_load(int fsync)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	th_persistent_config(&c, fsync);
	c.ring_size = 1024u * 1024u;
	c.segment_bytes = 512u * 1024u;
	TH_OK(shmq_topic_create(q, "t", &c));
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	pid_t per = th_fork(th_persister_main, home);
	int64_t t0 = th_mono_ms();
	th_wait_persister(q, true);
	static struct p3_arg args[P3_PRODUCERS];
	pid_t pp[P3_PRODUCERS];
	for (int k = 0; k < P3_PRODUCERS; k++) {
		snprintf(args[k].home, sizeof args[k].home, "%s", home);
		args[k].k = k;
		pp[k] = th_fork(p3_producer, &args[k]);
	}
	unsigned samples = 0, ahead = 0, bad = 0;
	for (;;) {
		bool running = false;
		for (int k = 0; k < P3_PRODUCERS; k++) {
			running = running || kill(pp[k], 0) == 0;
		}
		shmq_partition_info_t pi;
		TH_OK(shmq_partition_info(q, "t", 0, &pi));
		if (pi.durable == 0) {
			/* Nothing to compare yet: the persister may not have
			 * made the partition's directory. */
			if (!running) {
				break;
			}
			sleep_ms(1);
			continue;
		}
		struct th_disk d;
		th_disk_read(q, "t", &d);
		samples++;
		if (d.n < pi.durable) {
			if (ahead++ == 0) {
				fprintf(stderr,
				    "\n    durable %llu, on disk %zu records ",
				    (unsigned long long)pi.durable, d.n);
			}
		}
		bad += d.bad;
		th_disk_free(&d);
		if (!running || samples > 400) {
			break;
		}
		sleep_ms(2);
	}
	for (int k = 0; k < P3_PRODUCERS; k++) {
		CU_ASSERT_EQUAL(th_wait(pp[k]), 0);
	}
	uint64_t total = (uint64_t)P3_PRODUCERS * P3_RECORDS;
	shmq_partition_info_t pi;
	int64_t deadline = th_mono_ms() + 10000;
	do {
		TH_OK(shmq_partition_info(q, "t", 0, &pi));
	} while (pi.durable < total && th_mono_ms() < deadline &&
	    (sleep_ms(1), true));
	CU_ASSERT_EQUAL(pi.durable, total);
	int64_t took = th_mono_ms() - t0;
	kill(per, SIGKILL);
	(void)th_wait(per);
	struct th_disk d;
	th_disk_read(q, "t", &d);
	CU_ASSERT_EQUAL(d.n, total);
	CU_ASSERT(!d.bad);
	uint32_t next[P3_PRODUCERS] = { 0 };
	unsigned order = 0;
	for (size_t i = 0; i < d.n; i++) {
		uint32_t k = (uint32_t)(d.ids[i] >> 32);
		uint32_t id = (uint32_t)d.ids[i];
		if (k >= P3_PRODUCERS || d.offs[i] != i || id != next[k]) {
			order++;
			continue;
		}
		next[k]++;
	}
	th_disk_free(&d);
	fprintf(stderr, "[fsync %d: %u samples, %zu segments, %lld ms] ",
	    fsync, samples, (size_t)(total * (P3_KEY + 64) / c.segment_bytes),
	    (long long)took);
	CU_ASSERT_EQUAL(order, 0);
	CU_ASSERT_EQUAL(ahead, 0);
	CU_ASSERT_EQUAL(bad, 0);
	th_destroy(q);
}

static void
test_pipeline_pipeline_under_load_never_acks_ahead_of_the_disk(void)
{
	pipeline_under_load(SHMQ_FSYNC_ALWAYS);
	pipeline_under_load(SHMQ_FSYNC_NEVER);
	pipeline_under_load(SHMQ_FSYNC_INTERVAL);
}

static CU_TestInfo tests[] = {
	{ "test_pipeline_commit_waiters_stay_balanced_past_the_partition_cap",
	    test_pipeline_commit_waiters_stay_balanced_past_the_partition_cap },
	{ "test_pipeline_a_topics_dir_mtime_ahead_of_the_clock_does_not_scan_"
	  "each_poll",
	    test_pipeline_a_topics_dir_mtime_ahead_of_the_clock_does_not_scan_each_poll },
	{ "test_pipeline_pipeline_under_load_never_acks_ahead_of_the_disk",
	    test_pipeline_pipeline_under_load_never_acks_ahead_of_the_disk },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_pipeline = { "pipeline", tests };
