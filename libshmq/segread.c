/*
 * segread.c — reading a partition's records back from its segment files,
 * for consumers whose offset has left the ring (or that start below it):
 * the same offsets, the same record format, read through a buffer with
 * pread.  The disk is a trust boundary: every record's length, type,
 * offset and CRC-32C are checked before it is handed out.
 *
 * Positioning: the segment holding the offset is found by name, then
 * its sparse index (segindex.c) gives a checked place at most
 * IDX_EVERY bytes before the record, and the rest is read through.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define READ_CHUNK (1u << 20)

static int
sr_open_file(struct segread *sr, uint64_t base)
{
	char name[32];
	snprintf(name, sizeof name, "%020" PRIu64 ".log", base);
	int fd = openat(sr->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (sr->fd >= 0) {
		close(sr->fd);
	}
	sr->fd = fd;
	sr->base = base;
	sr->file_pos = 0;
	sr->len = sr->at = 0;
	sr->next_off = base;
	return 0;
}

/* Make at least `need` bytes available from sr->at; 0, 1 at the end of
 * the file, or -errno. */
static int
sr_fill(struct segread *sr, size_t need)
{
	if (sr->len - sr->at >= need) {
		return 0;
	}
	memmove(sr->buf, sr->buf + sr->at, sr->len - sr->at);
	sr->len -= sr->at;
	sr->at = 0;
	if (need > sr->cap) {
		return -EMSGSIZE;
	}
	while (sr->len < need) {
		ssize_t r = pread(sr->fd, sr->buf + sr->len, sr->cap - sr->len,
		    (off_t)sr->file_pos);
		if (r < 0) {
			return -errno;
		}
		if (r == 0) {
			return 1;
		}
		sr->len += (size_t)r;
		sr->file_pos += (uint64_t)r;
	}
	return 0;
}

/* A record that fails its checks: the reader stays in front of it, so
 * every call says so again until the consumer seeks past it. */
static int
sr_corrupt(struct segread *sr, shmq_record_t *rec)
{
	memset(rec, 0, sizeof *rec);
	rec->offset = sr->stuck ? sr->want : sr->next_off;
	return SHMQ_ECORRUPT;
}

/*
 * The framing of the record at sr->at is damaged (its length cannot be
 * trusted), and the reader was sent past it (sr->next_off < want): find
 * the next intact record at a later 8-byte step — a DATA header with a
 * later offset no greater than `want`, consistent lengths and a good
 * CRC — and go on from there.  If there is none in this segment, the
 * wanted offset is unreachable: the reader is stuck, and says so for
 * `want` until the consumer seeks further.
 */
static bool
sr_resync(struct segread *sr)
{
	for (sr->at += REC_ALIGN;; sr->at += REC_ALIGN) {
		if (sr_fill(sr, sizeof(struct rec_hdr)) != 0) {
			break;
		}
		const struct rec_hdr *h = (const void *)(sr->buf + sr->at);
		uint32_t len = atomic_load_explicit(
		    (_Atomic uint32_t *)&h->rec_len, memory_order_relaxed);
		uint64_t total = len & REC_LEN_MASK;
		uint64_t ext = shmqi_align8(total);
		if (h->rec_type != REC_DATA || (len & REC_ABORTED) ||
		    h->rec_offset <= sr->next_off ||
		    h->rec_offset > sr->want ||
		    total !=
		        sizeof *h + (uint64_t)h->rec_key_len +
		            h->rec_value_len ||
		    ext > sr->cap) {
			continue;
		}
		if (sr_fill(sr, ext) != 0) {
			break;
		}
		h = (const void *)(sr->buf + sr->at);
		if (shmqi_rec_crc(h, h + 1) == h->rec_crc) {
			sr->next_off = h->rec_offset;
			return true;
		}
	}
	sr->stuck = true;
	return false;
}

/* Damaged framing at sr->at: past it if the reader was sent past it,
 * else (or if that fails) report it. */
static int
sr_damaged(struct segread *sr, shmq_record_t *rec)
{
	if (sr->next_off < sr->want && sr_resync(sr)) {
		return 1;
	}
	return sr_corrupt(sr, rec);
}

/*
 * The next record at or after sr->want: 1 (rec filled, pointing into
 * the reader's buffer, valid until the next call), 0 at the end of what
 * is on disk now, or an error (SHMQ_ECORRUPT, rec->offset naming the
 * record that fails its checks).  Records below `want` are only walked
 * over: their framing is checked, their CRC is not, so a seek past a
 * damaged record gets past it.
 */
int
shmqi_segread_next(struct segread *sr, shmq_record_t *rec)
{
	if (sr->pending) {
		sr->pending = false;
		*rec = sr->pend;
		return 1;
	}
	if (sr->stuck) {
		return sr_corrupt(sr, rec);
	}
	for (;;) {
		int rc = sr_fill(sr, 8);
		if (rc == 1) {
			/* End of this file: on to the next segment, if the
			 * persister has started one.  Not this one again: a
			 * segment with no record yet (a roll whose write
			 * failed, or has not landed) is the end for now. */
			if (sr->next_off == sr->base ||
			    sr_open_file(sr, sr->next_off) != 0) {
				return 0;
			}
			continue;
		}
		if (rc < 0) {
			return rc;
		}
		const struct rec_hdr *h = (const void *)(sr->buf + sr->at);
		uint32_t len = atomic_load_explicit(
		    (_Atomic uint32_t *)&h->rec_len, memory_order_relaxed);
		if (h->rec_type == REC_PAD) {
			/* A PAD fills the ring's end, where a record did not
			 * fit: never longer than the largest record. */
			if (len < REC_ALIGN || (len & (REC_ALIGN - 1)) != 0 ||
			    len > sr->cap) {
				if ((rc = sr_damaged(sr, rec)) == 1) {
					continue;
				}
				return rc;
			}
			if ((rc = sr_fill(sr, len)) != 0) {
				return rc == 1 ? 0 : rc;
			}
			sr->at += len;
			continue;
		}
		if ((rc = sr_fill(sr, sizeof *h)) != 0) {
			return rc == 1 ? 0 : rc; /* being written: not yet */
		}
		h = (const void *)(sr->buf + sr->at);
		uint64_t total = len & REC_LEN_MASK;
		uint64_t ext = shmqi_align8(total);
		if (h->rec_type != REC_DATA || len == 0 ||
		    total !=
		        sizeof *h + (uint64_t)h->rec_key_len +
		            h->rec_value_len ||
		    h->rec_offset != sr->next_off || ext > sr->cap) {
			if ((rc = sr_damaged(sr, rec)) == 1) {
				continue;
			}
			return rc;
		}
		if ((rc = sr_fill(sr, ext)) != 0) {
			return rc == 1 ? 0 : rc;
		}
		h = (const void *)(sr->buf + sr->at);
		if (!(len & REC_ABORTED) && h->rec_offset >= sr->want &&
		    shmqi_rec_crc(h, h + 1) != h->rec_crc) {
			return sr_corrupt(sr, rec); /* the disk changed it */
		}
		sr->at += ext;
		sr->next_off++;
		if ((len & REC_ABORTED) || h->rec_offset < sr->want) {
			continue; /* a gap, or walked over */
		}
		const uint8_t *d = (const uint8_t *)(h + 1);
		memset(rec, 0, sizeof *rec);
		rec->key = d;
		rec->key_len = h->rec_key_len;
		rec->value = d + h->rec_key_len;
		rec->value_len = h->rec_value_len;
		rec->offset = h->rec_offset;
		rec->timestamp = h->rec_timestamp;
		shmqi_rec_identity(h, rec);
		return 1;
	}
}

int
shmqi_segread_open(const shmq_t *q, const char *topic, uint32_t part,
    uint64_t off, size_t max_record, struct segread *sr)
{
	uint64_t pick = 0, first = 0;
	memset(sr, 0, sizeof *sr);
	sr->fd = -1;
	sr->dirfd = shmqi_seg_dir_open(q, topic, part);
	if (sr->dirfd < 0) {
		return sr->dirfd == -ENOENT ? LOC_ABOVE : sr->dirfd;
	}
	int rc = shmqi_seg_pick(sr->dirfd, off, &pick, &first);
	if (rc == -ENOENT) {
		return LOC_ABOVE; /* nothing on disk yet */
	}
	if (rc == -ERANGE) {
		return LOC_BELOW; /* older than the oldest segment */
	}
	if (rc != 0) {
		return rc;
	}
	sr->cap = max_record + READ_CHUNK;
	sr->buf = malloc(sr->cap);
	if (sr->buf == NULL) {
		return -ENOMEM;
	}
	if ((rc = sr_open_file(sr, pick)) != 0) {
		return rc;
	}
	if (off > pick) {
		shmqi_idx_lookup(sr->dirfd, sr->fd, pick, off, &sr->file_pos,
		    &sr->next_off);
	}
	/* Skip to `off` from there.  The record landed on is kept for the
	 * next call; a damaged one is left for the next call to report. */
	sr->want = off;
	while (sr->next_off <= off) {
		rc = shmqi_segread_next(sr, &sr->pend);
		if (rc == SHMQ_ECORRUPT) {
			return LOC_FOUND;
		}
		if (rc < 0) {
			return rc;
		}
		if (rc == 0) {
			/* The disk ends here.  Past `off` (only aborted
			 * records after it): found, and the rest is in the
			 * ring.  Not past it: not on disk. */
			return sr->next_off > off ? LOC_FOUND : LOC_ABOVE;
		}
		if (sr->pend.offset >= off) {
			sr->pending = true;
			break;
		}
	}
	return LOC_FOUND;
}

void
shmqi_segread_close(struct segread *sr)
{
	if (sr->fd >= 0) {
		close(sr->fd);
	}
	if (sr->dirfd >= 0) {
		close(sr->dirfd);
	}
	free(sr->buf);
	memset(sr, 0, sizeof *sr);
	sr->fd = sr->dirfd = -1;
}

int
shmqi_seg_first_offset(
    const shmq_t *q, const char *topic, uint32_t part, uint64_t *off)
{
	uint64_t pick = 0;
	int dirfd = shmqi_seg_dir_open(q, topic, part);
	if (dirfd < 0) {
		return dirfd;
	}
	int rc = shmqi_seg_pick(dirfd, UINT64_MAX, &pick, off);
	close(dirfd);
	return rc;
}
