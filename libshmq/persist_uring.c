/*
 * persist_uring.c — the persister's door to the disk: io_uring writes
 * and flushes.  The only file that includes liburing.h.
 *
 * A write and its flush are submitted together, the flush linked after
 * the write (IOSQE_IO_LINK): io_uring does not order an fsync after
 * earlier writes otherwise.  A short write breaks the link (the flush
 * completes with -ECANCELED); the rest is written and flushed again.
 * Every completion's res is checked, and a flush that fails is returned
 * to the caller, which makes it sticky: a failed fdatasync is never
 * retried and then trusted (Linux marks the pages clean anyway).
 *
 * Each operation first asks shmqi_fault_hit(), so a test can make the
 * Nth operation fail (STYLE.md §6, fail at N).
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

#define PIO_ENTRIES 8u
#define PIO_IOV_MAX 4

struct shmqi_pio {
	struct io_uring ring;
	uint64_t seq; /* tags this round's operations (user_data) */
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

/* Submit what is queued and reap this round's `n` completions into
 * res[].  A signal (the daemon's SIGHUP, say) interrupts the waits with
 * -EINTR: wait again — the operations are in flight either way.  Every
 * operation carries the round's sequence number in its user_data, and a
 * completion of another round (one an earlier error left behind) is
 * dropped, never taken for this round's. */
static int
pio_run(struct shmqi_pio *io, int n, int *res)
{
	int rc;
	do {
		rc = io_uring_submit_and_wait(&io->ring, (unsigned)n);
	} while (rc == -EINTR);
	if (rc < 0) {
		return rc;
	}
	for (int got = 0; got < n;) {
		struct io_uring_cqe *cqe;
		do {
			rc = io_uring_wait_cqe(&io->ring, &cqe);
		} while (rc == -EINTR);
		if (rc < 0) {
			return rc;
		}
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		if (tag >> 1 == io->seq) {
			res[tag & 1] = cqe->res;
			got++;
		}
		io_uring_cqe_seen(&io->ring, cqe);
	}
	return 0;
}

/* user_data of this round's operation `i` (0: the write, 1: a flush). */
static uint64_t
pio_tag(struct shmqi_pio *io, unsigned i)
{
	return io->seq << 1 | i;
}

static int
pio_flush(struct shmqi_pio *io, int fd)
{
	int res[1];
	int rc = shmqi_fault_hit();
	if (rc != 0) {
		return rc;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	io->seq++;
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, pio_tag(io, 0));
	if ((rc = pio_run(io, 1, res)) != 0) {
		return rc;
	}
	return res[0] < 0 ? res[0] : 0;
}

int
shmqi_pio_sync(struct shmqi_pio *io, int fd)
{
	return pio_flush(io, fd);
}

int
shmqi_pio_write(struct shmqi_pio *io, int fd, const struct iovec *iov, int n,
    uint64_t off, bool sync)
{
	struct iovec v[PIO_IOV_MAX];
	int res[2];
	size_t left = 0;

	if (n < 1 || n > PIO_IOV_MAX) {
		return -EINVAL;
	}
	memcpy(v, iov, (size_t)n * sizeof *v);
	for (int i = 0; i < n; i++) {
		left += v[i].iov_len;
	}
	int first = 0;
	while (left > 0) {
		/* Ask about both operations before taking any SQE: a
		 * prepared but unsubmitted SQE would go out with the next
		 * submission. */
		int rc = shmqi_fault_hit();
		if (rc != 0) {
			return rc;
		}
		int flush_rc = sync ? shmqi_fault_hit() : 0;
		struct io_uring_sqe *w = io_uring_get_sqe(&io->ring);
		io->seq++;
		io_uring_prep_writev(
		    w, fd, v + first, (unsigned)(n - first), off);
		io_uring_sqe_set_data64(w, pio_tag(io, 0));
		int ops = 1;
		if (sync && flush_rc == 0) {
			/* Flush after this write, not before it. */
			w->flags |= IOSQE_IO_LINK;
			struct io_uring_sqe *f = io_uring_get_sqe(&io->ring);
			io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
			io_uring_sqe_set_data64(f, pio_tag(io, 1));
			ops = 2;
		}
		res[1] = 0;
		if ((rc = pio_run(io, ops, res)) != 0) {
			return rc;
		}
		if (res[0] < 0) {
			return res[0];
		}
		if (res[0] == 0) {
			return -EIO; /* no progress: do not spin */
		}
		size_t done = (size_t)res[0];
		if (done > left) {
			return -EIO; /* more than asked: not ours to trust */
		}
		left -= done;
		off += done;
		if (left == 0) {
			if (flush_rc != 0) {
				return flush_rc;
			}
			if (ops == 2 && res[1] == -ECANCELED) {
				/* The linked flush never ran (io_uring cut
				 * the link, seen under signals though the
				 * write completed): run it now.  Not a
				 * failed flush, which is never retried. */
				return pio_flush(io, fd);
			}
			return ops == 2 && res[1] < 0 ? res[1] : 0;
		}
		/* Short write: skip what was written, write the rest (the
		 * linked flush was cancelled and is submitted again). */
		while (done >= v[first].iov_len) {
			done -= v[first].iov_len;
			first++;
		}
		v[first].iov_base = (char *)v[first].iov_base + done;
		v[first].iov_len -= done;
	}
	return sync ? pio_flush(io, fd) : 0;
}
