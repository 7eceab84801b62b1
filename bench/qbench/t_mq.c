/*
 * t_mq.c — a POSIX message queue: mq_send / mq_receive.
 *
 * The kernel keeps message boundaries, so several producers can share
 * the queue.  Its limits are the machine's: the largest message is
 * /proc/sys/fs/mqueue/msgsize_max (8 KiB by default), and the queue is
 * as deep as /proc/sys/fs/mqueue/msg_max and RLIMIT_MSGQUEUE allow —
 * the same limits an unprivileged user would get, even when qbench
 * runs as root (which could exceed them).
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness.h"

/* The kernel's per-message bookkeeping charged to RLIMIT_MSGQUEUE, a
 * bound on sizeof(struct msg_msg) plus a tree node. */
#define MQ_OVERHEAD 128u

struct mq_state {
	char name[64];
	mqd_t q;
};

struct qb_chan {
	mqd_t q;
};

static long
read_proc(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;

	if (f == NULL) {
		return dflt;
	}
	if (fscanf(f, "%ld", &v) != 1 || v <= 0) {
		v = dflt;
	}
	fclose(f);
	return v;
}

size_t
qb_mq_max_size(void)
{
	return (size_t)read_proc("/proc/sys/fs/mqueue/msgsize_max", 8192);
}

static int
mq_prepare(const struct qb_cfg *c, int id, void **state)
{
	struct mq_state *s = calloc(1, sizeof *s);
	long maxmsg = read_proc("/proc/sys/fs/mqueue/msg_max", 10);
	struct rlimit rl;
	struct mq_attr attr;
	int nchan = c->workload == QB_PINGPONG ? 2 : 1;

	if (s == NULL) {
		return -ENOMEM;
	}
	snprintf(s->name, sizeof s->name, "/qbench-%s-%d", c->tag, id);
	/* The soft limit may rise to the hard one without privilege. */
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY) {
			rlim_t per = rl.rlim_cur / (rlim_t)nchan /
			    (rlim_t)(c->size + MQ_OVERHEAD);
			if ((rlim_t)maxmsg > per) {
				maxmsg = per > 0 ? (long)per : 1;
			}
		}
	}
	memset(&attr, 0, sizeof attr);
	attr.mq_msgsize = (long)c->size;
	for (;;) {
		attr.mq_maxmsg = maxmsg;
		s->q =
		    mq_open(s->name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
		if (s->q != (mqd_t)-1) {
			break;
		}
		/* Other queues of this user share the budget: ask for
		 * less until it fits. */
		if (errno == EMFILE && maxmsg > 1) {
			maxmsg /= 2;
			continue;
		}
		int e = -errno;
		fprintf(stderr,
		    "qbench: mq: mq_open %s (maxmsg %ld, msgsize %zu): %s\n",
		    s->name, maxmsg, c->size, strerror(-e));
		free(s);
		return e;
	}
	*state = s;
	return 0;
}

static int
mq_chan_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	struct mq_state *s = state;
	struct qb_chan *ch = malloc(sizeof *ch);

	(void)c;
	(void)id;
	(void)who;
	if (ch == NULL) {
		return -ENOMEM;
	}
	/* By name, each end with its own direction, as two programs
	 * would; the parent's descriptor only keeps the queue alive. */
	ch->q = mq_open(s->name, role == QB_SEND ? O_WRONLY : O_RDONLY);
	if (ch->q == (mqd_t)-1) {
		int e = -errno;
		free(ch);
		return e;
	}
	*out = ch;
	return 0;
}

static int
mq_chan_send(struct qb_chan *ch, const void *msg, size_t len)
{
	while (mq_send(ch->q, msg, len, 0) != 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

static ssize_t
mq_chan_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	for (;;) {
		ssize_t n = mq_receive(ch->q, buf, cap, NULL);
		if (n >= 0) {
			return n;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

static void
mq_chan_close(struct qb_chan *ch)
{
	mq_close(ch->q);
	free(ch);
}

static void
mq_cleanup(const struct qb_cfg *c, int id, void *state)
{
	struct mq_state *s = state;

	(void)c;
	(void)id;
	mq_close(s->q);
	mq_unlink(s->name);
	free(s);
}

const struct qb_transport qb_t_mq = {
	.name = "mq",
	.what = "POSIX message queue, mq_send/mq_receive (kernel limits: "
	        "msgsize_max, msg_max)",
	.flags = QB_F_MULTI,
	.max_size = 0, /* qb_max_size() asks the kernel */
	.prepare = mq_prepare,
	.open = mq_chan_open,
	.send = mq_chan_send,
	.flush = NULL,
	.recv = mq_chan_recv,
	.close = mq_chan_close,
	.cleanup = mq_cleanup,
};
