/*
 * instance.c — the instance and topics a run uses, and their cleanup.
 *
 * Without --home, shmq-perf makes a private instance in a fresh
 * mkdtemp() directory and removes it, and the instance's shm directory,
 * at the end.  It deletes only topics it created itself, and the "perf"
 * group only where it created it, so pointing it at a live instance
 * leaves that instance as it was.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perf.h"

/* A ping and a pong topic at most. */
#define PERF_TOPICS_MAX 2

struct perf_topic {
	char name[SHMQ_NAME_MAX + 1];
	int created; /* delete the topic at close */
	int group_fresh; /* delete group "perf" on it at close */
};

struct perf_instance {
	shmq_t *q;
	int temp;
	char home[PATH_MAX];
	char shm_dir[PATH_MAX];
	struct perf_topic topics[PERF_TOPICS_MAX];
	unsigned ntopics;
	pid_t persister; /* the persister perf started, or 0 */
};

/* A persistent topic needs a persister (what shmq-replicator runs): start
 * one in a child if none runs for the instance, and wait until it holds
 * the instance's lock. */
static int
perf_persister_child(const char *home)
{
	shmq_t *q = NULL;
	shmq_persister_t *ps = NULL;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (shmq_attach(home, NULL, &q) != 0 ||
	    shmq_persister_open(q, NULL, NULL, NULL, &ps) != 0) {
		_exit(1);
	}
	for (;;) {
		if (shmq_persister_poll(ps, 100) < 0) {
			_exit(1);
		}
	}
}

static int
perf_start_persister(struct perf_instance *in)
{
	if (in->persister != 0 || shmq_persister_running(in->q, NULL) == 1) {
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		return perf_fail("fork", -errno);
	}
	if (pid == 0) {
		perf_persister_child(in->home);
	}
	in->persister = pid;
	uint64_t deadline = perf_now_ns() + UINT64_C(5000000000);
	while (shmq_persister_running(in->q, NULL) != 1) {
		if (perf_now_ns() > deadline) {
			return perf_fail("persister", -ETIMEDOUT);
		}
		sched_yield();
	}
	return 0;
}

int
perf_instance_open(const struct perf_opts *o, struct perf_instance **inp)
{
	struct perf_instance *in;
	int rc;

	*inp = NULL;
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		return perf_fail("instance", -ENOMEM);
	}
	*inp = in;
	if (o->home == NULL) {
		snprintf(in->home, sizeof(in->home), "/tmp/shmq-perf.XXXXXX");
		if (mkdtemp(in->home) == NULL) {
			return perf_fail("mkdtemp", -errno);
		}
		in->temp = 1;
	}
	rc = shmq_attach(in->temp ? in->home : o->home, NULL, &in->q);
	if (rc != 0) {
		return perf_fail("shmq_attach", rc);
	}
	snprintf(in->home, sizeof(in->home), "%s", shmq_home(in->q));
	snprintf(in->shm_dir, sizeof(in->shm_dir), "%s", shmq_shm_dir(in->q));
	return 0;
}

shmq_t *
perf_instance_q(const struct perf_instance *in)
{
	return in->q;
}

const char *
perf_instance_home(const struct perf_instance *in)
{
	return in->home;
}

static int
perf_group_exists(shmq_t *q, const char *topic)
{
	shmq_group_partition_t gp;

	return shmq_group_describe(q, PERF_GROUP, topic, &gp, 1) != -ENOENT;
}

int
perf_instance_topic(struct perf_instance *in, const char *name,
    const struct perf_opts *o, struct perf_target *tg, uint32_t *partitions,
    int *durability)
{
	struct perf_topic *t = &in->topics[in->ntopics];
	shmq_topic_config_t cfg;
	int rc;

	if (in->ntopics == PERF_TOPICS_MAX) {
		return perf_fail("topics", -ENOSPC);
	}
	/* Every setting perf cares about is set here, whatever the
	 * library's defaults: durability in particular, so that a change
	 * of the default cannot change what a run measures unnoticed. */
	shmq_topic_config_init(&cfg);
	cfg.partitions = o->partitions;
	cfg.overflow = SHMQ_OVERFLOW_BLOCK;
	cfg.durability = o->durability;
	cfg.fsync = o->fsync;
	cfg.fsync_interval_ms = o->fsync_interval_ms;
	if (o->ring_size != 0) {
		cfg.ring_size = o->ring_size;
	}
	rc = shmq_topic_create(in->q, name, &cfg);
	if (rc == -EEXIST) {
		/* Reuse it as it is: its partitions, its ring size. */
		rc = shmq_topic_describe(in->q, name, &cfg);
		t->group_fresh = !perf_group_exists(in->q, name);
	} else {
		t->created = rc == 0;
	}
	if (rc != 0) {
		perf_err("topic \"%s\": %s", name, shmq_strerror(rc));
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	in->ntopics++;
	if (cfg.durability == SHMQ_DURABILITY_PERSISTENT &&
	    perf_start_persister(in) != 0) {
		return -1;
	}
	*partitions = cfg.partitions;
	if (durability != NULL) {
		*durability = cfg.durability;
	}
	if (tg->ring_size == 0 || cfg.ring_size < tg->ring_size) {
		tg->ring_size = cfg.ring_size;
	}
	return 0;
}

static int
perf_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT) {
		perf_err("remove %s: %s", path, strerror(errno));
	}
	return 0;
}

/* FTW_PHYS: never follow a link out of the directory being removed. */
static void
perf_rmtree(const char *dir)
{
	if (dir[0] != '\0' && strcmp(dir, "/") != 0) {
		nftw(dir, perf_rm, 16, FTW_DEPTH | FTW_PHYS);
	}
}

void
perf_instance_close(struct perf_instance *in)
{
	unsigned i;
	int rc;

	if (in == NULL) {
		return;
	}
	if (in->persister > 0) {
		kill(in->persister, SIGKILL);
		waitpid(in->persister, NULL, 0);
	}
	for (i = 0; i < in->ntopics && in->q != NULL; i++) {
		struct perf_topic *t = &in->topics[i];

		rc = t->created ? shmq_topic_delete(in->q, t->name) : 0;
		if (rc == 0 && t->group_fresh) {
			rc = shmq_group_delete(in->q, PERF_GROUP, t->name);
			rc = rc == -ENOENT ? 0 : rc;
		}
		if (rc != 0) {
			perf_err("cleaning up topic \"%s\": %s", t->name,
			    shmq_strerror(rc));
		}
	}
	shmq_detach(in->q);
	if (in->temp) {
		perf_rmtree(in->home);
		perf_rmtree(in->shm_dir);
	}
	free(in);
}
