/*
 * t_pipe.c — a pipe(2): one write(2) per message, the reader reads big
 * chunks and frames them by hdr.len.
 *
 * One producer only: a write of more than PIPE_BUF bytes may interleave
 * with another writer's, and limiting the variant to PIPE_BUF would
 * lose the large sizes, where a pipe's two copies are the point of the
 * comparison.  The pipe keeps the kernel's default capacity (64 KiB),
 * as a program that just calls pipe() gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

#define PIPE_CHUNK (64u << 10)

struct pipe_state {
	int fd[2];
};

struct qb_chan {
	int fd;
	struct qb_framer fr; /* QB_RECV */
};

static int
pipe_prepare(const struct qb_cfg *c, int id, void **state)
{
	struct pipe_state *s = malloc(sizeof *s);

	(void)c;
	(void)id;
	if (s == NULL) {
		return -ENOMEM;
	}
	if (pipe(s->fd) != 0) {
		int e = -errno;
		free(s);
		return e;
	}
	*state = s;
	return 0;
}

static int
pipe_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	struct pipe_state *s = state;
	struct qb_chan *ch = calloc(1, sizeof *ch);

	(void)c;
	(void)id;
	(void)who;
	if (ch == NULL) {
		return -ENOMEM;
	}
	ch->fd = role == QB_SEND ? s->fd[1] : s->fd[0];
	if (role == QB_RECV && qb_framer_init(&ch->fr, ch->fd, PIPE_CHUNK)) {
		free(ch);
		return -ENOMEM;
	}
	*out = ch;
	return 0;
}

static int
pipe_send(struct qb_chan *ch, const void *msg, size_t len)
{
	return qb_write_full(ch->fd, msg, len);
}

static ssize_t
pipe_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	return qb_framer_recv(&ch->fr, buf, cap);
}

static void
pipe_close(struct qb_chan *ch)
{
	/* The fds belong to the state: the parent closes them. */
	qb_framer_free(&ch->fr);
	free(ch);
}

static void
pipe_cleanup(const struct qb_cfg *c, int id, void *state)
{
	struct pipe_state *s = state;

	(void)c;
	(void)id;
	close(s->fd[0]);
	close(s->fd[1]);
	free(s);
}

const struct qb_transport qb_t_pipe = {
	.name = "pipe",
	.what = "pipe(2), one write per message, reader frames by length",
	.flags = 0,
	.max_size = 0,
	.prepare = pipe_prepare,
	.open = pipe_open,
	.send = pipe_send,
	.flush = NULL,
	.recv = pipe_recv,
	.close = pipe_close,
	.cleanup = pipe_cleanup,
};
