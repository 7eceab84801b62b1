/*
 * test_api.c — the public contract of shmq.h: every documented error code
 * is provoked at least once (nng's NUTS_FAIL style), and the documented
 * results of the calls that succeed are checked.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- local helpers ------------------------------------------------------ */

static int
send_to(shmq_producer_t *p, int32_t part, const void *key, size_t klen,
    const void *val, size_t vlen, uint64_t *off)
{
	shmq_msg_t m;
	memset(&m, 0, sizeof m);
	m.key = key;
	m.key_len = klen;
	m.value = val;
	m.value_len = vlen;
	m.partition = part;
	int rc = shmq_send(p, &m);
	if (rc == 0 && off != NULL) {
		*off = m.offset;
	}
	return rc;
}

/* Wait up to ms for pid to exit; kill it if it does not.  Returns the
 * exit code (128+signal when killed), or -1 on timeout. */
static int
wait_deadline(pid_t pid, int ms)
{
	int64_t end = th_mono_ms() + ms;
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			return WIFEXITED(st) ? WEXITSTATUS(st)
			                     : 128 + WTERMSIG(st);
		}
		if (w < 0 && errno != EINTR) {
			return -1;
		}
		if (th_mono_ms() >= end) {
			kill(pid, SIGKILL);
			(void)th_wait(pid);
			return -1;
		}
		usleep(1000); /* polling the child's state, not a sync */
	}
}

/* Poll /proc until pid sleeps in the kernel (state S), up to ms. */
static bool
wait_sleeping(pid_t pid, int ms)
{
	char path[64], buf[512];
	int64_t end = th_mono_ms() + ms;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	while (th_mono_ms() < end) {
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			return false;
		}
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')');
		if (rp != NULL && rp[1] == ' ' && rp[2] == 'S') {
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* ---- shmq_attach / shmq_detach -------------------------------------------
 */

static void
test_attach_rejects_bad_arguments(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q; /* non-NULL: attach must clear it */
	shmq_options_t o;
	const char *home = shmq_home(q);

	TH_FAIL(shmq_attach(home, NULL, NULL), -EINVAL);

	shmq_options_init(&o);
	o.mode = 0644;
	TH_FAIL(shmq_attach(home, &o, &q2), -EINVAL);
	CU_ASSERT_PTR_NULL(q2);

	shmq_options_init(&o);
	o.reclaim_ms = 5000;
	q2 = (shmq_t *)&q;
	TH_FAIL(shmq_attach(home, &o, &q2), -EINVAL);
	CU_ASSERT_PTR_NULL(q2);

	shmq_options_init(&o);
	o.size = 0;
	q2 = (shmq_t *)&q;
	TH_FAIL(shmq_attach(home, &o, &q2), -EINVAL);
	CU_ASSERT_PTR_NULL(q2);

	shmq_detach(NULL); /* allowed */
	th_destroy(q);
}

static void
test_attach_fails_with_enoent_when_home_is_missing_and_create_is_off(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q;
	shmq_options_t o;
	char dir[4096];
	struct stat st;

	snprintf(dir, sizeof dir, "%s/missing", shmq_home(q));
	shmq_options_init(&o);
	o.create = 0;
	TH_FAIL(shmq_attach(dir, &o, &q2), -ENOENT);
	CU_ASSERT_PTR_NULL(q2);
	CU_ASSERT_EQUAL(stat(dir, &st), -1); /* and it was not created */
	th_destroy(q);
}

static void
test_attach_fails_with_eacces_when_home_is_world_writable(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q;
	char dir[4096];

	snprintf(dir, sizeof dir, "%s/open", shmq_home(q));
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0777), 0); /* beats the umask */
	TH_FAIL(shmq_attach(dir, NULL, &q2), -EACCES);
	CU_ASSERT_PTR_NULL(q2);
	th_destroy(q);
}

static void
test_attach_fails_with_eperm_when_home_is_not_ours(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q;
	char dir[4096];

	if (geteuid() != 0) {
		/* only root can give a directory away */
		fprintf(stderr, "[skipped: not root] ");
		th_destroy(q);
		return;
	}
	snprintf(dir, sizeof dir, "%s/theirs", shmq_home(q));
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(chown(dir, 65534, 65534), 0);
	TH_FAIL(shmq_attach(dir, NULL, &q2), -EPERM);
	CU_ASSERT_PTR_NULL(q2);
	th_destroy(q);
}

static void
test_attach_fails_with_eacces_when_the_shm_dir_is_world_writable(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q;
	shmq_options_t o;
	char dir[4096];

	snprintf(dir, sizeof dir, "%s/shm", shmq_home(q));
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0777), 0);
	shmq_options_init(&o);
	o.shm_dir = dir;
	TH_FAIL(shmq_attach(shmq_home(q), &o, &q2), -EACCES);
	CU_ASSERT_PTR_NULL(q2);
	th_destroy(q);
}

static void
test_attach_fails_with_ecorrupt_when_the_instance_id_is_damaged(void)
{
	shmq_t *q = th_attach();
	shmq_t *q2 = (shmq_t *)&q;
	char dir[4096], path[4200];

	snprintf(dir, sizeof dir, "%s/damaged", shmq_home(q));
	snprintf(path, sizeof path, "%s/instance.id", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("not-a-hex-id\n", f);
	fclose(f);
	TH_FAIL(shmq_attach(dir, NULL, &q2), SHMQ_ECORRUPT);
	CU_ASSERT_PTR_NULL(q2);
	th_destroy(q);
}

/* ---- topics ----------------------------------------------------------------
 */

static void
test_topic_create_rejects_bad_names(void)
{
	shmq_t *q = th_attach();
	char n101[102];
	memset(n101, 'a', 101);
	n101[101] = '\0';
	const char *bad[] = { "", ".", "..", "a/b", "a b", n101, "a@b" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TH_FAIL(shmq_topic_create(q, bad[i], NULL), -EINVAL);
	}
	TH_FAIL(shmq_topic_create(q, NULL, NULL), -EINVAL);
	th_destroy(q);
}

static void
test_topic_create_accepts_a_100_char_name(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_producer_t *p = NULL;
	char n100[101];
	memset(n100, 'b', 100);
	n100[100] = '\0';
	n100[0] = 'Z';
	n100[50] = '.';
	n100[51] = '-';
	n100[52] = '_';
	n100[99] = '9';

	TH_OK(shmq_topic_create(q, n100, NULL));
	TH_OK(shmq_topic_describe(q, n100, &c));
	/* and its rings can be built: the file names fit too */
	TH_OK(shmq_producer_open(q, n100, NULL, &p));
	TH_OK(send_to(p, 0, NULL, 0, "x", 1, NULL));
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_topic_create_rejects_bad_configs(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;

	shmq_topic_config_init(&c);
	c.partitions = 0;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.partitions = SHMQ_PARTITIONS_MAX + 1;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.ring_size = 3 * SHMQ_RING_SIZE_MIN; /* not a power of two */
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.ring_size = SHMQ_RING_SIZE_MIN / 2;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.ring_size = SHMQ_RING_SIZE_MAX * 2;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.overflow = 2;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	shmq_topic_config_init(&c);
	c.size = 0;
	TH_FAIL(shmq_topic_create(q, "t", &c), -EINVAL);

	/* none of them left a topic behind */
	TH_FAIL(shmq_topic_describe(q, "t", &c), -ENOENT);

	/* the limits themselves are accepted */
	shmq_topic_config_init(&c);
	c.partitions = SHMQ_PARTITIONS_MAX;
	c.ring_size = SHMQ_RING_SIZE_MIN;
	TH_OK(shmq_topic_create(q, "t", &c));
	th_destroy(q);
}

static void
test_topic_create_twice_fails_with_eexist(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;

	th_topic(q, "dup", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_topic_config_init(&c);
	c.partitions = 5;
	TH_FAIL(shmq_topic_create(q, "dup", &c), -EEXIST);
	/* the first config stands */
	TH_OK(shmq_topic_describe(q, "dup", &c));
	CU_ASSERT_EQUAL(c.partitions, 2);
	th_destroy(q);
}

static void
test_topic_delete_and_describe_of_a_missing_topic_fail_with_enoent(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;

	TH_FAIL(shmq_topic_delete(q, "nope"), -ENOENT);
	TH_FAIL(shmq_topic_describe(q, "nope", &c), -ENOENT);
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	TH_OK(shmq_topic_delete(q, "t"));
	TH_FAIL(shmq_topic_delete(q, "t"), -ENOENT);
	TH_FAIL(shmq_topic_describe(q, "t", &c), -ENOENT);
	th_destroy(q);
}

static void
test_topic_describe_returns_what_was_created(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;

	th_topic(q, "a", 7, 128 * KIB, SHMQ_OVERFLOW_DROP);
	th_topic(q, "b", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	TH_OK(shmq_topic_create(q, "c", NULL)); /* defaults */

	memset(&c, 0xa5, sizeof c);
	TH_OK(shmq_topic_describe(q, "a", &c));
	CU_ASSERT_EQUAL(c.size, sizeof c);
	CU_ASSERT_EQUAL(c.partitions, 7);
	CU_ASSERT_EQUAL(c.ring_size, 128 * KIB);
	CU_ASSERT_EQUAL(c.overflow, SHMQ_OVERFLOW_DROP);

	TH_OK(shmq_topic_describe(q, "b", &c));
	CU_ASSERT_EQUAL(c.partitions, 1);
	CU_ASSERT_EQUAL(c.ring_size, SHMQ_RING_SIZE_MIN);
	CU_ASSERT_EQUAL(c.overflow, SHMQ_OVERFLOW_BLOCK);

	TH_OK(shmq_topic_describe(q, "c", &c));
	CU_ASSERT_EQUAL(c.partitions, 1);
	CU_ASSERT_EQUAL(c.ring_size, SHMQ_RING_SIZE_DEFAULT);
	CU_ASSERT_EQUAL(c.overflow, SHMQ_OVERFLOW_BLOCK);
	/* Persistent by default, flushed every batch; th_topic asks for
	 * volatile. */
	CU_ASSERT_EQUAL(c.durability, SHMQ_DURABILITY_PERSISTENT);
	CU_ASSERT_EQUAL(c.fsync, SHMQ_FSYNC_ALWAYS);
	TH_OK(shmq_topic_describe(q, "b", &c));
	CU_ASSERT_EQUAL(c.durability, SHMQ_DURABILITY_VOLATILE);
	shmq_topic_config_init(&c);
	CU_ASSERT_EQUAL(c.durability, SHMQ_DURABILITY_PERSISTENT);
	th_destroy(q);
}

struct names {
	char name[16][SHMQ_NAME_MAX + 1];
	int n;
	int stop_after; /* return 42 after this many; 0 = never */
};

static int
collect(const char *name, void *arg)
{
	struct names *ns = arg;
	if (ns->n < 16) {
		snprintf(ns->name[ns->n], sizeof ns->name[0], "%s", name);
	}
	ns->n++;
	return ns->stop_after != 0 && ns->n == ns->stop_after ? 42 : 0;
}

static void
test_topic_list_is_sorted_and_complete(void)
{
	shmq_t *q = th_attach();
	const char *create[] = { "m", "B", "zz", "a.b", "a", "a-b", "0" };
	const char *want[] = { "0", "B", "a", "a-b", "a.b", "m", "zz" };
	struct names ns;

	memset(&ns, 0, sizeof ns);
	TH_OK(shmq_topic_list(q, collect, &ns));
	CU_ASSERT_EQUAL(ns.n, 0);

	for (size_t i = 0; i < 7; i++) {
		th_topic(
		    q, create[i], 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	}
	memset(&ns, 0, sizeof ns);
	TH_OK(shmq_topic_list(q, collect, &ns));
	CU_ASSERT_EQUAL_FATAL(ns.n, 7);
	for (size_t i = 0; i < 7; i++) {
		CU_ASSERT_STRING_EQUAL(ns.name[i], want[i]);
	}

	TH_OK(shmq_topic_delete(q, "m"));
	memset(&ns, 0, sizeof ns);
	TH_OK(shmq_topic_list(q, collect, &ns));
	CU_ASSERT_EQUAL(ns.n, 6);
	CU_ASSERT_STRING_EQUAL(ns.name[5], "zz");
	th_destroy(q);
}

static void
test_topic_list_stops_when_the_callback_returns_nonzero(void)
{
	shmq_t *q = th_attach();
	struct names ns;

	th_topic(q, "t1", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	th_topic(q, "t2", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	th_topic(q, "t3", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	memset(&ns, 0, sizeof ns);
	ns.stop_after = 2;
	TH_FAIL(shmq_topic_list(q, collect, &ns), 42);
	CU_ASSERT_EQUAL(ns.n, 2);
	CU_ASSERT_STRING_EQUAL(ns.name[1], "t2");
	TH_FAIL(shmq_topic_list(q, NULL, NULL), -EINVAL);
	th_destroy(q);
}

/* ---- producers -------------------------------------------------------------
 */

static void
test_producer_open_on_a_missing_topic_fails_with_enoent(void)
{
	shmq_t *q = th_attach();
	shmq_producer_t *p = (shmq_producer_t *)&q;

	TH_FAIL(shmq_producer_open(q, "nope", NULL, &p), -ENOENT);
	CU_ASSERT_PTR_NULL(p);
	TH_FAIL(shmq_producer_open(q, "bad name", NULL, &p), -EINVAL);
	TH_FAIL(shmq_producer_open(q, "nope", NULL, NULL), -EINVAL);
	shmq_producer_close(NULL); /* allowed */
	th_destroy(q);
}

static void
test_producer_open_with_durable_or_all_acks_needs_the_replicator(void)
{
	shmq_t *q = th_attach();
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_init(&o);
	/* DURABLE: a volatile topic has no disk; a persistent one needs
	 * a running persister (test_persist.c). */
	o.acks = SHMQ_ACKS_DURABLE;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	CU_ASSERT_PTR_NULL(p);
	shmq_topic_config_t pc;
	shmq_topic_config_init(&pc);
	pc.ring_size = SHMQ_RING_SIZE_MIN;
	pc.durability = SHMQ_DURABILITY_PERSISTENT;
	TH_OK(shmq_topic_create(q, "pt", &pc));
	TH_FAIL(shmq_producer_open(q, "pt", &o, &p), SHMQ_ENOREPLICATOR);
	CU_ASSERT_PTR_NULL(p);
	o.acks = SHMQ_ACKS_ALL;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), SHMQ_ENOREPLICATOR);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(shmq_strerror(SHMQ_ENOREPLICATOR), "shmq-replicator"));

	/* NONE and LEADER work */
	o.acks = SHMQ_ACKS_NONE;
	TH_OK(shmq_producer_open(q, "t", &o, &p));
	shmq_producer_close(p);
	o.acks = SHMQ_ACKS_LEADER;
	TH_OK(shmq_producer_open(q, "t", &o, &p));
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_producer_open_rejects_bad_options(void)
{
	shmq_t *q = th_attach();
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_init(&o);
	o.flags = 0x80;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	shmq_producer_options_init(&o);
	o.acks = 4;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	shmq_producer_options_init(&o);
	o.timeout_ms = -2;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	shmq_producer_options_init(&o);
	o.size = 0;
	TH_FAIL(shmq_producer_open(q, "t", &o, &p), -EINVAL);
	CU_ASSERT_PTR_NULL(p);
	th_destroy(q);
}

static void
test_exclusive_producer_excludes_other_producers(void)
{
	shmq_t *q = th_attach();
	shmq_producer_options_t x;
	shmq_producer_t *p1 = NULL, *p2 = NULL, *px = NULL;

	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_init(&x);
	x.flags = SHMQ_PRODUCER_EXCLUSIVE;

	/* exclusive while a normal producer is open */
	TH_OK(shmq_producer_open(q, "t", NULL, &p1));
	TH_FAIL(shmq_producer_open(q, "t", &x, &px), -EBUSY);
	CU_ASSERT_PTR_NULL(px);
	shmq_producer_close(p1);

	/* normal (and exclusive) while an exclusive is open */
	TH_OK(shmq_producer_open(q, "t", &x, &px));
	TH_FAIL(shmq_producer_open(q, "t", NULL, &p2), -EBUSY);
	CU_ASSERT_PTR_NULL(p2);
	shmq_producer_t *px2 = NULL;
	TH_FAIL(shmq_producer_open(q, "t", &x, &px2), -EBUSY);
	TH_OK(send_to(px, 1, NULL, 0, "x", 1, NULL));
	shmq_producer_close(px);

	/* after the exclusive closes, a normal one opens (and sends
	 * after the exclusive's record) */
	uint64_t off = 99;
	TH_OK(shmq_producer_open(q, "t", NULL, &p2));
	TH_OK(send_to(p2, 1, NULL, 0, "y", 1, &off));
	CU_ASSERT_EQUAL(off, 1);
	shmq_producer_close(p2);
	th_destroy(q);
}

/* ---- send
 * ------------------------------------------------------------------- */

static void
test_send_rejects_a_partition_out_of_range(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 3, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_partition_info_t info;

	TH_FAIL(send_to(p, 3, NULL, 0, "x", 1, NULL), -EINVAL);
	TH_FAIL(send_to(p, 1000, NULL, 0, "x", 1, NULL), -EINVAL);
	TH_FAIL(send_to(p, -2, NULL, 0, "x", 1, NULL), -EINVAL);
	TH_FAIL(shmq_send(p, NULL), -EINVAL);
	TH_OK(send_to(p, 2, NULL, 0, "x", 1, NULL));
	TH_OK(shmq_partition_info(q, "t", 2, &info));
	CU_ASSERT_EQUAL(info.end, 1);
	TH_FAIL(shmq_partition_info(q, "t", 3, &info), -EINVAL);
	TH_FAIL(shmq_partition_info(q, "nope", 0, &info), -ENOENT);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_rejects_null_data_with_a_length(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_partition_info_t info;

	TH_FAIL(send_to(p, 0, NULL, 0, NULL, 5, NULL), -EINVAL);
	TH_FAIL(send_to(p, 0, NULL, 3, "v", 1, NULL), -EINVAL);
	/* NULL with length 0 is an empty record */
	TH_OK(send_to(p, 0, NULL, 0, NULL, 0, NULL));
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.end, 1);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_rejects_records_over_a_quarter_ring_and_takes_the_largest(void)
{
	shmq_t *q = th_attach();
	const uint64_t ring = SHMQ_RING_SIZE_MIN;
	th_topic(q, "t", 1, ring, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	size_t max = (size_t)((ring / SHMQ_RECORD_FRACTION) & ~7ull);
	size_t klen = 10, vlen = max - SHMQ_RECORD_OVERHEAD - klen;
	uint8_t *buf = malloc(max);
	uint8_t *out = malloc(max);
	shmq_record_t r;
	uint64_t off = 99;

	CU_ASSERT_FATAL(buf != NULL && out != NULL);
	for (size_t i = 0; i < max; i++) {
		buf[i] = (uint8_t)(i * 7 + 1);
	}
	TH_FAIL(
	    send_to(p, 0, buf, klen, buf + klen, vlen + 1, NULL), -EMSGSIZE);
	TH_FAIL(send_to(p, 0, NULL, 0, buf, max, NULL), -EMSGSIZE);
	TH_FAIL(send_to(p, 0, NULL, 0, buf, ring, NULL), -EMSGSIZE);
	TH_OK(send_to(p, 0, buf, klen, buf + klen, vlen, &off));
	CU_ASSERT_EQUAL(off, 0);
	/* several of them fit, around the ring */
	for (int i = 0; i < 8; i++) {
		TH_OK(send_to(p, 0, buf, klen, buf + klen, vlen, &off));
		TH_OK(shmq_recv(c, out, max, &r, 1000));
		CU_ASSERT_EQUAL(r.offset, (uint64_t)i);
		CU_ASSERT_EQUAL(r.key_len, klen);
		CU_ASSERT_EQUAL(r.value_len, vlen);
		CU_ASSERT(memcmp(out, buf, klen + vlen) == 0);
	}
	/* a zero-copy reservation has the same limit */
	shmq_slice_t s;
	TH_FAIL(shmq_reserve(p, 0, klen, vlen + 1, &s), -EMSGSIZE);
	TH_OK(shmq_reserve(p, 0, klen, vlen, &s));
	TH_OK(shmq_abort(p, &s));
	free(buf);
	free(out);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/*
 * Keys longer than 65535 bytes (the record header's key length is 16
 * bits): shmq_send returns -EMSGSIZE; shmq_reserve returns -EINVAL.
 */
static void
test_send_rejects_keys_over_65535_bytes(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_DEFAULT, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	size_t big = 65536;
	uint8_t *key = calloc(1, big + 16);
	uint8_t *out = malloc(big + 16);
	shmq_slice_t s;
	shmq_record_t r;

	CU_ASSERT_FATAL(key != NULL && out != NULL);
	key[0] = 1;
	key[65534] = 2;
	TH_FAIL(send_to(p, 0, key, big, "v", 1, NULL), -EMSGSIZE);
	TH_FAIL(shmq_reserve(p, 0, big, 1, &s), -EINVAL);
	/* 65535 is the largest key and round-trips intact */
	TH_OK(send_to(p, 0, key, 65535, "v", 1, NULL));
	TH_OK(shmq_recv(c, out, big + 16, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT_EQUAL(r.key_len, 65535);
	CU_ASSERT_EQUAL(r.value_len, 1);
	CU_ASSERT(memcmp(r.key, key, 65535) == 0);
	CU_ASSERT(memcmp(r.value, "v", 1) == 0);
	free(key);
	free(out);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_gives_consecutive_offsets_per_partition_and_a_timestamp(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 3, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t next[3] = { 0, 0, 0 };
	struct timespec ts;

	for (int i = 0; i < 60; i++) {
		shmq_msg_t m;
		int32_t part = (int32_t)((i * 7) % 3);
		memset(&m, 0, sizeof m);
		m.value = &i;
		m.value_len = sizeof i;
		m.partition = part;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t before = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		TH_OK(shmq_send(p, &m));
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t after = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		CU_ASSERT_EQUAL(m.partition, part);
		CU_ASSERT_EQUAL(m.offset, next[part]);
		next[part]++;
		/* "now", on the caller's CLOCK_REALTIME */
		CU_ASSERT(m.timestamp >= before && m.timestamp <= after);
	}
	/* a timestamp given by the caller is kept */
	shmq_msg_t m;
	memset(&m, 0, sizeof m);
	m.partition = 0;
	m.timestamp = 1234567;
	TH_OK(shmq_send(p, &m));
	CU_ASSERT_EQUAL(m.timestamp, 1234567);
	CU_ASSERT_EQUAL(m.offset, next[0]);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_by_key_uses_the_key_partitioner(void)
{
	shmq_t *q = th_attach();
	const uint32_t P = 8;
	th_topic(q, "t", P, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	unsigned used = 0;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			char key[32];
			int kl = snprintf(key, sizeof key, "key-%d", i);
			shmq_msg_t m;
			memset(&m, 0, sizeof m);
			m.key = key;
			m.key_len = (size_t)kl;
			m.value = "v";
			m.value_len = 1;
			m.partition = SHMQ_PARTITION_ANY;
			TH_OK(shmq_send(p, &m));
			int32_t want =
			    shmq_partition_for_key(key, (size_t)kl, P);
			CU_ASSERT_EQUAL(m.partition, want);
			used |= 1u << (unsigned)m.partition;
		}
	}
	CU_ASSERT(__builtin_popcount(used) >= 4); /* keys spread out */
	CU_ASSERT(shmq_partition_for_key("k", 1, 0) < 0);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_without_key_sticks_to_a_partition_then_moves_on(void)
{
	shmq_t *q = th_attach();
	const uint32_t P = 4, sticky = 5;
	th_topic(q, "t", P, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	int32_t first = -1;

	shmq_producer_options_init(&o);
	o.sticky_records = sticky;
	TH_OK(shmq_producer_open(q, "t", &o, &p));
	for (uint32_t i = 0; i < 6 * sticky; i++) {
		shmq_msg_t m;
		memset(&m, 0, sizeof m);
		m.value = "v";
		m.value_len = 1;
		m.partition = SHMQ_PARTITION_ANY;
		TH_OK(shmq_send(p, &m));
		if (i == 0) {
			first = m.partition;
		}
		/* runs of `sticky` records, then the next partition */
		int32_t want = (int32_t)(((uint32_t)first + i / sticky) % P);
		CU_ASSERT_EQUAL(m.partition, want);
		if (m.partition != want) {
			fprintf(stderr, "record %u: partition %d, want %d\n",
			    i, m.partition, want);
			break;
		}
	}
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_batch_returns_n_and_gives_consecutive_offsets(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 3, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	const int32_t parts[10] = { 0, 0, 1, 1, 1, 0, 2, 2, 0, 1 };
	uint32_t vals[10];
	shmq_msg_t m[10];
	uint64_t next[3] = { 0, 0, 0 };

	memset(m, 0, sizeof m);
	for (int i = 0; i < 10; i++) {
		vals[i] = 1000u + (uint32_t)i;
		m[i].value = &vals[i];
		m[i].value_len = sizeof vals[i];
		m[i].partition = parts[i];
	}
	CU_ASSERT_EQUAL(shmq_send_batch(p, m, 10), 10);
	for (int i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(m[i].partition, parts[i]);
		CU_ASSERT_EQUAL(m[i].offset, next[parts[i]]);
		CU_ASSERT(m[i].timestamp != 0);
		next[parts[i]]++;
	}
	/* what a consumer sees matches */
	for (uint32_t part = 0; part < 3; part++) {
		shmq_consumer_t *c = th_reader(q, "t", part);
		for (int i = 0; i < 10; i++) {
			if (parts[i] != (int32_t)part) {
				continue;
			}
			uint32_t v = 0;
			shmq_record_t r;
			TH_OK(shmq_recv(c, &v, sizeof v, &r, 1000));
			CU_ASSERT_EQUAL(r.offset, m[i].offset);
			CU_ASSERT_EQUAL(v, vals[i]);
		}
		uint32_t v;
		shmq_record_t r;
		TH_FAIL(shmq_recv(c, &v, sizeof v, &r, 0), -EAGAIN);
		shmq_consumer_close(c);
	}
	CU_ASSERT_EQUAL(shmq_send_batch(p, m, 0), 0);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_send_batch_sends_the_records_before_a_bad_one(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_partition_info_t i0, i1;
	shmq_msg_t m[5];

	memset(m, 0, sizeof m);
	for (int i = 0; i < 5; i++) {
		m[i].value = "abc";
		m[i].value_len = 3;
		m[i].partition = i % 2;
	}
	m[3].partition = 7; /* bad */
	CU_ASSERT_EQUAL(shmq_send_batch(p, m, 5), 3);
	CU_ASSERT_EQUAL(m[0].offset, 0);
	CU_ASSERT_EQUAL(m[1].offset, 0);
	CU_ASSERT_EQUAL(m[2].offset, 1);
	TH_OK(shmq_partition_info(q, "t", 0, &i0));
	TH_OK(shmq_partition_info(q, "t", 1, &i1));
	CU_ASSERT_EQUAL(i0.end, 2); /* m[0], m[2]; not m[4] */
	CU_ASSERT_EQUAL(i1.end, 1); /* m[1] */
	/* resubmitting from the bad one reports its error, sends none */
	CU_ASSERT_EQUAL(shmq_send_batch(p, m + 3, 2), -EINVAL);
	/* a bad first message: nothing sent, the error returned */
	m[3].partition = 0;
	m[3].value = NULL;
	CU_ASSERT_EQUAL(shmq_send_batch(p, m + 3, 2), -EINVAL);
	TH_OK(shmq_partition_info(q, "t", 0, &i0));
	CU_ASSERT_EQUAL(i0.end, 2);
	CU_ASSERT_EQUAL(shmq_send_batch(p, NULL, 1), -EINVAL);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- zero-copy write -------------------------------------------------------
 */

static void
test_reserve_then_commit_publishes_the_record_at_the_reserved_offset(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 1);
	shmq_slice_t s;
	shmq_record_t r;
	char buf[64];

	TH_OK(send_to(p, 1, NULL, 0, "first", 5, NULL));
	TH_OK(shmq_reserve(p, 1, 3, 5, &s));
	CU_ASSERT_EQUAL(s.partition, 1);
	CU_ASSERT_EQUAL(s.offset, 1);
	CU_ASSERT_EQUAL(s.key_len, 3);
	CU_ASSERT_EQUAL(s.value_len, 5);
	memcpy(s.key, "KEY", 3);
	memcpy(s.value, "hello", 5);
	/* invisible until committed */
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 0);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	TH_OK(shmq_commit(p, &s));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, s.offset);
	CU_ASSERT_EQUAL(r.partition, 1);
	CU_ASSERT_EQUAL(r.key_len, 3);
	CU_ASSERT_EQUAL(r.value_len, 5);
	CU_ASSERT(memcmp(r.key, "KEY", 3) == 0);
	CU_ASSERT(memcmp(r.value, "hello", 5) == 0);
	CU_ASSERT(r.timestamp > 0);

	/* an empty reservation works too */
	TH_OK(shmq_reserve(p, 1, 0, 0, &s));
	TH_OK(shmq_commit(p, &s));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 2);
	CU_ASSERT_EQUAL(r.key_len + r.value_len, 0);
	TH_FAIL(shmq_reserve(p, 2, 0, 1, &s), -EINVAL);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_abort_leaves_a_gap(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_partition_info_t info;
	shmq_slice_t s;
	shmq_record_t r;
	char buf[64];
	uint64_t off;

	TH_OK(send_to(p, 0, NULL, 0, "zero", 4, &off));
	CU_ASSERT_EQUAL(off, 0);
	TH_OK(shmq_reserve(p, 0, 0, 3, &s));
	CU_ASSERT_EQUAL(s.offset, 1);
	memcpy(s.value, "one", 3);
	TH_OK(shmq_abort(p, &s));
	TH_OK(send_to(p, 0, NULL, 0, "two", 3, &off));
	CU_ASSERT_EQUAL(off, 2);

	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT(r.value_len == 4 && memcmp(r.value, "zero", 4) == 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 2);
	CU_ASSERT(r.value_len == 3 && memcmp(r.value, "two", 3) == 0);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.aborted, 1);
	CU_ASSERT_EQUAL(info.end, 3);
	CU_ASSERT_EQUAL(info.committed, 3);
	/* an aborted slice cannot be committed afterwards */
	TH_FAIL(shmq_commit(p, &s), -EINVAL);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_commit_rejects_a_bogus_slice(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_partition_info_t info;
	shmq_slice_t s, bogus;

	memset(&bogus, 0, sizeof bogus);
	TH_FAIL(shmq_commit(p, &bogus), -EINVAL);
	TH_FAIL(shmq_abort(p, &bogus), -EINVAL);
	memset(&bogus, 0xff, sizeof bogus);
	TH_FAIL(shmq_commit(p, &bogus), -EINVAL);
	TH_FAIL(shmq_commit(p, NULL), -EINVAL);
	/* a real slice with its partition changed to one out of range */
	TH_OK(shmq_reserve(p, 0, 0, 1, &s));
	bogus = s;
	bogus.opaque_[1] += 5;
	TH_FAIL(shmq_commit(p, &bogus), -EINVAL);
	*(char *)s.value = 'x';
	TH_OK(shmq_commit(p, &s));
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.committed, 1);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_commit_of_a_slice_twice_fails_with_einval(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_partition_info_t info;
	shmq_slice_t s;

	TH_OK(shmq_reserve(p, 0, 0, 4, &s));
	memcpy(s.value, "abcd", 4);
	TH_OK(shmq_commit(p, &s));
	TH_FAIL(shmq_commit(p, &s), -EINVAL);
	TH_FAIL(shmq_abort(p, &s), -EINVAL);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.end, 1);
	CU_ASSERT_EQUAL(info.aborted, 0);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- consumers -------------------------------------------------------------
 */

static void
test_consumer_open_rejects_a_missing_topic_and_bad_options(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_options_t o;
	shmq_consumer_t *c = (shmq_consumer_t *)&q;

	TH_FAIL(shmq_consumer_open(q, "nope", NULL, &c), -ENOENT);
	CU_ASSERT_PTR_NULL(c);
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	const char *bad[] = { "", ".", "..", "a/b", "g@t", "a b" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		shmq_consumer_options_init(&o);
		o.group = bad[i];
		TH_FAIL(shmq_consumer_open(q, "t", &o, &c), -EINVAL);
		CU_ASSERT_PTR_NULL(c);
	}
	shmq_consumer_options_init(&o);
	o.reset = 3;
	TH_FAIL(shmq_consumer_open(q, "t", &o, &c), -EINVAL);
	shmq_consumer_options_init(&o);
	o.idle = 2;
	TH_FAIL(shmq_consumer_open(q, "t", &o, &c), -EINVAL);
	shmq_consumer_options_init(&o);
	o.flags = 0x10;
	TH_FAIL(shmq_consumer_open(q, "t", &o, &c), -EINVAL);
	TH_FAIL(shmq_consumer_open(q, "t", NULL, NULL), -EINVAL);
	shmq_consumer_close(NULL); /* allowed */
	th_destroy(q);
}

static void
test_assign_fails_in_a_group_and_out_of_range(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_options_t o;
	shmq_consumer_t *g = NULL, *c = NULL;
	uint32_t parts[3] = { 0, 1, 2 };

	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_init(&o);
	o.group = "grp";
	TH_OK(shmq_consumer_open(q, "t", &o, &g));
	TH_FAIL(shmq_assign(g, parts, 1), -EINVAL);

	TH_OK(shmq_consumer_open(q, "t", NULL, &c));
	TH_FAIL(shmq_assign(c, parts, 3), -EINVAL); /* 2 is out of range */
	uint32_t got[4];
	CU_ASSERT_EQUAL(shmq_assignment(c, got, 4), 0); /* nothing taken */
	TH_OK(shmq_assign(c, parts, 2));
	CU_ASSERT_EQUAL(shmq_assignment(c, got, 4), 2);
	CU_ASSERT(got[0] == 0 && got[1] == 1);
	TH_FAIL(shmq_assign(c, NULL, 1), -EINVAL);
	shmq_consumer_close(c);
	shmq_consumer_close(g);
	th_destroy(q);
}

static void
test_seek_on_an_unassigned_partition_fails_with_einval(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 3, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = th_reader(q, "t", 1);

	TH_FAIL(shmq_seek(c, 0, 0), -EINVAL);
	TH_FAIL(shmq_seek(c, 2, 0), -EINVAL);
	TH_FAIL(shmq_seek(c, 3, 0), -EINVAL);
	TH_FAIL(shmq_seek_to(c, 0, SHMQ_SEEK_BEGINNING), -EINVAL);
	TH_FAIL(shmq_seek_to(c, 1, 7), -EINVAL);
	TH_OK(shmq_seek(c, 1, 0));
	TH_OK(shmq_seek_to(c, 1, SHMQ_SEEK_END));
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_peek_twice_fails_with_ebusy_and_release_without_peek_with_einval(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_record_t r, r2;
	char buf[16];

	TH_FAIL(shmq_release(c, &r), -EINVAL);
	TH_OK(send_to(p, 0, NULL, 0, "a", 1, NULL));
	TH_OK(send_to(p, 0, NULL, 0, "b", 1, NULL));
	TH_OK(shmq_peek(c, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	TH_FAIL(shmq_peek(c, &r2, 0), -EBUSY);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r2, 0), -EBUSY);
	TH_OK(shmq_release(c, &r));
	TH_FAIL(shmq_release(c, &r), -EINVAL); /* released already */
	TH_OK(shmq_peek(c, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 1);
	TH_OK(shmq_release(c, &r));
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_recv_with_a_small_buffer_fails_with_emsgsize_and_keeps_the_record(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	char val[100], buf[200];
	shmq_record_t r;

	for (int i = 0; i < 100; i++) {
		val[i] = (char)('A' + i % 26);
	}
	TH_OK(send_to(p, 0, "key", 3, val, sizeof val, NULL));
	TH_OK(send_to(p, 0, NULL, 0, "next", 4, NULL));
	TH_FAIL(shmq_recv(c, buf, 10, &r, 1000), -EMSGSIZE);
	CU_ASSERT_EQUAL(r.key_len + r.value_len, 103);
	TH_FAIL(shmq_recv(c, buf, 102, &r, 1000), -EMSGSIZE);
	CU_ASSERT_EQUAL(r.key_len + r.value_len, 103);
	TH_FAIL(shmq_recv(c, NULL, 0, &r, 1000), -EMSGSIZE);
	TH_OK(shmq_recv(c, buf, 103, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT_EQUAL(r.key_len, 3);
	CU_ASSERT_EQUAL(r.value_len, 100);
	CU_ASSERT(memcmp(r.key, "key", 3) == 0);
	CU_ASSERT(memcmp(r.value, val, 100) == 0);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 1);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_recv_with_zero_timeout_on_an_empty_topic_returns_eagain_at_once(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 4, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = NULL;
	uint32_t all[4] = { 0, 1, 2, 3 };
	shmq_record_t r;
	char buf[16];

	TH_OK(shmq_consumer_open(q, "t", NULL, &c));
	/* nothing assigned yet */
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	TH_OK(shmq_assign(c, all, 4));
	int64_t t0 = th_mono_ms();
	for (int i = 0; i < 100; i++) {
		TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
		TH_FAIL(shmq_peek(c, &r, 0), -EAGAIN);
	}
	CU_ASSERT(th_mono_ms() - t0 < 100);
	/* a short timeout waits about that long, then -EAGAIN */
	t0 = th_mono_ms();
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 30), -EAGAIN);
	int64_t dt = th_mono_ms() - t0;
	CU_ASSERT(dt >= 29 && dt < 1000);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, -2), -EINVAL);
	shmq_consumer_close(c);
	th_destroy(q);
}

static void
test_consumer_commit_on_a_standalone_consumer_fails_with_einval(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 0);
	shmq_record_t r;
	char buf[16];

	TH_OK(send_to(p, 0, NULL, 0, "a", 1, NULL));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	TH_FAIL(shmq_consumer_commit(c), -EINVAL);
	TH_FAIL(shmq_consumer_commit_offset(c, 0, 1), -EINVAL);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

/* ---- topic deleted under open handles ----------------------------------- */

static void
test_send_and_poll_after_topic_delete_fail_with_edeleted(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_producer_t *p = th_producer(q, "t");
	shmq_consumer_t *c = th_reader(q, "t", 1);
	shmq_record_t r;
	char buf[16];

	TH_OK(send_to(p, 1, NULL, 0, "a", 1, NULL));
	TH_OK(shmq_topic_delete(q, "t"));
	TH_FAIL(send_to(p, 1, NULL, 0, "b", 1, NULL), SHMQ_EDELETED);
	TH_FAIL(send_to(p, 0, NULL, 0, "b", 1, NULL), SHMQ_EDELETED);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EDELETED);
	TH_FAIL(shmq_peek(c, &r, 1000), SHMQ_EDELETED);
	shmq_slice_t s;
	TH_FAIL(shmq_reserve(p, 0, 0, 1, &s), SHMQ_EDELETED);

	/* a topic of the same name made again is a new, empty topic */
	th_topic(q, "t", 2, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	TH_FAIL(send_to(p, 1, NULL, 0, "c", 1, NULL), SHMQ_EDELETED);
	shmq_producer_t *p2 = th_producer(q, "t");
	uint64_t off = 99;
	TH_OK(send_to(p2, 1, NULL, 0, "d", 1, &off));
	CU_ASSERT_EQUAL(off, 0);
	shmq_producer_close(p2);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

struct del_child {
	char home[4096];
	int ready[2]; /* child writes one byte when about to block */
};

static int
blocked_reader(void *arg)
{
	struct del_child *d = arg;
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	uint32_t part = 0;
	char buf[64];

	close(d->ready[0]);
	shmq_options_init(&o);
	o.reclaim_ms = 50;
	if (shmq_attach(d->home, &o, &q) != 0 ||
	    shmq_consumer_open(q, "t", NULL, &c) != 0 ||
	    shmq_assign(c, &part, 1) != 0) {
		return 2;
	}
	if (write(d->ready[1], "r", 1) != 1) {
		return 3;
	}
	int rc = shmq_recv(c, buf, sizeof buf, &r, -1);
	if (rc != SHMQ_EDELETED) {
		fprintf(stderr, "blocked reader: recv = %d (%s)\n", rc,
		    shmq_strerror(rc));
		return 4;
	}
	shmq_detach(q);
	return 0;
}

static void
test_topic_delete_wakes_a_reader_blocked_in_another_process(void)
{
	shmq_t *q = th_attach();
	struct del_child d;
	char b;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	snprintf(d.home, sizeof d.home, "%s", shmq_home(q));
	CU_ASSERT_FATAL(pipe(d.ready) == 0);
	pid_t pid = th_fork(blocked_reader, &d);
	close(d.ready[1]);
	CU_ASSERT_EQUAL(read(d.ready[0], &b, 1), 1);
	close(d.ready[0]);
	/* let it get past the spin into the futex (best effort: the
	 * delete must wake it at any point) */
	(void)wait_sleeping(pid, 2000);
	int64_t t0 = th_mono_ms();
	TH_OK(shmq_topic_delete(q, "t"));
	int code = wait_deadline(pid, 5000);
	int64_t dt = th_mono_ms() - t0;
	CU_ASSERT_EQUAL(code, 0);
	if (code != 0) {
		fprintf(stderr,
		    "blocked reader exit %d (-1: still blocked "
		    "5 s after the delete)\n",
		    code);
	}
	/* woken by the delete, not by a periodic timeout */
	CU_ASSERT(dt < 500);
	th_destroy(q);
}

/* A group member that has read nothing holds a `block` topic's
 * producers at the start of the ring. */
static shmq_consumer_t *
gating_member(shmq_t *q, const char *topic)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = "gate";
	TH_OK(shmq_consumer_open(q, topic, &o, &c));
	return c;
}

static void
test_send_on_a_full_block_topic_times_out_with_eagain(void)
{
	shmq_t *q = th_attach();
	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = gating_member(q, "t");
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	static uint8_t val[4000];
	uint8_t buf[sizeof val];
	shmq_record_t r;
	int rc = 0;
	uint64_t sent = 0;

	shmq_producer_options_init(&o);
	o.timeout_ms = 50;
	TH_OK(shmq_producer_open(q, "t", &o, &p));
	int64_t t0 = 0;
	while (sent < 1000) {
		t0 = th_mono_ms();
		if ((rc = send_to(p, 0, NULL, 0, val, sizeof val, NULL)) !=
		    0) {
			break;
		}
		sent++;
	}
	int64_t dt = th_mono_ms() - t0;
	TH_FAIL(rc, -EAGAIN);
	CU_ASSERT(sent >= 10 && sent <= 16); /* about one ring's worth */
	CU_ASSERT(dt >= 49 && dt < 1000);
	/* the group reads and commits: room again */
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 0));
	TH_OK(shmq_consumer_commit(c));
	TH_OK(send_to(p, 0, NULL, 0, val, sizeof val, NULL));
	shmq_producer_close(p);
	shmq_consumer_close(c);
	th_destroy(q);
}

/* A persistent ring reuses only what is on disk.  With no replicator
 * running, a full one would never get room, so a send says so at once
 * (before any wait, whatever timeout_ms) instead of -EAGAIN after the
 * timeout or never.  `drop` overwrites only what is on disk too, so it
 * fails the same way.  Nothing is appended or lost, and readers need
 * no replicator. */
static void
test_send_on_a_full_persistent_topic_without_a_replicator_fails_at_once(void)
{
	shmq_t *q = th_attach();
	const int overflow[] = { SHMQ_OVERFLOW_BLOCK, SHMQ_OVERFLOW_DROP };
	const char *topic[] = { "block", "drop" };
	static uint8_t val[4000];
	uint8_t buf[sizeof val];
	shmq_record_t r;
	shmq_slice_t s;

	for (int k = 0; k < 2; k++) {
		shmq_topic_config_t c;
		shmq_topic_config_init(&c); /* persistent: the default */
		c.ring_size = SHMQ_RING_SIZE_MIN;
		c.overflow = overflow[k];
		TH_OK(shmq_topic_create(q, topic[k], &c));
		shmq_producer_t *p =
		    th_producer_opts(q, topic[k], SHMQ_ACKS_LEADER, 0);
		uint64_t sent = 0;
		int rc;
		while ((rc = send_to(p, 0, NULL, 0, val, sizeof val, NULL)) ==
		        0 &&
		    sent < 1000) {
			sent++;
		}
		TH_FAIL(rc, SHMQ_ENOREPLICATOR);
		CU_ASSERT(sent >= 10 && sent <= 16); /* one ring's worth */
		shmq_producer_close(p);

		/* Waiting forever: the same error, not a stall. */
		p = th_producer_opts(q, topic[k], SHMQ_ACKS_LEADER, -1);
		TH_FAIL(send_to(p, 0, NULL, 0, val, sizeof val, NULL),
		    SHMQ_ENOREPLICATOR);
		TH_FAIL(
		    shmq_reserve(p, 0, 0, sizeof val, &s), SHMQ_ENOREPLICATOR);
		shmq_producer_close(p);

		shmq_partition_info_t in;
		TH_OK(shmq_partition_info(q, topic[k], 0, &in));
		CU_ASSERT_EQUAL(in.end, sent);
		CU_ASSERT_EQUAL(in.durable, 0);
		CU_ASSERT_EQUAL(in.persister, 0);
		shmq_consumer_t *rd = th_reader(q, topic[k], 0);
		for (uint64_t i = 0; i < sent; i++) {
			TH_OK(shmq_recv(rd, buf, sizeof buf, &r, 0));
			CU_ASSERT_EQUAL(r.offset, i);
		}
		TH_FAIL(shmq_recv(rd, buf, sizeof buf, &r, 0), -EAGAIN);
		shmq_consumer_close(rd);
	}
	th_destroy(q);
}

/* The replicator's absence is an error only when the disk is what
 * holds the ring.  Here every record is on disk and a group is behind:
 * the send waits for the group (-EAGAIN after timeout_ms), and once
 * the group commits there is room, with no replicator running. */
static void
test_send_on_a_persistent_topic_waits_for_a_group_not_the_replicator(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_topic_config_init(&c);
	c.ring_size = SHMQ_RING_SIZE_MIN;
	c.fsync = SHMQ_FSYNC_NEVER;
	TH_OK(shmq_topic_create(q, "t", &c));
	shmq_consumer_t *g = gating_member(q, "t");
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 0);
	static uint8_t val[4000];
	uint8_t buf[sizeof val];
	shmq_record_t r;
	uint64_t sent = 0;
	int rc;

	/* Fill the ring, each record written to disk before the next. */
	while ((rc = send_to(p, 0, NULL, 0, val, sizeof val, NULL)) == 0 &&
	    sent < 1000) {
		sent++;
		while (shmq_persister_poll(ps, 0) > 0) {
		}
	}
	TH_FAIL(rc, -EAGAIN);
	shmq_persister_close(ps);
	shmq_producer_close(p);
	shmq_partition_info_t in;
	TH_OK(shmq_partition_info(q, "t", 0, &in));
	CU_ASSERT_EQUAL(in.durable, sent);
	CU_ASSERT_EQUAL(in.persister, 0);

	p = th_producer_opts(q, "t", SHMQ_ACKS_LEADER, 50);
	TH_FAIL(send_to(p, 0, NULL, 0, val, sizeof val, NULL), -EAGAIN);
	TH_OK(shmq_recv(g, buf, sizeof buf, &r, 0));
	TH_OK(shmq_recv(g, buf, sizeof buf, &r, 0));
	TH_OK(shmq_consumer_commit(g));
	TH_OK(send_to(p, 0, NULL, 0, val, sizeof val, NULL));
	shmq_producer_close(p);
	shmq_consumer_close(g);
	th_destroy(q);
}

/* On a persistent topic (the default) the log starts on disk, not at
 * the ring's oldest record: SHMQ_SEEK_BEGINNING goes there, as reset
 * EARLIEST and shmq_partition_info().log_start do. */
static void
test_seek_to_beginning_of_a_persistent_topic_starts_on_disk(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_topic_config_init(&c);
	c.ring_size = SHMQ_RING_SIZE_MIN;
	c.fsync = SHMQ_FSYNC_NEVER;
	TH_OK(shmq_topic_create(q, "t", &c));
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	static uint8_t val[4000];
	uint8_t buf[sizeof val];
	shmq_record_t r;
	for (int i = 0; i < 40; i++) { /* about 3 rings */
		TH_OK(send_to(p, 0, NULL, 0, val, sizeof val, NULL));
		while (shmq_persister_poll(ps, 0) > 0) {
		}
	}
	shmq_persister_close(ps);
	shmq_producer_close(p);
	shmq_partition_info_t in;
	TH_OK(shmq_partition_info(q, "t", 0, &in));
	CU_ASSERT_EQUAL(in.log_start, 0);
	CU_ASSERT_EQUAL(in.durable, 40);

	shmq_consumer_t *rd = th_reader(q, "t", 0);
	TH_OK(shmq_seek(rd, 0, 30));
	TH_OK(shmq_recv(rd, buf, sizeof buf, &r, 0));
	CU_ASSERT_EQUAL(r.offset, 30);
	TH_OK(shmq_seek_to(rd, 0, SHMQ_SEEK_BEGINNING));
	for (uint64_t i = 0; i < 40; i++) {
		TH_OK(shmq_recv(rd, buf, sizeof buf, &r, 0));
		CU_ASSERT_EQUAL(r.offset, i);
	}
	TH_OK(shmq_seek_to(rd, 0, SHMQ_SEEK_END));
	TH_FAIL(shmq_recv(rd, buf, sizeof buf, &r, 0), -EAGAIN);
	shmq_consumer_close(rd);
	th_destroy(q);
}

static void
test_commit_after_a_stall_past_stall_ms_fails_with_ereclaimed(void)
{
	shmq_t *q = th_attach();
	shmq_options_t o;
	shmq_t *qs = NULL;
	shmq_producer_t *p = NULL;
	shmq_partition_info_t info;
	shmq_record_t r;
	shmq_slice_t s;
	char buf[64];

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_options_init(&o);
	o.reclaim_ms = 20;
	o.stall_ms = 50;
	TH_OK(shmq_attach(shmq_home(q), &o, &qs));
	TH_OK(shmq_producer_open(qs, "t", NULL, &p));
	shmq_consumer_t *c = NULL;
	uint32_t part = 0;
	TH_OK(shmq_consumer_open(qs, "t", NULL, &c));
	TH_OK(shmq_assign(c, &part, 1));

	TH_OK(shmq_reserve(p, 0, 0, 4, &s));
	memcpy(s.value, "late", 4);
	/* the consumer waits on the stuck reservation, then aborts it */
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 500), -EAGAIN);
	TH_OK(shmq_partition_info(q, "t", 0, &info));
	CU_ASSERT_EQUAL(info.aborted, 1);
	CU_ASSERT_EQUAL(info.committed, 1);
	TH_FAIL(shmq_commit(p, &s), SHMQ_ERECLAIMED);
	/* nothing of it is visible; the next record is */
	uint64_t off = 0;
	TH_OK(send_to(p, 0, NULL, 0, "next", 4, &off));
	CU_ASSERT_EQUAL(off, 1);
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 1);
	CU_ASSERT(r.value_len == 4 && memcmp(r.value, "next", 4) == 0);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_detach(qs);
	th_destroy(q);
}

static void
test_consumer_open_in_a_full_group_fails_with_emfile(void)
{
	shmq_t *q = th_attach();
	shmq_consumer_options_t o;
	shmq_consumer_t *c[65];
	int n = 0, rc = 0;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_options_init(&o);
	o.group = "big";
	for (; n < 65; n++) {
		c[n] = NULL;
		if ((rc = shmq_consumer_open(q, "t", &o, &c[n])) != 0) {
			break;
		}
	}
	CU_ASSERT_EQUAL(n, 64);
	TH_FAIL(rc, -EMFILE);
	CU_ASSERT_PTR_NULL(c[n < 65 ? n : 64]);
	/* a leaving member makes room */
	if (n == 64) {
		shmq_consumer_close(c[0]);
		TH_OK(shmq_consumer_open(q, "t", &o, &c[0]));
	}
	for (int i = 0; i < n; i++) {
		shmq_consumer_close(c[i]);
	}
	th_destroy(q);
}

static int
blocked_writer(void *arg)
{
	struct del_child *d = arg;
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_producer_t *p = NULL;
	static uint8_t val[4000];

	close(d->ready[0]);
	shmq_options_init(&o);
	o.reclaim_ms = 50;
	if (shmq_attach(d->home, &o, &q) != 0 ||
	    shmq_producer_open(q, "t", NULL, &p) != 0) {
		return 2;
	}
	if (write(d->ready[1], "w", 1) != 1) {
		return 3;
	}
	for (int i = 0; i < 1000; i++) { /* blocks after ~16 */
		int rc = send_to(p, 0, NULL, 0, val, sizeof val, NULL);
		if (rc == SHMQ_EDELETED) {
			shmq_detach(q);
			return 0;
		}
		if (rc != 0) {
			fprintf(
			    stderr, "blocked writer: %s\n", shmq_strerror(rc));
			return 4;
		}
	}
	return 5; /* never blocked: the gate did not hold */
}

static void
test_topic_delete_wakes_a_producer_blocked_on_a_full_ring(void)
{
	shmq_t *q = th_attach();
	struct del_child d;
	shmq_partition_info_t info;
	char b;

	th_topic(q, "t", 1, SHMQ_RING_SIZE_MIN, SHMQ_OVERFLOW_BLOCK);
	shmq_consumer_t *c = gating_member(q, "t");
	snprintf(d.home, sizeof d.home, "%s", shmq_home(q));
	CU_ASSERT_FATAL(pipe(d.ready) == 0);
	pid_t pid = th_fork(blocked_writer, &d);
	close(d.ready[1]);
	CU_ASSERT_EQUAL(read(d.ready[0], &b, 1), 1);
	close(d.ready[0]);
	/* wait until the ring is full and the writer sleeps on it */
	int64_t end = th_mono_ms() + 2000;
	do {
		TH_OK(shmq_partition_info(q, "t", 0, &info));
	} while (info.ring_used + 4096 < info.ring_size && th_mono_ms() < end);
	(void)wait_sleeping(pid, 2000);
	TH_OK(shmq_topic_delete(q, "t"));
	int code = wait_deadline(pid, 5000);
	CU_ASSERT_EQUAL(code, 0);
	if (code != 0) {
		fprintf(stderr,
		    "blocked writer exit %d (-1: still blocked "
		    "5 s after the delete)\n",
		    code);
	}
	shmq_consumer_close(c);
	th_destroy(q);
}

/* ---- shmq_strerror ---------------------------------------------------------
 */

static void
test_strerror_is_never_null_and_knows_every_code(void)
{
	const int codes[] = { SHMQ_ECORRUPT, SHMQ_EVERSION, SHMQ_EFAILED,
		SHMQ_ENOREPLICATOR, SHMQ_ELAPPED, SHMQ_EOUTOFRANGE,
		SHMQ_ERECLAIMED, SHMQ_EDELETED, SHMQ_ENOTOWNER, SHMQ_ESTALE };
	const int errnos[] = { -EINVAL, -ENOMEM, -EAGAIN, -ETIMEDOUT,
		-EMSGSIZE, -ENOENT, -EEXIST, -EBUSY, -EACCES, -EMFILE };

	CU_ASSERT_PTR_NOT_NULL(shmq_strerror(0));
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		const char *s = shmq_strerror(codes[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT(s[0] != '\0');
		CU_ASSERT_STRING_NOT_EQUAL(s, "unknown error");
		for (size_t j = 0; j < i; j++) {
			CU_ASSERT_STRING_NOT_EQUAL(s, shmq_strerror(codes[j]));
		}
	}
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++) {
		const char *s = shmq_strerror(errnos[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_STRING_NOT_EQUAL(s, "unknown error");
	}
	CU_ASSERT_STRING_EQUAL(shmq_strerror(-EINVAL), strerror(EINVAL));
	CU_ASSERT_STRING_EQUAL(shmq_strerror(12345), "unknown error");
	CU_ASSERT_STRING_EQUAL(shmq_strerror(-999999), "unknown error");
	CU_ASSERT_PTR_NOT_NULL(shmq_strerror(SHMQ_ERRBASE));
	CU_ASSERT_PTR_NOT_NULL(shmq_strerror(SHMQ_ERRBASE - 11));
	CU_ASSERT_PTR_NOT_NULL(shmq_version());
}

static CU_TestInfo tests[] = {
	{ "attach_rejects_bad_arguments", test_attach_rejects_bad_arguments },
	{ "attach_fails_with_enoent_when_home_is_missing_and_create_is_off",
	    test_attach_fails_with_enoent_when_home_is_missing_and_create_is_off },
	{ "attach_fails_with_eacces_when_home_is_world_writable",
	    test_attach_fails_with_eacces_when_home_is_world_writable },
	{ "attach_fails_with_eperm_when_home_is_not_ours",
	    test_attach_fails_with_eperm_when_home_is_not_ours },
	{ "attach_fails_with_eacces_when_the_shm_dir_is_world_writable",
	    test_attach_fails_with_eacces_when_the_shm_dir_is_world_writable },
	{ "attach_fails_with_ecorrupt_when_the_instance_id_is_damaged",
	    test_attach_fails_with_ecorrupt_when_the_instance_id_is_damaged },
	{ "topic_create_rejects_bad_names",
	    test_topic_create_rejects_bad_names },
	{ "topic_create_accepts_a_100_char_name",
	    test_topic_create_accepts_a_100_char_name },
	{ "topic_create_rejects_bad_configs",
	    test_topic_create_rejects_bad_configs },
	{ "topic_create_twice_fails_with_eexist",
	    test_topic_create_twice_fails_with_eexist },
	{ "topic_delete_and_describe_of_a_missing_topic_fail_with_enoent",
	    test_topic_delete_and_describe_of_a_missing_topic_fail_with_enoent },
	{ "topic_describe_returns_what_was_created",
	    test_topic_describe_returns_what_was_created },
	{ "topic_list_is_sorted_and_complete",
	    test_topic_list_is_sorted_and_complete },
	{ "topic_list_stops_when_the_callback_returns_nonzero",
	    test_topic_list_stops_when_the_callback_returns_nonzero },
	{ "producer_open_on_a_missing_topic_fails_with_enoent",
	    test_producer_open_on_a_missing_topic_fails_with_enoent },
	{ "producer_open_with_durable_or_all_acks_needs_the_replicator",
	    test_producer_open_with_durable_or_all_acks_needs_the_replicator },
	{ "producer_open_rejects_bad_options",
	    test_producer_open_rejects_bad_options },
	{ "exclusive_producer_excludes_other_producers",
	    test_exclusive_producer_excludes_other_producers },
	{ "send_rejects_a_partition_out_of_range",
	    test_send_rejects_a_partition_out_of_range },
	{ "send_rejects_null_data_with_a_length",
	    test_send_rejects_null_data_with_a_length },
	{ "send_rejects_records_over_a_quarter_ring_and_takes_the_largest",
	    test_send_rejects_records_over_a_quarter_ring_and_takes_the_largest },
	{ "send_rejects_keys_over_65535_bytes",
	    test_send_rejects_keys_over_65535_bytes },
	{ "send_gives_consecutive_offsets_per_partition_and_a_timestamp",
	    test_send_gives_consecutive_offsets_per_partition_and_a_timestamp },
	{ "send_by_key_uses_the_key_partitioner",
	    test_send_by_key_uses_the_key_partitioner },
	{ "send_without_key_sticks_to_a_partition_then_moves_on",
	    test_send_without_key_sticks_to_a_partition_then_moves_on },
	{ "send_batch_returns_n_and_gives_consecutive_offsets",
	    test_send_batch_returns_n_and_gives_consecutive_offsets },
	{ "send_batch_sends_the_records_before_a_bad_one",
	    test_send_batch_sends_the_records_before_a_bad_one },
	{ "reserve_then_commit_publishes_the_record_at_the_reserved_offset",
	    test_reserve_then_commit_publishes_the_record_at_the_reserved_offset },
	{ "abort_leaves_a_gap", test_abort_leaves_a_gap },
	{ "commit_rejects_a_bogus_slice", test_commit_rejects_a_bogus_slice },
	{ "commit_of_a_slice_twice_fails_with_einval",
	    test_commit_of_a_slice_twice_fails_with_einval },
	{ "consumer_open_rejects_a_missing_topic_and_bad_options",
	    test_consumer_open_rejects_a_missing_topic_and_bad_options },
	{ "assign_fails_in_a_group_and_out_of_range",
	    test_assign_fails_in_a_group_and_out_of_range },
	{ "seek_on_an_unassigned_partition_fails_with_einval",
	    test_seek_on_an_unassigned_partition_fails_with_einval },
	{ "peek_twice_fails_with_ebusy_and_release_without_peek_with_einval",
	    test_peek_twice_fails_with_ebusy_and_release_without_peek_with_einval },
	{ "recv_with_a_small_buffer_fails_with_emsgsize_and_keeps_the_record",
	    test_recv_with_a_small_buffer_fails_with_emsgsize_and_keeps_the_record },
	{ "recv_with_zero_timeout_on_an_empty_topic_returns_eagain_at_once",
	    test_recv_with_zero_timeout_on_an_empty_topic_returns_eagain_at_once },
	{ "consumer_commit_on_a_standalone_consumer_fails_with_einval",
	    test_consumer_commit_on_a_standalone_consumer_fails_with_einval },
	{ "send_and_poll_after_topic_delete_fail_with_edeleted",
	    test_send_and_poll_after_topic_delete_fail_with_edeleted },
	{ "topic_delete_wakes_a_reader_blocked_in_another_process",
	    test_topic_delete_wakes_a_reader_blocked_in_another_process },
	{ "send_on_a_full_block_topic_times_out_with_eagain",
	    test_send_on_a_full_block_topic_times_out_with_eagain },
	{ "send_on_a_full_persistent_topic_without_a_replicator_fails_at_"
	  "once",
	    test_send_on_a_full_persistent_topic_without_a_replicator_fails_at_once },
	{ "send_on_a_persistent_topic_waits_for_a_group_not_the_replicator",
	    test_send_on_a_persistent_topic_waits_for_a_group_not_the_replicator },
	{ "seek_to_beginning_of_a_persistent_topic_starts_on_disk",
	    test_seek_to_beginning_of_a_persistent_topic_starts_on_disk },
	{ "commit_after_a_stall_past_stall_ms_fails_with_ereclaimed",
	    test_commit_after_a_stall_past_stall_ms_fails_with_ereclaimed },
	{ "consumer_open_in_a_full_group_fails_with_emfile",
	    test_consumer_open_in_a_full_group_fails_with_emfile },
	{ "topic_delete_wakes_a_producer_blocked_on_a_full_ring",
	    test_topic_delete_wakes_a_producer_blocked_on_a_full_ring },
	{ "strerror_is_never_null_and_knows_every_code",
	    test_strerror_is_never_null_and_knows_every_code },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_api = { "api", tests };
