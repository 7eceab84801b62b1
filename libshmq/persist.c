/*
 * persist.c — the persistence engine behind shmq-replicator: it writes
 * the committed records of every persistent partition from the ring's
 * mapping to segment files (segment.c, through io_uring in
 * persist_uring.c), flushes them per the topic's fsync policy, and
 * then advances the ring's durable watermark, which releases DURABLE
 * producers and lets producers reuse the space (a persistent ring never
 * overwrites what is not on disk).
 *
 * One persister per instance: it holds an OFD lock on
 * HOME/replicator.lock, which the kernel drops if it dies; producers
 * ask that lock whether a persister is alive.
 *
 * The ring is untrusted input here too: positions are checked, and
 * every record's CRC-32C is verified before it goes to disk.  A write or
 * flush that fails is sticky for its partition: the error is stored in
 * the ring (DURABLE producers get SHMQ_EFAILED), logged, and the
 * partition is never written again by this persister — a failed flush
 * is never retried and then trusted.
 *
 * Recovery (at open, per partition): the last segment's torn tail is
 * cut (segment.c); the segment is flushed; then the ring is aligned
 * with the disk.  An empty ring (new, or rebuilt after a reboot wiped
 * tmpfs) is re-based to continue at the disk's next offset; a ring that
 * holds that offset continues from it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_NAME "replicator.lock"
#define SCAN_EVERY_NS 1000000000ll /* look for new topics each second */
#define SAVE_EVERY_NS 100000000ll /* group offsets: at most 100 ms late */

/* A consumer group of a persistent topic, whose committed offsets are
 * saved to HOME/data/TOPIC/groups/GROUP.offsets for after a reboot. */
struct pgroup {
	char group[SHMQ_NAME_MAX + 1];
	char topic[SHMQ_NAME_MAX + 1];
	struct topic_meta meta;
	struct group g;
	uint64_t *saved; /* what the file holds */
	bool seen;
};

struct ppart {
	char topic[SHMQ_NAME_MAX + 1];
	uint32_t id;
	struct topic_meta meta;
	struct ring r;
	struct segment sg;
	uint64_t wpos; /* ring position written up to */
	uint64_t woff; /* offset after the last record written */
	bool dirty; /* written, not yet flushed */
	bool failed;
	bool seen;
	int64_t synced_ns;
};

struct shmq_persister {
	shmq_t *q;
	int lockfd;
	struct shmqi_pio *io;
	void (*log)(int level, const char *msg, void *arg);
	void *log_arg;
	struct ppart **parts;
	size_t n, cap;
	struct pgroup **groups;
	size_t ng, gcap;
	int64_t next_scan_ns;
	int64_t next_save_ns;
};

static void plog(shmq_persister_t *ps, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
plog(shmq_persister_t *ps, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (ps->log == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps->log(level, msg, ps->log_arg);
}

/* An index write failed: say so once per segment.  Only readers' speed
 * is lost (they scan the segment), so the partition carries on. */
static void
idx_report(shmq_persister_t *ps, struct ppart *pp)
{
	if (pp->sg.ix.err != 0) {
		plog(ps, SHMQ_LOG_WARN,
		    "%s/%u: index of segment %llu not written (%s); "
		    "reads of it will scan it",
		    pp->topic, pp->id, (unsigned long long)pp->sg.ix.err_base,
		    shmq_strerror(pp->sg.ix.err));
		pp->sg.ix.err = 0;
	}
}

static int
lock_path(const shmq_t *q, char *buf, size_t cap)
{
	int w = snprintf(buf, cap, "%s/%s", q->home, LOCK_NAME);
	return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

bool
shmqi_persister_alive(const shmq_t *q)
{
	char path[SHMQ_PATH_MAX];
	if (lock_path(q, path, sizeof path) != 0) {
		return false;
	}
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return false;
	}
	bool alive = shmqi_lock_held(fd, 0);
	close(fd);
	return alive;
}

int
shmq_persister_running(shmq_t *q, pid_t *pid)
{
	char path[SHMQ_PATH_MAX], buf[24];
	if (q == NULL) {
		return -EINVAL;
	}
	int rc = lock_path(q, path, sizeof path);
	if (rc != 0) {
		return rc;
	}
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	bool alive = shmqi_lock_held(fd, 0);
	ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	buf[k > 0 ? k : 0] = '\0';
	if (alive && pid != NULL) {
		*pid = (pid_t)strtol(buf, NULL, 10);
	}
	return alive ? 1 : 0;
}

/* The durable watermark moves: release DURABLE producers and space.
 * The seq_cst store pairs with the producers' fenced re-check after
 * raising the waiter count (wait_durable). */
static void
publish(struct ppart *pp)
{
	struct ring_hdr *h = pp->r.hdr;
	if (atomic_load(&h->hdr_durable_pos) >= pp->wpos) {
		return;
	}
	atomic_store_explicit(
	    &h->hdr_durable_off, pp->woff, memory_order_relaxed);
	atomic_store(&h->hdr_durable_pos, pp->wpos);
	if (atomic_load(&h->hdr_durable_waiters) > 0) {
		atomic_fetch_add(&h->hdr_durable_seq, 1);
		shmqi_futex_wake(&h->hdr_durable_seq);
	}
	shmqi_ring_wake_space(&pp->r);
	pp->dirty = false;
}

static void
fail(shmq_persister_t *ps, struct ppart *pp, int rc, const char *what)
{
	struct ring_hdr *h = pp->r.hdr;
	int32_t zero = 0;
	atomic_compare_exchange_strong(
	    &h->hdr_persist_err, &zero, rc < 0 ? rc : -EIO);
	atomic_fetch_add(&h->hdr_durable_seq, 1);
	shmqi_futex_wake(&h->hdr_durable_seq);
	pp->failed = true;
	plog(ps, SHMQ_LOG_ERROR,
	    "%s/%u: %s failed: %s; the partition stops acknowledging "
	    "DURABLE writes until the replicator is restarted",
	    pp->topic, pp->id, what, shmq_strerror(rc));
}

static int
flush(shmq_persister_t *ps, struct ppart *pp)
{
	int rc = shmqi_pio_sync(ps->io, pp->sg.fd);
	if (rc != 0) {
		fail(ps, pp, rc, "fdatasync");
		return rc;
	}
	pp->synced_ns = shmqi_mono_ns();
	publish(pp);
	return 0;
}

/* Make ring and disk agree after (re)start: see the top of the file. */
static int
align(shmq_persister_t *ps, struct ppart *pp)
{
	struct ring *r = &pp->r;
	struct ring_hdr *h = r->hdr;
	uint64_t e = pp->sg.end_off;
	int rc;

	if ((rc = shmqi_ring_lock(r)) != 0) {
		return rc;
	}
	uint64_t sp = atomic_load(&h->hdr_start_pos);
	uint64_t ep = atomic_load(&h->hdr_end_pos);
	if (sp == ep) {
		/* Empty ring: continue the log where the disk ends. */
		atomic_store(&h->hdr_start_off, e);
		atomic_store(&h->hdr_end_off, e);
		pp->wpos = ep;
		pp->woff = e;
		rc = 0;
	} else {
		uint64_t pos;
		int loc = shmqi_ring_locate(r, e, &pos);
		if (loc == LOC_FOUND) {
			pp->wpos = pos;
			pp->woff = e;
			rc = 0;
		} else {
			rc = -ESTALE;
		}
	}
	shmqi_ring_unlock(r);
	if (rc != 0) {
		plog(ps, SHMQ_LOG_ERROR,
		    "%s/%u: the ring (offsets %llu..%llu) does not continue "
		    "the segments (next offset %llu)",
		    pp->topic, pp->id,
		    (unsigned long long)atomic_load(&h->hdr_start_off),
		    (unsigned long long)atomic_load(&h->hdr_end_off),
		    (unsigned long long)e);
		return rc;
	}
	/* What survived on disk is durable once flushed (the caller
	 * flushes and publishes; the watermark only ever moves up). */
	pp->dirty = true;
	return 0;
}

static int
part_open(shmq_persister_t *ps, const char *topic, const struct topic_meta *m,
    uint32_t id)
{
	struct ppart *pp = calloc(1, sizeof *pp);
	if (pp == NULL) {
		return -ENOMEM;
	}
	snprintf(pp->topic, sizeof pp->topic, "%s", topic);
	pp->id = id;
	pp->meta = *m;
	pp->seen = true;
	pp->sg.fd = pp->sg.dirfd = -1;
	shmqi_idx_init(&pp->sg.ix, 0);
	int rc = shmqi_ring_open(ps->q, topic, m, id, &pp->r);
	if (rc == 0 && (rc = shmqi_seg_open(ps->q, topic, id, &pp->sg)) != 0) {
		/* Producers waiting for space must hear of it (a live
		 * persister with no error would keep them waiting): the
		 * error stays until a persister opens the partition. */
		int32_t none = 0;
		atomic_compare_exchange_strong(
		    &pp->r.hdr->hdr_persist_err, &none, (int32_t)rc);
		shmqi_seg_close(&pp->sg); /* it may hold the directory */
		shmqi_ring_close(&pp->r);
	}
	if (rc != 0) {
		plog(ps, SHMQ_LOG_ERROR, "%s/%u: cannot open: %s", topic, id,
		    shmq_strerror(rc));
		free(pp);
		return rc;
	}
	if (pp->sg.truncated != 0) {
		plog(ps, SHMQ_LOG_WARN,
		    "%s/%u: cut a torn tail of %llu bytes off segment %llu",
		    topic, id, (unsigned long long)pp->sg.truncated,
		    (unsigned long long)pp->sg.base);
	}
	idx_report(ps, pp);
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct ppart **np = realloc(ps->parts, cap * sizeof *np);
		if (np == NULL) {
			shmqi_seg_close(&pp->sg);
			shmqi_ring_close(&pp->r);
			free(pp);
			return -ENOMEM;
		}
		ps->parts = np;
		ps->cap = cap;
	}
	ps->parts[ps->n++] = pp;
	if ((rc = align(ps, pp)) != 0) {
		fail(ps, pp, rc, "recovery");
	} else if (flush(ps, pp) == 0) {
		/* A dead predecessor's sticky error ends here: this
		 * persister (the only one: it holds the lock) has recovered
		 * and flushed the partition. */
		atomic_store(&pp->r.hdr->hdr_persist_err, 0);
		plog(ps, SHMQ_LOG_INFO, "%s/%u: persisting from offset %llu",
		    topic, id, (unsigned long long)pp->woff);
	}
	return 0;
}

static void
part_close(shmq_persister_t *ps, struct ppart *pp)
{
	if (pp->dirty && !pp->failed) {
		(void)flush(ps, pp);
	}
	if (!pp->failed) {
		(void)shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, true);
	}
	shmqi_seg_close(&pp->sg);
	shmqi_ring_close(&pp->r);
	free(pp);
}

static struct ppart *
find(shmq_persister_t *ps, const char *topic, uint64_t tid, uint32_t id)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct ppart *pp = ps->parts[i];
		if (pp->id == id && pp->meta.id == tid &&
		    strcmp(pp->topic, topic) == 0) {
			pp->seen = true;
			return pp;
		}
	}
	return NULL;
}

static int
scan_topic(const char *name, void *arg)
{
	shmq_persister_t *ps = arg;
	struct topic_meta m;
	if (shmqi_topic_load(ps->q, name, &m) != 0 ||
	    m.durability != SHMQ_DURABILITY_PERSISTENT) {
		return 0;
	}
	for (uint32_t p = 0; p < m.partitions; p++) {
		if (find(ps, name, m.id, p) == NULL) {
			(void)part_open(ps, name, &m, p);
		}
	}
	return 0;
}

static void
group_drop(struct pgroup *pg)
{
	shmqi_group_close(&pg->g);
	free(pg->saved);
	free(pg);
}

/* Track a group file "GROUP@TOPIC.group" of a persistent topic. */
static void
group_track(shmq_persister_t *ps, const char *file)
{
	char name[2 * SHMQ_NAME_MAX + 16];
	size_t l = strlen(file);
	if (l < 7 || l >= sizeof name || strcmp(file + l - 6, ".group") != 0) {
		return;
	}
	memcpy(name, file, l - 6);
	name[l - 6] = '\0';
	char *at = strchr(name, '@');
	struct topic_meta m;
	if (at == NULL) {
		return;
	}
	*at = '\0';
	if (!shmqi_name_valid(name) || !shmqi_name_valid(at + 1) ||
	    shmqi_topic_load(ps->q, at + 1, &m) != 0 ||
	    m.durability != SHMQ_DURABILITY_PERSISTENT) {
		return;
	}
	for (size_t i = 0; i < ps->ng; i++) {
		struct pgroup *pg = ps->groups[i];
		if (pg->meta.id == m.id && strcmp(pg->group, name) == 0) {
			pg->seen = true;
			return;
		}
	}
	struct pgroup *pg = calloc(1, sizeof *pg);
	if (pg == NULL) {
		return;
	}
	snprintf(pg->group, sizeof pg->group, "%.100s", name);
	snprintf(pg->topic, sizeof pg->topic, "%.100s", at + 1);
	pg->meta = m;
	pg->seen = true;
	pg->saved = malloc(m.partitions * sizeof *pg->saved);
	if (pg->saved == NULL ||
	    shmqi_group_open(ps->q, name, at + 1, &m, false, &pg->g) != 0) {
		free(pg->saved);
		free(pg);
		return;
	}
	for (uint32_t p = 0; p < m.partitions; p++) {
		pg->saved[p] = GP_NONE;
	}
	if (ps->ng == ps->gcap) {
		size_t cap = ps->gcap ? ps->gcap * 2 : 8;
		struct pgroup **ng = realloc(ps->groups, cap * sizeof *ng);
		if (ng == NULL) {
			group_drop(pg);
			return;
		}
		ps->groups = ng;
		ps->gcap = cap;
	}
	ps->groups[ps->ng++] = pg;
}

static void
scan_groups(shmq_persister_t *ps)
{
	for (size_t i = 0; i < ps->ng; i++) {
		ps->groups[i]->seen = false;
	}
	DIR *d = opendir(ps->q->shm_dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			group_track(ps, e->d_name);
		}
		closedir(d);
	}
	for (size_t i = 0; i < ps->ng;) {
		if (!ps->groups[i]->seen) {
			group_drop(ps->groups[i]);
			ps->groups[i] = ps->groups[--ps->ng];
			continue;
		}
		i++;
	}
}

/* Write a group's committed offsets if they changed (temp file, fsync,
 * rename, directory fsync: shmqi_write_file_atomic). */
static void
group_save(shmq_persister_t *ps, struct pgroup *pg)
{
	char dir[SHMQ_PATH_MAX], file[SHMQ_NAME_MAX + 16], buf[SAVED_MAX];
	struct grp_hdr *h = pg->g.hdr;
	bool changed = false;
	if (atomic_load(&h->g_flags) & GROUP_F_DELETED) {
		return; /* deleted: its file is gone and must stay gone */
	}
	int len = snprintf(buf, sizeof buf, "topic_id=%016llx\n",
	    (unsigned long long)pg->meta.id);
	for (uint32_t p = 0; p < pg->meta.partitions; p++) {
		uint64_t c = atomic_load_explicit(
		    &h->g_parts[p].gp_committed, memory_order_acquire);
		changed = changed || c != pg->saved[p];
		if (c != GP_NONE && len < (int)sizeof buf - 48) {
			len += snprintf(buf + len, sizeof buf - (size_t)len,
			    "%u %llu\n", p, (unsigned long long)c);
		}
	}
	if (!changed) {
		return;
	}
	snprintf(dir, sizeof dir, "%s/data/%s/groups", ps->q->home, pg->topic);
	snprintf(file, sizeof file, "%s.offsets", pg->group);
	unsigned dmode = ps->q->mode == 0660 ? 0770 : 0700;
	(void)mkdir(dir, dmode); /* data/TOPIC exists: its segments */
	int rc = shmqi_write_file_atomic(
	    dir, file, buf, (size_t)len, ps->q->mode & 0666);
	if (rc != 0) {
		plog(ps, SHMQ_LOG_WARN, "group %s on %s: saving offsets: %s",
		    pg->group, pg->topic, shmq_strerror(rc));
		return;
	}
	for (uint32_t p = 0; p < pg->meta.partitions; p++) {
		pg->saved[p] = atomic_load(&h->g_parts[p].gp_committed);
	}
}

static void
save_groups(shmq_persister_t *ps)
{
	for (size_t i = 0; i < ps->ng; i++) {
		group_save(ps, ps->groups[i]);
	}
	ps->next_save_ns = shmqi_mono_ns() + SAVE_EVERY_NS;
}

/* Pick up new persistent topics, drop deleted ones. */
static int
scan(shmq_persister_t *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		ps->parts[i]->seen = false;
	}
	int rc = shmq_topic_list(ps->q, scan_topic, ps);
	for (size_t i = 0; i < ps->n; i++) {
		struct ppart *pp = ps->parts[i];
		uint64_t gone = 0;
		if (pp->seen && !pp->failed &&
		    shmqi_seg_retain(&pp->sg, pp->meta.retention_bytes,
		        pp->meta.retention_ms, &gone) == 0 &&
		    gone > 0) {
			plog(ps, SHMQ_LOG_INFO,
			    "%s/%u: retention deleted %llu segment(s)",
			    pp->topic, pp->id, (unsigned long long)gone);
		}
	}
	for (size_t i = 0; i < ps->n;) {
		struct ppart *pp = ps->parts[i];
		if (!pp->seen || shmqi_ring_check(&pp->r) == SHMQ_EDELETED) {
			plog(ps, SHMQ_LOG_INFO, "%s/%u: topic gone", pp->topic,
			    pp->id);
			part_close(ps, pp);
			ps->parts[i] = ps->parts[--ps->n];
			continue;
		}
		i++;
	}
	scan_groups(ps);
	ps->next_scan_ns = shmqi_mono_ns() + SCAN_EVERY_NS;
	return rc;
}

/* Check the records of [wpos, cp) before they go to disk: their count,
 * and the offset after the last; -1 if any is damaged.  Their index
 * entries are noted on the way. */
static int64_t
verify(struct ppart *pp, uint64_t cp, uint64_t *next)
{
	struct ring *r = &pp->r;
	int64_t n = 0;
	uint64_t off = pp->woff;
	for (uint64_t p = pp->wpos; p < cp;) {
		struct rec_hdr *h = shmqi_rec_at(r, p);
		uint32_t len = atomic_load(&h->rec_len);
		uint64_t room = r->cap - (p & r->mask);
		if (h->rec_type == REC_PAD) {
			if (len < REC_ALIGN || len > room || (len & 7) != 0) {
				return -1;
			}
			p += len;
			continue;
		}
		uint64_t total = len & REC_LEN_MASK;
		uint64_t ext = shmqi_align8(total);
		if (h->rec_type != REC_DATA || room < sizeof *h ||
		    ext > room ||
		    total !=
		        sizeof *h + (uint64_t)h->rec_key_len +
		            h->rec_value_len ||
		    h->rec_offset != off ||
		    (!(len & REC_ABORTED) &&
		        shmqi_rec_crc(h, h + 1) != h->rec_crc)) {
			return -1;
		}
		/* Where the record will be in the segment: the range goes
		 * there byte for byte. */
		shmqi_idx_note(&pp->sg.ix, off, pp->sg.size + (p - pp->wpos));
		off++;
		n++;
		p += ext;
	}
	*next = off;
	return n;
}

/* Write what is committed and not yet written; flush per policy. */
static int64_t
persist_part(shmq_persister_t *ps, struct ppart *pp, int64_t now)
{
	struct ring *r = &pp->r;
	struct ring_hdr *h = r->hdr;
	uint64_t cp = atomic_load_explicit(&h->hdr_committed_pos,
	    memory_order_acquire); /* pairs with the committers' CAS */
	uint64_t next;
	int rc = 0;

	if (cp <= pp->wpos) {
		if (pp->dirty && pp->meta.fsync == SHMQ_FSYNC_INTERVAL &&
		    now - pp->synced_ns >=
		        (int64_t)pp->meta.fsync_interval_ms * 1000000) {
			(void)flush(ps, pp);
		}
		/* Idle: readers of the live segment get every entry. */
		(void)shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, true);
		idx_report(ps, pp);
		return 0;
	}
	if (cp - pp->wpos > r->cap || ((cp | pp->wpos) & 7) != 0) {
		fail(ps, pp, SHMQ_ECORRUPT, "reading the ring");
		return 0;
	}
	/* Roll before verifying: the index entries noted while verifying
	 * hold positions in the segment the range goes to. */
	if (pp->sg.size > 0 &&
	    pp->sg.size + (cp - pp->wpos) > pp->meta.segment_bytes) {
		if ((pp->dirty && flush(ps, pp) != 0) ||
		    (rc = shmqi_seg_roll(&pp->sg, pp->woff)) != 0) {
			if (!pp->failed) {
				fail(ps, pp, rc, "rolling the segment");
			}
			return 0;
		}
		idx_report(ps, pp);
	}
	int64_t n = verify(pp, cp, &next);
	if (n < 0) {
		fail(ps, pp, SHMQ_ECORRUPT, "verifying records");
		return 0;
	}
	/* The range may wrap: at most two pieces.  Nothing in it can be
	 * overwritten meanwhile: space is reused only below durable. */
	struct iovec iov[2];
	uint64_t at = pp->wpos & r->mask, len = cp - pp->wpos;
	uint64_t first = len < r->cap - at ? len : r->cap - at;
	iov[0].iov_base = r->data + at;
	iov[0].iov_len = first;
	iov[1].iov_base = r->data;
	iov[1].iov_len = len - first;
	bool sync = pp->meta.fsync == SHMQ_FSYNC_ALWAYS;
	rc = shmqi_pio_write(
	    ps->io, pp->sg.fd, iov, len > first ? 2 : 1, pp->sg.size, sync);
	if (rc != 0) {
		fail(ps, pp, rc, sync ? "write+fdatasync" : "write");
		return 0;
	}
	pp->sg.size += len;
	pp->wpos = cp;
	pp->woff = next;
	pp->dirty = true;
	/* After the write: an entry never points past the log. */
	if (shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, false) != 0) {
		idx_report(ps, pp);
	}
	if (sync) {
		pp->synced_ns = now;
		publish(pp);
	} else if (pp->meta.fsync == SHMQ_FSYNC_NEVER) {
		publish(pp); /* in the page cache: that is the policy */
	} else if (now - pp->synced_ns >=
	    (int64_t)pp->meta.fsync_interval_ms * 1000000) {
		(void)flush(ps, pp);
	}
	return n;
}

int
shmq_persister_open(shmq_t *q,
    void (*log)(int level, const char *msg, void *arg), void *log_arg,
    pid_t *holder, shmq_persister_t **out)
{
	char path[SHMQ_PATH_MAX], pid[24];
	int rc;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	if (q == NULL) {
		return -EINVAL;
	}
	if ((rc = lock_path(q, path, sizeof path)) != 0) {
		return rc;
	}
	shmq_persister_t *ps = calloc(1, sizeof *ps);
	if (ps == NULL) {
		return -ENOMEM;
	}
	ps->q = q;
	ps->log = log;
	ps->log_arg = log_arg;
	ps->lockfd = open(
	    path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, q->mode & 0666);
	if (ps->lockfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = shmqi_lock_byte(ps->lockfd, 0, true);
	if (rc == -EAGAIN) {
		ssize_t k = pread(ps->lockfd, pid, sizeof pid - 1, 0);
		pid[k > 0 ? k : 0] = '\0';
		if (holder != NULL) {
			*holder = (pid_t)strtol(pid, NULL, 10);
		}
		rc = -EBUSY;
		goto fail;
	}
	if (rc != 0) {
		goto fail;
	}
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(ps->lockfd, 0) != 0 ||
	    pwrite(ps->lockfd, pid, (size_t)len, 0) != len) {
		rc = -errno;
		goto fail;
	}
	if ((rc = shmqi_pio_open(&ps->io)) != 0) {
		plog(ps, SHMQ_LOG_ERROR, "io_uring is not available: %s",
		    shmq_strerror(rc));
		goto fail;
	}
	if ((rc = scan(ps)) != 0) {
		goto fail;
	}
	*out = ps;
	return 0;
fail:
	shmq_persister_close(ps);
	return rc;
}

/* Sleep until a persistent partition has new commits (or ms pass). */
static void
wait_commits(shmq_persister_t *ps, int ms)
{
	_Atomic uint32_t *words[SHMQ_PARTITIONS_MAX];
	uint32_t seen[SHMQ_PARTITIONS_MAX];
	size_t n = 0;
	bool ready = false;
	for (size_t i = 0; i < ps->n && n < SHMQ_PARTITIONS_MAX; i++) {
		struct ppart *pp = ps->parts[i];
		if (pp->failed) {
			continue;
		}
		struct ring_hdr *h = pp->r.hdr;
		words[n] = &h->hdr_commit_seq;
		seen[n++] = atomic_load(&h->hdr_commit_seq);
		atomic_fetch_add(&h->hdr_commit_waiters, 1);
	}
	/* Re-check after raising the counts (pairs with the committers'
	 * seq_cst load of commit_waiters). */
	atomic_thread_fence(memory_order_seq_cst);
	for (size_t i = 0, k = 0; i < ps->n && k < n; i++) {
		struct ppart *pp = ps->parts[i];
		if (pp->failed) {
			continue;
		}
		k++;
		ready = ready ||
		    atomic_load(&pp->r.hdr->hdr_committed_pos) > pp->wpos;
	}
	if (!ready) {
		if (n > 0) {
			(void)shmqi_futex_waitv(words, seen, n, ms);
		} else {
			_Atomic uint32_t w = 0;
			(void)shmqi_futex_wait(&w, 0, ms);
		}
	}
	for (size_t i = 0, k = 0; i < ps->n && k < n; i++) {
		struct ppart *pp = ps->parts[i];
		if (!pp->failed) {
			atomic_fetch_sub(&pp->r.hdr->hdr_commit_waiters, 1);
			k++;
		}
	}
}

ssize_t
shmq_persister_poll(shmq_persister_t *ps, int timeout_ms)
{
	if (ps == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	int64_t now = shmqi_mono_ns();
	if (now >= ps->next_scan_ns) {
		(void)scan(ps);
	}
	if (now >= ps->next_save_ns) {
		save_groups(ps);
	}
	ssize_t total = 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (!ps->parts[i]->failed) {
			total += persist_part(ps, ps->parts[i], now);
		}
	}
	if (total == 0 && timeout_ms != 0) {
		/* Bounded: new topics, interval flushes and a dead peer
		 * need a look now and then. */
		int ms = timeout_ms < 0 || timeout_ms > 100 ? 100 : timeout_ms;
		wait_commits(ps, ms);
	}
	return total;
}

void
shmq_persister_close(shmq_persister_t *ps)
{
	if (ps == NULL) {
		return;
	}
	for (size_t i = 0; i < ps->n; i++) {
		part_close(ps, ps->parts[i]);
	}
	free(ps->parts);
	for (size_t i = 0; i < ps->ng; i++) {
		group_save(ps, ps->groups[i]);
		group_drop(ps->groups[i]);
	}
	free(ps->groups);
	shmqi_pio_close(ps->io);
	if (ps->lockfd >= 0) {
		close(ps->lockfd); /* drops the lock */
	}
	free(ps);
}
