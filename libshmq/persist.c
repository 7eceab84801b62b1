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
 * The work of a partition is a pipeline: while the flush of one range
 * runs, the next range is checked and written (an fdatasync covers
 * every write that completed before it started), so the disk and the
 * CPU work at once and each flush takes what gathered meanwhile: Kafka's
 * group commit.  One write and one flush per partition are in flight
 * at most; a poll returns once none is, so what it counted is written
 * (and, under fsync always, flushed) when it returns.
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
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_NAME "replicator.lock"
#define SCAN_EVERY_NS 1000000000ll /* look for new topics each second */
#define SAVE_EVERY_NS 100000000ll /* group offsets: at most 100 ms late */
/* A busy poll returns after this long, so that scans, group saves and
 * the caller's own work (signals) still come round. */
#define ROUND_NS 20000000ll
/* Ranges up to this size are written in the persister's own thread when
 * nothing else is in flight (persist_uring.c: write_now); tests set it
 * to 0 to send every write through io_uring. */
uint64_t shmqi_persist_inline_max = SHMQI_PERSIST_INLINE_MAX;
/* Under fsync never and interval, a partition that had work in the last
 * BUSY_NS is looked at every LINGER_NS instead of waking the persister
 * on every commit (see wait_commits). */
#define LINGER_NS 250000ll
#define BUSY_NS 10000000ll

/* A consumer group of a persistent topic, whose committed offsets are
 * saved to HOME/data/TOPIC/groups/GROUP.offsets for after a reboot. */
struct pgroup {
	char group[SHMQ_NAME_MAX + 1];
	char topic[SHMQ_NAME_MAX + 1];
	struct topic_meta meta;
	struct group g;
	uint64_t *saved; /* what the file holds */
	bool seen;
	int open_err; /* the group file would not map: g is not open */
};

struct ppart {
	char topic[SHMQ_NAME_MAX + 1];
	uint32_t id;
	struct topic_meta meta;
	struct ring r;
	struct segment sg;
	/* Ring positions, and the offset after the last record, of three
	 * points that only move up: sub <= wr <= dur does not hold in
	 * general (dur may be ahead after recovery), but
	 * dur_pos <= wr_pos <= sub_pos does while the partition works. */
	uint64_t sub_pos, sub_off; /* written, or being written, up to */
	uint64_t wr_pos, wr_off; /* written (in the page cache) up to */
	uint64_t dur_pos; /* published durable up to */
	struct shmqi_pio_op wop, fop; /* the write and the flush */
	uint64_t w_pos, w_off; /* where the write in flight ends */
	uint64_t f_pos, f_off; /* what the flush in flight covers */
	bool writing, flushing; /* wop, fop are in flight */
	int64_t worked_ns; /* when a write last started */
	bool waiting; /* counted in its ring's commit_waiters */
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
	unsigned inflight; /* operations started, not yet handed back */
	int64_t next_scan_ns;
	int64_t next_save_ns;
	struct timespec topics_mtime; /* of HOME/topics at the last look */
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
publish(struct ppart *pp, uint64_t pos, uint64_t off)
{
	struct ring_hdr *h = pp->r.hdr;
	pp->dur_pos = pos > pp->dur_pos ? pos : pp->dur_pos;
	if (atomic_load(&h->hdr_durable_pos) >= pos) {
		return;
	}
	atomic_store_explicit(&h->hdr_durable_off, off, memory_order_relaxed);
	atomic_store(&h->hdr_durable_pos, pos);
	if (atomic_load(&h->hdr_durable_waiters) > 0) {
		atomic_fetch_add(&h->hdr_durable_seq, 1);
		shmqi_futex_wake(&h->hdr_durable_seq);
	}
	shmqi_ring_wake_space(&pp->r);
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

/* A finished operation of one of the partitions (shmqi_pio_reap). */
static void
op_done(struct shmqi_pio_op *op, void *arg)
{
	shmq_persister_t *ps = arg;
	struct ppart *pp = op->owner;
	ps->inflight--;
	if (op == &pp->wop) {
		pp->writing = false;
		if (pp->failed) {
			return;
		}
		if (op->res != 0) {
			fail(ps, pp, op->res, "write");
			return;
		}
		pp->wr_pos = pp->w_pos;
		pp->wr_off = pp->w_off;
		/* After the write: an entry never points past the log. */
		if (shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, false) != 0) {
			idx_report(ps, pp);
		}
		if (pp->meta.fsync == SHMQ_FSYNC_NEVER) {
			/* In the page cache: that is the policy. */
			publish(pp, pp->wr_pos, pp->wr_off);
		}
		return;
	}
	pp->flushing = false;
	if (pp->failed) {
		return;
	}
	if (op->res != 0) {
		fail(ps, pp, op->res, "fdatasync");
		return;
	}
	pp->synced_ns = shmqi_mono_ns();
	publish(pp, pp->f_pos, pp->f_off);
}

/* Hand back what finished; wait up to `ms` for something if nothing
 * has.  io_uring itself failing is the persister's end. */
static int
reap(shmq_persister_t *ps, int ms)
{
	int rc = shmqi_pio_reap(ps->io, ms, op_done, ps);
	return rc < 0 ? rc : 0;
}

/* Wait until the partition has nothing in flight (others' operations
 * are handed back on the way). */
static int
drain_part(shmq_persister_t *ps, struct ppart *pp)
{
	int rc = 0;
	while (rc == 0 && (pp->writing || pp->flushing)) {
		rc = reap(ps, -1);
	}
	return rc;
}

/* Flush what is written (it covers every write that completed). */
static void
flush_start(shmq_persister_t *ps, struct ppart *pp)
{
	pp->f_pos = pp->wr_pos;
	pp->f_off = pp->wr_off;
	pp->flushing = true;
	ps->inflight++;
	(void)shmqi_pio_start_sync(ps->io, &pp->fop, pp->sg.fd);
}

/* Flush now and wait for it: at recovery, before a roll, at close. */
static int
flush(shmq_persister_t *ps, struct ppart *pp)
{
	int rc = drain_part(ps, pp);
	if (rc == 0 && !pp->failed) {
		flush_start(ps, pp);
		rc = drain_part(ps, pp);
	}
	return rc != 0 ? rc : pp->failed ? -EIO : 0;
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
		pp->wr_pos = ep;
		pp->wr_off = e;
		rc = 0;
	} else {
		uint64_t pos;
		int loc = shmqi_ring_locate(r, e, &pos);
		if (loc == LOC_FOUND) {
			pp->wr_pos = pos;
			pp->wr_off = e;
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
	pp->sub_pos = pp->wr_pos;
	pp->sub_off = pp->wr_off;
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
	pp->wop.owner = pp->fop.owner = pp;
	shmqi_idx_init(&pp->sg.ix, 0);
	int rc = shmqi_ring_open(ps->q, topic, m, id, &pp->r);
	if (rc == 0) {
		/* A dead predecessor's sticky error ends here: this
		 * persister (the only one: it holds the lock) recovers the
		 * partition now.  A send meanwhile waits for the recovery
		 * instead of failing; one that fails sets an error again. */
		atomic_store(&pp->r.hdr->hdr_persist_err, 0);
		SHMQI_POINT(POINT_PERSIST_RECOVERING);
	}
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
		plog(ps, SHMQ_LOG_INFO, "%s/%u: persisting from offset %llu",
		    topic, id, (unsigned long long)pp->wr_off);
	}
	return 0;
}

static void
part_close(shmq_persister_t *ps, struct ppart *pp)
{
	/* Its operations must be handed back before it is freed; a
	 * failure of io_uring itself leaves nothing to wait for. */
	if (drain_part(ps, pp) != 0) {
		pp->failed = true;
	}
	if (pp->wr_pos > pp->dur_pos && !pp->failed) {
		(void)flush(ps, pp);
	}
	if (!pp->failed) {
		(void)shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, true);
		idx_report(ps, pp);
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

/* Map pg's group file.  A group whose file will not map stays tracked,
 * unsaved, and is tried again at each scan; that is logged once, not at
 * every scan (each second).  -ENOENT is no failure: the file went away,
 * or is a deleted topic's group of the same name, which its next member
 * replaces. */
static int
group_map_file(shmq_persister_t *ps, struct pgroup *pg)
{
	int rc = shmqi_group_open(
	    ps->q, pg->group, pg->topic, &pg->meta, false, &pg->g);
	if (rc == 0 && pg->open_err != 0) {
		plog(ps, SHMQ_LOG_INFO, "group %s on %s: group file open",
		    pg->group, pg->topic);
	} else if (rc != 0 && rc != -ENOENT && pg->open_err == 0) {
		plog(ps, SHMQ_LOG_WARN,
		    "group %s on %s: cannot open the group file (%s); its "
		    "committed offsets are not saved to disk",
		    pg->group, pg->topic, shmq_strerror(rc));
	}
	if (rc != -ENOENT) {
		pg->open_err = rc;
	}
	return rc;
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
		if (pg->meta.id == m.id && strcmp(pg->group, name) == 0 &&
		    pg->g.hdr != NULL && m.partitions > pg->g.partitions &&
		    atomic_load(&pg->g.hdr->g_partitions) > pg->g.partitions) {
			/* The topic grew and so did the group's table: track
			 * it again, mapped for the new count. */
			group_drop(pg);
			ps->groups[i] = ps->groups[--ps->ng];
			break;
		}
		if (pg->meta.id == m.id && strcmp(pg->group, name) == 0) {
			pg->seen = true;
			if (pg->open_err != 0) {
				(void)group_map_file(ps, pg);
			}
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
	if (pg->saved == NULL || group_map_file(ps, pg) == -ENOENT) {
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
	if (h == NULL) {
		return; /* its file would not map (group_map_file) */
	}
	if (atomic_load(&h->g_flags) & GROUP_F_DELETED) {
		return; /* deleted: its file is gone and must stay gone */
	}
	int len = snprintf(buf, sizeof buf, "topic_id=%016llx\n",
	    (unsigned long long)pg->meta.id);
	for (uint32_t p = 0; p < pg->g.partitions; p++) {
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
	for (uint32_t p = 0; p < pg->g.partitions; p++) {
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

/* Check the records of [sub_pos, cp) before they go to disk: their count,
 * and the offset after the last; -1 if any is damaged.  Their index
 * entries are noted on the way. */
static int64_t
verify(struct ppart *pp, uint64_t cp, uint64_t *next)
{
	struct ring *r = &pp->r;
	int64_t n = 0;
	uint64_t off = pp->sub_off;
	for (uint64_t p = pp->sub_pos; p < cp;) {
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
		shmqi_idx_note(
		    &pp->sg.ix, off, pp->sg.size + (p - pp->sub_pos));
		off++;
		n++;
		p += ext;
	}
	*next = off;
	return n;
}

/* Start what the partition can start now: a write of what is committed
 * and not yet written, and a flush per policy.  The records counted. */
static int64_t
advance(shmq_persister_t *ps, struct ppart *pp, int64_t now, bool writes)
{
	struct ring *r = &pp->r;
	struct ring_hdr *h = r->hdr;
	uint64_t cp = atomic_load_explicit(&h->hdr_committed_pos,
	    memory_order_acquire); /* pairs with the committers' CAS */
	uint64_t next;
	int64_t n = 0;
	int rc = 0;
	bool always = pp->meta.fsync == SHMQ_FSYNC_ALWAYS;

	if (pp->failed) {
		return 0;
	}
	if (!writes) {
		/* The round is over: only flushes of what is written. */
	} else if (!pp->writing && cp <= pp->sub_pos) {
		/* Idle: readers of the live segment get every entry. */
		(void)shmqi_idx_append(&pp->sg.ix, pp->sg.dirfd, true);
		idx_report(ps, pp);
	} else if (!pp->writing) {
		if (cp - pp->sub_pos > r->cap ||
		    ((cp | pp->sub_pos) & 7) != 0) {
			fail(ps, pp, SHMQ_ECORRUPT, "reading the ring");
			return 0;
		}
		/* Roll before verifying: the index entries noted while
		 * verifying hold positions in the segment the range goes
		 * to.  The old segment is flushed first, with nothing in
		 * flight on it. */
		if (pp->sg.size > 0 &&
		    pp->sg.size + (cp - pp->sub_pos) >
		        pp->meta.segment_bytes) {
			if (pp->flushing) {
				return 0; /* the caller reaps it, then again */
			}
			if ((pp->wr_pos > pp->dur_pos && flush(ps, pp) != 0) ||
			    (rc = shmqi_seg_roll(&pp->sg, pp->sub_off)) != 0) {
				if (!pp->failed) {
					fail(
					    ps, pp, rc, "rolling the segment");
				}
				return 0;
			}
			idx_report(ps, pp);
		}
		n = verify(pp, cp, &next);
		if (n < 0) {
			fail(ps, pp, SHMQ_ECORRUPT, "verifying records");
			return 0;
		}
		/* The range may wrap: at most two pieces.  Nothing in it
		 * can be overwritten meanwhile: space is reused only below
		 * durable. */
		struct iovec iov[2];
		uint64_t at = pp->sub_pos & r->mask, len = cp - pp->sub_pos;
		uint64_t first = len < r->cap - at ? len : r->cap - at;
		iov[0].iov_base = r->data + at;
		iov[0].iov_len = first;
		iov[1].iov_base = r->data;
		iov[1].iov_len = len - first;
		/* With no flush running, flush right after this write
		 * (linked: one submission, no round trip between them).
		 * With one running, this write overlaps it, and the next
		 * flush takes this write and whatever follows it. */
		bool link = always && !pp->flushing;
		/* A small range that ends where the ring ends (no producer
		 * is still writing behind it), with nothing else in flight:
		 * in this thread, for a lone DURABLE send's latency.  A
		 * range a producer is still adding to goes to io_uring, so
		 * the next range gathers while this one is written. */
		bool here = len <= shmqi_persist_inline_max &&
		    ps->inflight == 0 && cp == atomic_load(&h->hdr_end_pos);
		pp->worked_ns = now;
		pp->w_pos = cp;
		pp->w_off = next;
		pp->writing = true;
		ps->inflight++;
		if (link) {
			pp->f_pos = cp;
			pp->f_off = next;
			pp->flushing = true;
			ps->inflight++;
		}
		(void)shmqi_pio_start_write(ps->io, &pp->wop, pp->sg.fd, iov,
		    len > first ? 2 : 1, pp->sg.size, link ? &pp->fop : NULL,
		    here);
		pp->sg.size += len;
		pp->sub_pos = cp;
		pp->sub_off = next;
	}
	if (!pp->flushing && pp->wr_pos > pp->dur_pos &&
	    (always ||
	        (pp->meta.fsync == SHMQ_FSYNC_INTERVAL &&
	            now - pp->synced_ns >=
	                (int64_t)pp->meta.fsync_interval_ms * 1000000))) {
		flush_start(ps, pp);
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

/* May the persister come back to this partition later instead of being
 * woken by its next commit?  Each wake-up costs the committing producer
 * a futex_wake and the persister a context switch: at a million records
 * a second that is a good part of both cores.  So while records stream
 * in, fsync never and interval partitions are looked at every LINGER_NS
 * (they promise nothing sooner), unless a producer waits for the
 * persister (DURABLE, or for space) or the ring is a quarter full of
 * records not yet durable.  An idle partition wakes the persister at
 * its first commit, as ALWAYS partitions always do. */
static bool
lingers(const struct ppart *pp, int64_t now)
{
	struct ring_hdr *h = pp->r.hdr;
	return pp->meta.fsync != SHMQ_FSYNC_ALWAYS &&
	    now - pp->worked_ns < BUSY_NS &&
	    atomic_load(&h->hdr_durable_waiters) == 0 &&
	    atomic_load(&h->hdr_space_waiters) == 0 &&
	    atomic_load(&h->hdr_committed_pos) - pp->dur_pos < pp->r.cap / 4;
}

/* Sleep until a persistent partition has new commits (or ms pass). */
static void
wait_commits(shmq_persister_t *ps, int ms)
{
	_Atomic uint32_t *words[SHMQ_PARTITIONS_MAX];
	uint32_t seen[SHMQ_PARTITIONS_MAX];
	size_t n = 0;
	bool ready = false, linger = false;
	int64_t now = shmqi_mono_ns();
	/* Every flag first: past the cap, no partition may keep one from
	 * an earlier call (it would be counted down below, unraised). */
	for (size_t i = 0; i < ps->n; i++) {
		ps->parts[i]->waiting = false;
	}
	for (size_t i = 0; i < ps->n && n < SHMQ_PARTITIONS_MAX; i++) {
		struct ppart *pp = ps->parts[i];
		if (pp->failed) {
			continue;
		}
		if (lingers(pp, now)) {
			linger = true;
			continue;
		}
		pp->waiting = true;
		struct ring_hdr *h = pp->r.hdr;
		words[n] = &h->hdr_commit_seq;
		seen[n++] = atomic_load(&h->hdr_commit_seq);
		atomic_fetch_add(&h->hdr_commit_waiters, 1);
	}
	/* Re-check after raising the counts (pairs with the committers'
	 * seq_cst load of commit_waiters). */
	atomic_thread_fence(memory_order_seq_cst);
	for (size_t i = 0; i < ps->n; i++) {
		struct ppart *pp = ps->parts[i];
		ready = ready ||
		    (pp->waiting &&
		        atomic_load(&pp->r.hdr->hdr_committed_pos) >
		            pp->sub_pos);
	}
	if (!ready && n > 0) {
		(void)shmqi_futex_waitv(words, seen, n, linger ? 1 : ms);
	} else if (!ready && linger) {
		struct timespec ts = { 0, LINGER_NS };
		(void)nanosleep(&ts, NULL);
	} else if (!ready) {
		_Atomic uint32_t w = 0;
		(void)shmqi_futex_wait(&w, 0, ms);
	}
	for (size_t i = 0; i < ps->n; i++) {
		struct ppart *pp = ps->parts[i];
		if (pp->waiting) {
			atomic_fetch_sub(&pp->r.hdr->hdr_commit_waiters, 1);
		}
	}
}

/* Was a topic created or deleted since the last look?  Creating one
 * renames its file into HOME/topics, which moves the directory's mtime,
 * so a new topic's first DURABLE send waits for one poll, not for the
 * next scan.  The mtime comes from a coarse clock: two changes within
 * one tick look like one, so a directory changed in the last 50 ms is
 * looked at again (the scan each second catches anything else). */
static bool
topics_changed(shmq_persister_t *ps)
{
	char dir[SHMQ_PATH_MAX];
	struct stat st;
	struct timespec now;
	snprintf(dir, sizeof dir, "%s/topics", ps->q->home);
	if (stat(dir, &st) != 0 || clock_gettime(CLOCK_REALTIME, &now) != 0) {
		return false;
	}
	bool changed = st.st_mtim.tv_sec != ps->topics_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != ps->topics_mtime.tv_nsec;
	ps->topics_mtime = st.st_mtim;
	int64_t age = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000000000 +
	    (now.tv_nsec - st.st_mtim.tv_nsec);
	/* A directory from the future (the clock stepped back) is not
	 * "recent": it would make every poll a scan until the clock
	 * catches up. */
	return changed || (age >= 0 && age < 50000000);
}

ssize_t
shmq_persister_poll(shmq_persister_t *ps, int timeout_ms)
{
	if (ps == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	int64_t now = shmqi_mono_ns();
	if (now >= ps->next_scan_ns || topics_changed(ps)) {
		(void)scan(ps);
	}
	if (now >= ps->next_save_ns) {
		save_groups(ps);
	}
	/* Keep every partition's pipeline going until nothing is in
	 * flight: then what was counted is written, and flushed where the
	 * policy says so.  A busy round stops starting writes after
	 * ROUND_NS and waits for the last ones. */
	ssize_t total = 0;
	int64_t end = now + ROUND_NS;
	for (;;) {
		for (size_t i = 0; i < ps->n; i++) {
			total += advance(ps, ps->parts[i], now, now < end);
		}
		if (ps->inflight == 0) {
			break;
		}
		int rc = reap(ps, 100);
		if (rc != 0) {
			return rc;
		}
		now = shmqi_mono_ns();
	}
	if (total == 0 && timeout_ms != 0) {
		/* Bounded: new topics, interval flushes and a dead peer
		 * need a look now and then; an interval flush that falls due
		 * needs one then. */
		int ms = timeout_ms < 0 || timeout_ms > 100 ? 100 : timeout_ms;
		for (size_t i = 0; i < ps->n; i++) {
			struct ppart *pp = ps->parts[i];
			if (!pp->failed &&
			    pp->meta.fsync == SHMQ_FSYNC_INTERVAL &&
			    pp->wr_pos > pp->dur_pos) {
				int64_t due = pp->synced_ns - now +
				    (int64_t)pp->meta.fsync_interval_ms *
				        1000000;
				int d =
				    due <= 0 ? 1 : (int)(due / 1000000) + 1;
				ms = d < ms ? d : ms;
			}
		}
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
