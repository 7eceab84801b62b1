/*
 * transport.c — the list of variants, and the helpers transports share.
 *
 * The variants of other files are declared weak: the harness then links
 * whichever transport files are present (a machine without ZeroMQ, or a
 * tree where a transport is still being written), and a missing one is
 * a NULL entry that qb_transport_find() and --list skip.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define WEAK __attribute__((weak))

extern const struct qb_transport qb_t_limit_spsc WEAK;
extern const struct qb_transport qb_t_limit_futex WEAK;
extern const struct qb_transport qb_t_pipe WEAK;
extern const struct qb_transport qb_t_mq WEAK;
extern const struct qb_transport qb_t_unix WEAK;
extern const struct qb_transport qb_t_tcp WEAK;
extern const struct qb_transport qb_t_shmq_spin WEAK;
extern const struct qb_transport qb_t_shmq_park WEAK;
extern const struct qb_transport qb_t_shmq_batch64 WEAK;
extern const struct qb_transport qb_t_shmq_never WEAK;
extern const struct qb_transport qb_t_shmq_always WEAK;
extern const struct qb_transport qb_t_nng_pair WEAK;
extern const struct qb_transport qb_t_nng_pushpull WEAK;
extern const struct qb_transport qb_t_zmq_pushpull WEAK;
extern const struct qb_transport qb_t_redis_off WEAK;
extern const struct qb_transport qb_t_redis_everysec WEAK;
extern const struct qb_transport qb_t_redis_always WEAK;

/*
 * In table order: the limits first, then shmq, then the alternatives
 * from the kernel's own to the networked ones.  The array ends with a
 * NULL; a transport file not linked leaves a NULL earlier, so walk it
 * with QB_NVARIANTS, not up to the first NULL.
 */
const struct qb_transport *const qb_transports[] = {
	&qb_t_limit_spsc,
	&qb_t_limit_futex,
	&qb_t_shmq_spin,
	&qb_t_shmq_park,
	&qb_t_shmq_batch64,
	&qb_t_shmq_never,
	&qb_t_shmq_always,
	&qb_t_pipe,
	&qb_t_mq,
	&qb_t_unix,
	&qb_t_tcp,
	&qb_t_nng_pair,
	&qb_t_nng_pushpull,
	&qb_t_zmq_pushpull,
	&qb_t_redis_off,
	&qb_t_redis_everysec,
	&qb_t_redis_always,
	NULL,
};
#define QB_NVARIANTS (sizeof qb_transports / sizeof qb_transports[0] - 1)

const struct qb_transport *
qb_transport_find(const char *name)
{
	for (size_t i = 0; i < QB_NVARIANTS; i++) {
		const struct qb_transport *t = qb_transports[i];
		if (t != NULL && strcmp(t->name, name) == 0) {
			return t;
		}
	}
	return NULL;
}

size_t
qb_nvariants(void)
{
	return QB_NVARIANTS;
}

size_t
qb_max_size(const struct qb_transport *t)
{
	size_t m = t->max_size != 0 ? t->max_size : QB_MAX_SIZE;

	/* mq's limit is the kernel's, known only at run time. */
	if (t == &qb_t_mq) {
		size_t k = qb_mq_max_size();
		m = k < m ? k : m;
	}
	return m < QB_MAX_SIZE ? m : QB_MAX_SIZE;
}

void
qb_flags_str(unsigned flags, char *buf, size_t cap)
{
	static const struct {
		unsigned bit;
		const char *word;
	} names[] = {
		{ QB_F_MULTI, "multi" },
		{ QB_F_DURABLE, "durable" },
		{ QB_F_NO_STREAM, "pingpong-only" },
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if ((flags & names[i].bit) != 0 && n < cap) {
			int w = snprintf(buf + n, cap - n, "%s%s",
			    n > 0 ? "," : "", names[i].word);
			n += w > 0 ? (size_t)w : 0;
		}
	}
	if (n == 0) {
		snprintf(buf, cap, "-");
	}
}

uint64_t
qb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
qb_fail(const char *what, int err)
{
	int e = err < 0 ? -err : err;

	fprintf(stderr, "qbench: %s: %s\n", what, strerror(e));
	return err;
}

/* The whole of p[0..len) through write(2) or read(2), retrying short
 * and EINTR transfers; `eof` is what a transfer of nothing returns. */
static int
io_full(int fd, unsigned char *p, size_t len, int writing, int eof)
{
	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return eof;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
qb_write_full(int fd, const void *buf, size_t len)
{
	/* write(2) only reads the buffer. */
	return io_full(fd, (unsigned char *)(uintptr_t)buf, len, 1, -EIO);
}

int
qb_read_full(int fd, void *buf, size_t len)
{
	/* The writer went away mid-message. */
	return io_full(fd, buf, len, 0, -EPIPE);
}

/* ---- framing a byte stream ------------------------------------------ */

int
qb_framer_init(struct qb_framer *f, int fd, size_t chunk)
{
	f->fd = fd;
	f->cap = chunk < 4096 ? 4096 : chunk;
	f->pos = f->end = 0;
	f->buf = malloc(f->cap);
	return f->buf != NULL ? 0 : -ENOMEM;
}

void
qb_framer_free(struct qb_framer *f)
{
	free(f->buf);
	f->buf = NULL;
}

/* Move the unread bytes to the front, so a read can append. */
static void
framer_compact(struct qb_framer *f)
{
	if (f->pos > 0) {
		memmove(f->buf, f->buf + f->pos, f->end - f->pos);
		f->end -= f->pos;
		f->pos = 0;
	}
}

/* The length of the buffered message, 0 if its header is not all here,
 * or -errno for a length no message can have. */
static ssize_t
framer_len(const struct qb_framer *f, size_t cap)
{
	struct qb_hdr h;

	if (f->end - f->pos < QB_HDR_SIZE) {
		return 0;
	}
	qb_hdr_get(f->buf + f->pos, &h);
	if (h.len < QB_HDR_SIZE) {
		return -EPROTO;
	}
	if (h.len > cap) {
		return -EMSGSIZE;
	}
	return (ssize_t)h.len;
}

/* One read(2) into the free end of the buffer, retrying EINTR: 0 when
 * it got bytes, -EPIPE at end of stream, or -errno. */
static ssize_t
framer_fill(struct qb_framer *f)
{
	ssize_t n;

	do {
		n = read(f->fd, f->buf + f->end, f->cap - f->end);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return -errno;
	}
	if (n == 0) {
		return -EPIPE;
	}
	f->end += (size_t)n;
	return 0;
}

static ssize_t
framer_take(struct qb_framer *f, void *out, size_t len)
{
	memcpy(out, f->buf + f->pos, len);
	f->pos += len;
	if (f->pos == f->end) {
		f->pos = f->end = 0;
	}
	return (ssize_t)len;
}

ssize_t
qb_framer_recv(struct qb_framer *f, void *out, size_t cap)
{
	ssize_t len;

	while ((len = framer_len(f, cap)) == 0) {
		ssize_t n;

		/* Fewer than QB_HDR_SIZE bytes are unread: cheap to move,
		 * and the read then gets the whole buffer. */
		framer_compact(f);
		n = framer_fill(f);
		if (n < 0) {
			return n;
		}
	}
	if (len < 0) {
		return len;
	}
	if (f->end - f->pos >= (size_t)len) {
		return framer_take(f, out, (size_t)len);
	} else {
		/* A message larger than what is buffered: the rest goes
		 * straight into out, without a second copy. */
		size_t have = f->end - f->pos;
		int rc;

		memcpy(out, f->buf + f->pos, have);
		f->pos = f->end = 0;
		rc = qb_read_full(
		    f->fd, (unsigned char *)out + have, (size_t)len - have);
		return rc < 0 ? rc : len;
	}
}

ssize_t
qb_framer_try(struct qb_framer *f, void *out, size_t cap)
{
	ssize_t len = framer_len(f, cap);
	ssize_t n;

	if (len < 0) {
		return len;
	}
	if (len > 0 && f->end - f->pos >= (size_t)len) {
		return framer_take(f, out, (size_t)len);
	}
	if (len > 0 && (size_t)len > f->cap) {
		/* The caller sized the buffer for its largest message. */
		return -EMSGSIZE;
	}
	if (f->end == f->cap || (len > 0 && f->cap - f->pos < (size_t)len)) {
		framer_compact(f);
	}
	n = framer_fill(f);
	if (n < 0) {
		return n;
	}
	len = framer_len(f, cap);
	if (len > 0 && f->end - f->pos >= (size_t)len) {
		return framer_take(f, out, (size_t)len);
	}
	return len < 0 ? len : 0;
}
