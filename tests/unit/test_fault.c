/*
 * test_fault.c — fail at N (STYLE.md §6 item 5).  shm_linux.c routes
 * every OS operation that can fail through one counter; for N = 1, 2, ...
 * the Nth operation fails (once, or from then on) while a script runs:
 * create a topic, open a producer, send 10 records, open a group
 * consumer, read them, commit, close all.  The loop ends at the first N
 * the script no longer reaches.
 *
 * During the run every call must succeed or return a negative error,
 * and whatever is read must be exactly what was sent.  After each run
 * the fault is disarmed, the instance detached and attached again, and
 * checked: no half topic, every record whose send succeeded readable
 * once and in order, group offsets as committed, no member or client
 * slot left behind, no temp file left, no file descriptor leaked, and
 * the instance still usable.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING SHMQ_RING_SIZE_MIN
#define PARTS 2u
#define RECS 10u
#define VLEN 40u
#define MAX_N 1000
#define BUFSZ 1024

struct run {
	int create_rc;
	int prod_rc;
	int send_rc[RECS];
	uint64_t send_off[RECS];
	int cons_rc;
	int commit_rc;
	uint32_t sent[PARTS]; /* sends that succeeded, per partition */
	uint32_t read[PARTS]; /* records the run's consumer read */
	int bad; /* calls that broke the contract */
};

static void
fill(uint8_t *v, uint32_t idx)
{
	memcpy(v, &idx, sizeof idx);
	for (size_t i = sizeof idx; i < VLEN; i++) {
		v[i] = (uint8_t)(idx + i);
	}
}

static bool
holds(const shmq_record_t *r, uint32_t idx)
{
	uint8_t want[VLEN];
	fill(want, idx);
	return r->key_len == 0 && r->value_len == VLEN &&
	    memcmp(r->value, want, VLEN) == 0;
}

/* Record i goes to partition i % PARTS. */
static uint32_t
part_of(uint32_t i)
{
	return i % PARTS;
}

/* The idx of the k-th successful send to partition part, or UINT32_MAX. */
static uint32_t
kth_sent(const struct run *run, uint32_t part, uint32_t k)
{
	for (uint32_t i = 0; i < RECS; i++) {
		if (part_of(i) == part && run->send_rc[i] == 0 && k-- == 0) {
			return i;
		}
	}
	return UINT32_MAX;
}

/* A contract breach: a positive return, or success with wrong data. */
static void
breach(struct run *run, const char *what, int rc)
{
	fprintf(stderr, "\n    %s: %d (%s)", what, rc, shmq_strerror(rc));
	run->bad++;
}

static void
check_rc(struct run *run, const char *what, int rc)
{
	if (rc > 0) {
		breach(run, what, rc);
	}
}

/* Read everything c offers (timeout 0) and check it against the sends:
 * from partition p, the records from[p], from[p] + 1, ... in order.
 * Adds what was read to got[]. */
static void
drain(struct run *run, shmq_consumer_t *c, const uint32_t *from, uint32_t *got)
{
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	int rc;
	uint32_t n[PARTS] = { 0 };
	while ((rc = shmq_recv(c, buf, sizeof buf, &r, 0)) == 0) {
		if (r.partition >= PARTS) {
			breach(run, "recv: partition out of range", rc);
			break;
		}
		uint32_t k = from[r.partition] + n[r.partition];
		uint32_t idx = kth_sent(run, r.partition, k);
		if (idx == UINT32_MAX || r.offset != run->send_off[idx] ||
		    !holds(&r, idx)) {
			breach(
			    run, "recv: a record that was not sent there", rc);
			break;
		}
		n[r.partition]++;
	}
	if (rc != -EAGAIN && rc != 0) {
		breach(run, "recv ended with", rc);
	}
	for (uint32_t p = 0; p < PARTS; p++) {
		got[p] += n[p];
	}
}

static void
script(shmq_t *q, struct run *run)
{
	shmq_topic_config_t cfg;
	shmq_producer_options_t po;
	shmq_consumer_options_t co;
	shmq_producer_t *p = NULL;
	shmq_consumer_t *c = NULL;
	const uint32_t zero[PARTS] = { 0 };

	memset(run, 0, sizeof *run);
	shmq_topic_config_init(&cfg);
	cfg.partitions = PARTS;
	cfg.ring_size = RING;
	/* The default, said out loud: the loop runs what a topic made
	 * without choosing does.  Ten records need no persister. */
	cfg.durability = SHMQ_DURABILITY_PERSISTENT;
	run->create_rc = shmq_topic_create(q, "t", &cfg);
	check_rc(run, "topic_create", run->create_rc);

	shmq_producer_options_init(&po);
	po.timeout_ms = 100;
	run->prod_rc = shmq_producer_open(q, "t", &po, &p);
	check_rc(run, "producer_open", run->prod_rc);
	if ((run->prod_rc == 0) != (p != NULL)) {
		breach(run, "producer_open: handle and result disagree",
		    run->prod_rc);
	}
	for (uint32_t i = 0; i < RECS; i++) {
		uint8_t v[VLEN];
		shmq_msg_t m = { 0 };
		fill(v, i);
		m.value = v;
		m.value_len = VLEN;
		m.partition = (int32_t)part_of(i);
		run->send_rc[i] = p != NULL ? shmq_send(p, &m) : -EBADF;
		check_rc(run, "send", run->send_rc[i]);
		if (run->send_rc[i] == 0) {
			if (m.partition != (int32_t)part_of(i) ||
			    m.offset != run->sent[part_of(i)]) {
				breach(
				    run, "send: wrong partition or offset", 0);
			}
			run->send_off[i] = m.offset;
			run->sent[part_of(i)]++;
		}
	}

	shmq_consumer_options_init(&co);
	co.group = "g";
	run->cons_rc = shmq_consumer_open(q, "t", &co, &c);
	check_rc(run, "consumer_open", run->cons_rc);
	if ((run->cons_rc == 0) != (c != NULL)) {
		breach(run, "consumer_open: handle and result disagree",
		    run->cons_rc);
	}
	if (c != NULL) {
		drain(run, c, zero, run->read);
		for (uint32_t i = 0; i < PARTS; i++) {
			/* A member reads only OS-free memory: all of it. */
			if (run->read[i] != run->sent[i]) {
				breach(run, "consumer missed records", 0);
			}
		}
		run->commit_rc = shmq_consumer_commit(c);
		check_rc(run, "commit", run->commit_rc);
	} else {
		run->commit_rc = -EBADF;
	}
	shmq_consumer_close(c);
	shmq_producer_close(p);
}

/* Names containing ".tmp." in dir (a temp file somebody left). */
static int
temp_files(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".tmp.") != NULL) {
			fprintf(stderr, "\n    left behind: %s/%s", dir,
			    e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Check the instance after a run, through a fresh attach. */
static void
verify(shmq_t *q, struct run *run, const char *tag)
{
	shmq_topic_config_t cfg;
	shmq_consumer_t *c = NULL;
	shmq_producer_t *p = NULL;
	shmq_group_partition_t gp[PARTS];
	shmq_consumer_options_t co;
	char topics[SHMQ_PATH_MAX];
	const uint32_t all[PARTS] = { 0, 1 };
	const uint32_t zero[PARTS] = { 0 };
	uint32_t got[PARTS] = { 0 }, members = 0;
	int bad = run->bad;

	snprintf(topics, sizeof topics, "%s/topics", shmq_home(q));
	CU_ASSERT_EQUAL(temp_files(shmq_shm_dir(q)), 0);
	CU_ASSERT_EQUAL(temp_files(shmq_home(q)), 0);
	CU_ASSERT_EQUAL(temp_files(topics), 0);

	/* No half topic: absent, or complete. */
	int rc = shmq_topic_describe(q, "t", &cfg);
	if (run->create_rc != 0) {
		if (rc != -ENOENT) {
			fprintf(stderr, "\n    %s: failed create left %s", tag,
			    shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL(rc, -ENOENT);
		return;
	}
	TH_OK(rc);
	CU_ASSERT_EQUAL(cfg.partitions, PARTS);
	CU_ASSERT_EQUAL(cfg.ring_size, RING);
	CU_ASSERT_EQUAL(cfg.overflow, SHMQ_OVERFLOW_BLOCK);

	/* Every successful send, once, in order — and nothing else. */
	TH_OK(shmq_consumer_open(q, "t", NULL, &c));
	if (c != NULL) {
		TH_OK(shmq_assign(c, all, PARTS));
		drain(run, c, zero, got);
		shmq_consumer_close(c);
		c = NULL;
	}
	for (uint32_t i = 0; i < PARTS; i++) {
		CU_ASSERT_EQUAL(got[i], run->sent[i]);
	}

	/* The group: offsets as committed, no member left behind. */
	ssize_t n = shmq_group_describe(q, "g", "t", gp, PARTS);
	if (n == -ENOENT) {
		CU_ASSERT(run->cons_rc != 0);
	} else {
		CU_ASSERT_EQUAL(n, (ssize_t)PARTS);
		TH_OK(shmq_group_members(q, "g", "t", &members));
		CU_ASSERT_EQUAL(members, 0);
		for (uint32_t i = 0; i < PARTS && n == PARTS; i++) {
			uint64_t want = run->commit_rc == 0 ? run->read[i] : 0;
			CU_ASSERT_EQUAL(gp[i].committed, want);
			CU_ASSERT_EQUAL(gp[i].owner, -1);
		}
	}
	for (uint32_t i = 0; i < PARTS; i++) {
		shmq_partition_info_t info;
		rc = shmq_partition_info(q, "t", i, &info);
		TH_OK(rc);
		if (rc == 0) {
			/* No client slot held by a handle that failed. */
			CU_ASSERT_EQUAL(info.producers, 0);
			CU_ASSERT_EQUAL(info.consumers, 0);
			CU_ASSERT_EQUAL(info.end, run->sent[i]);
		}
	}

	/* Still usable: one more record per partition reaches a member of
	 * the group, after whatever the group had not committed. */
	TH_OK(shmq_producer_open(q, "t", NULL, &p));
	for (uint32_t i = 0; p != NULL && i < PARTS; i++) {
		uint8_t v[VLEN];
		shmq_msg_t m = { 0 };
		fill(v, RECS + i);
		m.value = v;
		m.value_len = VLEN;
		m.partition = (int32_t)i;
		TH_OK(shmq_send(p, &m));
		CU_ASSERT_EQUAL(m.offset, run->sent[i]);
	}
	shmq_producer_close(p);
	shmq_consumer_options_init(&co);
	co.group = "g";
	TH_OK(shmq_consumer_open(q, "t", &co, &c));
	if (c != NULL) {
		uint8_t buf[BUFSZ];
		shmq_record_t r;
		uint32_t total = 0, want = 0;
		for (uint32_t i = 0; i < PARTS; i++) {
			want += run->sent[i] + 1 -
			    (run->commit_rc == 0 ? run->read[i] : 0);
		}
		while (shmq_recv(c, buf, sizeof buf, &r, 0) == 0) {
			total++;
		}
		CU_ASSERT_EQUAL(total, want);
		shmq_consumer_close(c);
	}
	CU_ASSERT_EQUAL(run->bad, bad);
}

/* One fail-at-N loop; returns how many runs it took. */
static long
fault_loop(int err, bool persistent)
{
	char tag[64], home[SHMQ_DIR_MAX];
	long n;
	snprintf(tag, sizeof tag, "%s%s", shmq_strerror(err),
	    persistent ? " persistent" : " once");
	for (n = 1; n < MAX_N; n++) {
		struct run run;
		shmq_options_t o;
		shmq_t *q = th_attach();
		int fds = th_count_fds();

		shmqi_fault_set(n, err, persistent);
		script(q, &run);
		long hits = shmqi_fault_count();
		shmqi_fault_set(0, 0, false);
		if (run.bad != 0) {
			fprintf(stderr, "\n    %s, fail at %ld: %d breaches",
			    tag, n, run.bad);
		}
		CU_ASSERT_EQUAL(run.bad, 0);
		/* Every handle closed: every descriptor given back. */
		CU_ASSERT_EQUAL(th_count_fds(), fds);

		snprintf(home, sizeof home, "%s", shmq_home(q));
		shmq_detach(q);
		shmq_options_init(&o);
		o.reclaim_ms = 50;
		q = NULL;
		TH_OK(shmq_attach(home, &o, &q));
		if (q == NULL) {
			break;
		}
		verify(q, &run, tag);
		th_destroy(q);
		if (hits < n) {
			/* The script finished before operation n. */
			CU_ASSERT_EQUAL(run.create_rc, 0);
			CU_ASSERT_EQUAL(run.prod_rc, 0);
			CU_ASSERT_EQUAL(run.cons_rc, 0);
			CU_ASSERT_EQUAL(run.commit_rc, 0);
			break;
		}
	}
	CU_ASSERT(n < MAX_N);
	fprintf(stderr, "[%s: %ld runs] ", tag, n);
	return n;
}

static void
test_fault_eio_once_at_every_step_leaves_a_consistent_instance(void)
{
	fault_loop(-EIO, false);
}

static void
test_fault_eio_from_every_step_on_leaves_a_consistent_instance(void)
{
	fault_loop(-EIO, true);
}

static void
test_fault_enospc_once_at_every_step_leaves_a_consistent_instance(void)
{
	fault_loop(-ENOSPC, false);
}

static void
test_fault_enospc_from_every_step_on_leaves_a_consistent_instance(void)
{
	fault_loop(-ENOSPC, true);
}

static void
test_fault_emfile_once_at_every_step_leaves_a_consistent_instance(void)
{
	fault_loop(-EMFILE, false);
}

static void
test_fault_emfile_from_every_step_on_leaves_a_consistent_instance(void)
{
	fault_loop(-EMFILE, true);
}

static CU_TestInfo tests[] = {
	{ "test_fault_eio_once_at_every_step_leaves_a_consistent_instance",
	    test_fault_eio_once_at_every_step_leaves_a_consistent_instance },
	{ "test_fault_eio_from_every_step_on_leaves_a_consistent_instance",
	    test_fault_eio_from_every_step_on_leaves_a_consistent_instance },
	{ "test_fault_enospc_once_at_every_step_leaves_a_consistent_instance",
	    test_fault_enospc_once_at_every_step_leaves_a_consistent_instance },
	{ "test_fault_enospc_from_every_step_on_leaves_a_consistent_instance",
	    test_fault_enospc_from_every_step_on_leaves_a_consistent_instance },
	{ "test_fault_emfile_once_at_every_step_leaves_a_consistent_instance",
	    test_fault_emfile_once_at_every_step_leaves_a_consistent_instance },
	{ "test_fault_emfile_from_every_step_on_leaves_a_consistent_instance",
	    test_fault_emfile_from_every_step_on_leaves_a_consistent_instance },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_fault = { "fault", tests };
