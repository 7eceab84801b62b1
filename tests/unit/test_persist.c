/*
 * test_persist.c — the persistence engine (persist.c, segment.c,
 * persist_uring.c): DURABLE acks, one persister per instance, kill -9 of
 * the persister under load, and recovery of a tail torn at every length.
 * Segments are read back from the files, record by record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)

/* Once the persister (started by the caller) runs: a DURABLE
 * producer. */
static shmq_producer_t *
durable_producer(shmq_t *q, const char *topic)
{
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	th_wait_persister(q, true);
	shmq_producer_options_init(&po);
	po.acks = SHMQ_ACKS_DURABLE;
	TH_OK(shmq_producer_open(q, topic, &po, &p));
	return p;
}

static void
test_persist_durable_acks_need_a_persister_and_a_persistent_topic(void)
{
	shmq_t *q = th_attach();
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	th_topic(q, "v", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_init(&po);
	po.acks = SHMQ_ACKS_DURABLE;
	TH_FAIL(shmq_producer_open(q, "t", &po, &p), SHMQ_ENOREPLICATOR);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	TH_FAIL(shmq_producer_open(q, "v", &po, &p), -EINVAL);
	TH_OK(shmq_producer_open(q, "t", &po, &p));
	/* In-process: poll from this thread between sends would be needed;
	 * the persister is polled by a child instead in the tests below. */
	shmq_producer_close(p);
	shmq_persister_close(ps);
	th_destroy(q);
}

static void
test_persist_second_persister_is_refused_with_the_first_ones_pid(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *a = NULL, *b = NULL;
	pid_t holder = 0;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &a));
	shmq_t *q2 = th_reattach(q);
	TH_FAIL(shmq_persister_open(q2, NULL, NULL, &holder, &b), -EBUSY);
	CU_ASSERT_EQUAL(holder, getpid());
	shmq_persister_close(a);
	TH_OK(shmq_persister_open(q2, NULL, NULL, NULL, &b)); /* freed */
	shmq_persister_close(b);
	shmq_detach(q2);
	th_destroy(q);
}

/* A topic created while the persister runs is persisted at the next
 * poll, not at the next periodic scan (a second later): a new topic's
 * first DURABLE send does not wait for the scan. */
static void
test_persist_new_topic_is_picked_up_at_the_next_poll(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	CU_ASSERT_EQUAL(shmq_persister_poll(ps, 0), 0);
	for (int t = 0; t < 3; t++) {
		char name[16];
		snprintf(name, sizeof name, "t%d", t);
		th_topic_persistent(q, name, SHMQ_FSYNC_ALWAYS);
		shmq_producer_t *p = th_producer(q, name);
		for (uint64_t v = 0; v < 10; v++) {
			shmq_msg_t m = { .value = &v, .value_len = 8 };
			TH_OK(shmq_send(p, &m));
		}
		CU_ASSERT_EQUAL(shmq_persister_poll(ps, 0), 10);
		shmq_partition_info_t pi;
		TH_OK(shmq_partition_info(q, name, 0, &pi));
		CU_ASSERT_EQUAL(pi.durable, 10);
		shmq_producer_close(p);
	}
	shmq_persister_close(ps);
	th_destroy(q);
}

/* kill -9 the persister at random moments while a producer sends with
 * acks DURABLE: every acknowledged record is on disk exactly once, in
 * order.  A send whose durability was not confirmed (the persister
 * died) is retried as a new attempt with a new id. */
static void
test_persist_kill_loop_loses_no_durable_ack(void)
{
	unsigned seed = th_seed("persister kills");
	unsigned rounds = th_soak(8);
	shmq_t *q = th_attach();
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	shmq_producer_options_t po;
	shmq_producer_options_init(&po);
	po.acks = SHMQ_ACKS_DURABLE;
	uint8_t *acked = calloc(1u << 20, 1);
	uint64_t id = 0, nacked = 0;

	for (unsigned round = 0; round < rounds; round++) {
		pid_t pid = th_fork(th_persister_main, home);
		th_wait_persister(q, true);
		shmq_producer_t *p = NULL;
		TH_OK(shmq_producer_open(q, "t", &po, &p));
		/* Kill it after a random number of sends, from outside the
		 * send path: the kill lands wherever the persister is. */
		unsigned quota = 50 + (unsigned)rand_r(&seed) % 400;
		for (unsigned k = 0; k < quota; k++) {
			uint64_t v = id++;
			shmq_msg_t m = {
				.value = &v, .value_len = 8, .partition = 0
			};
			int rc = shmq_send(p, &m);
			if (rc == 0) {
				acked[v] = 1;
				nacked++;
			} else {
				CU_ASSERT(rc == SHMQ_ENOREPLICATOR);
				break;
			}
			if (k == quota / 2) {
				kill(pid, SIGKILL);
			}
		}
		kill(pid, SIGKILL);
		CU_ASSERT(th_wait(pid) == 128 + SIGKILL);
		shmq_producer_close(p);
		th_wait_persister(q, false);
	}
	/* A last persister: recover, and write what the ring still has. */
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_persister_close(ps);

	struct th_disk d;
	th_disk_read(q, "t", &d);
	CU_ASSERT(!d.bad && d.torn == 0); /* no garbage */
	uint64_t seen_acked = 0, last = 0;
	for (size_t i = 0; i < d.n; i++) {
		CU_ASSERT(i == 0 || d.ids[i] > last); /* in order, once */
		CU_ASSERT(i == 0 || d.offs[i] > d.offs[i - 1]);
		last = d.ids[i];
		seen_acked += d.ids[i] < id && acked[d.ids[i]];
	}
	CU_ASSERT_EQUAL(seen_acked, nacked);
	fprintf(stderr, "[%llu acked, %zu on disk] ",
	    (unsigned long long)nacked, d.n);
	th_disk_free(&d);
	free(acked);
	th_destroy(q);
}

/* A segment cut at every byte length of its last two records recovers
 * to the last whole record, and the persister writes the rest again
 * from the ring: the disk ends up with every record, once, in order. */
static void
test_persist_torn_tail_is_cut_at_every_length_and_rewritten(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX + 64];
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_persister_t *ps = NULL;
	const uint64_t n = 20;
	for (uint64_t v = 0; v < n; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_persister_close(ps);
	snprintf(path, sizeof path, "%s/data/t/0/%020d.log", shmq_home(q), 0);
	struct stat st;
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	uint64_t full = (uint64_t)st.st_size, rec = full / n;
	CU_ASSERT_EQUAL(rec * n, full);
	for (uint64_t cut = full - 2 * rec; cut < full; cut++) {
		CU_ASSERT_FATAL(truncate(path, (off_t)cut) == 0);
		TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
		CU_ASSERT_FATAL(stat(path, &st) == 0);
		CU_ASSERT_EQUAL((uint64_t)st.st_size % rec, 0); /* cut */
		while (shmq_persister_poll(ps, 0) > 0) {
		}
		shmq_persister_close(ps);
		struct th_disk d;
		th_disk_read(q, "t", &d);
		CU_ASSERT(!d.bad && d.torn == 0); /* no garbage */
		CU_ASSERT_EQUAL(d.n, n);
		for (size_t i = 0; i < d.n; i++) {
			CU_ASSERT_EQUAL(d.ids[i], i);
		}
		th_disk_free(&d);
	}
	/* A flipped bit inside a record: recovery cuts there too. */
	int fd = open(path, O_RDWR);
	uint8_t b;
	CU_ASSERT_FATAL(pread(fd, &b, 1, (off_t)(rec * 5 + 60)) == 1);
	b ^= 0x10;
	CU_ASSERT_FATAL(pwrite(fd, &b, 1, (off_t)(rec * 5 + 60)) == 1);
	close(fd);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_persister_close(ps);
	struct th_disk d;
	th_disk_read(q, "t", &d);
	CU_ASSERT(!d.bad && d.torn == 0); /* no garbage */
	CU_ASSERT_EQUAL(d.n, n);
	th_disk_free(&d);
	shmq_producer_close(p);
	th_destroy(q);
}

/* A consumer below the ring reads the same offsets from the segments,
 * then goes on in the ring: every record once, in order, by copy and
 * by view; a seek into the middle of the disk works too. */
static void
expect_run(shmq_consumer_t *c, uint64_t from, uint64_t to)
{
	for (uint64_t want = from; want < to; want++) {
		shmq_record_t r;
		uint64_t v = 0;
		char buf[16];
		int rc;
		if (want % 3 == 0) {
			rc = shmq_peek(c, &r, 2000);
			if (rc == 0) {
				memcpy(&v, r.value, 8);
				TH_OK(shmq_release(c, &r));
			}
		} else {
			rc = shmq_recv(c, buf, sizeof buf, &r, 2000);
			memcpy(&v, buf, 8);
		}
		TH_OK(rc);
		CU_ASSERT_EQUAL(r.offset, want);
		CU_ASSERT_EQUAL(v, want);
		if (r.offset != want || v != want) {
			return;
		}
	}
}

static void
test_persist_consumer_reads_old_offsets_from_segments(void)
{
	shmq_t *q = th_attach();
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	th_topic_persistent(q, "t", SHMQ_FSYNC_NEVER);
	pid_t pid = th_fork(th_persister_main, home);
	shmq_producer_t *p = durable_producer(q, "t");
	const uint64_t n = 5000; /* 64 bytes each: about five rings */
	for (uint64_t v = 0; v < n; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.log_start, 0); /* the log starts on disk */
	shmq_consumer_t *c = th_reader(q, "t", 0);
	expect_run(c, 0, n); /* disk, then the ring */
	for (uint64_t v = n; v < n + 100; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	expect_run(c, n, n + 100);
	TH_OK(shmq_seek(c, 0, 1234));
	expect_run(c, 1234, 1300);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	kill(pid, SIGKILL);
	CU_ASSERT(th_wait(pid) == 128 + SIGKILL);
	th_destroy(q);
}

/* Group offsets of a persistent topic survive a reboot: tmpfs wiped
 * (rings and group files gone), the group resumes where it committed,
 * reading the older records from disk. */

static void
test_persist_group_offsets_survive_a_reboot(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	shmq_persister_t *ps = NULL;
	shmq_consumer_options_t co;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	char buf[16];
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	for (uint64_t v = 0; v < 100; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
	}
	shmq_producer_close(p);
	shmq_consumer_options_init(&co);
	co.group = "g";
	TH_OK(shmq_consumer_open(q, "t", &co, &c));
	for (int i = 0; i < 40; i++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	}
	TH_OK(shmq_consumer_commit(c));
	shmq_consumer_close(c);
	/* The persister writes the records and, within 100 ms, the
	 * offsets; wait for the file with a deadline. */
	snprintf(
	    path, sizeof path, "%s/data/t/groups/g.offsets", shmq_home(q));
	int64_t deadline = th_mono_ms() + 3000;
	while (access(path, F_OK) != 0 && th_mono_ms() < deadline) {
		(void)shmq_persister_poll(ps, 20);
	}
	CU_ASSERT_FATAL(access(path, F_OK) == 0);
	shmq_persister_close(ps);

	th_wipe_tmpfs(q); /* the reboot */
	shmq_t *q2 = th_reattach(q);
	/* A producer first, before any persister: whoever builds the ring
	 * starts it where the disk ends. */
	p = th_producer(q2, "t");
	uint64_t v = 100;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.offset, 100);
	TH_OK(shmq_persister_open(q2, NULL, NULL, NULL, &ps));
	TH_OK(shmq_consumer_open(q2, "t", &co, &c));
	for (uint64_t want = 40; want <= 100; want++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
		memcpy(&v, buf, 8);
		CU_ASSERT_EQUAL(r.offset, want);
		CU_ASSERT_EQUAL(v, want);
	}
	shmq_consumer_close(c);
	shmq_producer_close(p);
	TH_OK(shmq_group_delete(q2, "g", "t"));
	CU_ASSERT(access(path, F_OK) != 0); /* deleted with the group */
	shmq_persister_close(ps);
	shmq_detach(q2);
	th_destroy(q);
}

/* A signal during the persister's io_uring waits (the daemon's SIGHUP
 * reload) must not fail the partition: before, -EINTR became a sticky
 * error and left completions behind for other operations to take. */
static void
on_usr1(int sig)
{
	(void)sig;
}

static int
signalled_persister(void *arg)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1; /* no SA_RESTART: waits see -EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	return th_persister_main(arg);
}

static void
test_persist_signals_do_not_fail_the_partition(void)
{
	shmq_t *q = th_attach();
	char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	pid_t pid = th_fork(signalled_persister, home);
	shmq_producer_t *p = durable_producer(q, "t");
	/* A second process signals the persister without pause while the
	 * sends run, so that its io_uring waits are interrupted. */
	pid_t sig = fork();
	if (sig == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			kill(pid, SIGUSR1);
			sched_yield();
		}
	}
	int failed = 0;
	for (uint64_t v = 0; v < 300 && failed == 0; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		failed = shmq_send(p, &m);
	}
	kill(sig, SIGKILL);
	th_wait(sig);
	TH_OK(failed);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.persist_err, 0);
	shmq_producer_close(p);
	kill(pid, SIGKILL);
	th_wait(pid);
	th_destroy(q);
}

/* Partition 0 of `topic` carries the sticky error of a persister that
 * died (-EIO), as if it had met a failed write. */
static void
plant_dead_persisters_error(shmq_t *q, const char *topic)
{
	struct topic_meta m;
	struct ring r;
	TH_OK(shmqi_topic_load(q, topic, &m));
	TH_OK(shmqi_ring_open(q, topic, &m, 0, &r));
	atomic_store(&r.hdr->hdr_persist_err, -EIO);
	shmqi_ring_close(&r);
}

/* A sticky error belongs to the persister that met it: a new one that
 * recovers the partition clears it. */
static void
test_persist_new_persister_clears_a_dead_ones_error(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	plant_dead_persisters_error(q, "t");
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.persist_err, 0);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* While a new persister recovers a partition, a dead one's error is
 * already gone: a DURABLE send in that window waits for the recovery
 * instead of failing with SHMQ_EFAILED (a recovery that fails sets an
 * error again, as the test above and diskfault's show). */
static shmq_t *recovering_q;
static int32_t recovering_err = 1;

static void
recovering_hook(int point)
{
	shmq_partition_info_t pi;
	if (point == POINT_PERSIST_RECOVERING &&
	    shmq_partition_info(recovering_q, "t", 0, &pi) == 0) {
		recovering_err = pi.persist_err;
	}
}

static void
test_persist_dead_ones_error_is_gone_during_recovery(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	plant_dead_persisters_error(q, "t");
	recovering_q = q;
	shmqi_test_hook = recovering_hook;
	int rc = shmq_persister_open(q, NULL, NULL, NULL, &ps);
	shmqi_test_hook = NULL;
	TH_OK(rc);
	CU_ASSERT_EQUAL(recovering_err, 0);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* A partition that cannot be opened (its segment is a directory) does
 * not leak the descriptors the attempt took. */
static void
test_persist_failed_partition_open_leaks_no_descriptor(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX + 64];
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_ALWAYS);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps)); /* makes dirs */
	shmq_persister_close(ps);
	snprintf(path, sizeof path, "%s/data/t/0/%020d.log", shmq_home(q), 0);
	CU_ASSERT_FATAL(unlink(path) == 0 && mkdir(path, 0700) == 0);
	int before = th_count_fds();
	for (int i = 0; i < 5; i++) {
		TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
		shmq_persister_close(ps);
	}
	CU_ASSERT_EQUAL(th_count_fds(), before);
	rmdir(path);
	th_destroy(q);
}

/* Only aborted records between a consumer's offset and the end of the
 * disk: it goes on in the ring, not back to its reset policy (which
 * would deliver the log again from its start). */
static void
test_persist_reader_past_aborted_records_continues_in_the_ring(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_NEVER);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t v = 0;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m)); /* offset 0 */
	for (int i = 0; i < 2000; i++) {
		shmq_slice_t sl;
		(void)shmq_persister_poll(ps, 0);
		TH_OK(shmq_reserve(p, 0, 0, 8, &sl));
		TH_OK(shmq_abort(p, &sl)); /* offsets 1..2000: gaps */
	}
	(void)shmq_persister_poll(ps, 0);
	v = 2001;
	TH_OK(shmq_send(p, &m)); /* in the ring, not yet on disk */
	CU_ASSERT_EQUAL(m.offset, 2001);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_record_t r;
	char buf[16];
	TH_OK(shmq_seek(c, 0, 1));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 2001);
	/* And a seek while a record is borrowed is refused. */
	TH_OK(shmq_seek(c, 0, 0));
	TH_OK(shmq_peek(c, &r, 1000));
	TH_FAIL(shmq_seek(c, 0, 0), -EBUSY);
	TH_OK(shmq_release(c, &r));
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* Retention deletes whole old segments, by bytes and by age, never the
 * one being written; the log then starts later, and a consumer below it
 * takes its reset policy. */
static uint64_t
disk_bytes(shmq_t *q, const char *topic, size_t *nseg)
{
	char dir[SHMQ_PATH_MAX], path[SHMQ_PATH_MAX + 512];
	uint64_t total = 0;
	*nseg = 0;
	snprintf(dir, sizeof dir, "%s/data/%s/0", shmq_home(q), topic);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (strstr(e->d_name, ".log") != NULL &&
		    stat(path, &st) == 0) {
			total += (uint64_t)st.st_size;
			(*nseg)++;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return total;
}

static void
fill_segments(shmq_t *q, const char *topic, uint64_t retention_bytes,
    uint64_t retention_ms)
{
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	c.segment_bytes = 64 * 1024;
	c.retention_bytes = retention_bytes;
	c.retention_ms = retention_ms;
	TH_OK(shmq_topic_create(q, topic, &c));
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, topic);
	for (uint64_t v = 0; v < 20000; v++) { /* 64 bytes each: 1.28 MB */
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		TH_OK(shmq_send(p, &m));
		if (v % 64 == 0) {
			(void)shmq_persister_poll(ps, 0);
		}
	}
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_producer_close(p);
	shmq_persister_close(ps);
}

static void
test_persist_retention_deletes_old_segments_by_bytes_and_age(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	size_t nseg;
	fill_segments(q, "b", 256 * 1024, 0);
	fill_segments(q, "a", 0, 60 * 1000);
	/* Segments of "a" last written two minutes ago (all but the one
	 * being written are then past retention_ms). */
	char dir[SHMQ_PATH_MAX], path[SHMQ_PATH_MAX + 512];
	snprintf(dir, sizeof dir, "%s/data/a/0", shmq_home(q));
	DIR *d = opendir(dir);
	struct dirent *e;
	struct timespec old[2];
	clock_gettime(CLOCK_REALTIME, &old[0]);
	old[0].tv_sec -= 120;
	old[1] = old[0];
	while (d != NULL && (e = readdir(d)) != NULL) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (strstr(e->d_name, ".log") != NULL) {
			utimensat(AT_FDCWD, path, old, 0);
		}
	}
	closedir(d);
	/* A persister's start runs retention (as does each second). */
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_persister_close(ps);
	uint64_t b = disk_bytes(q, "b", &nseg);
	CU_ASSERT(b <= 256 * 1024 + 64 * 1024 + 8 * 1024);
	CU_ASSERT(nseg >= 2);
	(void)disk_bytes(q, "a", &nseg);
	CU_ASSERT_EQUAL(nseg, 1); /* only the one being written */
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "b", 0, &pi));
	CU_ASSERT_EQUAL(pi.end, 20000); /* 1.28 MB went in */
	CU_ASSERT(pi.log_start > 0 && pi.log_start < pi.end);
	/* Earliest now means the new log start, read from disk. */
	shmq_consumer_t *c = th_reader(q, "b", 0);
	shmq_record_t r;
	char buf[16];
	uint64_t v;
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	memcpy(&v, buf, 8);
	CU_ASSERT_EQUAL(r.offset, pi.log_start);
	CU_ASSERT_EQUAL(v, pi.log_start);
	shmq_consumer_close(c);
	/* Below the log start, reset ERROR says so. */
	shmq_consumer_options_t co;
	shmq_consumer_options_init(&co);
	co.reset = SHMQ_RESET_ERROR;
	const uint32_t p0 = 0;
	TH_OK(shmq_consumer_open(q, "b", &co, &c));
	TH_OK(shmq_assign(c, &p0, 1));
	TH_OK(shmq_seek(c, 0, 0));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EOUTOFRANGE);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* A producer process appending ids 0.. while the parent reads. */
struct appender {
	char home[SHMQ_DIR_MAX];
	uint64_t n;
};

static int
appender_main(void *arg)
{
	struct appender *a = arg;
	shmq_t *q = th_attach_home(a->home);
	shmq_producer_t *p = NULL;
	if (q == NULL || shmq_producer_open(q, "t", NULL, &p) != 0) {
		return 2;
	}
	uint8_t val[64] = { 0 };
	for (uint64_t v = 0; v < a->n; v++) {
		memcpy(val, &v, 8);
		shmq_msg_t m = {
			.value = val, .value_len = 64, .partition = 0
		};
		if (shmq_send(p, &m) != 0) {
			return 3;
		}
	}
	shmq_producer_close(p);
	return 0;
}

/* While a producer appends, a reader falls out of the ring again and
 * again (it waits until the log has run thousands of records past it:
 * a 64 KiB ring holds about 500), reads its way back from the segments
 * into the ring, and must see every record once, in order. */
static void
test_persist_reader_falls_out_of_the_ring_and_back_while_appending(void)
{
	shmq_t *q = th_attach();
	struct appender a;
	snprintf(a.home, sizeof a.home, "%s", shmq_home(q));
	a.n = 60000;
	th_topic_persistent(q, "t", SHMQ_FSYNC_NEVER);
	pid_t ps = th_fork(th_persister_main, a.home);
	th_wait_persister(q, true);
	pid_t pr = th_fork(appender_main, &a);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	uint64_t want = 0;
	unsigned falls = 0;
	while (want < a.n) {
		/* Read a stretch, then let the log run away. */
		for (unsigned k = 0; k < 700 && want < a.n; k++, want++) {
			shmq_record_t r;
			uint8_t buf[64];
			uint64_t v;
			TH_OK(shmq_recv(c, buf, sizeof buf, &r, 5000));
			memcpy(&v, buf, 8);
			CU_ASSERT_EQUAL_FATAL(r.offset, want);
			CU_ASSERT_EQUAL_FATAL(v, want);
		}
		shmq_partition_info_t pi;
		int64_t deadline = th_mono_ms() + 10000;
		do {
			TH_OK(shmq_partition_info(q, "t", 0, &pi));
		} while (pi.end < want + 3000 && pi.end < a.n &&
		    th_mono_ms() < deadline && sched_yield() == 0);
		if (pi.end >= want + 3000) {
			falls++;
		}
	}
	CU_ASSERT(falls >= 10);
	CU_ASSERT_EQUAL(th_wait(pr), 0);
	shmq_consumer_close(c);
	kill(ps, SIGKILL);
	CU_ASSERT(th_wait(ps) == 128 + SIGKILL);
	th_destroy(q);
}

/* A zero-copy view overwritten while borrowed, on a persistent topic:
 * SHMQ_ESTALE, and the same record again, from the segments. */
static void
test_persist_stale_view_is_read_again_from_disk(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	th_topic_persistent(q, "t", SHMQ_FSYNC_NEVER);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t v = 0;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	(void)shmq_persister_poll(ps, 0);
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_record_t r, r2;
	TH_OK(shmq_peek(c, &r, 1000));
	CU_ASSERT_EQUAL_FATAL(r.offset, 0);
	for (v = 1; v < 3000; v++) { /* several rings */
		TH_OK(shmq_send(p, &m));
		if (v % 64 == 0) {
			(void)shmq_persister_poll(ps, 0);
		}
	}
	TH_FAIL(shmq_release(c, &r), SHMQ_ESTALE);
	TH_OK(shmq_peek(c, &r2, 1000));
	CU_ASSERT_EQUAL(r2.offset, 0);
	memcpy(&v, r2.value, 8);
	CU_ASSERT_EQUAL(v, 0);
	TH_OK(shmq_release(c, &r2));
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* The persister cannot open a partition (its first segment's name is
 * taken by a directory): producers waiting for space on it hear of it
 * at once (SHMQ_EFAILED), rather than waiting out their timeout. */
static void
test_persist_partition_the_persister_cannot_open_fails_sends(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	char path[SHMQ_PATH_MAX + 64];
	th_topic_persistent(q, "t", SHMQ_FSYNC_NEVER);
	/* The ring first (built while the disk is empty), then the
	 * obstacle, then the persister. */
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 5000);
	snprintf(path, sizeof path, "%s/data", shmq_home(q));
	(void)mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/data/t", shmq_home(q));
	(void)mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/data/t/0", shmq_home(q));
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/data/t/0/00000000000000000000.log",
	    shmq_home(q));
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	int rc = 0;
	int64_t t0 = th_mono_ms();
	for (uint64_t v = 0; v < 5000 && rc == 0; v++) {
		shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
		rc = shmq_send(p, &m);
	}
	CU_ASSERT_EQUAL(rc, SHMQ_EFAILED);
	CU_ASSERT(th_mono_ms() - t0 < 4000); /* not the 5 s timeout */
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT(pi.persist_err != 0);
	shmq_producer_close(p);
	shmq_persister_close(ps);
	th_destroy(q);
}

/* An overrun reader of a persistent topic whose offsets retention
 * deleted meanwhile: SHMQ_ELAPPED with the exact count, then the log
 * start. */
static void
test_persist_reader_overrun_past_retention_is_told_what_it_lost(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	c.overflow = SHMQ_OVERFLOW_DROP;
	c.segment_bytes = 64 * 1024;
	c.retention_bytes = 128 * 1024;
	TH_OK(shmq_topic_create(q, "t", &c));
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t v = 0;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	(void)shmq_persister_poll(ps, 0);
	shmq_consumer_t *cs = th_reader(q, "t", 0);
	shmq_record_t r;
	char buf[16];
	TH_OK(shmq_recv(cs, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	for (v = 1; v < 10000; v++) {
		TH_OK(shmq_send(p, &m));
		if (v % 64 == 0) {
			(void)shmq_persister_poll(ps, 0);
		}
	}
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_persister_close(ps); /* the next open runs retention */
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_FATAL(pi.log_start > 1);
	TH_FAIL(shmq_recv(cs, buf, sizeof buf, &r, 1000), SHMQ_ELAPPED);
	CU_ASSERT_EQUAL(r.offset, 1);
	CU_ASSERT_EQUAL(r.lost, pi.log_start - 1);
	TH_OK(shmq_recv(cs, buf, sizeof buf, &r, 1000));
	memcpy(&v, buf, 8);
	CU_ASSERT_EQUAL(r.offset, pi.log_start);
	CU_ASSERT_EQUAL(v, pi.log_start);
	shmq_consumer_close(cs);
	shmq_producer_close(p);
	shmq_persister_close(ps);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_persist_partition_the_persister_cannot_open_fails_sends",
	    test_persist_partition_the_persister_cannot_open_fails_sends },
	{ "test_persist_reader_overrun_past_retention_is_told_what_it_lost",
	    test_persist_reader_overrun_past_retention_is_told_what_it_lost },
	{ "test_persist_stale_view_is_read_again_from_disk",
	    test_persist_stale_view_is_read_again_from_disk },
	{ "test_persist_reader_falls_out_of_the_ring_and_back_while_appending",
	    test_persist_reader_falls_out_of_the_ring_and_back_while_appending },
	{ "test_persist_retention_deletes_old_segments_by_bytes_and_age",
	    test_persist_retention_deletes_old_segments_by_bytes_and_age },
	{ "test_persist_signals_do_not_fail_the_partition",
	    test_persist_signals_do_not_fail_the_partition },
	{ "test_persist_new_persister_clears_a_dead_ones_error",
	    test_persist_new_persister_clears_a_dead_ones_error },
	{ "test_persist_dead_ones_error_is_gone_during_recovery",
	    test_persist_dead_ones_error_is_gone_during_recovery },
	{ "test_persist_failed_partition_open_leaks_no_descriptor",
	    test_persist_failed_partition_open_leaks_no_descriptor },
	{ "test_persist_reader_past_aborted_records_continues_in_the_ring",
	    test_persist_reader_past_aborted_records_continues_in_the_ring },
	{ "test_persist_group_offsets_survive_a_reboot",
	    test_persist_group_offsets_survive_a_reboot },
	{ "test_persist_consumer_reads_old_offsets_from_segments",
	    test_persist_consumer_reads_old_offsets_from_segments },
	{ "test_persist_durable_acks_need_a_persister_and_a_persistent_topic",
	    test_persist_durable_acks_need_a_persister_and_a_persistent_topic },
	{ "test_persist_second_persister_is_refused_with_the_first_ones_pid",
	    test_persist_second_persister_is_refused_with_the_first_ones_pid },
	{ "test_persist_new_topic_is_picked_up_at_the_next_poll",
	    test_persist_new_topic_is_picked_up_at_the_next_poll },
	{ "test_persist_kill_loop_loses_no_durable_ack",
	    test_persist_kill_loop_loses_no_durable_ack },
	{ "test_persist_torn_tail_is_cut_at_every_length_and_rewritten",
	    test_persist_torn_tail_is_cut_at_every_length_and_rewritten },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_persist = { "persist", tests };
