/*
 * helpers.h — fixtures for the CUnit suites: a fresh instance per test in
 * its own temp dir (removed afterwards, with its shm dir), fork and kill
 * helpers, a barrier in MAP_SHARED memory, and the soak knob.
 */
#ifndef SHMQ_TEST_HELPERS_H
#define SHMQ_TEST_HELPERS_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmq.h"

struct th_suite {
	const char *name;
	CU_TestInfo *tests;
};

/* A fresh instance: temp home, its own shm dir, reclaim after 50 ms. */
shmq_t *th_attach(void);
/* Attach again to the same instance (another handle, or in a child). */
shmq_t *th_reattach(shmq_t *q);
/* Delete the instance's topics and files, then detach. */
void th_destroy(shmq_t *q);
/* Create a volatile topic (no persister needed); fails the test on
 * error. */
void th_topic(
    shmq_t *q, const char *name, uint32_t parts, uint64_t ring, int overflow);

/* A persistent topic's config: defaults, then a 64 KiB ring, the fsync
 * policy (interval: 20 ms); the caller sets more, then creates. */
void th_persistent_config(shmq_topic_config_t *c, int fsync);
/* Create a persistent topic with th_persistent_config's settings. */
void th_topic_persistent(shmq_t *q, const char *name, int fsync);
/* A persister process (th_fork it with the home's path): polls until
 * killed, its warnings on stderr; and a wait until one is (not) alive. */
int th_persister_main(void *home);
void th_wait_persister(shmq_t *q, bool alive);
/* Fork a persister for q's home and wait until it runs; kill it
 * (SIGKILL) and wait until it is gone. */
pid_t th_start_persister(shmq_t *q);
void th_stop_persister(shmq_t *q, pid_t pid);

/* Attach to an existing instance, as a child process does (reclaim after
 * 50 ms, as th_attach); NULL on failure. */
shmq_t *th_attach_home(const char *home);
/* The same, with these reclaim_ms and stall_ms (0 = never); fails the
 * test on error. */
shmq_t *th_attach_opts(
    const char *home, unsigned reclaim_ms, unsigned stall_ms);

/* A producer (acks LEADER, waiting forever), or with acks and timeout;
 * fails the test on error. */
shmq_producer_t *th_producer(shmq_t *q, const char *topic);
shmq_producer_t *th_producer_opts(
    shmq_t *q, const char *topic, int acks, int timeout_ms);
/* A standalone consumer reading partition `part` from the earliest. */
shmq_consumer_t *th_reader(shmq_t *q, const char *topic, uint32_t part);

/* A reboot, as far as shmq can tell: every file of the instance's shm
 * directory (rings, group and producer state) is gone; the home and the
 * segments stay. */
void th_wipe_tmpfs(shmq_t *q);

/* An idempotent producer (name NULL: anonymous) with these acks,
 * timeout and retries; fails the test on error. */
shmq_producer_t *th_idem_producer(shmq_t *q, const char *topic,
    const char *name, int acks, int timeout_ms, int retries);
/* The partition's end offset now. */
uint64_t th_end_offset(shmq_t *q, const char *topic, uint32_t part);

/* Open file descriptors of this process (leak checks). */
int th_count_fds(void);

/* CLOCK_MONOTONIC in ms, for deadlines. */
int64_t th_mono_ms(void);

/* Run fn(arg) in a child that exits with its return value. */
pid_t th_fork(int (*fn)(void *), void *arg);
/* Wait for the child; returns its exit code, or 128+signal. */
int th_wait(pid_t pid);

/* Shared memory that survives fork (anonymous MAP_SHARED). */
void *th_shared(size_t len);
void th_unshared(void *p, size_t len);

/* Loop counts: base, multiplied by $SHMQ_SOAK (make test-long). */
unsigned th_soak(unsigned base);
/* A seed, printed so a failure can be replayed ($SHMQ_SEED). */
unsigned th_seed(const char *what);

#define TH_OK(expr)                                                          \
	do {                                                                 \
		int th_rc_ = (int)(expr);                                    \
		if (th_rc_ != 0) {                                           \
			fprintf(stderr, "%s:%d: %s = %d (%s)\n", __FILE__,   \
			    __LINE__, #expr, th_rc_, shmq_strerror(th_rc_)); \
		}                                                            \
		CU_ASSERT_EQUAL_FATAL(th_rc_, 0);                            \
	} while (0)

#define TH_FAIL(expr, code)                                               \
	do {                                                              \
		int th_rc_ = (int)(expr);                                 \
		if (th_rc_ != (code)) {                                   \
			fprintf(stderr, "%s:%d: %s = %d (%s), want %s\n", \
			    __FILE__, __LINE__, #expr, th_rc_,            \
			    shmq_strerror(th_rc_), #code);                \
		}                                                         \
		CU_ASSERT_EQUAL(th_rc_, (code));                          \
	} while (0)

#endif
