/*
 * zero_copy.c — records written and read in place, never copied.
 *
 *   zero_copy [HOME] [COUNT]
 *
 * A child process reserves room in the ring, writes key and value
 * straight into it and commits; the parent borrows each record with
 * shmq_peek, checks it where it lies, and gives it back with
 * shmq_release.  The topic is private to this run and deleted at the
 * end, so it is volatile: it needs no shmq-replicator, which a
 * persistent topic (the default) would after one ring.  HOME defaults
 * to $SHMQ_HOME.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmq.h>

static int
fail(const char *what, int err)
{
	fprintf(stderr, "zero_copy: %s: %s\n", what, shmq_strerror(err));
	return 1;
}

/* Record i: key i, then VALUE_SIZE(i) bytes of PATTERN(i, j). */
#define VALUE_SIZE(i) (64 + (size_t)((i) % 64))
#define PATTERN(i, j) ((unsigned char)((i)*7 + (long)(j)))

/* The child: it attaches on its own, as handles do not cross fork(). */
static int
produce(const char *home, const char *topic, long count)
{
	shmq_producer_t *p = NULL;
	shmq_t *q = NULL;
	shmq_slice_t s;
	size_t j;
	long i;
	int rc;

	rc = shmq_attach(home, NULL, &q);
	if (rc == 0) {
		rc = shmq_producer_open(q, topic, NULL, &p);
	}
	for (i = 0; rc == 0 && i < count; i++) {
		/* s.key and s.value point into the ring itself. */
		rc = shmq_reserve(p, 0, sizeof(i), VALUE_SIZE(i), &s);
		if (rc == 0) {
			memcpy(s.key, &i, sizeof(i));
			for (j = 0; j < s.value_len; j++) {
				((unsigned char *)s.value)[j] = PATTERN(i, j);
			}
			rc = shmq_commit(p, &s); /* now consumers see it */
		}
	}
	shmq_detach(q); /* also closes p */
	return rc == 0 ? 0 : fail("producer", rc);
}

static int
consume(shmq_consumer_t *c, long count)
{
	const unsigned char *v;
	shmq_record_t r;
	long i, key;
	size_t j;
	int rc, bad;

	for (i = 0; i < count; i++) {
		rc = shmq_peek(c, &r, 5000); /* r.value points into the ring */
		if (rc != 0) {
			return fail("shmq_peek", rc);
		}
		v = r.value;
		bad = r.key_len != sizeof(key) || r.value_len != VALUE_SIZE(i);
		for (j = 0; !bad && j < r.value_len; j++) {
			bad = v[j] != PATTERN(i, j);
		}
		if (!bad) {
			memcpy(&key, r.key, sizeof(key));
			bad = key != i;
		}
		rc = shmq_release(c, &r); /* r.value is invalid from here on */
		if (rc != 0) {
			return fail("shmq_release", rc);
		}
		if (bad) {
			fprintf(stderr, "zero_copy: record %ld is wrong\n", i);
			return 1;
		}
		/* The `block` topic keeps ring space for the group up to
		 * its committed offset: commit, or the producer stalls. */
		if (i % 1000 == 999 && (rc = shmq_consumer_commit(c)) != 0) {
			return fail("shmq_consumer_commit", rc);
		}
	}
	printf("zero_copy: %ld records written and checked in place\n", count);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *home = argc > 1 ? argv[1] : NULL;
	long count = argc > 2 ? atol(argv[2]) : 10000;
	shmq_consumer_options_t co;
	shmq_topic_config_t tc;
	shmq_consumer_t *c = NULL;
	shmq_t *q = NULL;
	char topic[64];
	int rc, status;
	pid_t pid;

	snprintf(topic, sizeof(topic), "zero-copy-%ld", (long)getpid());
	shmq_topic_config_init(&tc);
	tc.durability = SHMQ_DURABILITY_VOLATILE;
	rc = shmq_attach(home, NULL, &q);
	if (rc == 0 && (rc = shmq_topic_create(q, topic, &tc)) == 0) {
		/* Join before the child writes, so that the `block` topic
		 * holds records for this group instead of overwriting. */
		shmq_consumer_options_init(&co);
		co.group = "zero-copy";
		rc = shmq_consumer_open(q, topic, &co, &c);
	}
	fflush(stdout);
	pid = rc == 0 ? fork() : -1;
	if (pid == 0) {
		_exit(produce(home, topic, count));
	}
	rc =
	    pid < 0 ? fail("setup", rc != 0 ? rc : -errno) : consume(c, count);
	if (pid > 0 && rc != 0) {
		kill(pid, SIGKILL); /* it may be waiting for ring space */
	}
	if (pid > 0 &&
	    (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	        WEXITSTATUS(status) != 0)) {
		rc = 1;
	}
	shmq_consumer_close(c);
	shmq_topic_delete(q, topic);
	shmq_detach(q);
	return rc;
}
