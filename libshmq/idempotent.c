/*
 * idempotent.c — idempotent producers (Kafka's enable.idempotence, and
 * its transactional.id without transactions): identity, fencing, and
 * the per-partition sequence state that turns a repeated send into the
 * original record's offset.
 *
 * Every record of an idempotent producer carries (producer id, epoch,
 * sequence); sequences count 0, 1, 2, ... per partition.  The truth is
 * the log: a handle learns a partition's next sequence, and the offsets
 * of its recent records, by reading the log from a hint (the state
 * file's window of recent records) to the end, at its first send there.
 * After that it is the partition's only writer of that identity, so it
 * keeps both in private memory and the hot path takes no extra lock.
 *
 * Fencing.  A named identity lives in a small shared file (layout.h,
 * struct pst_hdr).  Each open bumps its generation under the file's OFD
 * lock; every reservation of a named handle compares the generation it
 * holds with the file's, under the ring lock (ring.c).  Before reading a
 * partition's log, the new instance takes and drops that ring lock: an
 * older instance's reservation then either came before (its offset is
 * below the end read under the lock, so the scan finds it once it is
 * settled) or after (it sees the new generation and is refused).
 *
 * Why not Kafka's broker-side table: there is no broker.  Producers
 * append straight into shared memory, so the one place that knows an
 * identity's recent sequences is the identity's own live handle, and
 * fencing makes it the only one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define IDEM_WINDOW 128u /* recent (sequence, offset) pairs kept */
#define PSTATE_LAYOUT \
	((uint32_t)(sizeof(struct pst_hdr) ^ (sizeof(struct pst_part) << 8)))
#define SCAN_SLICE_MS 10

struct idem_ent {
	uint64_t off;
	uint64_t pos; /* ring position if appended by us, else UINT64_MAX */
	uint32_t seq;
};

struct idem_part {
	bool ready;
	uint64_t next_seq; /* up to UINT32_MAX + 1: sequences ran out */
	uint64_t pin_next; /* the next sequence to pin, in round pin_round */
	uint32_t pin_round;
	uint32_t count; /* valid entries in win, at most IDEM_WINDOW */
	uint32_t head; /* where the next entry goes */
	struct idem_ent win[IDEM_WINDOW];
};

struct idem {
	uint64_t pid;
	uint32_t gen; /* the generation this handle holds */
	uint32_t pin_round; /* shmqi_idem_pin_begin's count */
	bool named;
	bool persistent;
	bool fenced;
	int fd;
	struct pst_hdr *st;
	size_t map_len;
	uint32_t st_parts; /* pst_part entries mapped */
	struct idem_part **parts;
	uint32_t nparts;
	char path[SHMQ_PATH_MAX];
};

static size_t
pst_size(uint32_t parts)
{
	return sizeof(struct pst_hdr) +
	    (size_t)parts * sizeof(struct pst_part);
}

/* Where a topic's producer state lives: with its log. */
static int
pst_path(shmq_producer_t *p, const char *name, char *buf, size_t cap)
{
	shmq_t *q = p->q;
	int w;
	if (p->meta.durability != SHMQ_DURABILITY_PERSISTENT) {
		w = snprintf(
		    buf, cap, "%s/%s@%s.producer", q->shm_dir, name, p->topic);
		return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
	}
	/* HOME/data/TOPIC/producers: made here if the persister has not
	 * made the topic's directory yet. */
	const char *fmt[] = { "%s/data", "%s/data/%s", "%s/data/%s/producers",
		"%s/data/%s/producers/%s.producer" };
	for (size_t i = 0; i < 4; i++) {
		w = snprintf(buf, cap, fmt[i], q->home, p->topic, name);
		if (w < 0 || (size_t)w >= cap) {
			return -ENAMETOOLONG;
		}
		if (i < 3 && mkdir(buf, (q->mode | 0100) & 0770) != 0 &&
		    errno != EEXIST) {
			return -errno;
		}
	}
	return 0;
}

static void
sync_dir_of(const char *path)
{
	char dir[SHMQ_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL) {
		return;
	}
	*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static void
pst_init_parts(struct pst_hdr *st, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		atomic_init(&st->ps_parts[i].pp_scan_from, PSTATE_NONE);
		atomic_init(&st->ps_parts[i].pp_count, 0);
	}
}

/* Build the file under a temp name and link it in, under the instance
 * lock: two first openers agree on one identity.  -EEXIST: another
 * process made it meanwhile (open it). */
static int
pst_create(shmq_producer_t *p, struct idem *id)
{
	char tmp[SHMQ_PATH_MAX];
	uint32_t parts = p->nrings;
	void *map = NULL;
	int fd = -1;
	int lk = shmqi_instance_lock(p->q);
	if (lk < 0) {
		return lk;
	}
	int rc = snprintf(tmp, sizeof tmp, "%s.tmp.%d", id->path,
	             (int)getpid()) >= (int)sizeof tmp
	    ? -ENAMETOOLONG
	    : 0;
	if (rc == 0 && access(id->path, F_OK) == 0) {
		rc = -EEXIST;
	}
	if (rc == 0) {
		unlink(tmp);
		rc = shmqi_file_create(tmp, p->q->mode, pst_size(parts), &fd);
	}
	if (rc == 0) {
		rc = shmqi_map(fd, pst_size(parts), &map);
	}
	if (rc == 0) {
		struct pst_hdr *st = map;
		st->ps_magic = PSTATE_MAGIC;
		st->ps_layout = PSTATE_LAYOUT;
		st->ps_topic_id = p->meta.id;
		st->ps_producer_id = shmqi_random64() | 1; /* never 0 */
		atomic_init(&st->ps_generation, 0);
		atomic_init(&st->ps_partitions, parts);
		st->ps_created_ns = shmqi_now_ns();
		pst_init_parts(st, 0, parts);
		/* Pairs with the acquire in pst_open: whoever sees the
		 * version sees the whole header. */
		atomic_store_explicit(
		    &st->ps_version, LAYOUT_VERSION, memory_order_release);
		if (id->persistent && fsync(fd) != 0) {
			rc = -errno;
		}
	}
	if (rc == 0 && link(tmp, id->path) != 0) {
		rc = -errno;
	}
	if (rc == 0 && id->persistent) {
		sync_dir_of(id->path);
	}
	shmqi_unmap(map, pst_size(parts));
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	shmqi_instance_unlock(lk);
	return rc;
}

/* Map the file's first `size` bytes (all of it).  The partitions whose
 * entries lie inside are usable: a count that claims more is being
 * grown by another opener (it extends the file, then the count, under
 * the file's lock), and pst_open looks again under that lock. */
static int
pst_map(struct idem *id, uint64_t size)
{
	void *map;
	if (size < sizeof(struct pst_hdr) ||
	    size > pst_size(SHMQ_PARTITIONS_MAX)) {
		return SHMQ_ECORRUPT;
	}
	int rc = shmqi_map(id->fd, (size_t)size, &map);
	if (rc != 0) {
		return rc;
	}
	shmqi_unmap(id->st, id->map_len);
	id->st = map;
	id->map_len = (size_t)size;
	uint32_t parts = atomic_load(&id->st->ps_partitions);
	uint64_t fit =
	    (size - sizeof(struct pst_hdr)) / sizeof(struct pst_part);
	id->st_parts = parts < fit ? parts : (uint32_t)fit;
	return parts <= SHMQ_PARTITIONS_MAX ? 0 : SHMQ_ECORRUPT;
}

/* Make the file, and our mapping of it, hold `parts` partitions (the
 * topic grew).  Caller holds the file's lock.  A new mapping moves the
 * fence word: see fence_rings. */
static int
pst_grow(struct idem *id, uint32_t parts)
{
	uint32_t have = atomic_load(&id->st->ps_partitions);
	uint32_t want = parts > have ? parts : have;
	int rc;
	if (parts > have &&
	    (rc = posix_fallocate(id->fd, 0, (off_t)pst_size(parts))) != 0) {
		return -rc;
	}
	if (pst_size(want) > id->map_len &&
	    (rc = pst_map(id, pst_size(want))) != 0) {
		return rc;
	}
	if (parts > have) {
		pst_init_parts(id->st, have, parts);
		/* seq_cst: the new entries are set before the count that
		 * makes them valid (pairs with the load in pst_map). */
		atomic_store(&id->st->ps_partitions, parts);
		if (id->persistent && fsync(id->fd) != 0) {
			return -errno;
		}
	}
	id->st_parts = want;
	return 0;
}

/* Point the rings of a named handle at the fence word of the current
 * mapping: every ring that had one, and ring `also` (a partition added
 * since the open). */
static void
fence_rings(shmq_producer_t *p, uint32_t also)
{
	struct idem *id = p->idem;
	for (uint32_t i = 0; i < p->nrings; i++) {
		if (p->rings[i].fence != NULL || i == also) {
			p->rings[i].fence = &id->st->ps_generation;
			p->rings[i].fence_gen = id->gen;
		}
	}
}

/* The file at id->path is from an earlier topic of the same name (its
 * directory outlived a delete, racing with our mkdir): remove it, so the
 * next attempt makes a new identity.  Under the instance lock, and only
 * if the name still holds the file we checked. */
static int
pst_discard(shmq_producer_t *p, struct idem *id)
{
	struct stat a, b;
	int lk = shmqi_instance_lock(p->q);
	if (lk < 0) {
		return lk;
	}
	if (fstat(id->fd, &a) == 0 && lstat(id->path, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
		unlink(id->path);
	}
	shmqi_instance_unlock(lk);
	shmqi_unmap(id->st, id->map_len);
	id->st = NULL;
	id->map_len = 0;
	close(id->fd);
	id->fd = -1;
	return 0;
}

/* Open (or make) the file, check it, and take the identity: the next
 * generation, under the file's lock. */
static int
pst_take(shmq_producer_t *p, struct idem *id)
{
	uint64_t size = 0;
	int rc = 0;
	for (int tries = 0; rc == 0 && tries < 3; tries++) {
		rc = shmqi_file_open(id->path, p->q->mode, &id->fd, &size);
		if (rc != -ENOENT) {
			break;
		}
		rc = pst_create(p, id); /* -EEXIST: made by another */
		rc = rc == -EEXIST ? 0 : rc; /* either way: open it now */
	}
	rc = rc == 0 && id->fd < 0 ? -ENOENT : rc;
	if (rc != 0 || (rc = pst_map(id, size)) != 0) {
		return rc;
	}
	if (id->st->ps_magic != PSTATE_MAGIC ||
	    atomic_load_explicit(&id->st->ps_version, memory_order_acquire) !=
	        LAYOUT_VERSION ||
	    id->st->ps_layout != PSTATE_LAYOUT) {
		return SHMQ_ECORRUPT;
	}
	if (id->st->ps_topic_id != p->meta.id) {
		return -ESTALE; /* left by an earlier topic */
	}
	if ((rc = shmqi_lock_byte_wait(id->fd, 0)) != 0) {
		return rc;
	}
	/* Re-read the size under the lock: another opener may have grown
	 * the file since we mapped it. */
	struct stat sb;
	if (fstat(id->fd, &sb) != 0) {
		rc = -errno;
	} else if ((uint64_t)sb.st_size != id->map_len) {
		rc = pst_map(id, (uint64_t)sb.st_size);
	}
	if (rc == 0) {
		rc = pst_grow(id, p->nrings);
	}
	if (rc == 0) {
		/* seq_cst: the fence.  From here on an older instance's
		 * reservation is refused once it takes a ring lock after our
		 * barrier on that ring (shmqi_idem_ready). */
		struct pst_hdr *st = id->st; /* mapped for good now */
		id->gen = atomic_load(&st->ps_generation) + 1;
		atomic_store(&st->ps_generation, id->gen);
		id->pid = st->ps_producer_id;
		if (id->persistent && fdatasync(id->fd) != 0) {
			rc = -errno;
		}
	}
	shmqi_unlock_byte(id->fd, 0);
	return rc;
}

static int
pst_open(shmq_producer_t *p, struct idem *id, const char *name)
{
	int rc = pst_path(p, name, id->path, sizeof id->path);
	if (rc == 0 && (rc = pst_take(p, id)) == -ESTALE &&
	    (rc = pst_discard(p, id)) == 0) {
		rc = pst_take(p, id);
		rc = rc == -ESTALE ? SHMQ_ECORRUPT : rc;
	}
	return rc;
}

int
shmqi_idem_open(shmq_producer_t *p, const char *name)
{
	struct idem *id = calloc(1, sizeof *id);
	if (id == NULL) {
		return -ENOMEM;
	}
	id->fd = -1;
	p->idem = id;
	id->persistent = p->meta.durability == SHMQ_DURABILITY_PERSISTENT;
	id->parts = calloc(p->nrings, sizeof *id->parts);
	if (id->parts == NULL) {
		return -ENOMEM;
	}
	id->nparts = p->nrings;
	if (name == NULL) {
		/* Anonymous: a fresh identity nobody else can hold, so
		 * nothing to fence and nothing in the log yet. */
		id->pid = shmqi_random64() | 1;
		return 0;
	}
	id->named = true;
	int rc = pst_open(p, id, name);
	if (rc != 0) {
		return rc;
	}
	for (uint32_t i = 0; i < p->nrings; i++) {
		fence_rings(p, i);
	}
	return 0;
}

void
shmqi_idem_close(shmq_producer_t *p)
{
	struct idem *id = p->idem;
	if (id == NULL) {
		return;
	}
	for (uint32_t i = 0; i < id->nparts; i++) {
		free(id->parts[i]);
	}
	free(id->parts);
	shmqi_unmap(id->st, id->map_len);
	if (id->fd >= 0) {
		close(id->fd);
	}
	free(id);
	p->idem = NULL;
}

void
shmqi_idem_set_fenced(shmq_producer_t *p)
{
	p->idem->fenced = true;
}

static void
win_push(struct idem_part *ip, uint64_t off, uint64_t pos, uint32_t seq)
{
	ip->win[ip->head] = (struct idem_ent) { off, pos, seq };
	ip->head = (ip->head + 1) % IDEM_WINDOW;
	if (ip->count < IDEM_WINDOW) {
		ip->count++;
	}
}

/* A hint for the next instance's scan.  Plain stores with a check word:
 * whoever reads it (after our death, or while we are fenced) takes only
 * entries whose check matches, and takes them only as a place to start
 * reading the log. */
static void
pst_note(struct idem *id, uint32_t part, uint64_t off, uint32_t seq)
{
	if (!id->named || part >= id->st_parts ||
	    atomic_load_explicit(
	        &id->st->ps_generation, memory_order_relaxed) != id->gen) {
		return;
	}
	struct pst_part *pp = &id->st->ps_parts[part];
	uint64_t n = atomic_load_explicit(&pp->pp_count, memory_order_relaxed);
	struct pst_ent *e = &pp->pp_win[n % PSTATE_WINDOW];
	atomic_store_explicit(&e->pe_check, 0, memory_order_relaxed);
	atomic_store_explicit(&e->pe_off, off, memory_order_relaxed);
	atomic_store_explicit(&e->pe_seq, seq, memory_order_relaxed);
	atomic_store_explicit(
	    &e->pe_check, off ^ seq ^ PSTATE_MAGIC, memory_order_release);
	atomic_store_explicit(&pp->pp_count, n + 1, memory_order_release);
}

/* Wait until every record below offset `end` is settled (committed,
 * aborted, or reclaimed from a dead or stalled writer), as a LEADER
 * producer waits for visibility. */
static int
wait_settled(shmq_producer_t *p, struct ring *r, uint64_t end)
{
	struct ring_hdr *h = r->hdr;
	int64_t start = shmqi_mono_ns();
	int64_t deadline = p->timeout_ms < 0
	    ? INT64_MAX
	    : start + (int64_t)p->timeout_ms * 1000000;
	while (shmqi_ring_committed_off(r) < end) {
		int rc = shmqi_ring_check(r);
		if (rc != 0) {
			return rc;
		}
		int64_t now = shmqi_mono_ns();
		if (now >= deadline) {
			return -EAGAIN;
		}
		if (now - start >= (int64_t)r->reclaim_ms * 1000000) {
			(void)shmqi_ring_reclaim(r, start);
		}
		uint32_t seq = atomic_load(&h->hdr_commit_seq);
		/* seq_cst increment pairs with the committer's load of the
		 * waiter count after it moved committed_pos. */
		atomic_fetch_add(&h->hdr_commit_waiters, 1);
		if (shmqi_ring_committed_off(r) < end) {
			shmqi_futex_wait(
			    &h->hdr_commit_seq, seq, SCAN_SLICE_MS);
		}
		atomic_fetch_sub(&h->hdr_commit_waiters, 1);
	}
	return 0;
}

/* Read [from, end) of the partition and keep this identity's records.
 * Aborted records are never returned by a consumer: a sequence whose
 * record was aborted counts as not sent. */
static int
scan_log(shmq_producer_t *p, uint32_t part, uint64_t from, uint64_t end,
    struct idem_part *ip, bool *found, bool *skipped)
{
	bool first = true;
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.reset = SHMQ_RESET_EARLIEST;
	int rc = shmq_consumer_open(p->q, p->topic, &o, &c);
	if (rc == 0) {
		rc = shmq_assign(c, &part, 1);
	}
	if (rc == 0) {
		rc = shmq_seek(c, part, from);
	}
	while (rc == 0) {
		shmq_record_t rec;
		rc = shmq_peek(c, &rec, 0);
		if (rc == -EAGAIN) {
			rc =
			    0; /* the end: everything below `end` is settled */
			break;
		}
		if (rc == SHMQ_ELAPPED) {
			*skipped = true;
			rc = 0; /* overwritten meanwhile: gone from the log */
			continue;
		}
		if (rc != 0) {
			break;
		}
		bool ours =
		    rec.offset < end && rec.producer_id == p->idem->pid;
		uint64_t off = rec.offset;
		uint32_t seq = rec.sequence;
		if (first) {
			/* Not at `from`: what was there left the log. */
			*skipped = *skipped || off != from;
			first = false;
		}
		if (shmq_release(c, &rec) == 0 && ours) {
			win_push(ip, off, UINT64_MAX, seq);
			ip->next_seq = (uint64_t)seq + 1;
			*found = true;
		}
		if (off + 1 >= end) {
			break;
		}
	}
	if (first) {
		*skipped = true;
	}
	shmq_consumer_close(c);
	return rc;
}

static int
ensure_parts(struct idem *id, uint32_t n)
{
	if (n <= id->nparts) {
		return 0;
	}
	struct idem_part **v = realloc(id->parts, n * sizeof *v);
	if (v == NULL) {
		return -ENOMEM;
	}
	memset(v + id->nparts, 0, (n - id->nparts) * sizeof *v);
	id->parts = v;
	id->nparts = n;
	return 0;
}

/* The file's hints for partition `part`: where to start reading (the
 * oldest valid recent entry below `end`, else the identity's first
 * offset there) and the highest sequence they name. */
static uint64_t
pst_hint(struct idem *id, uint32_t part, uint64_t end, int64_t *hint_seq)
{
	uint64_t start = PSTATE_NONE;
	*hint_seq = -1;
	if (part >= id->st_parts) {
		return start;
	}
	struct pst_part *pp = &id->st->ps_parts[part];
	uint64_t n = atomic_load_explicit(&pp->pp_count, memory_order_acquire);
	for (uint64_t k = 0; k < n && k < PSTATE_WINDOW; k++) {
		struct pst_ent *e = &pp->pp_win[k];
		uint64_t chk =
		    atomic_load_explicit(&e->pe_check, memory_order_acquire);
		uint64_t off =
		    atomic_load_explicit(&e->pe_off, memory_order_relaxed);
		uint64_t seq =
		    atomic_load_explicit(&e->pe_seq, memory_order_relaxed);
		if (chk != (off ^ seq ^ PSTATE_MAGIC) || off >= end ||
		    seq > UINT32_MAX) {
			continue;
		}
		start = off < start ? off : start;
		*hint_seq =
		    (int64_t)seq > *hint_seq ? (int64_t)seq : *hint_seq;
	}
	if (start == PSTATE_NONE) {
		uint64_t sf = atomic_load(&pp->pp_scan_from);
		start = sf < end ? sf : start;
	}
	return start;
}

int
shmqi_idem_ready(shmq_producer_t *p, uint32_t part)
{
	struct idem *id = p->idem;
	if (id->fenced) {
		return SHMQ_EFENCED;
	}
	int rc = ensure_parts(id, p->nrings);
	if (rc != 0) {
		return rc;
	}
	if (id->parts[part] != NULL && id->parts[part]->ready) {
		return 0;
	}
	if (id->parts[part] == NULL &&
	    (id->parts[part] = calloc(1, sizeof *id->parts[part])) == NULL) {
		return -ENOMEM;
	}
	struct idem_part *ip = id->parts[part];
	ip->count = ip->head = 0;
	ip->next_seq = 0;
	if (!id->named) {
		ip->ready = true;
		return 0;
	}
	struct ring *r = &p->rings[part];
	if (r->fence == NULL) {
		/* A partition added after open (the topic grew). */
		if ((rc = shmqi_lock_byte_wait(id->fd, 0)) != 0) {
			return rc;
		}
		rc = pst_grow(id, p->nrings);
		shmqi_unlock_byte(id->fd, 0);
		if (rc != 0) {
			return rc;
		}
		fence_rings(p, part);
	}
	/* The barrier (see the top of this file).  An exclusive writer has
	 * no older instance that could still append. */
	if (!r->excl && (rc = shmqi_ring_lock(r)) != 0) {
		return rc;
	}
	uint64_t end = atomic_load(&r->hdr->hdr_end_off);
	bool fenced = atomic_load_explicit(r->fence, memory_order_relaxed) !=
	    r->fence_gen;
	if (!r->excl) {
		shmqi_ring_unlock(r);
	}
	if (fenced) {
		id->fenced = true;
		return SHMQ_EFENCED;
	}
	int64_t hint_seq;
	bool found = false, skipped = false;
	uint64_t from = pst_hint(id, part, end, &hint_seq);
	struct pst_part *pp = &id->st->ps_parts[part];
	uint64_t first = atomic_load(&pp->pp_scan_from);
	if (from != PSTATE_NONE && from < end &&
	    ((rc = wait_settled(p, r, end)) != 0 ||
	        (rc = scan_log(p, part, from, end, ip, &found, &skipped)) !=
	            0)) {
		return rc;
	}
	if (!found && !skipped && first < from) {
		/* The hinted records are not in the log although their
		 * offsets are (a reboot lost what was not on disk, and
		 * others wrote there since): read the identity's whole
		 * history in the partition instead. */
		rc = scan_log(p, part, first, end, ip, &found, &skipped);
		if (rc != 0) {
			return rc;
		}
	}
	if (!found && skipped && hint_seq >= 0) {
		/* Our records have left the log (retention, or overwritten
		 * on a volatile ring): go on after the last one named, so
		 * that (producer id, sequence) never names two records. */
		ip->next_seq = (uint64_t)hint_seq + 1;
	}
	if (first == PSTATE_NONE) {
		/* Before our first append here, and on disk before it: a
		 * later instance must know where to look even if no recent
		 * entry made it to the file. */
		atomic_store(&pp->pp_scan_from, end);
		if (id->persistent && fdatasync(id->fd) != 0) {
			return -errno;
		}
	}
	ip->ready = true;
	return 0;
}

size_t
shmqi_idem_fresh(
    const shmq_producer_t *p, uint32_t part, const shmq_msg_t *msgs, size_t n)
{
	const struct idem_part *ip = p->idem->parts[part];
	size_t k = 0;
	for (; k < n; k++) {
		uint64_t want = (uint64_t)ip->next_seq + k;
		if (want > UINT32_MAX ||
		    ((msgs[k].flags & SHMQ_MSG_SEQUENCE) &&
		        msgs[k].sequence != want)) {
			break;
		}
	}
	return k;
}

int
shmqi_idem_repeat(
    shmq_producer_t *p, uint32_t part, shmq_msg_t *m, uint64_t *pos)
{
	const struct idem_part *ip = p->idem->parts[part];
	if (!(m->flags & SHMQ_MSG_SEQUENCE) || m->sequence >= ip->next_seq) {
		return SHMQ_ESEQUENCE; /* a gap (or sequences ran out) */
	}
	for (uint32_t k = 0; k < ip->count; k++) {
		const struct idem_ent *e =
		    &ip->win[(ip->head + IDEM_WINDOW - 1 - k) % IDEM_WINDOW];
		if (e->seq != m->sequence) {
			continue;
		}
		m->partition = (int32_t)part;
		m->offset = e->off;
		m->flags |= SHMQ_MSG_DUPLICATE;
		struct ring *r = &p->rings[part];
		int lrc = 1;
		if (e->pos != UINT64_MAX &&
		    e->pos >= atomic_load(&r->hdr->hdr_start_pos) &&
		    shmqi_rec_at(r, e->pos)->rec_offset == e->off) {
			*pos = e->pos; /* ours: maybe not yet visible */
			lrc = 0;
		} else {
			lrc = shmqi_ring_locate(r, e->off, pos);
		}
		if (lrc != 0) {
			/* Left the ring: a persistent ring reuses only what
			 * is on disk; a volatile one has no ack beyond
			 * LEADER, which it had. */
			*pos = UINT64_MAX;
		}
		return 0;
	}
	return SHMQ_EDUPLICATE;
}

void
shmqi_idem_stamp(shmq_producer_t *p, uint32_t part, struct rec_hdr *rh,
    size_t i, shmq_msg_t *m)
{
	struct idem *id = p->idem;
	uint32_t seq = (uint32_t)(id->parts[part]->next_seq + i);
	rh->rec_producer_id = id->pid;
	rh->rec_producer_epoch = (uint16_t)id->gen;
	rh->rec_sequence = seq;
	m->sequence = seq;
	m->flags &= ~SHMQ_MSG_DUPLICATE;
}

void
shmqi_idem_appended(
    shmq_producer_t *p, uint32_t part, uint64_t first, size_t done)
{
	struct idem *id = p->idem;
	struct idem_part *ip = id->parts[part];
	if (done == 0) {
		return;
	}
	for (size_t i = 0; i < done; i++) {
		win_push(ip, first + i, p->items[i].pos,
		    (uint32_t)(ip->next_seq + i));
	}
	ip->next_seq += done;
	/* The hint's offset is where a resume starts reading: the oldest
	 * record of the window, so that the resumed window is as full. */
	uint64_t from =
	    ip->win[(ip->head + IDEM_WINDOW - ip->count) % IDEM_WINDOW].off;
	pst_note(id, part, from, (uint32_t)(ip->next_seq - 1));
}

void
shmqi_idem_pin_begin(shmq_producer_t *p)
{
	p->idem->pin_round++;
}

int
shmqi_idem_pin(shmq_producer_t *p, uint32_t part, shmq_msg_t *m, bool *pinned)
{
	int rc = shmqi_idem_ready(p, part);
	if (rc != 0) {
		return rc;
	}
	struct idem *id = p->idem;
	struct idem_part *ip = id->parts[part];
	if (ip->pin_round != id->pin_round) {
		ip->pin_round = id->pin_round;
		ip->pin_next = ip->next_seq;
	}
	*pinned = !(m->flags & SHMQ_MSG_SEQUENCE);
	if (*pinned) {
		if (ip->pin_next > UINT32_MAX) {
			return SHMQ_ESEQUENCE; /* sequences ran out */
		}
		m->sequence = (uint32_t)ip->pin_next++;
		m->flags |= SHMQ_MSG_SEQUENCE;
	} else if (m->sequence == ip->pin_next) {
		ip->pin_next++; /* an explicit fresh one takes its place */
	}
	return 0;
}

int
shmq_producer_identity(
    shmq_producer_t *p, uint64_t *producer_id, uint16_t *epoch)
{
	if (p == NULL || p->idem == NULL) {
		return -EINVAL;
	}
	if (producer_id != NULL) {
		*producer_id = p->idem->pid;
	}
	if (epoch != NULL) {
		*epoch = (uint16_t)p->idem->gen;
	}
	return 0;
}

int
shmq_producer_next_sequence(
    shmq_producer_t *p, uint32_t partition, uint32_t *sequence)
{
	if (p == NULL || p->idem == NULL || sequence == NULL ||
	    partition >= p->nrings) {
		return -EINVAL;
	}
	int rc = shmqi_idem_ready(p, partition);
	if (rc == 0) {
		uint64_t n = p->idem->parts[partition]->next_seq;
		*sequence = (uint32_t)n;
		rc = n > UINT32_MAX ? -ERANGE : 0;
	}
	return rc;
}
