/*
 * segment.c — a partition's segment files on disk:
 * HOME/data/TOPIC/P/<first offset, 20 digits>.log, each a sequence of
 * records in the one record format (the ring's, byte for byte: PADs
 * from the ring's end included, which readers skip), and its sparse
 * <first offset>.index (segindex.c).
 *
 * A new segment is made under a temporary name, flushed, renamed, and
 * the directory flushed (Redis's rdbSave steps; shmqi_write_atomic_at),
 * so a crash leaves the old last segment or the new one, never a
 * half-made file under a real name.  Recovery scans the last segment
 * from its start: lengths, types, contiguous offsets and every record's
 * CRC-32C; the first record that fails is the torn tail, and the file is
 * truncated there (then flushed), and its index is rebuilt from the
 * scan.  Everything read is untrusted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SEG_NAME_LEN 24 /* 20 digits + ".log" */

static int
mkdir_in(int dirfd, const char *name, unsigned mode)
{
	if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST) {
		return -errno;
	}
	int fd = openat(
	    dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* HOME/data/TOPIC/P, made as needed; an fd on it. */
static int
seg_dir(const shmq_t *q, const char *topic, uint32_t part)
{
	char p[16];
	unsigned dmode = q->mode == 0660 ? 0770 : 0700;
	int home = open(q->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (home < 0) {
		return -errno;
	}
	int data = mkdir_in(home, "data", dmode);
	close(home);
	if (data < 0) {
		return data;
	}
	int t = mkdir_in(data, topic, dmode);
	close(data);
	if (t < 0) {
		return t;
	}
	snprintf(p, sizeof p, "%" PRIu32, part);
	int d = mkdir_in(t, p, dmode);
	close(t);
	return d;
}

static int
cmp_ent(const void *a, const void *b)
{
	const struct seg_ent *x = a, *y = b;
	return (x->base > y->base) - (x->base < y->base);
}

/* The one walk over a partition's segment names. */
int
shmqi_seg_list(int dirfd, struct seg_ent **out, size_t *count)
{
	struct seg_ent *v = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*count = 0;
	int fd = dup(dirfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		if (fd >= 0) {
			close(fd);
		}
		return -errno;
	}
	/* A dup shares the file offset: an earlier walk left it at the
	 * end, so start over. */
	rewinddir(d);
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char *end;
		/* Only a regular file is a segment: a directory, fifo or
		 * symlink under a segment's name (not made by the library)
		 * would be opened as the live segment or read as records.
		 * No log hook reaches here, so it is skipped silently. */
		if (strlen(e->d_name) != SEG_NAME_LEN ||
		    strcmp(e->d_name + 20, ".log") != 0 ||
		    fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode)) {
			continue;
		}
		uint64_t b = strtoull(e->d_name, &end, 10);
		if (end != e->d_name + 20) {
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct seg_ent *nv = realloc(v, cap * sizeof *nv);
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n].base = b;
		v[n].size = (uint64_t)st.st_size;
		v[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		    st.st_mtim.tv_nsec;
		n++;
	}
	closedir(d);
	if (rc != 0) {
		free(v);
		return rc;
	}
	if (n > 1) {
		qsort(v, n, sizeof *v, cmp_ent);
	}
	*out = v;
	*count = n;
	return 0;
}

int
shmqi_seg_dir_open(const shmq_t *q, const char *topic, uint32_t part)
{
	char path[SHMQ_PATH_MAX];
	int w = snprintf(
	    path, sizeof path, "%s/data/%s/%" PRIu32, q->home, topic, part);
	if (w < 0 || (size_t)w >= sizeof path) {
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The base of the segment holding `off` (the largest base <= off), and
 * the smallest base of all; -ENOENT when there are no segments, -ERANGE
 * when `off` is older than all of them. */
int
shmqi_seg_pick(int dirfd, uint64_t off, uint64_t *pick, uint64_t *first)
{
	struct seg_ent *v;
	size_t n;
	int rc = shmqi_seg_list(dirfd, &v, &n);
	if (rc == 0 && n == 0) {
		rc = -ENOENT;
	}
	if (rc == 0) {
		*first = v[0].base;
		rc = -ERANGE;
		for (size_t i = n; i-- > 0;) {
			if (v[i].base <= off) {
				*pick = v[i].base;
				rc = 0;
				break;
			}
		}
	}
	free(v);
	return rc;
}

/*
 * Walk the records of buf[0..len): how many bytes are whole, valid
 * records, and the offset after the last one.  `base` is the segment's
 * first offset.
 */
uint64_t
shmqi_seg_valid(const uint8_t *buf, uint64_t len, uint64_t base,
    uint64_t *next_off, struct segidx *ix)
{
	uint64_t p = 0, next = base;
	while (p + 8 <= len) {
		const struct rec_hdr *h = (const struct rec_hdr *)(buf + p);
		uint32_t l = atomic_load_explicit(
		    (_Atomic uint32_t *)&h->rec_len, memory_order_relaxed);
		uint64_t ext;
		if (h->rec_type == REC_PAD) {
			ext = l;
			if (ext < REC_ALIGN || (ext & (REC_ALIGN - 1)) != 0 ||
			    p + ext > len) {
				break;
			}
			p += ext;
			continue;
		}
		if (h->rec_type != REC_DATA || p + sizeof *h > len || l == 0) {
			break;
		}
		uint64_t total = l & REC_LEN_MASK;
		ext = shmqi_align8(total);
		if (total !=
		        sizeof *h + (uint64_t)h->rec_key_len +
		            h->rec_value_len ||
		    p + ext > len || h->rec_offset != next) {
			break;
		}
		if (!(l & REC_ABORTED) &&
		    shmqi_rec_crc(h, h + 1) != h->rec_crc) {
			break; /* torn, or not what was written */
		}
		if (ix != NULL) {
			shmqi_idx_note(ix, next, p);
		}
		next++;
		p += ext;
	}
	*next_off = next;
	return p;
}

/* Read the segment and find its whole, valid records: sg->size (bytes),
 * sg->end_off, and sg->truncated (what follows them); with `ix`, their
 * index entries. */
static int
seg_scan(struct segment *sg, struct segidx *ix)
{
	struct stat st;
	if (fstat(sg->fd, &st) != 0) {
		return -errno;
	}
	uint64_t len = (uint64_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL) {
		return -ENOMEM;
	}
	uint64_t got = 0;
	while (got < len) {
		ssize_t r = pread(sg->fd, buf + got, len - got, (off_t)got);
		if (r <= 0) {
			free(buf);
			return r < 0 ? -errno : -EIO;
		}
		got += (uint64_t)r;
	}
	uint64_t valid = shmqi_seg_valid(buf, len, sg->base, &sg->end_off, ix);
	free(buf);
	sg->size = valid;
	sg->truncated = len - valid;
	return 0;
}

/* Scan the segment, cut a torn tail off, and rebuild its index (a
 * failure of that is left in sg->ix.err: the index is only an aid). */
static int
seg_recover(struct segment *sg)
{
	shmqi_idx_reset(&sg->ix, sg->base);
	int rc = seg_scan(sg, &sg->ix);
	if (rc == 0 && sg->truncated != 0 &&
	    ((rc = shmqi_fault_hit()) != 0 ||
	        ftruncate(sg->fd, (off_t)sg->size) != 0 ||
	        fdatasync(sg->fd) != 0)) {
		return rc != 0 ? rc : -errno;
	}
	if (rc == 0) {
		(void)shmqi_idx_seal(&sg->ix, sg->dirfd);
	}
	return rc;
}

/* Make <base>.log (empty) the way that survives a crash. */
static int
seg_create(struct segment *sg, uint64_t base)
{
	char name[SEG_NAME_LEN + 1];
	snprintf(name, sizeof name, "%020" PRIu64 ".log", base);
	/* The name appears only for a complete (empty) file, and stays. */
	int rc = shmqi_write_atomic_at(sg->dirfd, name, NULL, 0, sg->mode);
	if (rc != 0) {
		return rc;
	}
	int fd = openat(sg->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (sg->fd >= 0) {
		close(sg->fd);
	}
	sg->fd = fd;
	sg->base = base;
	sg->size = 0;
	sg->end_off = base;
	shmqi_idx_reset(&sg->ix, base);
	return 0;
}

/* Remove what a crash left of temp files (".NAME.tmp.PID", and the
 * "NAME.tmp" of older versions).  Only the persister writes here. */
static void
seg_sweep(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		if (fd >= 0) {
			close(fd);
		}
		return;
	}
	rewinddir(d); /* a dup shares the offset of earlier walks */
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if ((e->d_name[0] == '.' && strstr(e->d_name, ".tmp.")) ||
		    (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)) {
			(void)unlinkat(dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

int
shmqi_seg_open(
    const shmq_t *q, const char *topic, uint32_t part, struct segment *sg)
{
	char name[SEG_NAME_LEN + 1];
	memset(sg, 0, sizeof *sg);
	sg->fd = -1;
	sg->mode = q->mode & 0666;
	shmqi_idx_init(&sg->ix, sg->mode);
	sg->dirfd = seg_dir(q, topic, part);
	if (sg->dirfd < 0) {
		return sg->dirfd;
	}
	seg_sweep(sg->dirfd);
	uint64_t base = 0;
	uint64_t first;
	int rc = shmqi_seg_pick(sg->dirfd, UINT64_MAX, &base, &first);
	if (rc == -ENOENT) {
		return seg_create(sg, 0);
	}
	if (rc != 0) {
		return rc;
	}
	snprintf(name, sizeof name, "%020" PRIu64 ".log", base);
	sg->fd = openat(sg->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (sg->fd < 0) {
		return -errno;
	}
	sg->base = base;
	return seg_recover(sg);
}

int
shmqi_seg_end_offset(
    const shmq_t *q, const char *topic, uint32_t part, uint64_t *end)
{
	uint64_t base = 0;
	*end = 0;
	int dfd = shmqi_seg_dir_open(q, topic, part);
	if (dfd < 0) {
		return dfd == -ENOENT ? 0 : dfd; /* nothing on disk */
	}
	struct segment sg;
	memset(&sg, 0, sizeof sg);
	shmqi_idx_init(&sg.ix, 0);
	sg.dirfd = dfd;
	sg.fd = -1;
	uint64_t first;
	int rc = shmqi_seg_pick(dfd, UINT64_MAX, &base, &first);
	if (rc == 0) {
		char name[SEG_NAME_LEN + 1];
		snprintf(name, sizeof name, "%020" PRIu64 ".log", base);
		sg.fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		sg.base = base;
		rc = sg.fd < 0 ? -errno : seg_scan(&sg, NULL);
		*end = sg.end_off;
	} else if (rc == -ENOENT) {
		rc = 0;
	}
	shmqi_seg_close(&sg);
	return rc;
}

int
shmqi_seg_retain(
    struct segment *sg, uint64_t max_bytes, uint64_t max_ms, uint64_t *deleted)
{
	struct seg_ent *v = NULL;
	size_t n = 0;
	uint64_t total = 0;
	*deleted = 0;
	if (max_bytes == 0 && max_ms == 0) {
		return 0;
	}
	int rc = shmqi_seg_list(sg->dirfd, &v, &n);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		total += v[i].size;
	}
	int64_t now = shmqi_now_ns();
	/* Oldest first, and never the segment being written. */
	for (size_t i = 0; i < n && v[i].base < sg->base; i++) {
		bool too_big = max_bytes != 0 && total > max_bytes;
		bool too_old = max_ms != 0 &&
		    now - v[i].mtime_ns > (int64_t)max_ms * 1000000;
		if (!too_big && !too_old) {
			break;
		}
		char name[SEG_NAME_LEN + 1];
		snprintf(name, sizeof name, "%020" PRIu64 ".log", v[i].base);
		/* The index first: a crash between leaves a log without
		 * one (scanned when read), never an orphan index. */
		shmqi_idx_remove(sg->dirfd, v[i].base);
		if (unlinkat(sg->dirfd, name, 0) != 0) {
			break;
		}
		total -= v[i].size;
		(*deleted)++;
	}
	free(v);
	if (*deleted > 0) {
		(void)fsync(sg->dirfd); /* the names are gone for good */
	}
	return 0;
}

/* The finished segment's index is sealed first (a failure is left in
 * sg->ix.err), so every segment but the last has a complete one. */
int
shmqi_seg_roll(struct segment *sg, uint64_t base)
{
	(void)shmqi_idx_seal(&sg->ix, sg->dirfd);
	return seg_create(sg, base);
}

void
shmqi_seg_close(struct segment *sg)
{
	if (sg->fd >= 0) {
		close(sg->fd);
	}
	if (sg->dirfd >= 0) {
		close(sg->dirfd);
	}
	sg->fd = sg->dirfd = -1;
	shmqi_idx_close(&sg->ix);
}
