/*
 * perf.h — declarations shared by the files of shmq-perf.
 *
 * shmq-perf forks one process per producer and consumer.  They meet in
 * one MAP_SHARED anonymous region (struct perf_shared): a barrier with
 * an abort flag, the totals from which consumers tell that the run is
 * complete, and one result slot per process that the parent reads after
 * waitpid() — so the slots need no atomics; only the fields processes
 * read while others run do.
 */
#ifndef SHMQ_PERF_H
#define SHMQ_PERF_H

/* stream mode: latency is measured on one record in this many */
#define PERF_LAT_SAMPLE 8u
/* --spin-us: the library's default, and a sane upper bound (1 s) */
#define PERF_SPIN_US_DEFAULT 50u
#define PERF_SPIN_US_MAX 1000000u

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <shmq.h>

#include "../common/hist.h"

/* Exit codes (as shmqctl): a failed run, or a bad command line. */
#define PERF_EXIT_FAIL 1
#define PERF_EXIT_USAGE 2

/* The producer id travels in the top bits of the sequence word, so a
 * consumer can tell the streams apart without a key. */
#define PERF_SEQ_ID_SHIFT 48
#define PERF_SEQ_MASK ((UINT64_C(1) << PERF_SEQ_ID_SHIFT) - 1)
/* The pinger's last record: the echoer stops instead of answering. */
#define PERF_SEQ_STOP UINT64_MAX
/* Value bytes the tool itself uses: timestamp, then sequence. */
#define PERF_HDR_BYTES 16

/* Bounds: 64 is the library's group member limit; 256 producers is
 * already far more processes than a benchmark host has cores. */
#define PERF_PRODUCERS_MAX 256
#define PERF_CONSUMERS_MAX 64
/* Consumers wake this often to see whether the run is complete or
 * aborted. */
#define PERF_POLL_MS 10
/* No record for this long after the producers finished means the
 * missing ones are lost, not late. */
#define PERF_LOST_MS 5000
/* The group the stream consumers join. */
#define PERF_GROUP "perf"

enum perf_mode {
	PERF_MODE_STREAM = 0,
	PERF_MODE_PINGPONG = 1,
	PERF_MODE_BACKLOG = 2,
};

struct perf_opts {
	const char *home; /* NULL: a temporary instance */
	const char *topic; /* NULL: a temporary topic */
	uint32_t partitions;
	uint64_t ring_size;
	unsigned producers;
	unsigned consumers;
	uint64_t record_size;
	uint64_t count; /* per producer, or round trips */
	double duration; /* seconds; 0: run by count */
	unsigned batch;
	int acks; /* enum shmq_acks */
	/* enum shmq_durability of a topic perf creates: always set by perf
	 * (volatile unless --durability), never the library's default */
	int durability;
	int fsync; /* enum shmq_fsync */
	unsigned fsync_interval_ms;
	int idle; /* enum shmq_idle */
	unsigned spin_us; /* spin before parking (park only) */
	int mode; /* enum perf_mode */
	int exclusive;
	int zero_copy;
	int json;
	int pin;
};

/* A reusable barrier in shared memory: a generation counter that
 * waiters sleep on with a futex, and an abort flag that releases them
 * all when some process failed. */
struct perf_barrier {
	_Atomic uint32_t b_arrived;
	_Atomic uint32_t b_gen;
	_Atomic uint32_t b_abort;
	uint32_t b_parties;
};

struct perf_prod_result {
	uint64_t pr_records;
	uint64_t pr_t_end; /* CLOCK_MONOTONIC ns of the last send */
	/* With acks DURABLE or ALL: how long each send call took to
	 * return (the ack latency).  Initialised by the producer. */
	struct hist pr_ack;
};

struct perf_cons_result {
	uint64_t cr_records;
	uint64_t cr_t_last; /* CLOCK_MONOTONIC ns of the last record */
	struct hist cr_lat; /* end-to-end or round-trip latency */
	/* Backlog mode: the warm-up read (cr_* above: the timed one). */
	uint64_t cr_warm_records;
	uint64_t cr_warm_t_last;
};

struct perf_shared {
	/* Read on every send: kept off the line the consumers write. */
	struct perf_barrier sh_barrier;
	/* When the measured run began: the first process through the start
	 * barrier sets it. */
	_Alignas(64) _Atomic uint64_t sh_t_start;
	/* Producers add their totals when they finish; consumers add what
	 * they read whenever they go idle.  Consumers stop when both are
	 * in and equal. */
	_Atomic uint32_t sh_producers_done;
	_Atomic uint64_t sh_produced;
	_Atomic uint64_t sh_consumed;
	/* While the group settles (group.c): the consumers' own barrier,
	 * and per consumer the partitions it owns and whether that changed
	 * in the last round. */
	struct perf_barrier sh_group;
	_Atomic uint32_t sh_owned[PERF_CONSUMERS_MAX];
	_Atomic uint32_t sh_changed[PERF_CONSUMERS_MAX];
	/* Backlog mode: when the timed read began (the warm-up read's
	 * start is sh_t_start), and where each partition's backlog starts
	 * and ends. */
	_Atomic uint64_t sh_t_timed;
	uint64_t sh_from[SHMQ_PARTITIONS_MAX];
	uint64_t sh_to[SHMQ_PARTITIONS_MAX];
	struct perf_prod_result sh_prod[PERF_PRODUCERS_MAX];
	struct perf_cons_result sh_cons[PERF_CONSUMERS_MAX];
};

/* Where the workers go: they attach on their own after fork(). */
struct perf_target {
	const char *home;
	char topic[SHMQ_NAME_MAX + 1];
	char topic2[SHMQ_NAME_MAX + 1]; /* pingpong: the pong topic */
	uint32_t partitions;
	uint32_t partitions2;
	uint64_t ring_size; /* the smallest of the topics' rings */
};

/* What a run measured, for the report. */
struct perf_result {
	uint64_t records;
	double seconds;
	struct hist lat;
	struct hist ack; /* send-call latency with acks DURABLE/ALL */
	/* Backlog mode: records and seconds above are the timed read. */
	uint64_t fill_records;
	double fill_seconds; /* the producers, first send to last ack */
	double durable_wait; /* then until everything was durable */
	uint64_t backlog_bytes; /* in the log, headers included */
	uint64_t ring_bytes; /* of those, still in the rings */
	double warm_seconds; /* the untimed first read */
};

/* opts.c */
int perf_parse(int argc, char **argv, struct perf_opts *o);

/* clock.c */
uint64_t perf_now_ns(void);

/* barrier.c */
void perf_barrier_init(struct perf_barrier *b, uint32_t parties);
/* 0 when every party arrived, -1 when the run was aborted. */
int perf_barrier_wait(struct perf_barrier *b);
void perf_barrier_abort(struct perf_barrier *b);
int perf_aborted(const struct perf_barrier *b);

/* procs.c */
/* A worker: returns 0, or non-zero after printing why it failed. */
typedef int (*perf_child_fn)(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t);
/* Set by SIGINT/SIGTERM in the parent; the run is then aborted. */
extern volatile sig_atomic_t perf_signalled;
void perf_signals(void);
int perf_spawn(const struct perf_opts *o, struct perf_shared *sh,
    unsigned cpu_slot, unsigned idx, perf_child_fn fn,
    const struct perf_target *t);
int perf_wait_all(struct perf_shared *sh, unsigned n);
/* Release everyone from both barriers and stop the run. */
void perf_abort(struct perf_shared *sh);
struct perf_shared *perf_shared_map(void);
void perf_shared_unmap(struct perf_shared *sh);

/* instance.c */
struct perf_instance;
int perf_instance_open(const struct perf_opts *o, struct perf_instance **in);
/* Create `name` unless it exists; remember to delete it if we made it.
 * *partitions receives the topic's partition count, and t->ring_size
 * is lowered to its ring size.  durability (may be NULL) receives the
 * topic's. */
int perf_instance_topic(struct perf_instance *in, const char *name,
    const struct perf_opts *o, struct perf_target *t, uint32_t *partitions,
    int *durability);
shmq_t *perf_instance_q(const struct perf_instance *in);
const char *perf_instance_home(const struct perf_instance *in);
void perf_instance_close(struct perf_instance *in);

/* record.c */
void perf_record_payload(void *value, size_t len);
void perf_record_fill(void *value, uint64_t stamp, uint64_t seq);
void perf_record_read(const void *value, uint64_t *stamp, uint64_t *seq);

/* stream.c, pingpong.c */
int perf_stream(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res);
int perf_pingpong(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res);

/* backlog.c */
int perf_backlog(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res);

/* stream_prod.c, stream_cons.c */
int perf_stream_producer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t);
int perf_stream_consumer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t);
/* Backlog mode: consumer idx reads partitions idx, idx + consumers, ...
 * from sh_from to sh_to twice, checking every record. */
int perf_backlog_consumer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t);

/* The checker of stream_cons.c, for backlog.c: expect[] holds, per
 * producer and partition, the next sequence. */
int perf_check_record(const struct perf_opts *o, const struct perf_shared *sh,
    uint32_t partitions, uint64_t *expect, const shmq_record_t *r);

/* group.c */
/* Attach to t->home; prints the error. */
int perf_attach(const struct perf_target *t, shmq_t **q);
/* Open a member of group PERF_GROUP on `topic` with the idle strategy
 * of o; prints the error. */
int perf_consumer_open(const struct perf_opts *o, shmq_t *q, const char *topic,
    shmq_consumer_t **c);
/* Between the open and start barriers: wait until the assignment of
 * the group's `partitions` over its `members` consumers (shared slots
 * from `base`; this one is `slot`) stops changing, then seek each owned
 * partition to its end (and commit that), so that the run reads only
 * its own records. */
int perf_group_settle(struct perf_shared *sh, shmq_t *q, const char *topic,
    shmq_consumer_t *c, unsigned slot, unsigned base, unsigned members,
    uint32_t partitions);
/* How many records a consumer reads between commits; see group.c. */
uint64_t perf_commit_every(
    const struct perf_opts *o, const struct perf_target *t);
/* Print the error of a library call and return -1. */
int perf_fail(const char *what, int err);

/* report.c */
void perf_report(const struct perf_opts *o, const struct perf_result *r);

/* Print "shmq-perf: ..." on stderr. */
void perf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SHMQ_PERF_H */
