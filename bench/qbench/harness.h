/*
 * harness.h — what the files of helper "core" share beyond qbench.h.
 *
 * qbench.h is the interface every transport is written against; this
 * header is private to the harness (main, run, msg, stats, transport)
 * and to its own transports (pipe, mq, unix, tcp, limit-*), so that
 * none of it becomes a promise to the other transport files.
 */
#ifndef QBENCH_HARNESS_H
#define QBENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qbench.h"

/* Exit codes: a verified run, a failed or unverified one, a bad
 * command line. */
#define QB_EXIT_OK 0
#define QB_EXIT_FAIL 1
#define QB_EXIT_USAGE 2

/* Warm-up round trips of PINGPONG, not counted. */
#define QB_WARMUP 1000u
/* Producers look at the clock once every this many sends. */
#define QB_CLOCK_EVERY 64u
/* Watchdog slack beyond the requested duration. */
#define QB_WATCHDOG_STREAM_S 60.0
#define QB_WATCHDOG_PINGPONG_S 120.0
/* Bounds of the command line. */
#define QB_PRODUCERS_MAX 64u
#define QB_COUNT_MAX 100000000ull
#define QB_DURATION_MAX 3600.0

/* ---- msg.c: the payload patterns and the checksum ----------------- */

/* The QB_PATTERNS payloads of one message size, built once per process
 * (after the fork, so each process pays for its own copy). */
struct qb_patterns {
	size_t size; /* whole message */
	unsigned char *msg[QB_PATTERNS]; /* whole messages, header blank */
	uint64_t sum[QB_PATTERNS]; /* qb_payload_sum() of each payload */
};
int qb_patterns_init(struct qb_patterns *p, size_t size);
void qb_patterns_free(struct qb_patterns *p);
/* The message for `seq` of `producer`: the pattern's buffer with its
 * header filled in.  Valid until the next call with the same pattern. */
unsigned char *qb_msg_build(
    struct qb_patterns *p, unsigned producer, uint64_t seq, unsigned flags);
/* Sum over a payload (position-dependent, so swapped or shifted bytes
 * change it), and the checksum of a whole message from its header and
 * its payload's sum: producers use the precomputed sums, consumers
 * compute qb_msg_csum over what arrived. */
uint64_t qb_payload_sum(const void *buf, size_t len);
uint64_t qb_msg_csum_parts(const struct qb_hdr *h, uint64_t payload_sum);
uint64_t qb_msg_csum(const void *msg, size_t len);
void qb_hdr_get(const void *msg, struct qb_hdr *h);

/* ---- stats.c ------------------------------------------------------- */

void qb_sort_u64(uint64_t *v, size_t n);
/* Nearest-rank percentile of sorted v[0..n), q in [0, 1]. */
uint64_t qb_pct(const uint64_t *v, size_t n, double q);

/* ---- run.c ---------------------------------------------------------- */

/* Run one workload; prints the result line; returns a QB_EXIT_ code. */
int qb_run(struct qb_cfg *c, const struct qb_transport *t, int json);
/* Pin the calling process to the idx-th CPU it may use (0 or 1); no
 * pinning when fewer than two are allowed.  Returns 1 if pinned. */
int qb_pin(unsigned idx);
/* CPUs this process may run on. */
int qb_cpus(void);

/* ---- transport.c ---------------------------------------------------- */

/* Entries of qb_transports[] before its final NULL (some may be NULL:
 * transport files not linked). */
size_t qb_nvariants(void);
/* The largest message a variant carries on this machine: max_size, or
 * for mq the kernel's msgsize_max. */
size_t qb_max_size(const struct qb_transport *t);
/* Flags as a word list for --list ("multi,durable", "-" for none). */
void qb_flags_str(unsigned flags, char *buf, size_t cap);

/* Framing of a byte stream (pipe, unix, tcp) by hdr.len: reads big
 * chunks and hands out whole messages. */
struct qb_framer {
	int fd;
	unsigned char *buf;
	size_t cap; /* bytes of buf */
	size_t pos, end; /* unread bytes are buf[pos..end) */
};
int qb_framer_init(struct qb_framer *f, int fd, size_t chunk);
void qb_framer_free(struct qb_framer *f);
/* Blocking: one whole message into out (cap bytes); length or -errno
 * (-EPIPE at end of stream, -EPROTO for a bad length). */
ssize_t qb_framer_recv(struct qb_framer *f, void *out, size_t cap);
/* Non-blocking step for a multiplexed reader: a whole message already
 * buffered goes to out (returns its length); otherwise one read(2)
 * (returns 0 if it got bytes but no whole message yet, -EAGAIN if the
 * fd had nothing, -errno otherwise). */
ssize_t qb_framer_try(struct qb_framer *f, void *out, size_t cap);

/* ---- t_mq.c, t_limit.c ------------------------------------------------ */

size_t qb_mq_max_size(void);
int qb_limit_memcpy(size_t size, double duration_s, int json);
int qb_limit_cacheline(uint64_t count, int json);

#endif
