/*
 * t_zmq.c — ZeroMQ PUSH/PULL over ipc://, as a user of libzmq would
 * connect processes on one host.
 *
 * Channel `id` is the socket file cfg->dir/zmq-<id>.ipc.  The PULL end
 * binds; PUSH ends connect, which libzmq allows before the bind exists
 * (it retries in the background).  The retry interval is set to 1 ms
 * (the default is 100 ms) so that a pusher that opened first is
 * connected by the time the harness releases the run; until then
 * libzmq queues what is sent.  High-water marks and everything else
 * keep libzmq's defaults.
 *
 * Senders have ZMQ_LINGER -1, so terminating the context (at the close
 * of the process's last channel) waits until everything queued has gone
 * out.  That is not enough: on a loaded machine, 7 of 120 two-producer
 * streams lost the tail of a producer's messages although its context
 * termination had returned (the PULL end, at its high-water mark, seems
 * to drop what is still unread when the peer hangs up; the cause was
 * not pinned down).  So in STREAM and DURABLE a sender's
 * close() first waits until the receiver hangs up (a socket monitor's
 * DISCONNECTED event), which it does only after it has seen every
 * producer's last message.  PINGPONG needs no such wait: every message
 * there was echoed, so it arrived.
 *
 * One context per process, shared by its channels (PINGPONG opens two):
 * one I/O thread, as an application would have.  The parent never
 * touches libzmq, so no context crosses a fork.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "qbench.h"

#define ZQ_RECONNECT_MS 1
/* A receiver that has not hung up by then is not coming back: give up
 * the wait in close() (a safety net, not the synchronisation). */
#define ZQ_HANGUP_WAIT_MS 30000

struct qb_chan {
	void *s;
	void *mon; /* sender in STREAM/DURABLE: its socket's events */
	int await_hangup; /* opened fully: close() waits for the receiver */
};

static void *zq_ctx;
static unsigned zq_users;

static int
zq_err(const char *what, int err)
{
	fprintf(stderr, "qbench: %s: %s\n", what, zmq_strerror(err));
	return -err;
}

static void
zq_ctx_put(void)
{
	if (zq_users > 0 && --zq_users == 0) {
		/* Blocks until lingering messages are sent. */
		while (zmq_ctx_term(zq_ctx) != 0 && errno == EINTR) {
		}
		zq_ctx = NULL;
	}
}

/*
 * Wait for the connection to the receiver to end.  The monitor sends
 * two frames per event: 6 bytes (event number, then a value), and the
 * endpoint.  Connections made and lost are counted from the start, so
 * a sender that saw its receiver go before close() returns at once.
 */
static void
zq_wait_hangup(struct qb_chan *ch)
{
	int timeout = ZQ_HANGUP_WAIT_MS;
	int up = 0, seen = 0;

	zmq_setsockopt(ch->mon, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	while (!seen || up > 0) {
		unsigned char ev[6];
		char addr[256];
		uint16_t num;
		int n = zmq_recv(ch->mon, ev, sizeof(ev), 0);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			fprintf(stderr,
			    "qbench: zmq: the receiver did not hang up "
			    "within %d ms; closing anyway\n",
			    ZQ_HANGUP_WAIT_MS);
			return;
		}
		while (zmq_recv(ch->mon, addr, sizeof(addr), 0) < 0 &&
		    errno == EINTR) {
		}
		if (n < (int)sizeof(ev)) {
			continue;
		}
		memcpy(&num, ev, sizeof(num));
		if (num == ZMQ_EVENT_CONNECTED) {
			up++;
			seen = 1;
		} else if (num == ZMQ_EVENT_DISCONNECTED && up > 0) {
			up--;
		}
	}
}

static void
zq_close(struct qb_chan *ch)
{
	int linger = 0;

	if (ch == NULL) {
		return;
	}
	if (ch->mon != NULL) {
		if (ch->await_hangup) {
			zq_wait_hangup(ch);
		}
		zmq_setsockopt(ch->mon, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(ch->mon);
	}
	if (ch->s != NULL) {
		zmq_close(ch->s);
	}
	free(ch);
	zq_ctx_put();
}

/* Before the connect, so that no connection goes uncounted. */
static int
zq_monitor(struct qb_chan *ch)
{
	char ep[64];

	snprintf(ep, sizeof(ep), "inproc://qbench-monitor-%p", (void *)ch);
	if (zmq_socket_monitor(ch->s, ep,
	        ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0) {
		return -1;
	}
	ch->mon = zmq_socket(zq_ctx, ZMQ_PAIR);
	if (ch->mon == NULL) {
		return -1;
	}
	return zmq_connect(ch->mon, ep);
}

static int
zq_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	struct qb_chan *ch;
	char url[4096];
	int linger = role == QB_SEND ? -1 : 0;
	int ivl = ZQ_RECONNECT_MS;
	int rc;

	(void)state;
	(void)who;
	*out = NULL;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return qb_fail("zmq channel", -ENOMEM);
	}
	if (zq_ctx == NULL) {
		zq_ctx = zmq_ctx_new();
		if (zq_ctx == NULL) {
			rc = zq_err("zmq_ctx_new", errno);
			free(ch);
			return rc;
		}
	}
	zq_users++;
	snprintf(url, sizeof(url), "ipc://%s/zmq-%d.ipc", c->dir, id);
	ch->s = zmq_socket(zq_ctx, role == QB_SEND ? ZMQ_PUSH : ZMQ_PULL);
	if (ch->s == NULL) {
		rc = zq_err("zmq_socket", errno);
		zq_close(ch);
		return rc;
	}
	rc = zmq_setsockopt(ch->s, ZMQ_LINGER, &linger, sizeof(linger));
	if (rc == 0 && role == QB_SEND) {
		rc = zmq_setsockopt(
		    ch->s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	}
	if (rc == 0 && role == QB_SEND && c->workload != QB_PINGPONG) {
		rc = zq_monitor(ch);
	}
	if (rc == 0) {
		rc = role == QB_SEND ? zmq_connect(ch->s, url)
		                     : zmq_bind(ch->s, url);
	}
	if (rc != 0) {
		rc = zq_err(url, errno);
		zq_close(ch);
		return rc;
	}
	ch->await_hangup = ch->mon != NULL;
	*out = ch;
	return 0;
}

static int
zq_send(struct qb_chan *ch, const void *msg, size_t len)
{
	/* zmq_send copies the buffer; it blocks at the high-water mark. */
	while (zmq_send(ch->s, msg, len, 0) < 0) {
		if (errno != EINTR) {
			return zq_err("zmq_send", errno);
		}
	}
	return 0;
}

static ssize_t
zq_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	int n;

	while ((n = zmq_recv(ch->s, buf, cap, 0)) < 0) {
		if (errno != EINTR) {
			return zq_err("zmq_recv", errno);
		}
	}
	/* zmq_recv truncates and returns the whole message's length. */
	if ((size_t)n > cap) {
		return -EMSGSIZE;
	}
	return n;
}

const struct qb_transport qb_t_zmq_pushpull = {
	.name = "zmq-pushpull",
	.what = "ZeroMQ PUSH/PULL over ipc://, default options",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.prepare = NULL,
	.open = zq_open,
	.send = zq_send,
	.flush = NULL,
	.recv = zq_recv,
	.close = zq_close,
	.cleanup = NULL,
};
