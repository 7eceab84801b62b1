/*
 * persist_uring.c — the persister's door to the disk: io_uring writes
 * and flushes.  The only file that includes liburing.h.
 *
 * Operations are asynchronous so that the persister can overlap them: a
 * partition's next range is checked and written while the flush of the
 * previous one runs (persist.c).  The caller owns each struct
 * shmqi_pio_op and keeps it alive until shmqi_pio_reap() has handed it
 * back, finished, exactly once.
 *
 * A write may carry a flush, submitted linked after it (IOSQE_IO_LINK):
 * io_uring does not order an fsync after earlier writes otherwise.  A
 * short write breaks the link (the flush completes with -ECANCELED):
 * the rest is written, and the flush is issued again once all of it is.
 * So a flush handed back with 0 always ran after the whole write.  A
 * flush that fails is handed back with its error, and the caller makes
 * it sticky: a failed fdatasync is never retried and then trusted
 * (Linux marks the pages clean anyway).
 *
 * Each submission first asks shmqi_fault_hit(), so a test can make the
 * Nth operation fail (STYLE.md §6, fail at N); the failed operation is
 * handed back by the next reap as if the kernel had failed it.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

/* Room for two operations of many partitions at once; the kernel keeps
 * completions beyond the CQ (IORING_FEAT_NODROP) rather than drop them. */
#define PIO_ENTRIES 64u

enum {
	OP_DELIVERED = 0, /* the caller's: idle or handed back */
	OP_READY, /* finished, in the ready list */
	OP_WRITING, /* a write in the kernel */
	F_LINKED, /* a flush in the kernel, linked after its write */
	F_ALONE, /* a flush in the kernel on its own */
	F_AFTER, /* a flush to issue once its write is complete */
	F_HELD, /* a flush finished before its write was handed back */
};

struct shmqi_pio {
	struct io_uring ring;
	struct shmqi_pio_op *ready, **ready_tail;
	unsigned queued; /* SQEs prepared, not yet submitted */
};

int
shmqi_pio_open(struct shmqi_pio **out)
{
	struct shmqi_pio *io = calloc(1, sizeof *io);
	*out = NULL;
	if (io == NULL) {
		return -ENOMEM;
	}
	int rc = io_uring_queue_init(PIO_ENTRIES, &io->ring, 0);
	if (rc < 0) {
		free(io);
		return rc; /* -ENOSYS/-EPERM where io_uring is off */
	}
	/* liburing 2.3 has no version macros: ask the kernel instead. */
	struct io_uring_probe *pr = io_uring_get_probe_ring(&io->ring);
	bool ok = pr != NULL &&
	    io_uring_opcode_supported(pr, IORING_OP_WRITEV) &&
	    io_uring_opcode_supported(pr, IORING_OP_FSYNC);
	if (pr != NULL) {
		io_uring_free_probe(pr);
	}
	if (!ok) {
		io_uring_queue_exit(&io->ring);
		free(io);
		return -ENOSYS;
	}
	io->ready_tail = &io->ready;
	*out = io;
	return 0;
}

void
shmqi_pio_close(struct shmqi_pio *io)
{
	if (io != NULL) {
		io_uring_queue_exit(&io->ring);
		free(io);
	}
}

/* Hand the prepared SQEs to the kernel.  What a failed submission left
 * in the SQ stays counted in `queued` and goes with the next one (every
 * reap tries again), so no operation is lost in the SQ. */
static void
pio_submit(struct shmqi_pio *io)
{
	int rc;
	do {
		rc = io_uring_submit(&io->ring);
	} while (rc == -EINTR);
	if (rc >= 0) {
		io->queued = 0;
	}
}

static void
op_ready(struct shmqi_pio *io, struct shmqi_pio_op *op, int res)
{
	op->res = res;
	op->state = OP_READY;
	op->next = NULL;
	*io->ready_tail = op;
	io->ready_tail = &op->next;
}

/* An SQE; a full SQ is submitted first (it holds only what this thread
 * prepared since its last submission). */
static struct io_uring_sqe *
op_sqe(struct shmqi_pio *io, struct shmqi_pio_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	if (sqe == NULL) {
		pio_submit(io);
		sqe = io_uring_get_sqe(&io->ring);
	}
	if (sqe != NULL) {
		io_uring_sqe_set_data(sqe, op);
		io->queued++;
	}
	return sqe;
}

static void
flush_issue(struct shmqi_pio *io, struct shmqi_pio_op *f)
{
	int rc = shmqi_fault_hit();
	struct io_uring_sqe *sqe = rc == 0 ? op_sqe(io, f) : NULL;
	if (sqe == NULL) {
		op_ready(io, f, rc != 0 ? rc : -EBUSY);
		return;
	}
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
	f->state = F_ALONE;
}

/* The write is finished (res 0, or its error): hand it back, and move
 * its flush on. */
static void
write_done(struct shmqi_pio *io, struct shmqi_pio_op *w, int res)
{
	struct shmqi_pio_op *f = w->flush;
	op_ready(io, w, res);
	if (f == NULL) {
		return;
	}
	switch (f->state) {
	case F_LINKED:
		/* Its own completion comes; from here on it must not look at
		 * the write, which the caller may reuse. */
		f->wdone = true;
		f->wres = res;
		break;
	case F_AFTER:
		if (res == 0) {
			flush_issue(io, f);
		} else {
			op_ready(io, f, res);
		}
		break;
	case F_HELD:
		op_ready(io, f, res != 0 ? res : f->res);
		break;
	default:
		break;
	}
}

static struct io_uring_sqe *
write_issue(struct shmqi_pio *io, struct shmqi_pio_op *w, bool link)
{
	struct io_uring_sqe *sqe = op_sqe(io, w);
	if (sqe == NULL) {
		write_done(io, w, -EBUSY);
		return NULL;
	}
	io_uring_prep_writev(
	    sqe, w->fd, w->v + w->first, (unsigned)(w->n - w->first), w->off);
	if (link) {
		sqe->flags |= IOSQE_IO_LINK;
	}
	w->state = OP_WRITING;
	return sqe;
}

/* The write (and its flush) in this thread, with plain system calls:
 * for a small range with nothing else in flight, two hand-offs to an
 * io_uring worker and back cost more than the work itself. */
static void
write_now(struct shmqi_pio *io, struct shmqi_pio_op *w, struct shmqi_pio_op *f,
    int frc)
{
	int rc = 0;
	while (rc == 0 && w->left > 0) {
		ssize_t k = pwritev(
		    w->fd, w->v + w->first, w->n - w->first, (off_t)w->off);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0 || (size_t)k > w->left) {
			rc = k < 0 ? -errno : -EIO;
			break;
		}
		size_t done = (size_t)k;
		w->left -= done;
		w->off += done;
		while (w->left > 0 && done >= w->v[w->first].iov_len) {
			done -= w->v[w->first].iov_len;
			w->first++;
		}
		if (w->left > 0) {
			w->v[w->first].iov_base =
			    (char *)w->v[w->first].iov_base + done;
			w->v[w->first].iov_len -= done;
			rc = shmqi_fault_hit(); /* a new operation */
		}
	}
	op_ready(io, w, rc);
	if (f == NULL) {
		return;
	}
	if (rc == 0 && frc == 0 && fdatasync(w->fd) != 0) {
		frc = -errno;
	}
	op_ready(io, f, rc != 0 ? rc : frc);
}

int
shmqi_pio_start_write(struct shmqi_pio *io, struct shmqi_pio_op *w, int fd,
    const struct iovec *iov, int n, uint64_t off, struct shmqi_pio_op *f,
    bool now)
{
	if (n < 1 || n > SHMQI_PIO_IOV_MAX) {
		return -EINVAL;
	}
	memcpy(w->v, iov, (size_t)n * sizeof *iov);
	w->n = n;
	w->first = 0;
	w->left = 0;
	for (int i = 0; i < n; i++) {
		w->left += iov[i].iov_len;
	}
	w->fd = fd;
	w->off = off;
	w->flush = f;
	if (f != NULL) {
		f->fd = fd;
		f->flush = NULL;
		f->wdone = false;
		f->state = F_AFTER;
	}
	/* Ask about both operations before taking an SQE: a prepared but
	 * unsubmitted SQE would go out with the next submission. */
	int rc = shmqi_fault_hit();
	if (rc != 0) {
		write_done(io, w, rc);
		return 0;
	}
	int frc = f != NULL ? shmqi_fault_hit() : 0;
	if (now) {
		write_now(io, w, f, frc);
		return 0;
	}
	if (frc != 0) {
		/* The write goes ahead; the flush "fails" after it. */
		f->res = frc;
		f->state = F_HELD;
	}
	/* A linked pair goes into the SQ together: a submission between
	 * them would send the write with a link to nothing. */
	if (f != NULL && frc == 0 && io_uring_sq_space_left(&io->ring) < 2) {
		pio_submit(io);
	}
	struct io_uring_sqe *wsqe = write_issue(io, w, f != NULL && frc == 0);
	if (f != NULL && frc == 0 && wsqe != NULL) {
		struct io_uring_sqe *sqe = op_sqe(io, f);
		if (sqe == NULL) {
			/* Only after failed submissions: no link then (it
			 * would join the next SQE), and the flush is issued
			 * after the write. */
			wsqe->flags &= (uint8_t)~IOSQE_IO_LINK;
			f->state = F_AFTER;
		} else {
			io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
			f->state = F_LINKED;
		}
	}
	pio_submit(io);
	return 0;
}

int
shmqi_pio_start_sync(struct shmqi_pio *io, struct shmqi_pio_op *f, int fd)
{
	f->fd = fd;
	f->flush = NULL;
	flush_issue(io, f);
	pio_submit(io);
	return 0;
}

/* A completion of the kernel's, for the operation it names. */
static void
op_complete(struct shmqi_pio *io, struct shmqi_pio_op *op, int res)
{
	if (op->state == OP_WRITING) {
		if (res <= 0) {
			/* 0: no progress; do not spin on it. */
			write_done(io, op, res < 0 ? res : -EIO);
			return;
		}
		size_t done = (size_t)res;
		if (done > op->left) {
			write_done(io, op, -EIO); /* not ours to trust */
			return;
		}
		op->left -= done;
		op->off += done;
		if (op->left == 0) {
			write_done(io, op, 0);
			return;
		}
		/* Short write: skip what was written, write the rest.  A
		 * linked flush was cancelled with it and waits (F_AFTER, set
		 * by its own -ECANCELED completion). */
		while (done >= op->v[op->first].iov_len) {
			done -= op->v[op->first].iov_len;
			op->first++;
		}
		op->v[op->first].iov_base =
		    (char *)op->v[op->first].iov_base + done;
		op->v[op->first].iov_len -= done;
		int rc = shmqi_fault_hit();
		if (rc != 0) {
			write_done(io, op, rc);
			return;
		}
		write_issue(io, op, false);
		return;
	}
	if (op->state == F_LINKED) {
		if (res == -ECANCELED) {
			/* The link was cut: by a short or failed write, or
			 * (seen under signals) after a complete one.  Never
			 * a flush that ran. */
			if (!op->wdone) {
				op->state = F_AFTER;
			} else if (op->wres == 0) {
				flush_issue(io, op);
			} else {
				op_ready(io, op, op->wres);
			}
		} else if (!op->wdone) {
			op->res = res; /* handed back after its write */
			op->state = F_HELD;
		} else {
			op_ready(io, op, res);
		}
		return;
	}
	op_ready(io, op, res); /* F_ALONE */
}

static void
reap_cqes(struct shmqi_pio *io)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&io->ring, &cqe) == 0 && cqe != NULL) {
		struct shmqi_pio_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&io->ring, cqe);
		if (op != NULL) {
			op_complete(io, op, res);
		}
	}
	if (io->queued > 0) {
		pio_submit(io);
	}
}

int
shmqi_pio_reap(struct shmqi_pio *io, int timeout_ms,
    void (*done)(struct shmqi_pio_op *op, void *arg), void *arg)
{
	reap_cqes(io);
	if (io->ready == NULL && timeout_ms != 0) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
		};
		int rc = io_uring_wait_cqe_timeout(
		    &io->ring, &cqe, timeout_ms < 0 ? NULL : &ts);
		/* -EINTR (a signal: the daemon's SIGHUP, say) and -ETIME
		 * end the wait; the operations are in flight either way. */
		if (rc < 0 && rc != -EINTR && rc != -ETIME) {
			return rc;
		}
		reap_cqes(io);
	}
	int n = 0;
	while (io->ready != NULL) {
		struct shmqi_pio_op *op = io->ready;
		io->ready = op->next;
		if (io->ready == NULL) {
			io->ready_tail = &io->ready;
		}
		op->state = OP_DELIVERED;
		n++;
		if (done != NULL) {
			done(op, arg);
		}
	}
	return n;
}

int
shmqi_pio_write(struct shmqi_pio *io, int fd, const struct iovec *iov, int n,
    uint64_t off, bool sync, bool now)
{
	struct shmqi_pio_op w = { 0 }, f = { 0 };
	struct shmqi_pio_op *fp = sync ? &f : NULL;
	int rc = shmqi_pio_start_write(io, &w, fd, iov, n, off, fp, now);
	if (rc != 0) {
		return rc;
	}
	/* Only this caller's operations are in flight (see internal.h). */
	while (w.state != OP_DELIVERED || (sync && f.state != OP_DELIVERED)) {
		if ((rc = shmqi_pio_reap(io, -1, NULL, NULL)) < 0) {
			return rc;
		}
	}
	return w.res != 0 ? w.res : (sync ? f.res : 0);
}
