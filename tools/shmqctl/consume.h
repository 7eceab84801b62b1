/*
 * consume.h — what consume.c (options, partitions, seeks) shares with
 * read.c (the read-and-print loop) for `shmqctl consume`.
 */
#ifndef SHMQCTL_CONSUME_H
#define SHMQCTL_CONSUME_H

#include "shmqctl.h"

enum consume_from {
	FROM_DEFAULT, /* committed offset, else the reset policy */
	FROM_EARLIEST, /* log start */
	FROM_LATEST, /* log end */
	FROM_OFFSET, /* from_n */
	FROM_TAIL, /* from_n records before the end */
};

struct consume {
	const char *topic;
	const char *group;
	uint32_t partition; /* UINT32_MAX: all */
	int from; /* enum consume_from */
	uint64_t from_n;
	int has_count;
	uint64_t count;
	int timeout_ms;
	int json;
	int print_key;
	shmq_consumer_t *c;
	void *buf;
	size_t cap;
	uint64_t unsaved; /* printed since the last checkpoint */
};

/* Read and print until --count, the idle timeout or a signal; flush and
 * commit as described in read.c.  Returns an exit status. */
int consume_loop(struct consume *cs);

/* Catch SIGINT and SIGTERM so that consume_loop ends cleanly. */
void consume_catch_signals(void);

/* The signal that ended consume_loop, or 0. */
int consume_stop_signal(void);

#endif /* SHMQCTL_CONSUME_H */
