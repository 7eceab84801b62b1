/*
 * t_sock.c — stream sockets: AF_UNIX and TCP on 127.0.0.1, one send per
 * message, the receiver framing by hdr.len.
 *
 * The parent binds and listens before the fork, so a sender's connect()
 * completes at once into the backlog, and the receiver's open() accepts
 * one connection per sender.  Each producer has its own connection, as
 * clients of a server would: several producers are fine (QB_F_MULTI).
 *
 * With one sender the receiver does plain blocking reads.  With several
 * it reads non-blocking, and epoll tells it which connections to look
 * at: a connection stays on the receiver's list until a read finds it
 * empty, and messages are taken from the listed connections in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define SOCK_CHUNK (64u << 10)

struct sock_state {
	int domain;
	int lfd;
	unsigned senders;
	struct sockaddr_storage addr;
	socklen_t alen;
};

struct conn {
	struct qb_framer fr;
	int listed; /* may have bytes: read until EAGAIN */
	int open;
};

struct qb_chan {
	int fd; /* QB_SEND */
	unsigned n; /* QB_RECV: connections */
	unsigned alive, rr;
	int ep;
	struct conn *c;
};

static void
nodelay(const struct sock_state *s, int fd)
{
	int one = 1;

	if (s->domain == AF_INET) {
		/* One message, one segment, now: no Nagle delay. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
}

static int
sock_prepare(const struct qb_cfg *c, int id, void **state)
{
	const int domain = *(const int *)c->variant; /* AF_UNIX or AF_INET */
	struct sock_state *s = calloc(1, sizeof *s);
	int e;

	if (s == NULL) {
		return -ENOMEM;
	}
	s->domain = domain;
	s->senders = c->workload == QB_PINGPONG ? 1 : c->producers;
	if (domain == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
		un->sun_family = AF_UNIX;
		if ((size_t)snprintf(un->sun_path, sizeof un->sun_path,
		        "%s/ch%d.sock", c->dir, id) >= sizeof un->sun_path) {
			fprintf(stderr,
			    "qbench: unix: socket path under %s is too long "
			    "(set TMPDIR shorter)\n",
			    c->dir);
			free(s);
			return -ENAMETOOLONG;
		}
		s->alen = sizeof *un;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&s->addr;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = 0; /* the kernel picks a free port */
		s->alen = sizeof *in;
	}
	s->lfd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		e = -errno;
		free(s);
		return e;
	}
	if (bind(s->lfd, (struct sockaddr *)&s->addr, s->alen) != 0 ||
	    listen(s->lfd, (int)s->senders + 16) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&s->addr, &s->alen) != 0) {
		e = -errno;
		close(s->lfd);
		free(s);
		return e;
	}
	*state = s;
	return 0;
}

static int
open_send(struct sock_state *s, struct qb_chan *ch)
{
	ch->fd = socket(s->domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ch->fd < 0) {
		return -errno;
	}
	nodelay(s, ch->fd);
	while (connect(ch->fd, (struct sockaddr *)&s->addr, s->alen) != 0) {
		if (errno != EINTR) {
			int e = -errno;
			close(ch->fd);
			return e;
		}
	}
	return 0;
}

static int
open_recv(const struct qb_cfg *c, struct sock_state *s, struct qb_chan *ch)
{
	/* With several connections a whole message must fit in each
	 * connection's buffer, beside a chunk of the next. */
	size_t chunk = s->senders > 1 ? c->size + SOCK_CHUNK : SOCK_CHUNK;

	ch->c = calloc(s->senders, sizeof *ch->c);
	ch->ep = -1;
	if (ch->c == NULL) {
		return -ENOMEM;
	}
	if (s->senders > 1) {
		ch->ep = epoll_create1(EPOLL_CLOEXEC);
		if (ch->ep < 0) {
			return -errno;
		}
	}
	for (unsigned i = 0; i < s->senders; i++) {
		int fd;

		/* Blocks only until every sender has connected, and
		 * senders connect without waiting for us. */
		while ((fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			if (errno != EINTR) {
				return -errno;
			}
		}
		if (qb_framer_init(&ch->c[i].fr, fd, chunk) != 0) {
			close(fd);
			return -ENOMEM;
		}
		ch->c[i].open = 1;
		ch->n++;
		if (ch->ep >= 0) {
			struct epoll_event ev;
			memset(&ev, 0, sizeof ev);
			ev.events = EPOLLIN | EPOLLRDHUP;
			ev.data.u32 = i;
			fcntl(fd, F_SETFL, O_NONBLOCK);
			if (epoll_ctl(ch->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
				return -errno;
			}
			/* It may already hold data; the first read says. */
			ch->c[i].listed = 1;
		}
	}
	ch->alive = ch->n;
	return 0;
}

static void
sock_close(struct qb_chan *ch)
{
	if (ch->c != NULL) {
		for (unsigned i = 0; i < ch->n; i++) {
			if (ch->c[i].open) {
				close(ch->c[i].fr.fd);
			}
			qb_framer_free(&ch->c[i].fr);
		}
		free(ch->c);
	} else if (ch->fd >= 0) {
		close(ch->fd);
	}
	if (ch->ep >= 0) {
		close(ch->ep);
	}
	free(ch);
}

static int
sock_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	struct sock_state *s = state;
	struct qb_chan *ch = calloc(1, sizeof *ch);
	int rc;

	(void)id;
	(void)who;
	if (ch == NULL) {
		return -ENOMEM;
	}
	ch->fd = -1;
	ch->ep = -1;
	rc = role == QB_SEND ? open_send(s, ch) : open_recv(c, s, ch);
	if (rc < 0) {
		sock_close(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

static int
sock_send(struct qb_chan *ch, const void *msg, size_t len)
{
	return qb_write_full(ch->fd, msg, len);
}

static ssize_t
sock_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	struct epoll_event ev[QB_PRODUCERS_MAX];

	if (ch->ep < 0) {
		return qb_framer_recv(&ch->c[0].fr, buf, cap);
	}
	for (;;) {
		unsigned listed = 0;

		for (unsigned k = 0; k < ch->n; k++) {
			unsigned i = (ch->rr + k) % ch->n;
			struct conn *cn = &ch->c[i];
			ssize_t len;

			if (!cn->listed) {
				continue;
			}
			len = qb_framer_try(&cn->fr, buf, cap);
			if (len > 0) {
				/* Next time, start after this one. */
				ch->rr = (i + 1) % ch->n;
				return len;
			}
			if (len == 0) {
				listed++;
			} else if (len == -EAGAIN) {
				cn->listed = 0;
			} else if (len == -EPIPE && cn->fr.pos == cn->fr.end) {
				/* A sender that finished and closed. */
				epoll_ctl(
				    ch->ep, EPOLL_CTL_DEL, cn->fr.fd, NULL);
				close(cn->fr.fd);
				cn->open = 0;
				cn->listed = 0;
				if (--ch->alive == 0) {
					return -EPIPE;
				}
			} else {
				return len < 0 ? len : -EPROTO;
			}
		}
		if (listed > 0) {
			continue;
		}
		int n = epoll_wait(ch->ep, ev, (int)ch->n, -1);
		if (n < 0 && errno != EINTR) {
			return -errno;
		}
		for (int j = 0; j < n; j++) {
			ch->c[ev[j].data.u32].listed = 1;
		}
	}
}

static void
sock_cleanup(const struct qb_cfg *c, int id, void *state)
{
	struct sock_state *s = state;

	(void)c;
	(void)id;
	/* A UNIX socket's file goes with the scratch directory. */
	close(s->lfd);
	free(s);
}

/* Both variants share every function: prepare() reads the socket
 * domain from cfg->variant. */
#define SOCK_FUNCS                                                     \
	.prepare = sock_prepare, .open = sock_open, .send = sock_send, \
	.flush = NULL, .recv = sock_recv, .close = sock_close,         \
	.cleanup = sock_cleanup

const struct qb_transport qb_t_unix = {
	.name = "unix",
	.what = "UNIX stream socket, one send per message, a connection "
	        "per producer",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const int) { AF_UNIX },
	SOCK_FUNCS,
};

const struct qb_transport qb_t_tcp = {
	.name = "tcp",
	.what = "TCP on 127.0.0.1 (TCP_NODELAY), one send per message, a "
	        "connection per producer",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const int) { AF_INET },
	SOCK_FUNCS,
};
