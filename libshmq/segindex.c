/*
 * segindex.c — the sparse index of a segment, HOME/data/TOPIC/P/
 * <base>.index: pairs (offset, byte position in <base>.log) of one record
 * every IDX_EVERY bytes of log (Kafka's index.interval.bytes), so that a
 * reader positions itself in a segment with one small read and a binary
 * search instead of scanning the segment from its start.
 *
 * The index only ever saves work; it is never trusted.  A reader checks
 * the record header an entry points at (type, offset) before it starts
 * there, and then checks every record as it always does; an index that
 * is missing, short, torn or wrong costs a scan from the segment's start,
 * never a wrong record.  Likewise a write of it that fails is reported
 * (the persister logs it) and indexing stops for that segment; it never
 * fails the partition.
 *
 * Writer side (the persister): entries of the segment being written are
 * kept in memory and appended to the file in batches without a flush, so
 * readers of the live segment can use them.  When the segment is
 * finished (roll), and when recovery has rescanned the last segment, the
 * whole index is written again through temp file, fsync, rename and
 * directory fsync: a finished segment's index is complete and durable, and
 * the live one's is rebuilt by recovery after any crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define IDX_FLUSH 32u /* entries buffered before an append */
#define IDX_READ_MAX (64u << 20) /* a larger index file is ignored */

struct idx_ent {
	uint64_t off;
	uint64_t pos;
};
_Static_assert(sizeof(struct idx_ent) == IDX_ENTRY, "index entry");

static void
idx_name(char *buf, size_t cap, uint64_t base)
{
	snprintf(buf, cap, "%020" PRIu64 ".index", base);
}

void
shmqi_idx_init(struct segidx *ix, unsigned mode)
{
	memset(ix, 0, sizeof *ix);
	ix->fd = -1;
	ix->mode = mode;
	ix->next_pos = IDX_EVERY;
}

void
shmqi_idx_reset(struct segidx *ix, uint64_t base)
{
	if (ix->fd >= 0) {
		close(ix->fd);
	}
	ix->fd = -1;
	ix->base = base;
	ix->n = ix->written = 0;
	ix->next_pos = IDX_EVERY;
	ix->broken = false;
}

void
shmqi_idx_close(struct segidx *ix)
{
	if (ix->fd >= 0) {
		close(ix->fd);
	}
	free(ix->v);
	unsigned mode = ix->mode;
	shmqi_idx_init(ix, mode);
}

static void
idx_broken(struct segidx *ix, int rc)
{
	ix->broken = true;
	if (ix->err == 0) {
		ix->err = rc;
		ix->err_base = ix->base;
	}
}

void
shmqi_idx_note(struct segidx *ix, uint64_t off, uint64_t pos)
{
	if (ix->broken || pos < ix->next_pos) {
		return;
	}
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 256;
		struct idx_ent *v = realloc(ix->v, cap * sizeof *v);
		if (v == NULL) {
			idx_broken(ix, -ENOMEM);
			return;
		}
		ix->v = v;
		ix->cap = cap;
	}
	ix->v[ix->n].off = off;
	ix->v[ix->n].pos = pos;
	ix->n++;
	ix->next_pos = pos + IDX_EVERY;
}

int
shmqi_idx_append(struct segidx *ix, int dirfd, bool force)
{
	size_t k = ix->n - ix->written;
	if (ix->broken || k == 0 || (!force && k < IDX_FLUSH)) {
		return 0;
	}
	int rc = shmqi_fault_hit();
	if (rc == 0 && ix->fd < 0) {
		char name[32];
		idx_name(name, sizeof name, ix->base);
		/* Nothing written yet: a stale file of that name (a
		 * seal that failed) is no prefix of this index. */
		ix->fd = openat(dirfd, name,
		    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		        (ix->written == 0 ? O_TRUNC : 0),
		    ix->mode);
		rc = ix->fd < 0 ? -errno : 0;
	}
	const uint8_t *p = (const uint8_t *)(ix->v + ix->written);
	size_t len = k * sizeof *ix->v;
	uint64_t at = (uint64_t)ix->written * sizeof *ix->v;
	while (rc == 0 && len > 0) {
		ssize_t w = pwrite(ix->fd, p, len, (off_t)at);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			break;
		}
		p += w;
		at += (uint64_t)w;
		len -= (size_t)w;
	}
	if (rc != 0) {
		idx_broken(ix, rc);
		return rc;
	}
	ix->written = ix->n;
	return 0;
}

int
shmqi_idx_seal(struct segidx *ix, int dirfd)
{
	char name[32];
	if (ix->broken) {
		return 0; /* reported already; what is on disk is a prefix */
	}
	idx_name(name, sizeof name, ix->base);
	int rc = shmqi_write_atomic_at(
	    dirfd, name, ix->v, ix->n * sizeof *ix->v, ix->mode);
	if (rc != 0) {
		idx_broken(ix, rc);
		return rc;
	}
	/* The appended file was replaced: a later append opens the new one
	 * and continues after what the seal wrote. */
	if (ix->fd >= 0) {
		close(ix->fd);
		ix->fd = -1;
	}
	ix->written = ix->n;
	return 0;
}

/* Does the record header at `pos` of the log hold offset `off`? */
static bool
idx_check(int logfd, uint64_t pos, uint64_t off)
{
	struct rec_hdr h;
	if ((pos & (REC_ALIGN - 1)) != 0 ||
	    pread(logfd, &h, sizeof h, (off_t)pos) != (ssize_t)sizeof h) {
		return false;
	}
	return h.rec_type == REC_DATA && h.rec_offset == off;
}

void
shmqi_idx_lookup(int dirfd, int logfd, uint64_t base, uint64_t off,
    uint64_t *pos, uint64_t *at)
{
	char name[32];
	struct stat st;
	*pos = 0;
	*at = base;
	idx_name(name, sizeof name, base);
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)IDX_ENTRY ||
	    st.st_size > (off_t)IDX_READ_MAX) {
		close(fd);
		return;
	}
	/* A torn last entry (a crash during an append) is left out. */
	size_t n = (size_t)st.st_size / IDX_ENTRY;
	struct idx_ent *v = malloc(n * sizeof *v);
	ssize_t got = v == NULL ? -1 : pread(fd, v, n * sizeof *v, 0);
	close(fd);
	if (got > 0) {
		n = (size_t)got / IDX_ENTRY;
		/* The last entry at or below `off`.  The file is untrusted:
		 * if it is not sorted the search lands somewhere, and the
		 * check below decides whether that place is usable. */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (v[mid].off <= off) {
				lo = mid + 1;
			} else {
				hi = mid;
			}
		}
		if (lo > 0 && v[lo - 1].off >= base && v[lo - 1].off <= off &&
		    idx_check(logfd, v[lo - 1].pos, v[lo - 1].off)) {
			*pos = v[lo - 1].pos;
			*at = v[lo - 1].off;
		}
	}
	free(v);
}

/* Remove <base>.index (retention, before its log goes). */
void
shmqi_idx_remove(int dirfd, uint64_t base)
{
	char name[32];
	idx_name(name, sizeof name, base);
	(void)unlinkat(dirfd, name, 0);
}
