/*
 * test_group.c — consumer groups coordinated in shared memory: sticky
 * assignment and rebalancing, one owner per partition, death noticed at
 * once (kill -9), redelivery of what was not committed, committed offsets
 * across restarts, auto-commit, the overflow policies as groups see
 * them, administration, and the member limit.
 *
 * Members act on membership changes when they poll, so a test lets each
 * member poll (a peek that finds nothing) before looking at assignments.
 * Child members are real processes: they join, report over a pipe, then
 * block on a second pipe until they are killed or released.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING SHMQ_RING_SIZE_MIN
#define DEADLINE_MS 2000
#define PROMPT_MS 1000 /* "at once": well under any session timeout */
#define MAXP 16
#define BUFSZ 16384

/* ---- helpers ------------------------------------------------------------ */

static void
fill(uint8_t *v, size_t len, uint32_t idx)
{
	memcpy(v, &idx, sizeof idx);
	for (size_t i = sizeof idx; i < len; i++) {
		v[i] = (uint8_t)(idx * 31u + i);
	}
}

/* Does r carry the value fill() made for idx? */
static bool
holds(const shmq_record_t *r, uint32_t idx, size_t len)
{
	uint8_t want[BUFSZ];
	if (r->value_len != len || r->key_len != 0 || len > sizeof want) {
		return false;
	}
	fill(want, len, idx);
	return memcmp(r->value, want, len) == 0;
}

static shmq_consumer_t *
member(shmq_t *q, const char *topic, const char *group, unsigned flags)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = group;
	o.flags = flags;
	TH_OK(shmq_consumer_open(q, topic, &o, &c));
	return c;
}

/* Send value idx (len bytes) to partition part. */
static int
send_idx(shmq_producer_t *p, int32_t part, uint32_t idx, size_t len)
{
	uint8_t v[BUFSZ];
	shmq_msg_t m = { 0 };
	fill(v, len, idx);
	m.value = v;
	m.value_len = len;
	m.partition = part;
	return shmq_send(p, &m);
}

/* Records first..first+n-1 (values) into partition part. */
static void
produce(shmq_t *q, const char *topic, int32_t part, uint32_t first, uint32_t n,
    size_t len)
{
	shmq_producer_t *p = th_producer_opts(q, topic, SHMQ_ACKS_LEADER, -1);
	for (uint32_t i = 0; i < n; i++) {
		TH_OK(send_idx(p, part, first + i, len));
	}
	shmq_producer_close(p);
}

/* A poll that finds nothing: the member acts on membership changes. */
static void
settle(shmq_consumer_t *c)
{
	shmq_record_t r;
	TH_FAIL(shmq_peek(c, &r, 0), -EAGAIN);
}

/* The member's partitions (shmq_assignment) as a bit mask. */
static uint32_t
owned_mask(shmq_consumer_t *c)
{
	uint32_t parts[MAXP], mask = 0;
	ssize_t n = shmq_assignment(c, parts, MAXP);
	CU_ASSERT(n >= 0 && n <= MAXP);
	for (ssize_t i = 0; i < n && i < MAXP; i++) {
		mask |= 1u << parts[i];
	}
	return mask;
}

/* Is the assignment complete and balanced: every partition owned by
 * exactly one member, each member at P/n or P/n + 1? */
static bool
balanced(shmq_consumer_t **cs, size_t n, uint32_t nparts)
{
	uint32_t seen = 0, live = 0;
	for (size_t i = 0; i < n; i++) {
		live += cs[i] != NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (cs[i] == NULL) {
			continue;
		}
		uint32_t m = owned_mask(cs[i]);
		uint32_t cnt = (uint32_t)__builtin_popcount(m);
		if ((m & seen) != 0 || cnt < nparts / live ||
		    cnt > nparts / live + 1) {
			return false;
		}
		seen |= m;
	}
	return seen == (1u << nparts) - 1;
}

/* Let every member poll until the assignment is balanced; returns the
 * time it took in ms, or -1 if it did not get there in DEADLINE_MS. */
static int64_t
settle_all(shmq_consumer_t **cs, size_t n, uint32_t nparts)
{
	int64_t t0 = th_mono_ms();
	do {
		for (size_t i = 0; i < n; i++) {
			if (cs[i] != NULL) {
				shmq_record_t r;
				TH_FAIL(shmq_peek(cs[i], &r, 1), -EAGAIN);
			}
		}
		if (balanced(cs, n, nparts)) {
			return th_mono_ms() - t0;
		}
	} while (th_mono_ms() - t0 < DEADLINE_MS);
	return -1;
}

static ssize_t
describe(shmq_t *q, const char *group, const char *topic,
    shmq_group_partition_t *gp)
{
	ssize_t n = shmq_group_describe(q, group, topic, gp, MAXP);
	CU_ASSERT(n > 0 && n <= MAXP);
	return n;
}

/* ---- child members ------------------------------------------------------ */

enum kid_job {
	KID_JOIN, /* join, report the assignment */
	KID_CONSUME, /* join, read n records, commit after k */
	KID_COMMIT, /* join, read n records, commit, close, exit */
};

struct ready_msg {
	int32_t rc;
	int32_t pid;
	uint32_t nparts;
	uint32_t parts[MAXP];
	uint32_t read;
};

struct kid {
	char home[SHMQ_DIR_MAX];
	const char *topic;
	const char *group;
	enum kid_job job;
	uint32_t n, k;
	size_t len;
	int ready[2];
	int hold[2];
	pid_t pid;
};

static int
kid_main(void *arg)
{
	struct kid *k = arg;
	struct ready_msg msg = { 0 };
	shmq_options_t o;
	shmq_consumer_options_t co;
	shmq_t *q = NULL;
	shmq_consumer_t *c = NULL;
	static uint8_t buf[BUFSZ];
	char b;

	/* Drop every descriptor inherited from the parent (its handles'
	 * OFD locks among them) except our two pipe ends. */
	int lo = k->ready[1] < k->hold[0] ? k->ready[1] : k->hold[0];
	int hi = k->ready[1] < k->hold[0] ? k->hold[0] : k->ready[1];
	close_range(3, (unsigned)lo - 1, 0);
	close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0u, 0);
	msg.pid = (int32_t)getpid();
	shmq_options_init(&o);
	o.reclaim_ms = 50;
	shmq_consumer_options_init(&co);
	co.group = k->group;
	msg.rc = shmq_attach(k->home, &o, &q);
	if (msg.rc == 0) {
		msg.rc = shmq_consumer_open(q, k->topic, &co, &c);
	}
	for (uint32_t i = 0; msg.rc == 0 && k->job != KID_JOIN && i < k->n;
	     i++) {
		shmq_record_t r;
		msg.rc = shmq_recv(c, buf, sizeof buf, &r, DEADLINE_MS);
		if (msg.rc == 0 && (r.offset != i || !holds(&r, i, k->len))) {
			msg.rc = -EBADMSG;
		}
		if (msg.rc == 0) {
			msg.read++;
		}
		if (msg.rc == 0 && k->job == KID_CONSUME && i + 1 == k->k) {
			msg.rc = shmq_consumer_commit(c);
		}
	}
	if (msg.rc == 0 && k->job == KID_COMMIT) {
		msg.rc = shmq_consumer_commit(c);
	}
	if (msg.rc == 0) {
		ssize_t n = shmq_assignment(c, msg.parts, MAXP);
		msg.rc = n < 0 ? (int32_t)n : 0;
		msg.nparts = n < 0 ? 0 : (uint32_t)n;
	}
	if (k->job == KID_COMMIT) {
		shmq_consumer_close(c);
		c = NULL;
	}
	if (write(k->ready[1], &msg, sizeof msg) != (ssize_t)sizeof msg) {
		return 3;
	}
	/* Block until killed, or until the parent closes the pipe. */
	while (read(k->hold[0], &b, 1) < 0 && errno == EINTR) {
	}
	shmq_consumer_close(c);
	shmq_detach(q);
	return msg.rc == 0 ? 0 : 1;
}

/* Start a child member and wait for its report. */
static void
kid_start(struct kid *k, shmq_t *q, const char *topic, const char *group,
    enum kid_job job, struct ready_msg *msg)
{
	snprintf(k->home, sizeof k->home, "%s", shmq_home(q));
	k->topic = topic;
	k->group = group;
	k->job = job;
	CU_ASSERT_FATAL(pipe(k->ready) == 0);
	CU_ASSERT_FATAL(pipe(k->hold) == 0);
	k->pid = th_fork(kid_main, k);
	close(k->ready[1]);
	close(k->hold[0]);
	memset(msg, 0, sizeof *msg);
	ssize_t got = read(k->ready[0], msg, sizeof *msg);
	close(k->ready[0]);
	CU_ASSERT_EQUAL_FATAL(got, (ssize_t)sizeof *msg);
	if (msg->rc != 0) {
		fprintf(stderr, "child member: %s\n", shmq_strerror(msg->rc));
	}
	CU_ASSERT_EQUAL(msg->rc, 0);
}

static void
kid_kill(struct kid *k)
{
	kill(k->pid, SIGKILL);
	CU_ASSERT_EQUAL(th_wait(k->pid), 128 + SIGKILL);
	close(k->hold[1]);
}

/* Let the child close and exit normally. */
static void
kid_release(struct kid *k)
{
	close(k->hold[1]);
	CU_ASSERT_EQUAL(th_wait(k->pid), 0);
}

static uint32_t
parts_mask(const struct ready_msg *m)
{
	uint32_t mask = 0;
	for (uint32_t i = 0; i < m->nparts && i < MAXP; i++) {
		mask |= 1u << m->parts[i];
	}
	return mask;
}

/* ---- assignment --------------------------------------------------------- */

static void
test_group_rebalance_splits_partitions_and_keeps_the_lower_ones(void)
{
	shmq_t *q = th_attach();
	shmq_group_partition_t gp[MAXP];
	th_topic(q, "t", 4, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *a = member(q, "t", "g", 0);
	settle(a);
	CU_ASSERT_EQUAL(owned_mask(a), 0xfu);

	/* b joins: a keeps everything until it polls, and b takes
	 * nothing a still owns. */
	shmq_consumer_t *b = member(q, "t", "g", 0);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 4);
	for (int p = 0; p < 4; p++) {
		CU_ASSERT_EQUAL(gp[p].owner, a->group.slot);
	}
	CU_ASSERT_EQUAL(owned_mask(b), 0u);
	settle(a);
	CU_ASSERT_EQUAL(owned_mask(a), 0x3u); /* sticky: keeps 0 and 1 */
	settle(b);
	CU_ASSERT_EQUAL(owned_mask(b), 0xcu);

	/* A third member: quotas 2, 1, 1 by slot; each keeps its lowest. */
	shmq_consumer_t *c = member(q, "t", "g", 0);
	shmq_consumer_t *all[3] = { a, b, c };
	CU_ASSERT(settle_all(all, 3, 4) >= 0);
	CU_ASSERT_EQUAL(owned_mask(a), 0x3u);
	CU_ASSERT_EQUAL(owned_mask(b), 0x4u);
	CU_ASSERT_EQUAL(owned_mask(c), 0x8u);

	/* A member that leaves hands its partitions on. */
	shmq_consumer_close(b);
	all[1] = NULL;
	CU_ASSERT(settle_all(all, 3, 4) >= 0);
	CU_ASSERT_EQUAL(owned_mask(a), 0x3u);
	CU_ASSERT_EQUAL(owned_mask(c), 0xcu);
	shmq_consumer_close(a);
	settle(c);
	CU_ASSERT_EQUAL(owned_mask(c), 0xfu);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_group_odd_partition_count_gives_the_extra_one_to_the_lowest_slot(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 5, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *cs[2];
	cs[0] = member(q, "t", "g", 0);
	cs[1] = member(q, "t", "g", 0);
	CU_ASSERT(settle_all(cs, 2, 5) >= 0);
	CU_ASSERT_EQUAL(owned_mask(cs[0]), 0x7u);
	CU_ASSERT_EQUAL(owned_mask(cs[1]), 0x18u);
	shmq_consumer_close(cs[0]);
	shmq_consumer_close(cs[1]);
	th_destroy(q);
}

#define OWN_P 8u
#define OWN_HANDLES 8
#define OWN_KIDS 3

/* Every member's own view agrees with the shared owner fields, and no
 * partition is in two members' views. */
static void
check_owners(shmq_t *q, shmq_consumer_t **hs, struct kid *kids,
    struct ready_msg *km, bool *alive)
{
	shmq_group_partition_t gp[MAXP];
	uint32_t view[OWN_HANDLES], seen = 0;
	for (int i = 0; i < OWN_HANDLES; i++) {
		view[i] = hs[i] != NULL ? owned_mask(hs[i]) : 0;
	}
	CU_ASSERT_EQUAL_FATAL(describe(q, "g", "t", gp), (ssize_t)OWN_P);
	for (int i = 0; i < OWN_HANDLES; i++) {
		CU_ASSERT_EQUAL(view[i] & seen, 0u);
		seen |= view[i];
		for (uint32_t p = 0; p < OWN_P; p++) {
			if (view[i] & (1u << p)) {
				CU_ASSERT_EQUAL(
				    gp[p].owner, hs[i]->group.slot);
				CU_ASSERT_EQUAL(gp[p].owner_pid, getpid());
			}
		}
	}
	for (int k = 0; k < OWN_KIDS; k++) {
		if (!alive[k]) {
			continue;
		}
		uint32_t kv = parts_mask(&km[k]);
		CU_ASSERT_EQUAL(kv & seen, 0u);
		seen |= kv;
		for (uint32_t p = 0; p < OWN_P; p++) {
			if (kv & (1u << p)) {
				CU_ASSERT_EQUAL(gp[p].owner_pid, kids[k].pid);
			}
		}
	}
	/* And no owner field names a member that does not know it. */
	for (uint32_t p = 0; p < OWN_P; p++) {
		if (gp[p].owner >= 0) {
			CU_ASSERT(seen & (1u << p));
		}
	}
}

static void
test_group_partition_never_has_two_owners_across_joins_leaves_kills(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_t *hs[OWN_HANDLES] = { 0 };
	struct kid kids[OWN_KIDS];
	struct ready_msg km[OWN_KIDS];
	bool alive[OWN_KIDS] = { 0 };
	unsigned seed = th_seed("owners");
	unsigned steps = th_soak(80);

	th_topic(q, "t", OWN_P, RING, SHMQ_OVERFLOW_BLOCK);
	hs[0] = member(q, "t", "g", 0);
	for (unsigned s = 0; s < steps; s++) {
		int what = rand_r(&seed) % 6;
		int i = rand_r(&seed) % OWN_HANDLES;
		int k = rand_r(&seed) % OWN_KIDS;
		if (what <= 1 && hs[i] == NULL) {
			hs[i] = member(q, "t", "g", 0);
		} else if (what == 2 && hs[i] != NULL) {
			shmq_consumer_close(hs[i]);
			hs[i] = NULL;
		} else if (what == 3 && !alive[k]) {
			kid_start(&kids[k], q, "t", "g", KID_JOIN, &km[k]);
			alive[k] = true;
		} else if (what == 4 && alive[k]) {
			kid_kill(&kids[k]);
			alive[k] = false;
		} else if (hs[i] != NULL) {
			settle(hs[i]);
		}
		check_owners(q, hs, kids, km, alive);
	}
	for (int k = 0; k < OWN_KIDS; k++) {
		if (alive[k]) {
			kid_kill(&kids[k]);
			alive[k] = false;
		}
	}
	/* With only in-process members left, they settle to a balanced,
	 * complete assignment. */
	if (hs[0] == NULL) {
		hs[0] = member(q, "t", "g", 0);
	}
	CU_ASSERT(settle_all(hs, OWN_HANDLES, OWN_P) >= 0);
	check_owners(q, hs, kids, km, alive);
	for (int i = 0; i < OWN_HANDLES; i++) {
		shmq_consumer_close(hs[i]);
	}
	th_destroy(q);
}

/* ---- death -------------------------------------------------------------- */

static void
test_group_killed_member_partitions_move_to_the_survivor_at_once(void)
{
	shmq_t *q = th_attach();
	struct kid k;
	struct ready_msg msg;
	shmq_group_partition_t gp[MAXP];
	th_topic(q, "t", 4, RING, SHMQ_OVERFLOW_BLOCK);

	kid_start(&k, q, "t", "g", KID_JOIN, &msg);
	CU_ASSERT_EQUAL(parts_mask(&msg), 0xfu);
	shmq_consumer_t *b = member(q, "t", "g", 0);
	settle(b);
	CU_ASSERT_EQUAL(owned_mask(b), 0u); /* the child still owns all */
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 4);
	for (int p = 0; p < 4; p++) {
		CU_ASSERT_EQUAL(gp[p].owner_pid, k.pid);
	}

	int64_t t0 = th_mono_ms();
	kid_kill(&k);
	uint32_t mask = 0;
	while (mask != 0xfu && th_mono_ms() - t0 < DEADLINE_MS) {
		shmq_record_t r;
		TH_FAIL(shmq_peek(b, &r, 10), -EAGAIN);
		mask = owned_mask(b);
	}
	int64_t took = th_mono_ms() - t0;
	fprintf(stderr, "[takeover after kill -9: %lld ms] ", (long long)took);
	CU_ASSERT_EQUAL(mask, 0xfu);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 4);
	for (int p = 0; p < 4; p++) {
		CU_ASSERT_EQUAL(gp[p].owner_pid, getpid());
	}
	shmq_consumer_close(b);
	th_destroy(q);
}

static void
test_group_parked_member_wakes_for_records_of_a_killed_owner(void)
{
	shmq_t *q = th_attach();
	struct kid k;
	struct ready_msg msg;
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, 3, 32);

	kid_start(&k, q, "t", "g", KID_JOIN, &msg);
	shmq_consumer_t *b = member(q, "t", "g", 0);
	settle(b);
	int64_t t0 = th_mono_ms();
	kid_kill(&k);
	/* One long poll: no timeout may be what notices the death. */
	TH_OK(shmq_recv(b, buf, sizeof buf, &r, 10 * DEADLINE_MS));
	int64_t took = th_mono_ms() - t0;
	fprintf(stderr, "[parked member got the record %lld ms after kill] ",
	    (long long)took);
	/* A parked member looks at liveness every 100 ms (GROUP_SLICE_MS
	 * in consumer.c); ten times that is generous. */
	CU_ASSERT(took < PROMPT_MS);
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT(holds(&r, 0, 32));
	shmq_consumer_close(b);
	th_destroy(q);
}

/* True once every partition's owner is this process. */
static bool
all_owned_by_us(shmq_t *q, uint32_t nparts)
{
	shmq_group_partition_t gp[MAXP];
	if (shmq_group_describe(q, "g", "t", gp, MAXP) != (ssize_t)nparts) {
		return false;
	}
	for (uint32_t p = 0; p < nparts; p++) {
		if (gp[p].owner_pid != getpid()) {
			return false;
		}
	}
	return true;
}

static void
test_group_member_polling_without_waiting_notices_a_killed_member(void)
{
	shmq_t *q = th_attach();
	struct kid k;
	struct ready_msg msg;
	shmq_record_t r;
	/* The application's own poll interval (an event loop calling
	 * shmq_peek with timeout 0): pacing, not synchronisation. */
	const struct timespec tick = { 0, 5 * 1000000 };
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	kid_start(&k, q, "t", "g", KID_JOIN, &msg);
	shmq_consumer_t *b = member(q, "t", "g", 0);
	settle(b);
	CU_ASSERT_FALSE(all_owned_by_us(q, 2));
	int64_t t0 = th_mono_ms();
	kid_kill(&k);
	unsigned polls = 0;
	while (!all_owned_by_us(q, 2) && th_mono_ms() - t0 < DEADLINE_MS) {
		TH_FAIL(shmq_peek(b, &r, 0), -EAGAIN);
		polls++;
		nanosleep(&tick, NULL);
	}
	int64_t took = th_mono_ms() - t0;
	fprintf(stderr, "[took over after %lld ms, %u polls] ",
	    (long long)took, polls);
	CU_ASSERT(all_owned_by_us(q, 2));
	CU_ASSERT(took < PROMPT_MS);
	shmq_consumer_close(b);
	th_destroy(q);
}

static void
test_group_uncommitted_records_are_redelivered_to_the_next_owner(void)
{
	const uint32_t N = 20, K = 7;
	shmq_t *q = th_attach();
	struct kid k = { .n = N, .k = K, .len = 48 };
	struct ready_msg msg;
	shmq_group_partition_t gp[MAXP];
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, N, 48);

	kid_start(&k, q, "t", "g", KID_CONSUME, &msg);
	CU_ASSERT_EQUAL(msg.read, N);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 1);
	CU_ASSERT_EQUAL(gp[0].committed, K);
	CU_ASSERT_EQUAL(gp[0].owner_pid, k.pid);
	CU_ASSERT_EQUAL(gp[0].records_out, N);

	shmq_consumer_t *b = member(q, "t", "g", 0);
	kid_kill(&k);
	for (uint32_t want = K; want < N; want++) {
		int rc = shmq_recv(b, buf, sizeof buf, &r, DEADLINE_MS);
		TH_OK(rc);
		if (rc != 0) {
			break;
		}
		CU_ASSERT_EQUAL(r.offset, want);
		CU_ASSERT(holds(&r, want, 48));
	}
	TH_FAIL(shmq_recv(b, buf, sizeof buf, &r, 0), -EAGAIN);
	shmq_consumer_close(b);
	th_destroy(q);
}

/* ---- committed offsets -------------------------------------------------- */

static void
test_group_committed_offset_survives_process_restart(void)
{
	shmq_t *q = th_attach();
	struct kid k = { .n = 4, .len = 16 };
	struct ready_msg msg;
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, 10, 16);

	/* A process reads 4, commits, closes and exits. */
	kid_start(&k, q, "t", "g", KID_COMMIT, &msg);
	CU_ASSERT_EQUAL(msg.read, 4);
	kid_release(&k);

	shmq_consumer_t *c = member(q, "t", "g", 0);
	for (uint32_t want = 4; want < 7; want++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, DEADLINE_MS));
		CU_ASSERT_EQUAL(r.offset, want);
		CU_ASSERT(holds(&r, want, 16));
	}
	TH_OK(shmq_consumer_commit(c));
	shmq_consumer_close(c);

	/* A whole new attach, as after a restart. */
	shmq_t *q2 = th_reattach(q);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q2);
	c = member(q2, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, DEADLINE_MS));
	CU_ASSERT_EQUAL(r.offset, 7);
	shmq_consumer_close(c);
	shmq_detach(q2);

	/* A member that closes without committing changes nothing. */
	c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, DEADLINE_MS));
	CU_ASSERT_EQUAL(r.offset, 7);
	shmq_consumer_close(c);
	c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, DEADLINE_MS));
	CU_ASSERT_EQUAL(r.offset, 7);
	shmq_consumer_close(c);
	th_destroy(q);
}

static uint64_t
committed_of(shmq_t *q, const char *group, const char *topic)
{
	shmq_group_partition_t gp[MAXP];
	CU_ASSERT_EQUAL(describe(q, group, topic, gp), 1);
	return gp[0].committed;
}

static void
test_group_auto_commit_commits_previous_poll_and_on_close(void)
{
	shmq_t *q = th_attach();
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, 10, 16);

	shmq_consumer_t *c = member(q, "t", "g", SHMQ_CONSUMER_AUTO_COMMIT);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 1);
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 1); /* the first poll */
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 2);
	/* Zero-copy polls count too. */
	TH_OK(shmq_peek(c, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 3);
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 3);
	TH_OK(shmq_release(c, &r));
	shmq_consumer_close(c); /* commits what the last poll returned */
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 4);

	c = member(q, "t", "g", SHMQ_CONSUMER_AUTO_COMMIT);
	for (uint32_t want = 4; want < 10; want++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, want);
	}
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 9);
	/* A poll that finds nothing still commits the previous one. */
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 10);
	shmq_consumer_close(c);

	/* Without the flag, polls and close commit nothing. */
	produce(q, "t", 0, 10, 3, 16);
	c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 11);
	shmq_consumer_close(c);
	CU_ASSERT_EQUAL(committed_of(q, "g", "t"), 10);
	th_destroy(q);
}

/* ---- overflow ----------------------------------------------------------- */

#define BIG 1000u
#define BIG_EXT ((sizeof(struct rec_hdr) + BIG + 7u) & ~7ul)

/* Send until a send fails; returns how many succeeded, *rc the error
 * and *ms how long the failing send took. */
static uint32_t
fill_ring(
    shmq_producer_t *p, uint32_t first, uint32_t limit, int *rc, int64_t *ms)
{
	uint32_t n = 0;
	*rc = 0;
	while (n < limit) {
		int64_t t0 = th_mono_ms();
		*rc = send_idx(p, 0, first + n, BIG);
		*ms = th_mono_ms() - t0;
		if (*rc != 0) {
			break;
		}
		n++;
	}
	return n;
}

static void
test_group_block_topic_waits_for_live_member_until_it_commits(void)
{
	shmq_t *q = th_attach();
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	int rc;
	int64_t ms;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = member(q, "t", "g", 0);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);

	/* The ring fills exactly, then the live member's uncommitted
	 * position holds the producer back. */
	uint32_t n = fill_ring(p, 0, 1000, &rc, &ms);
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT(ms >= 190);
	CU_ASSERT_EQUAL(n, RING / BIG_EXT);

	/* Reading is not enough: the group has not committed. */
	for (uint32_t i = 0; i < n; i++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, i);
	}
	TH_FAIL(send_idx(p, 0, n, BIG), -EAGAIN);
	TH_OK(shmq_consumer_commit(c));
	uint32_t n2 = fill_ring(p, n, 1000, &rc, &ms);
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT(n2 >= RING / BIG_EXT - 1 && n2 <= RING / BIG_EXT);
	/* Nothing the member has not committed was overwritten. */
	for (uint32_t i = 0; i < n2; i++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, n + i);
		CU_ASSERT(holds(&r, n + i, BIG));
	}
	shmq_producer_close(p);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_group_block_topic_resumes_when_the_lagging_member_is_killed(void)
{
	shmq_t *q = th_attach();
	struct kid k;
	struct ready_msg msg;
	int rc;
	int64_t ms;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	kid_start(&k, q, "t", "g", KID_JOIN, &msg);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);
	uint32_t n = fill_ring(p, 0, 1000, &rc, &ms);
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT_EQUAL(n, RING / BIG_EXT);
	kid_kill(&k);
	/* With no live member the group no longer holds the ring. */
	uint32_t more = fill_ring(p, n, 4 * n, &rc, &ms);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(more, 4 * n);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_group_block_topic_ignores_group_without_live_member(void)
{
	shmq_t *q = th_attach();
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	int rc;
	int64_t ms;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	/* The group exists, has a gate, and read one record, then left. */
	produce(q, "t", 0, 0, 1, BIG);
	shmq_consumer_t *c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	shmq_consumer_close(c);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);
	uint32_t want = 4 * (uint32_t)(RING / BIG_EXT);
	CU_ASSERT_EQUAL(fill_ring(p, 1, want, &rc, &ms), want);
	CU_ASSERT_EQUAL(rc, 0);
	shmq_producer_close(p);
	th_destroy(q);
}

/* Member c of group "g" on partition 0 of "t", whose next offset was
 * `from`, finds the log starting at `start`: it is told, once, with the
 * count (SHMQ_ELAPPED, r.lost), and the group counts it as lost. */
static void
expect_loss(shmq_t *q, shmq_consumer_t *c, uint64_t from, uint64_t start)
{
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	shmq_group_partition_t gp[MAXP];
	memset(&r, 0, sizeof r);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_ELAPPED);
	CU_ASSERT_EQUAL(r.partition, 0);
	CU_ASSERT_EQUAL(r.lost, start - from);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 1);
	CU_ASSERT_EQUAL(gp[0].lost, start - from);
}

/* A group that had no live member while the ring moved past its
 * committed offset comes back to a loss: reported (SHMQ_ELAPPED, the
 * count, the group's lost counter), never a quiet reset to the oldest
 * record. */
static void
test_group_returning_group_reports_what_it_lost_while_away(void)
{
	shmq_t *q = th_attach();
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	shmq_partition_info_t info;
	int rc;
	int64_t ms;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, 2, BIG);
	shmq_consumer_t *c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	TH_OK(shmq_consumer_commit(c)); /* committed: offset 1 */
	shmq_consumer_close(c);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);
	uint32_t want = 4 * (uint32_t)(RING / BIG_EXT);
	CU_ASSERT_EQUAL(fill_ring(p, 2, want, &rc, &ms), want);
	shmq_producer_close(p);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_FATAL(info.log_start > 1);

	c = member(q, "t", "g", 0);
	expect_loss(q, c, 1, info.log_start);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, info.log_start);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_group_drop_topic_reports_exactly_the_lapped_records(void)
{
	shmq_t *q = th_attach();
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	shmq_partition_info_t info;
	int rc;
	int64_t ms;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_DROP);
	produce(q, "t", 0, 0, 5, BIG);
	shmq_consumer_t *c = member(q, "t", "g", 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 0);

	/* A live member that does not keep up never blocks `drop`. */
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);
	CU_ASSERT_EQUAL(fill_ring(p, 5, 200, &rc, &ms), 200);
	CU_ASSERT_EQUAL(rc, 0);
	shmq_producer_close(p);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.end, 205);
	CU_ASSERT(info.log_start > 1);

	expect_loss(q, c, 1, info.log_start);

	/* It goes on from the oldest record, without further loss. */
	for (uint64_t want = info.log_start; want < info.end; want++) {
		rc = shmq_recv(c, buf, sizeof buf, &r, 0);
		TH_OK(rc);
		if (rc != 0) {
			break;
		}
		CU_ASSERT_EQUAL(r.offset, want);
		CU_ASSERT(holds(&r, (uint32_t)want, BIG));
	}
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* ---- administration ----------------------------------------------------- */

struct listed {
	int n;
	bool found;
};

static int
on_group(const char *group, const char *topic, void *arg)
{
	struct listed *l = arg;
	l->n++;
	if (strcmp(group, "g") == 0 && strcmp(topic, "t") == 0) {
		l->found = true;
	}
	return 0;
}

static void
test_group_admin_describes_sets_offsets_and_deletes_only_when_empty(void)
{
	shmq_t *q = th_attach();
	shmq_group_partition_t gp[MAXP];
	uint8_t buf[BUFSZ];
	shmq_record_t r;
	struct listed l = { 0 };
	uint32_t members = 99;
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	produce(q, "t", 0, 0, 3, 16);
	produce(q, "t", 1, 100, 5, 16);

	TH_FAIL(shmq_group_describe(q, "g", "t", gp, MAXP), -ENOENT);
	shmq_consumer_t *c = member(q, "t", "g", 0);
	TH_OK(shmq_consumer_commit_offset(c, 0, 1));
	TH_OK(shmq_consumer_commit_offset(c, 1, 4));
	TH_OK(shmq_group_list(q, on_group, &l));
	CU_ASSERT_EQUAL(l.n, 1);
	CU_ASSERT(l.found);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].committed, 1);
	CU_ASSERT_EQUAL(gp[0].end, 3);
	CU_ASSERT_EQUAL(gp[0].lag, 2);
	CU_ASSERT_EQUAL(gp[1].committed, 4);
	CU_ASSERT_EQUAL(gp[1].end, 5);
	CU_ASSERT_EQUAL(gp[1].lag, 1);
	CU_ASSERT_EQUAL(gp[0].owner, c->group.slot);
	CU_ASSERT_EQUAL(gp[1].owner_pid, getpid());
	/* A short array still says how many partitions there are. */
	CU_ASSERT_EQUAL(shmq_group_describe(q, "g", "t", gp, 1), 2);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 1);

	TH_FAIL(shmq_group_set_offset(q, "g", "t", 0, 2), -EBUSY);
	TH_FAIL(shmq_group_delete(q, "g", "t"), -EBUSY);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].committed, 1); /* unchanged by the refusal */
	shmq_consumer_close(c);

	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 0);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].owner, -1);
	CU_ASSERT_EQUAL(gp[0].owner_pid, 0);
	TH_OK(shmq_group_set_offset(q, "g", "t", 0, 2));
	TH_FAIL(shmq_group_set_offset(q, "g", "t", 2, 0), -EINVAL);
	TH_FAIL(shmq_group_set_offset(q, "nope", "t", 0, 0), -ENOENT);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].committed, 2);
	CU_ASSERT_EQUAL(gp[0].lag, 1);

	/* The next member starts from the offsets that were set. */
	c = member(q, "t", "g", 0);
	uint64_t next[2] = { 2, 4 };
	for (int i = 0; i < 2; i++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
		CU_ASSERT(r.partition < 2);
		if (r.partition < 2) {
			CU_ASSERT_EQUAL(r.offset, next[r.partition]);
			CU_ASSERT(holds(
			    &r, (uint32_t)(r.offset + 100 * r.partition), 16));
			next[r.partition]++;
		}
	}
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	CU_ASSERT_EQUAL(next[0], 3);
	CU_ASSERT_EQUAL(next[1], 5);
	shmq_consumer_close(c);

	TH_OK(shmq_group_delete(q, "g", "t"));
	TH_FAIL(shmq_group_describe(q, "g", "t", gp, MAXP), -ENOENT);
	TH_FAIL(shmq_group_members(q, "g", "t", &members), -ENOENT);
	TH_FAIL(shmq_group_delete(q, "g", "t"), -ENOENT);
	memset(&l, 0, sizeof l);
	TH_OK(shmq_group_list(q, on_group, &l));
	CU_ASSERT_EQUAL(l.n, 0);
	/* A group made again starts from scratch. */
	c = member(q, "t", "g", 0);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].committed, 0);
	CU_ASSERT_EQUAL(gp[0].lag, 3);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_group_members_counts_live_members_and_drops_a_killed_one(void)
{
	shmq_t *q = th_attach();
	struct kid k;
	struct ready_msg msg;
	shmq_group_partition_t gp[MAXP];
	uint32_t members = 0;
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	kid_start(&k, q, "t", "g", KID_JOIN, &msg);
	CU_ASSERT_EQUAL(parts_mask(&msg), 0x3u);
	shmq_consumer_t *a = member(q, "t", "g", 0);
	shmq_consumer_t *b = member(q, "t", "g", 0);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 3);
	kid_kill(&k);
	/* Seen at once: no member has polled since. */
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 2);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	CU_ASSERT_EQUAL(gp[0].owner, -1);
	CU_ASSERT_EQUAL(gp[1].owner, -1);
	TH_FAIL(shmq_group_set_offset(q, "g", "t", 0, 0), -EBUSY);
	shmq_consumer_close(a);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 1);
	shmq_consumer_close(b);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 0);
	th_destroy(q);
}

struct inherit_arg {
	shmq_t *q;
	shmq_consumer_t *c;
};

/* shmq.h: "After fork() the child must not use the parent's handles
 * (except to close them)". */
static int
close_inherited(void *arg)
{
	struct inherit_arg *a = arg;
	shmq_consumer_close(a->c);
	shmq_detach(a->q);
	return 0;
}

static void
test_group_child_closing_an_inherited_member_leaves_the_parent_a_member(void)
{
	shmq_t *q = th_attach();
	shmq_group_partition_t gp[MAXP];
	uint32_t members = 0;
	th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *a = member(q, "t", "g", 0);
	settle(a);
	CU_ASSERT_EQUAL(owned_mask(a), 0x3u);

	struct inherit_arg ia = { q, a };
	CU_ASSERT_EQUAL(th_wait(th_fork(close_inherited, &ia)), 0);

	/* The child's close is not the parent's leave. */
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 1);
	CU_ASSERT_EQUAL(describe(q, "g", "t", gp), 2);
	for (int p = 0; p < 2; p++) {
		CU_ASSERT_EQUAL(gp[p].owner, a->group.slot);
		CU_ASSERT_EQUAL(gp[p].owner_pid, getpid());
	}
	/* A newcomer gets its share only from a, never a partition a
	 * still reads. */
	shmq_consumer_t *b = member(q, "t", "g", 0);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, 2);
	CU_ASSERT_NOT_EQUAL(b->group.slot, a->group.slot);
	CU_ASSERT_EQUAL(owned_mask(b) & owned_mask(a), 0u);
	shmq_consumer_t *all[2] = { a, b };
	CU_ASSERT(settle_all(all, 2, 2) >= 0);
	CU_ASSERT_EQUAL(owned_mask(a), 0x1u);
	CU_ASSERT_EQUAL(owned_mask(b), 0x2u);
	shmq_consumer_close(b);
	shmq_consumer_close(a);
	th_destroy(q);
}

/* ---- limits ------------------------------------------------------------- */

static void
test_group_sixty_fifth_member_is_refused_with_emfile(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_t *cs[GROUP_MEMBERS + 1] = { 0 };
	shmq_consumer_options_t o;
	uint32_t members = 0;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_init(&o);
	o.group = "g";
	/* Each handle is its own open file description: its own member. */
	for (unsigned i = 0; i < GROUP_MEMBERS; i++) {
		TH_OK(shmq_consumer_open(q, "t", &o, &cs[i]));
	}
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, GROUP_MEMBERS);
	shmq_consumer_t *extra = (shmq_consumer_t *)&o; /* must be reset */
	TH_FAIL(shmq_consumer_open(q, "t", &o, &extra), -EMFILE);
	CU_ASSERT_PTR_NULL(extra);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, GROUP_MEMBERS);
	/* A free slot is usable again. */
	shmq_consumer_close(cs[10]);
	TH_OK(shmq_consumer_open(q, "t", &o, &cs[10]));
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, GROUP_MEMBERS);
	for (unsigned i = 0; i < GROUP_MEMBERS; i++) {
		shmq_consumer_close(cs[i]);
	}
	th_destroy(q);
}

static void
test_group_holds_sixty_four_members_while_a_producer_is_open(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_t *cs[GROUP_MEMBERS] = { 0 };
	shmq_consumer_options_t o;
	uint32_t members = 0;
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 200);
	shmq_consumer_options_init(&o);
	o.group = "g";
	/* The documented limit is 64 members per group; a producer on
	 * the topic is not a member and must not take one's place. */
	unsigned opened = 0;
	for (unsigned i = 0; i < GROUP_MEMBERS; i++) {
		int rc = shmq_consumer_open(q, "t", &o, &cs[i]);
		if (rc != 0) {
			fprintf(stderr, "member %u: %s\n", i + 1,
			    shmq_strerror(rc));
			break;
		}
		opened++;
	}
	CU_ASSERT_EQUAL(opened, GROUP_MEMBERS);
	TH_OK(shmq_group_members(q, "g", "t", &members));
	CU_ASSERT_EQUAL(members, opened);
	for (unsigned i = 0; i < opened; i++) {
		shmq_consumer_close(cs[i]);
	}
	shmq_producer_close(p);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_group_rebalance_splits_partitions_and_keeps_the_lower_ones",
	    test_group_rebalance_splits_partitions_and_keeps_the_lower_ones },
	{ "test_group_odd_partition_count_gives_the_extra_one_to_the_lowest_"
	  "slot",
	    test_group_odd_partition_count_gives_the_extra_one_to_the_lowest_slot },
	{ "test_group_partition_never_has_two_owners_across_joins_leaves_"
	  "kills",
	    test_group_partition_never_has_two_owners_across_joins_leaves_kills },
	{ "test_group_killed_member_partitions_move_to_the_survivor_at_once",
	    test_group_killed_member_partitions_move_to_the_survivor_at_once },
	{ "test_group_parked_member_wakes_for_records_of_a_killed_owner",
	    test_group_parked_member_wakes_for_records_of_a_killed_owner },
	{ "test_group_member_polling_without_waiting_notices_a_killed_member",
	    test_group_member_polling_without_waiting_notices_a_killed_member },
	{ "test_group_uncommitted_records_are_redelivered_to_the_next_owner",
	    test_group_uncommitted_records_are_redelivered_to_the_next_owner },
	{ "test_group_committed_offset_survives_process_restart",
	    test_group_committed_offset_survives_process_restart },
	{ "test_group_auto_commit_commits_previous_poll_and_on_close",
	    test_group_auto_commit_commits_previous_poll_and_on_close },
	{ "test_group_block_topic_waits_for_live_member_until_it_commits",
	    test_group_block_topic_waits_for_live_member_until_it_commits },
	{ "test_group_block_topic_resumes_when_the_lagging_member_is_killed",
	    test_group_block_topic_resumes_when_the_lagging_member_is_killed },
	{ "test_group_block_topic_ignores_group_without_live_member",
	    test_group_block_topic_ignores_group_without_live_member },
	{ "test_group_returning_group_reports_what_it_lost_while_away",
	    test_group_returning_group_reports_what_it_lost_while_away },
	{ "test_group_drop_topic_reports_exactly_the_lapped_records",
	    test_group_drop_topic_reports_exactly_the_lapped_records },
	{ "test_group_admin_describes_sets_offsets_and_deletes_only_when_"
	  "empty",
	    test_group_admin_describes_sets_offsets_and_deletes_only_when_empty },
	{ "test_group_members_counts_live_members_and_drops_a_killed_one",
	    test_group_members_counts_live_members_and_drops_a_killed_one },
	{ "test_group_child_closing_an_inherited_member_leaves_the_parent_a_"
	  "member",
	    test_group_child_closing_an_inherited_member_leaves_the_parent_a_member },
	{ "test_group_sixty_fifth_member_is_refused_with_emfile",
	    test_group_sixty_fifth_member_is_refused_with_emfile },
	{ "test_group_holds_sixty_four_members_while_a_producer_is_open",
	    test_group_holds_sixty_four_members_while_a_producer_is_open },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_group = { "group", tests };
