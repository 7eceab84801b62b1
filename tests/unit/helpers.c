/*
 * helpers.c — test fixtures (see helpers.h).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
rm_tree(const char *dir)
{
	if (dir != NULL && dir[0] != '\0') {
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

shmq_t *
th_attach(void)
{
	char tmpl[] = "/tmp/shmq-test-XXXXXX";
	shmq_options_t o;
	shmq_t *q = NULL;
	if (mkdtemp(tmpl) == NULL) {
		CU_FAIL_FATAL("mkdtemp");
	}
	shmq_options_init(&o);
	o.reclaim_ms = 50;
	int rc = shmq_attach(tmpl, &o, &q);
	if (rc != 0) {
		fprintf(stderr, "attach %s: %s\n", tmpl, shmq_strerror(rc));
		CU_FAIL_FATAL("attach");
	}
	return q;
}

shmq_t *
th_attach_home(const char *home)
{
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_options_init(&o);
	o.reclaim_ms = 50;
	return shmq_attach(home, &o, &q) == 0 ? q : NULL;
}

shmq_t *
th_attach_opts(const char *home, unsigned reclaim_ms, unsigned stall_ms)
{
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_options_init(&o);
	o.reclaim_ms = reclaim_ms;
	o.stall_ms = stall_ms;
	TH_OK(shmq_attach(home, &o, &q));
	return q;
}

shmq_t *
th_reattach(shmq_t *q)
{
	return th_attach_home(shmq_home(q));
}

shmq_producer_t *
th_producer_opts(shmq_t *q, const char *topic, int acks, int timeout_ms)
{
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	shmq_producer_options_init(&o);
	o.acks = acks;
	o.timeout_ms = timeout_ms;
	TH_OK(shmq_producer_open(q, topic, &o, &p));
	return p;
}

shmq_producer_t *
th_producer(shmq_t *q, const char *topic)
{
	return th_producer_opts(q, topic, SHMQ_ACKS_LEADER, -1);
}

shmq_consumer_t *
th_reader(shmq_t *q, const char *topic, uint32_t part)
{
	shmq_consumer_t *c = NULL;
	TH_OK(shmq_consumer_open(q, topic, NULL, &c));
	TH_OK(shmq_assign(c, &part, 1));
	return c;
}

int
th_count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL) {
		return -1;
	}
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n;
}

int64_t
th_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
del_topic(const char *name, void *arg)
{
	shmq_topic_delete(arg, name);
	return 0;
}

void
th_destroy(shmq_t *q)
{
	char home[4096], shm[4096];
	if (q == NULL) {
		return;
	}
	snprintf(home, sizeof home, "%s", shmq_home(q));
	snprintf(shm, sizeof shm, "%s", shmq_shm_dir(q));
	shmq_topic_list(q, del_topic, q);
	shmq_detach(q);
	rm_tree(shm);
	rm_tree(home);
}

void
th_topic(
    shmq_t *q, const char *name, uint32_t parts, uint64_t ring, int overflow)
{
	shmq_topic_config_t c;
	shmq_topic_config_init(&c);
	c.partitions = parts;
	c.ring_size = ring;
	c.overflow = overflow;
	/* The suites test the ring: a persistent topic (the default)
	 * would stop every producer after one ring without a persister. */
	c.durability = SHMQ_DURABILITY_VOLATILE;
	TH_OK(shmq_topic_create(q, name, &c));
}

static void
persister_log(int level, const char *msg, void *arg)
{
	(void)arg;
	if (level <= SHMQ_LOG_WARN) {
		fprintf(stderr, "[persister] %s\n", msg);
	}
}

int
th_persister_main(void *home)
{
	shmq_t *q = th_attach_home(home);
	shmq_persister_t *ps = NULL;
	if (q == NULL ||
	    shmq_persister_open(q, persister_log, NULL, NULL, &ps) != 0) {
		return 2;
	}
	for (;;) {
		if (shmq_persister_poll(ps, 100) < 0) {
			return 3;
		}
	}
}

void
th_wait_persister(shmq_t *q, bool alive)
{
	int64_t deadline = th_mono_ms() + 5000;
	while (shmqi_persister_alive(q) != alive && th_mono_ms() < deadline) {
		sched_yield();
	}
	CU_ASSERT_FATAL(shmqi_persister_alive(q) == alive);
}

void
th_persistent_config(shmq_topic_config_t *c, int fsync)
{
	shmq_topic_config_init(c);
	c->ring_size = 64u * 1024u;
	c->durability = SHMQ_DURABILITY_PERSISTENT;
	c->fsync = fsync;
	c->fsync_interval_ms = 20;
}

pid_t
th_fork(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* A failed assertion in the parent must not leave children
		 * (a persister looping forever) behind: die with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	CU_ASSERT_FATAL(pid > 0);
	return pid;
}

int
th_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			return -1;
		}
	}
	if (WIFEXITED(st)) {
		return WEXITSTATUS(st);
	}
	return 128 + WTERMSIG(st);
}

void *
th_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(p != MAP_FAILED);
	memset(p, 0, len);
	return p;
}

void
th_unshared(void *p, size_t len)
{
	munmap(p, len);
}

unsigned
th_soak(unsigned base)
{
	const char *s = getenv("SHMQ_SOAK");
	unsigned k = s ? (unsigned)strtoul(s, NULL, 10) : 1;
	return base * (k ? k : 1);
}

unsigned
th_seed(const char *what)
{
	const char *s = getenv("SHMQ_SEED");
	unsigned seed = s ? (unsigned)strtoul(s, NULL, 10)
	                  : (unsigned)time(NULL) ^ (unsigned)getpid();
	fprintf(stderr, "[%s: SHMQ_SEED=%u] ", what, seed);
	return seed;
}

void
th_wipe_tmpfs(shmq_t *q)
{
	char cmd[SHMQ_DIR_MAX + 32];
	snprintf(cmd, sizeof cmd, "rm -f %s/*", shmq_shm_dir(q));
	CU_ASSERT_FATAL(system(cmd) == 0);
}

pid_t
th_start_persister(shmq_t *q)
{
	/* The child reads the path after the fork: static, not on our
	 * stack frame that returns. */
	static char home[SHMQ_DIR_MAX];
	snprintf(home, sizeof home, "%s", shmq_home(q));
	pid_t pid = th_fork(th_persister_main, home);
	th_wait_persister(q, true);
	return pid;
}

void
th_stop_persister(shmq_t *q, pid_t pid)
{
	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(th_wait(pid), 128 + SIGKILL);
	th_wait_persister(q, false);
}

void
th_topic_persistent(shmq_t *q, const char *name, int fsync)
{
	shmq_topic_config_t c;
	th_persistent_config(&c, fsync);
	TH_OK(shmq_topic_create(q, name, &c));
}

shmq_producer_t *
th_idem_producer(shmq_t *q, const char *topic, const char *name, int acks,
    int timeout_ms, int retries)
{
	shmq_producer_options_t o;
	shmq_producer_t *p = NULL;
	shmq_producer_options_init(&o);
	o.flags = SHMQ_PRODUCER_IDEMPOTENT;
	o.producer_name = name;
	o.acks = acks;
	o.timeout_ms = timeout_ms;
	o.retries = retries;
	TH_OK(shmq_producer_open(q, topic, &o, &p));
	return p;
}

uint64_t
th_end_offset(shmq_t *q, const char *topic, uint32_t part)
{
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, topic, part, &pi));
	return pi.end;
}
