/*
 * qbench.h — the comparison harness behind `make bench`.
 *
 * One program, `qbench`, runs one workload over one transport and prints
 * one JSON line.  bench/run.sh runs it over every transport, workload and
 * size, several times, and turns the lines into the table, the TSV and
 * the plots.
 *
 * Every transport is driven the same way: the parent prepares the
 * channels (queue names, listening sockets, topics), forks the producer
 * and consumer processes, pins producers to CPU 0 and the consumer to
 * CPU 1, releases them together, and compares what the producers say
 * they sent with what the consumer says it received.  A run whose counts,
 * order or checksum do not match prints no figures and exits 1.
 */
#ifndef QBENCH_H
#define QBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- messages ---------------------------------------------------------
 *
 * Every message starts with this 16-byte header; the rest is payload.
 * `len` is the whole message's length, so stream transports (pipes, UNIX
 * and TCP sockets) frame by it.  The payload is one of QB_PATTERNS fixed
 * pseudo-random patterns, chosen by seq, so a transport that repeats or
 * mixes up buffers is caught by the checksum.
 */
struct qb_hdr {
	uint32_t len; /* whole message, header included */
	uint16_t producer; /* 0 .. producers-1 */
	uint16_t flags; /* QB_END on a producer's last message */
	uint64_t seq; /* 0, 1, 2 ... per producer */
};
#define QB_END 1u
#define QB_HDR_SIZE 16u
#define QB_MIN_SIZE QB_HDR_SIZE
#define QB_MAX_SIZE (1u << 20)
#define QB_PATTERNS 16u

/* ---- configuration ---------------------------------------------------- */

enum qb_workload {
	QB_STREAM, /* producers -> consumer, as fast as it goes */
	QB_PINGPONG, /* one message there and back, timed at the pinger */
	QB_DURABLE, /* as STREAM, but each send returns only once on disk */
};

struct qb_cfg {
	const char *transport; /* variant name, e.g. "shmq-park", "tcp" */
	enum qb_workload workload;
	size_t size; /* message size in bytes, header included */
	double duration_s; /* STREAM/DURABLE: producers send this long */
	uint64_t count; /* PINGPONG: round trips (after warm-up) */
	unsigned producers; /* STREAM/DURABLE: producer processes */
	const char *addr; /* redis: "127.0.0.1:PORT" */
	const char *home; /* shmq: the instance's home directory */
	const char *dir; /* a private scratch directory for ipc paths */
	char tag[32]; /* unique per run: use in queue/topic/stream names */
	const void *variant; /* qb_transport.variant of the transport run */
};

/* ---- transports -------------------------------------------------------
 *
 * A channel carries messages one way.  STREAM and DURABLE use channel 0
 * (producers send, the consumer receives); PINGPONG also uses channel 1
 * for the reply.  Each transport file defines one `const struct
 * qb_transport` per variant and lists it in qb_transports[] (transport.c).
 */
enum qb_role { QB_SEND, QB_RECV };

#define QB_F_MULTI 1u /* several producers can share channel 0 */
#define QB_F_DURABLE 2u /* supports QB_DURABLE (send acked on disk) */
#define QB_F_NO_STREAM 4u /* PINGPONG only (limit-futex) */

struct qb_chan; /* a transport's own, opaque to the harness */

struct qb_transport {
	const char *name;
	const char *what; /* one line for --list and the docs */
	unsigned flags;
	size_t max_size; /* largest message, 0 for QB_MAX_SIZE */
	/* What the transport's functions need to tell its variants apart
	 * (e.g. the durability of a shmq topic); the harness copies it to
	 * qb_cfg.variant, which every function given a qb_cfg sees.
	 * Optional, opaque to the harness. */
	const void *variant;
	/* In the parent, before the fork: make what both ends need for
	 * channel `id` (create a queue, bind a listening socket, create a
	 * topic).  `*state` is inherited by the children.  Optional. */
	int (*prepare)(const struct qb_cfg *c, int id, void **state);
	/* In a child: open one end of channel `id`.  `who` is the producer
	 * index for QB_SEND.  Must not block for long: a sender whose
	 * receiver is not there yet must retry or queue. */
	int (*open)(const struct qb_cfg *c, int id, void *state,
	    enum qb_role role, unsigned who, struct qb_chan **out);
	/* One message, returns 0 or -errno.  Under QB_DURABLE, returns only
	 * once the message is on disk. */
	int (*send)(struct qb_chan *ch, const void *msg, size_t len);
	/* Anything send() buffered goes out now (pipelined or batched
	 * transports).  Optional; called after a producer's last send. */
	int (*flush)(struct qb_chan *ch);
	/* Blocks until one whole message is in buf; returns its length or
	 * -errno. */
	ssize_t (*recv)(struct qb_chan *ch, void *buf, size_t cap);
	void (*close)(struct qb_chan *ch);
	/* In the parent, after every child ended.  Optional. */
	void (*cleanup)(const struct qb_cfg *c, int id, void *state);
};

extern const struct qb_transport *const qb_transports[];
const struct qb_transport *qb_transport_find(const char *name);

/* ---- helpers the transports may use ----------------------------------- */

uint64_t qb_now_ns(void); /* CLOCK_MONOTONIC */
/* Print "qbench: WHAT: strerror(-err)" to stderr and return err. */
int qb_fail(const char *what, int err);
/* write/read the whole buffer, retrying short and EINTR transfers. */
int qb_write_full(int fd, const void *buf, size_t len);
int qb_read_full(int fd, void *buf, size_t len);

#endif
