/*
 * t_nng.c — nng (1.x API) over ipc://, as a user of nng would connect
 * two processes on one host.
 *
 *   nng-pair      pair1: one sender, one receiver
 *   nng-pushpull  push0/pull0: several pushers, one puller
 *
 * Channel `id` is the socket file cfg->dir/nng-<id>.ipc.  The receiver
 * listens; senders dial with NNG_FLAG_NONBLOCK, so a sender that opens
 * before its receiver keeps retrying in the background instead of
 * failing.  The retry interval is 1 ms (nng's default starts at 100 ms
 * and backs off): every end is open before the harness releases the
 * run, so a sender waits at most about a millisecond for its
 * connection, not a tenth of a second of a half-second run.  Buffers and
 * everything else keep nng's defaults.
 *
 * nng has no linger: nng_close(3) warns that closing a socket while
 * data is in transmission will likely lose it, and send() returns once
 * the message is handed to the pipe, not written.  So in STREAM and
 * DURABLE a sender's close() first waits until the receiver has hung up
 * (nng's pipe-removed event), which it does only after it has seen
 * every producer's last message.  PINGPONG needs no such wait: every
 * message there was echoed, so it arrived.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "qbench.h"

#define NG_BUF 1024 /* messages queued each way (NNG_OPT_SENDBUF/RECVBUF) */
#define NG_RECONNECT_MS 1
/* nng drops a connection whose message exceeds this (1 MiB by
 * default, and QB_MAX_SIZE messages with pair1's header would). */
#define NG_RECV_MAX (2u * QB_MAX_SIZE)
/* A receiver that has not hung up by then is not coming back: give up
 * the wait in close() (a safety net, not the synchronisation). */
#define NG_HANGUP_WAIT_S 30

enum ng_kind { NG_PAIR, NG_PUSHPULL };

struct qb_chan {
	nng_socket s;
	int open; /* s was opened */
	int await_hangup; /* close() waits for the receiver to go */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned pipes; /* connections now */
	unsigned seen; /* connections ever */
};

/* nng codes are positive and not errnos. */
static int
ng_err(const char *what, int rv)
{
	fprintf(stderr, "qbench: %s: %s\n", what, nng_strerror(rv));
	switch (rv) {
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	case NNG_ECLOSED:
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
		return -EPIPE;
	default:
		return -EIO;
	}
}

static void
ng_url(const struct qb_cfg *c, int id, char *buf, size_t cap)
{
	snprintf(buf, cap, "ipc://%s/nng-%d.ipc", c->dir, id);
}

/* Runs on an nng thread. */
static void
ng_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct qb_chan *ch = arg;

	(void)p;
	pthread_mutex_lock(&ch->mu);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		ch->pipes++;
		ch->seen++;
	} else if (ev == NNG_PIPE_EV_REM_POST && ch->pipes > 0) {
		ch->pipes--;
	}
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
}

static void
ng_wait_hangup(struct qb_chan *ch)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += NG_HANGUP_WAIT_S;
	pthread_mutex_lock(&ch->mu);
	while (ch->seen > 0 && ch->pipes > 0 && rc != ETIMEDOUT) {
		rc = pthread_cond_timedwait(&ch->cv, &ch->mu, &until);
	}
	pthread_mutex_unlock(&ch->mu);
	if (rc == ETIMEDOUT) {
		fprintf(stderr,
		    "qbench: nng: the receiver did not hang up within %d s; "
		    "closing anyway\n",
		    NG_HANGUP_WAIT_S);
	}
}

static void
ng_close(struct qb_chan *ch)
{
	if (ch == NULL) {
		return;
	}
	if (ch->open) {
		if (ch->await_hangup) {
			ng_wait_hangup(ch);
		}
		nng_close(ch->s);
	}
	pthread_cond_destroy(&ch->cv);
	pthread_mutex_destroy(&ch->mu);
	free(ch);
}

static int
ng_open_socket(enum ng_kind kind, enum qb_role role, nng_socket *s)
{
	if (kind == NG_PAIR) {
		return nng_pair1_open(s);
	}
	return role == QB_SEND ? nng_push0_open(s) : nng_pull0_open(s);
}

static int
ng_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	const enum ng_kind kind = *(const enum ng_kind *)c->variant;
	struct qb_chan *ch;
	char url[4096];
	int rv;

	(void)state;
	(void)who;
	*out = NULL;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return qb_fail("nng channel", -ENOMEM);
	}
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->cv, NULL);
	ng_url(c, id, url, sizeof(url));
	rv = ng_open_socket(kind, role, &ch->s);
	if (rv != 0) {
		ng_close(ch);
		return ng_err("nng socket", rv);
	}
	ch->open = 1;
	/* Queue up to NG_BUF messages each way, as ZeroMQ does by default
	 * (its high-water mark is 1000).  nng's default of 0 hands each
	 * message over one at a time, which measures nng's wake-ups, not
	 * what a user who tunes it gets (about 4x less on 64 B streams). */
	rv = nng_socket_set_int(ch->s, NNG_OPT_SENDBUF, NG_BUF);
	if (rv == 0) {
		rv = nng_socket_set_int(ch->s, NNG_OPT_RECVBUF, NG_BUF);
	}
	if (rv != 0) {
		ng_close(ch);
		return ng_err("nng buffers", rv);
	}
	if (role == QB_SEND) {
		ch->await_hangup = c->workload != QB_PINGPONG;
		/* Before the dial, so no connection goes uncounted. */
		rv = nng_pipe_notify(
		    ch->s, NNG_PIPE_EV_ADD_POST, ng_pipe_event, ch);
		if (rv == 0) {
			rv = nng_pipe_notify(
			    ch->s, NNG_PIPE_EV_REM_POST, ng_pipe_event, ch);
		}
		if (rv == 0) {
			rv = nng_socket_set_ms(
			    ch->s, NNG_OPT_RECONNMINT, NG_RECONNECT_MS);
		}
		if (rv == 0) {
			/* 0: no back-off, always the minimum. */
			rv = nng_socket_set_ms(ch->s, NNG_OPT_RECONNMAXT, 0);
		}
		if (rv == 0) {
			rv = nng_dial(ch->s, url, NULL, NNG_FLAG_NONBLOCK);
		}
	} else {
		rv =
		    nng_socket_set_size(ch->s, NNG_OPT_RECVMAXSZ, NG_RECV_MAX);
		if (rv == 0) {
			rv = nng_listen(ch->s, url, NULL, 0);
		}
	}
	if (rv != 0) {
		ch->await_hangup = 0;
		ng_close(ch);
		return ng_err(url, rv);
	}
	*out = ch;
	return 0;
}

static int
ng_send(struct qb_chan *ch, const void *msg, size_t len)
{
	/* nng_send copies the buffer into a message of its own. */
	int rv = nng_send(ch->s, (void *)msg, len, 0);

	return rv == 0 ? 0 : ng_err("nng_send", rv);
}

static ssize_t
ng_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	nng_msg *m;
	size_t len;
	int rv;

	rv = nng_recvmsg(ch->s, &m, 0);
	if (rv != 0) {
		return ng_err("nng_recvmsg", rv);
	}
	len = nng_msg_len(m);
	if (len > cap) {
		nng_msg_free(m);
		return -EMSGSIZE;
	}
	memcpy(buf, nng_msg_body(m), len);
	nng_msg_free(m);
	return (ssize_t)len;
}

/* Both variants share every function: open() reads the protocol from
 * cfg->variant. */
#define NG_FUNCS                                                          \
	.prepare = NULL, .open = ng_open, .send = ng_send, .flush = NULL, \
	.recv = ng_recv, .close = ng_close, .cleanup = NULL

const struct qb_transport qb_t_nng_pair = {
	.name = "nng-pair",
	.what = "nng pair1 over ipc://, default options",
	.flags = 0,
	.max_size = 0,
	.variant = &(const enum ng_kind) { NG_PAIR },
	NG_FUNCS,
};

const struct qb_transport qb_t_nng_pushpull = {
	.name = "nng-pushpull",
	.what = "nng push0/pull0 over ipc://, default options",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const enum ng_kind) { NG_PUSHPULL },
	NG_FUNCS,
};
