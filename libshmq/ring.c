/*
 * ring.c — one partition's shared-memory ring and its protocol.
 *
 * Positions are monotonically increasing 64-bit byte counts; position p
 * lives at data[p & mask].  Records are 8-byte aligned and never wrap: a
 * record that would cross the end of the data area is preceded by a PAD
 * record filling the rest.  Offsets (0, 1, 2, ...) are handed out in
 * position order.
 *
 * Reserve (writers, under hdr_lock or as the one exclusive writer):
 *   1. plan the positions of the batch (with pads) ending at W;
 *   2. check space: W - capacity may not pass committed_pos (never
 *      overwrite an incomplete record) nor, on `block` topics, the
 *      committed position of any group that has a live member;
 *   3. move start (oldest record) past W - capacity;
 *   4. publish wrap_pos = W, then a release fence: any reader that
 *      sees one of the bytes written next also sees wrap_pos, so its lap
 *      check (below) notices the overwrite;
 *   5. write each record header with the commit word rec_len = 0;
 *   6. publish end_pos = W (release: walkers see complete headers), then
 *      end_off.
 * Commit (any writer, no lock): fill the CRC, then CAS rec_len 0 → len.
 *   The CAS decides between the owner's commit and a reclaimer's abort
 *   (REC_ABORTED): exactly one wins, so a stalled producer that wakes up
 *   after its reservation was reclaimed cannot publish into it.
 * Advance: walk from committed_pos over records whose commit word is set
 *   and CAS committed_pos forward.  Every committer tries, so the
 *   watermark never waits for a particular process.  The commit CAS and
 *   the walk's loads are seq_cst: of two producers committing adjacent
 *   records at once, at least one sees the other's commit and advances
 *   over both (a store-buffer handshake; acquire/release is not enough).
 * Read (consumers): records below committed_pos are complete.  After
 *   copying, a reader issues an acquire fence and loads wrap_pos: if
 *   wrap_pos > p + capacity the record may have been overwritten (only
 *   possible on `drop` topics or for unregistered readers) and the copy
 *   is discarded — the lap check.
 * Reclaim: a reservation whose owner's client slot is dead (OFD lock
 *   gone, or the slot's generation moved on) — or that has stalled past
 *   stall_ms — is aborted by whoever waits on it, via the same CAS.
 * Repair: if a writer dies inside the critical section, the robust mutex
 *   hands the next locker EOWNERDEAD; it re-derives end_off/start_off
 *   by walking the headers from start_pos to end_pos, which are always
 *   written before the words that publish them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define RING_STALE 1 /* internal: file exists but belongs elsewhere */
#define VERSION_WAIT_SPINS 100000
#define LOCK_SPINS 200u /* trylocks before sleeping (~10-30 us) */
/* Retiring fewer bytes than this walks every header: an index stride
 * (64 records) is unlikely to fit, and looking costs a load. */
#define RETIRE_SKIP_MIN 1024u
#define CACHE_LINE 64u /* the data area is page-aligned */

static inline void
lock_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static uint32_t
index_slots_for(uint64_t cap)
{
	/* At most cap / 56 records fit; one entry per 64 offsets; twice
	 * that so an entry outlives the records it points at. */
	uint64_t need = cap /
	        ((uint64_t)sizeof(struct rec_hdr) << RING_INDEX_STRIDE_SHIFT) +
	    2;
	uint64_t n = 16;
	while (n < need * 2) {
		n <<= 1;
	}
	return (uint32_t)n;
}

static void
ring_geometry(
    uint64_t cap, uint64_t *index_off, uint32_t *slots, uint64_t *data_off)
{
	*slots = index_slots_for(cap);
	*index_off = RING_HDR_SIZE;
	uint64_t end = *index_off + (uint64_t)*slots * sizeof(uint64_t);
	*data_off = (end + RING_PAGE - 1) & ~(uint64_t)(RING_PAGE - 1);
}

static uint32_t
max_record_for(uint64_t cap)
{
	uint64_t m = cap / SHMQ_RECORD_FRACTION;
	return m > REC_LEN_MASK ? REC_LEN_MASK : (uint32_t)m;
}

static int
ring_create(const shmq_t *q, const char *topic, const struct topic_meta *m,
    uint32_t part, const char *path)
{
	char tmp[SHMQ_PATH_MAX];
	uint64_t index_off, data_off;
	uint32_t slots;
	void *map = NULL;
	int fd = -1, rc;

	ring_geometry(m->ring_size, &index_off, &slots, &data_off);
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof tmp) {
		return -ENAMETOOLONG;
	}
	unlink(tmp);
	rc = shmqi_file_create(tmp, q->mode, data_off + m->ring_size, &fd);
	if (rc == 0) {
		rc = shmqi_map(fd, RING_HDR_SIZE, &map);
	}
	if (rc != 0) {
		goto out;
	}
	struct ring_hdr *h = map;
	h->hdr_magic = RING_MAGIC;
	h->hdr_layout = LAYOUT_WORD;
	h->hdr_capacity = m->ring_size;
	h->hdr_data_off = data_off;
	h->hdr_index_off = index_off;
	h->hdr_index_slots = slots;
	h->hdr_partition = part;
	h->hdr_instance_id = q->instance_id;
	h->hdr_topic_id = m->id;
	h->hdr_overflow = (uint32_t)m->overflow;
	h->hdr_max_record = max_record_for(m->ring_size);
	h->hdr_creator_pid = (uint32_t)getpid();
	atomic_init(&h->hdr_partitions, m->partitions);
	h->hdr_created_ns = shmqi_now_ns();
	memcpy(h->hdr_boot_id, q->boot_id, sizeof h->hdr_boot_id);
	if ((rc = shmqi_mutex_init_shared(&h->hdr_lock)) != 0) {
		goto out;
	}
	if (m->durability == SHMQ_DURABILITY_PERSISTENT) {
		/* Continue the log where the disk ends (after a reboot
		 * wiped tmpfs), whoever builds the ring first. */
		uint64_t base = 0;
		if ((rc = shmqi_seg_end_offset(q, topic, part, &base)) != 0) {
			goto out;
		}
		atomic_store(&h->hdr_start_off, base);
		atomic_store(&h->hdr_end_off, base);
		atomic_store(&h->hdr_durable_off, base);
		atomic_store(&h->hdr_flags, RING_F_PERSISTENT);
	}
	/* Index entries start at 0, a valid position: readers check the
	 * record there carries the offset they look for before using it. */
	/* The version word goes last, with release: an opener that sees it
	 * sees the whole header (pairs with the acquire in ring_map). */
	atomic_store_explicit(
	    &h->hdr_version, LAYOUT_VERSION, memory_order_release);
	/* The name appears only now, complete: a creator that crashed
	 * earlier leaves a temp file, never a half-made ring. */
	if (link(tmp, path) != 0) {
		rc = -errno;
	}
out:
	shmqi_unmap(map, RING_HDR_SIZE);
	if (fd >= 0) {
		close(fd);
	}
	unlink(tmp);
	return rc;
}

/* Map and validate an existing ring file.  Everything in it is
 * untrusted: copy the identity once, then check it. */
static int
ring_map(const shmq_t *q, const struct topic_meta *m, uint32_t part,
    const char *path, struct ring *r)
{
	uint64_t size, index_off, data_off;
	uint32_t slots, version = 0;
	void *map = NULL;
	int fd, rc;

	if ((rc = shmqi_file_open(path, q->mode, &fd, &size)) != 0) {
		return rc;
	}
	if (size < RING_HDR_SIZE) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	if ((rc = shmqi_map(fd, RING_HDR_SIZE, &map)) != 0) {
		goto fail;
	}
	struct ring_hdr *h = map;
	/* Acquire pairs with the creator's release of the version word. */
	for (int i = 0; i < VERSION_WAIT_SPINS && version == 0; i++) {
		version = atomic_load_explicit(
		    &h->hdr_version, memory_order_acquire);
	}
	struct ring_hdr id;
	memcpy(&id, h, offsetof(struct ring_hdr, hdr_flags));
	shmqi_unmap(map, RING_HDR_SIZE);
	map = NULL;

	if (id.hdr_magic != RING_MAGIC) {
		rc = __builtin_bswap64(id.hdr_magic) == RING_MAGIC
		    ? SHMQ_EVERSION
		    : SHMQ_ECORRUPT;
		goto fail;
	}
	if (version == 0) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	if ((version >> 16) != LAYOUT_MAJOR || id.hdr_layout != LAYOUT_WORD) {
		rc = SHMQ_EVERSION;
		goto fail;
	}
	uint64_t cap = id.hdr_capacity;
	if (cap < SHMQ_RING_SIZE_MIN || cap > SHMQ_RING_SIZE_MAX ||
	    (cap & (cap - 1)) != 0) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	ring_geometry(cap, &index_off, &slots, &data_off);
	if (id.hdr_index_off != index_off || id.hdr_index_slots != slots ||
	    id.hdr_data_off != data_off || size < data_off + cap ||
	    id.hdr_partition != part) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	/* Another instance's, a deleted topic's, or a previous boot's
	 * ring (whose pids and locks mean nothing now): rebuild. */
	if (id.hdr_instance_id != q->instance_id || id.hdr_topic_id != m->id ||
	    cap != m->ring_size ||
	    memcmp(id.hdr_boot_id, q->boot_id, sizeof id.hdr_boot_id) != 0) {
		rc = RING_STALE;
		goto fail;
	}
	size_t len = (size_t)(data_off + cap);
	if ((rc = shmqi_map(fd, len, &map)) != 0) {
		goto fail;
	}
	r->fd = fd;
	r->hdr = map;
	r->map_len = len;
	r->index = (uint64_t *)((uint8_t *)map + index_off);
	r->data = (uint8_t *)map + data_off;
	r->cap = cap;
	r->mask = cap - 1;
	r->index_mask = slots - 1;
	r->max_record = max_record_for(cap);
	return 0;
fail:
	close(fd);
	return rc;
}

/* The ring announces fewer partitions than the metadata the caller read:
 * the admin that grew the topic stopped between its rename and
 * announce_ring (killed, or it could not open this ring).  The caller's
 * metadata came from the renamed file (ring_map checked the topic id),
 * so the count is made: finish the announcement, or producers and
 * members that were open would keep the old count for good while every
 * handle opened since uses the new one.  Release, as in announce_ring:
 * pairs with the acquire loads in shmqi_producer_grow and group_grown,
 * which then read the grown metadata. */
static void
ring_note_partitions(struct ring *r, const struct topic_meta *m)
{
	uint32_t have = atomic_load_explicit(
	    &r->hdr->hdr_partitions, memory_order_relaxed);
	while (have < m->partitions &&
	    !atomic_compare_exchange_weak_explicit(&r->hdr->hdr_partitions,
	        &have, m->partitions, memory_order_release,
	        memory_order_relaxed)) {
	}
}

int
shmqi_ring_open(const shmq_t *q, const char *topic, const struct topic_meta *m,
    uint32_t part, struct ring *r)
{
	char path[SHMQ_PATH_MAX];
	int rc;

	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->slot = UINT32_MAX;
	r->reclaim_ms = q->reclaim_ms;
	r->stall_ms = q->stall_ms;
	if ((rc = shmqi_ring_path(q, topic, part, path, sizeof path)) != 0) {
		return rc;
	}
	rc = ring_map(q, m, part, path, r);
	if (rc != -ENOENT && rc != RING_STALE) {
		if (rc == 0) {
			ring_note_partitions(r, m);
		}
		return rc;
	}
	/* Missing (first use, or a reboot wiped tmpfs) or stale: build it
	 * under the instance lock so that exactly one process does. */
	int lk = shmqi_instance_lock(q);
	if (lk < 0) {
		return lk;
	}
	rc = ring_map(q, m, part, path, r);
	if (rc == RING_STALE) {
		unlink(path);
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		struct topic_meta now;
		rc = shmqi_topic_load(q, topic, &now);
		if (rc == 0 && now.id != m->id) {
			rc = SHMQ_EDELETED;
		}
		if (rc == 0) {
			/* From the metadata read under the lock, not the
			 * caller's copy: a topic grown since the caller read
			 * it announces its count in every ring made after. */
			rc = ring_create(q, topic, &now, part, path);
		}
		if (rc == 0) {
			rc = ring_map(q, m, part, path, r);
		}
	}
	shmqi_instance_unlock(lk);
	if (rc == 0) {
		ring_note_partitions(r, m);
	}
	return rc == RING_STALE ? SHMQ_ECORRUPT : rc;
}

void
shmqi_ring_close(struct ring *r)
{
	if (r == NULL) {
		return;
	}
	shmqi_unmap(r->hdr, r->map_len);
	if (r->fd >= 0) {
		close(r->fd); /* drops every OFD lock this handle held */
	}
	r->hdr = NULL;
	r->fd = -1;
}

int
shmqi_ring_claim_client(struct ring *r, uint32_t kind)
{
	for (uint32_t s = 0; s < RING_CLIENTS; s++) {
		int rc = shmqi_lock_byte(r->fd, LOCK_CLIENT_BASE + s, true);
		if (rc == -EAGAIN) {
			continue;
		}
		if (rc != 0) {
			return rc;
		}
		struct ring_client *c = &r->hdr->hdr_clients[s];
		/* Only the lock holder bumps the generation, so records
		 * stamped by an earlier holder of this slot no longer
		 * match and are seen as abandoned. */
		uint32_t gen =
		    (atomic_load(&c->cl_gen) + 1) & REC_OWNER_GEN_MASK;
		c->cl_pid = (uint32_t)getpid();
		c->cl_kind = kind;
		atomic_store(&c->cl_gen, gen);
		r->slot = s;
		r->owner = s << 24 | gen;
		return 0;
	}
	return -EMFILE;
}

int
shmqi_ring_check(const struct ring *r)
{
	uint32_t f =
	    atomic_load_explicit(&r->hdr->hdr_flags, memory_order_acquire);
	if (f & RING_F_DELETED) {
		return SHMQ_EDELETED;
	}
	if (f & RING_F_FAILED) {
		return SHMQ_EFAILED;
	}
	return 0;
}

static int
ring_fail(struct ring *r)
{
	atomic_fetch_or(&r->hdr->hdr_flags, RING_F_FAILED);
	return SHMQ_ECORRUPT;
}

/* Positions read from the header are untrusted: 8-byte aligned, in
 * order, and never more than a ring apart. */
static bool
positions_ok(const struct ring *r, uint64_t sp, uint64_t cp, uint64_t ep)
{
	return ((sp | cp | ep) & (REC_ALIGN - 1)) == 0 && sp <= cp &&
	    cp <= ep && ep - sp <= r->cap;
}

/* Extent of the record at pos, from its (untrusted) header; 0 if the
 * header is impossible.  The data area ends the mapping, so a record
 * (or a full header) that would run past its end is impossible too: a
 * reader must never touch a byte beyond it. */
static uint64_t
rec_extent(const struct ring *r, uint64_t pos, uint32_t len)
{
	const struct rec_hdr *h = shmqi_rec_at(r, pos);
	uint64_t room = r->cap - (pos & r->mask);
	uint64_t ext;
	if (h->rec_type == REC_PAD) {
		ext = len; /* a PAD may be 8 bytes: only len and type */
	} else if (room < sizeof *h) {
		return 0;
	} else if (len != 0) {
		ext = shmqi_align8(len & REC_LEN_MASK);
	} else {
		ext = shmqi_align8(
		    (uint64_t)sizeof *h + h->rec_key_len + h->rec_value_len);
	}
	if (ext < REC_ALIGN || ext > room || (ext & (REC_ALIGN - 1)) != 0) {
		return 0;
	}
	return ext;
}

int
shmqi_ring_lock(struct ring *r)
{
	/* The critical section lasts tens of nanoseconds: spin on trylock
	 * a little before a contended lock puts us to sleep in the kernel
	 * (robust mutexes cannot be glibc's adaptive kind). */
	int rc = EBUSY;
	for (unsigned i = 0; i < LOCK_SPINS && rc == EBUSY; i++) {
		rc = pthread_mutex_trylock(&r->hdr->hdr_lock);
		if (rc == EBUSY) {
			lock_relax();
		}
	}
	if (rc == EBUSY) {
		rc = pthread_mutex_lock(&r->hdr->hdr_lock);
	}
	if (rc == EOWNERDEAD) {
		/* A writer died inside the critical section. */
		int rrc = shmqi_ring_repair(r);
		pthread_mutex_consistent(&r->hdr->hdr_lock);
		if (rrc != 0) {
			pthread_mutex_unlock(&r->hdr->hdr_lock);
			return rrc;
		}
		return 0;
	}
	if (rc == ENOTRECOVERABLE) {
		return ring_fail(r);
	}
	return -rc;
}

void
shmqi_ring_unlock(struct ring *r)
{
	pthread_mutex_unlock(&r->hdr->hdr_lock);
}

int
shmqi_ring_repair(struct ring *r)
{
	struct ring_hdr *h = r->hdr;
	uint64_t sp = atomic_load(&h->hdr_start_pos);
	uint64_t ep = atomic_load(&h->hdr_end_pos);
	uint64_t cp = atomic_load(&h->hdr_committed_pos);
	bool any = false;
	uint64_t first = 0, last = 0;

	if (!positions_ok(r, sp, cp, ep)) {
		return ring_fail(r);
	}
	for (uint64_t p = sp; p < ep;) {
		struct rec_hdr *rh = shmqi_rec_at(r, p);
		uint64_t ext = rec_extent(r, p, atomic_load(&rh->rec_len));
		if (ext == 0 || p + ext > ep) {
			return ring_fail(r);
		}
		if (rh->rec_type != REC_PAD) {
			if (any && rh->rec_offset != last + 1) {
				return ring_fail(r);
			}
			first = any ? first : rh->rec_offset;
			last = rh->rec_offset;
			any = true;
		}
		p += ext;
	}
	if (any) {
		atomic_store(&h->hdr_start_off, first);
		atomic_store(&h->hdr_end_off, last + 1);
	}
	if (atomic_load(&h->hdr_wrap_pos) < ep) {
		atomic_store(&h->hdr_wrap_pos, ep);
	}
	return 0;
}

/* Lowest committed position of a group with a live member that lies
 * below `need`; UINT64_MAX if none.  Liveness costs a syscall, so it is
 * asked only of gates that would otherwise block. */
static uint64_t
gate_limit(struct ring *r, uint64_t need)
{
	uint64_t lim = UINT64_MAX;
	for (uint32_t g = 0; g < RING_GATES; g++) {
		struct ring_gate *gt = &r->hdr->hdr_gates[g];
		if (atomic_load_explicit(
		        &gt->gt_owner, memory_order_relaxed) == 0) {
			continue;
		}
		uint64_t pos =
		    atomic_load_explicit(&gt->gt_pos, memory_order_acquire);
		if (pos >= need || pos >= lim) {
			continue;
		}
		if (shmqi_lock_held(r->fd, LOCK_GATE_BASE + g)) {
			lim = pos;
		}
	}
	return lim;
}

uint64_t
shmqi_ring_limit(struct ring *r)
{
	return atomic_load(&r->hdr->hdr_committed_pos);
}

static int
plan_batch(
    struct ring *r, uint64_t e, struct rsv_item *it, size_t n, uint64_t *w)
{
	uint64_t p = e;
	for (size_t i = 0; i < n; i++) {
		uint64_t ext = shmqi_align8((uint64_t)sizeof(struct rec_hdr) +
		    it[i].key_len + it[i].value_len);
		if (ext > r->max_record) {
			return -EMSGSIZE;
		}
		uint64_t room = r->cap - (p & r->mask);
		if (ext > room) {
			p += room;
		}
		it[i].pos = p;
		p += ext;
	}
	if (p - e > r->cap / 2) {
		return -EMSGSIZE; /* caller splits the batch */
	}
	*w = p;
	return 0;
}

/* Offset of the first record at or after sp (below e, or `end`). */
static uint64_t
offset_at(const struct ring *r, uint64_t sp, uint64_t e, uint64_t end)
{
	if (sp < e && shmqi_rec_at(r, sp)->rec_type == REC_PAD) {
		sp += atomic_load_explicit(
		    &shmqi_rec_at(r, sp)->rec_len, memory_order_relaxed);
	}
	/* A bad header here only mislabels start_off, which repair and
	 * readers re-derive; never read past the data area for it. */
	return sp < e && shmqi_hdr_fits(r, sp)
	    ? shmqi_rec_at(r, sp)->rec_offset
	    : end;
}

/* Where the walk that retires the records below `need` may start: past
 * whole strides of the sparse index, so that it loads one header per 64
 * records instead of each of them (a chain of dependent cache misses).
 * An entry is checked against the header it points to, never trusted;
 * one that fails the check ends the skipping.  Between start and need
 * every record is complete and stays put (we hold the writer's lock),
 * and offsets in [start_off, end_off) own their index slots: a slot is
 * reused only two rings of the smallest records later.  An entry for an
 * offset at or past end_off is a dead writer's (killed inside the lock
 * before it published end_pos): its header may lie inside a PAD that
 * covered it, with the right offset in it but a zero length, since it
 * was never committed (tests/unit/test_deadwriter.c). */
static uint64_t
retire_skip(struct ring *r, uint64_t sp, uint64_t need, uint64_t end_off)
{
	const uint64_t stride = 1u << RING_INDEX_STRIDE_SHIFT;
	uint64_t so =
	    atomic_load_explicit(&r->hdr->hdr_start_off, memory_order_relaxed);
	for (;;) {
		uint64_t o = (so | (stride - 1)) + 1;
		if (o >= end_off) {
			return sp;
		}
		uint64_t ip = __atomic_load_n(
		    &r->index[(o >> RING_INDEX_STRIDE_SHIFT) & r->index_mask],
		    __ATOMIC_RELAXED);
		if (ip <= sp || ip > need || !shmqi_hdr_fits(r, ip)) {
			return sp;
		}
		struct rec_hdr *rh = shmqi_rec_at(r, ip);
		/* Relaxed: below committed_pos, under the writer's lock, the
		 * length is settled; the check only rejects a dead writer's.
		 */
		if (rh->rec_type != REC_DATA || rh->rec_offset != o ||
		    atomic_load_explicit(&rh->rec_len, memory_order_relaxed) ==
		        0) {
			return sp;
		}
		sp = ip;
		so = o;
	}
}

int
shmqi_ring_reserve(
    struct ring *r, struct rsv_item *it, size_t n, uint64_t *first_off)
{
	struct ring_hdr *h = r->hdr;
	uint64_t w, bytes = 0;
	int rc = shmqi_ring_check(r);
	if (rc != 0) {
		return rc;
	}
	/* Fencing of an idempotent producer's older instance.  Relaxed: the
	 * ring lock orders it.  The newer instance stores the fence word
	 * and then takes and drops this lock (shmqi_idem_ready): a
	 * reservation whose lock came after that sees the new word; one
	 * that came before has its offset below the end the newer instance
	 * reads there, and is found by its scan of the log. */
	if (r->fence != NULL &&
	    atomic_load_explicit(r->fence, memory_order_relaxed) !=
	        r->fence_gen) {
		return SHMQ_EFENCED;
	}
	/* We are the only writer of these words: relaxed is enough. */
	uint64_t e =
	    atomic_load_explicit(&h->hdr_end_pos, memory_order_relaxed);
	uint64_t off =
	    atomic_load_explicit(&h->hdr_end_off, memory_order_relaxed);
	if (!positions_ok(r,
	        atomic_load_explicit(&h->hdr_start_pos, memory_order_relaxed),
	        atomic_load(&h->hdr_committed_pos), e)) {
		return ring_fail(r);
	}
	if ((rc = plan_batch(r, e, it, n, &w)) != 0) {
		return rc;
	}
	/* The clear-ahead slot must fit before the end of the data area;
	 * where it does not, the next record is a PAD anyway. */
	uint64_t clear = (w & r->mask) + REC_PEEK <= r->cap ? REC_PEEK : 0;
	if (w + clear > r->cap) {
		uint64_t need = w + clear - r->cap;
		/* First on a persistent ring: durable_pos never passes
		 * committed_pos, so this also covers incomplete records,
		 * and it tells the producer that only a persister can
		 * make room (none may be running). */
		if ((atomic_load_explicit(
		         &h->hdr_flags, memory_order_relaxed) &
		        RING_F_PERSISTENT) &&
		    need > atomic_load(&h->hdr_durable_pos)) {
			return RSV_NOT_DURABLE;
		}
		if (need > atomic_load(&h->hdr_committed_pos)) {
			return -EAGAIN; /* full of incomplete records */
		}
		if (h->hdr_overflow == SHMQ_OVERFLOW_BLOCK &&
		    need > gate_limit(r, need)) {
			return -EAGAIN; /* a live group is behind */
		}
		uint64_t sp = atomic_load_explicit(
		    &h->hdr_start_pos, memory_order_relaxed);
		if (sp < need) {
			/* The walk below is a chain of dependent loads, and
			 * the headers written next go to the same bytes:
			 * fetch the lines at once, for writing.  At most 4
			 * KiB: a large retire (big records) would otherwise
			 * spend the lock's time filling lines nobody reads. */
			uint64_t pf_end = need - sp > 4096 ? sp + 4096 : need;
			for (uint64_t a = sp & ~(uint64_t)(CACHE_LINE - 1);
			     a < pf_end; a += CACHE_LINE) {
				__builtin_prefetch(r->data + (a & r->mask), 1);
			}
			if (need - sp >= RETIRE_SKIP_MIN) {
				sp = retire_skip(r, sp, need, off);
			}
			while (sp < need) {
				struct rec_hdr *rh = shmqi_rec_at(r, sp);
				uint64_t ext = rec_extent(r, sp,
				    atomic_load_explicit(
				        &rh->rec_len, memory_order_relaxed));
				if (ext == 0) {
					return ring_fail(r);
				}
				sp += ext;
			}
			/* start_off first: a repair after death here
			 * re-derives it from the headers anyway. */
			uint64_t so = offset_at(r, sp, e, off);
			atomic_store_explicit(
			    &h->hdr_start_off, so, memory_order_relaxed);
			atomic_store_explicit(
			    &h->hdr_start_pos, sp, memory_order_release);
		}
	}
	/* Never lower it: after a repair the dead writer's larger value
	 * still marks bytes it may have overwritten. */
	if (atomic_load_explicit(&h->hdr_wrap_pos, memory_order_relaxed) <
	    w + clear) {
		atomic_store_explicit(
		    &h->hdr_wrap_pos, w + clear, memory_order_relaxed);
	}
	/* Pairs with the acquire fence in readers' lap checks: a reader
	 * that sees any byte written below sees the new wrap_pos too. */
	atomic_thread_fence(memory_order_release);

	SHMQI_POINT(POINT_RESERVE_LOCKED);
	uint32_t epoch =
	    atomic_load_explicit(&h->hdr_leader_epoch, memory_order_relaxed);
	uint64_t p = e;
	for (size_t i = 0; i < n; i++) {
		if (it[i].pos != p) {
			struct rec_hdr *pad = shmqi_rec_at(r, p);
			pad->rec_type = REC_PAD;
			pad->rec_key_len = 0;
			atomic_store_explicit(&pad->rec_len,
			    (uint32_t)(it[i].pos - p), memory_order_relaxed);
		}
		struct rec_hdr *rh = shmqi_rec_at(r, it[i].pos);
		rh->rec_type = REC_DATA;
		rh->rec_key_len = (uint16_t)it[i].key_len;
		rh->rec_value_len = it[i].value_len;
		rh->rec_leader_epoch = epoch;
		/* Atomic: readers at the end of the log poll it. */
		__atomic_store_n(&rh->rec_offset, off + i, __ATOMIC_RELAXED);
		rh->rec_timestamp = 0;
		rh->rec_producer_id = 0;
		rh->rec_sequence = 0;
		rh->rec_producer_epoch = 0;
		rh->rec_attrs = 0;
		rh->rec_owner = r->owner;
		atomic_store_explicit(&rh->rec_len, 0, memory_order_relaxed);
		if (((off + i) & ((1u << RING_INDEX_STRIDE_SHIFT) - 1)) == 0) {
			__atomic_store_n(
			    &r->index[((off + i) >> RING_INDEX_STRIDE_SHIFT) &
			        r->index_mask],
			    it[i].pos, __ATOMIC_RELAXED);
		}
		bytes += it[i].key_len + it[i].value_len;
		p = it[i].pos +
		    shmqi_align8(sizeof *rh + it[i].key_len + it[i].value_len);
	}
	if (clear != 0) {
		struct rec_hdr *nx = shmqi_rec_at(r, w);
		atomic_store_explicit(&nx->rec_len, 0, memory_order_relaxed);
		nx->rec_type = 0;
		__atomic_store_n(
		    &nx->rec_offset, REC_NO_OFFSET, __ATOMIC_RELAXED);
	}
	/* Only the writer changes these: no locked read-modify-write. */
	atomic_store_explicit(&h->hdr_records_in,
	    atomic_load_explicit(&h->hdr_records_in, memory_order_relaxed) + n,
	    memory_order_relaxed);
	atomic_store_explicit(&h->hdr_bytes_in,
	    atomic_load_explicit(&h->hdr_bytes_in, memory_order_relaxed) +
	        bytes,
	    memory_order_relaxed);
	/* Release: whoever acquires end_pos sees every header below it. */
	atomic_store_explicit(&h->hdr_end_pos, w, memory_order_release);
	SHMQI_POINT(POINT_RESERVE_PUBLISHED);
	atomic_store_explicit(&h->hdr_end_off, off + n, memory_order_release);
	*first_off = off;
	return 0;
}

/* Settle our own reservation at pos: publish it, or abort it.  The
 * seq_cst CAS on the commit word decides against a reclaimer, and is
 * the full fence the committed-watermark handshake in
 * shmqi_ring_advance needs. */
static int
rec_settle(struct ring *r, uint64_t pos, bool abort)
{
	struct rec_hdr *rh = shmqi_rec_at(r, pos);
	uint32_t total =
	    (uint32_t)(sizeof *rh + rh->rec_key_len + rh->rec_value_len);
	uint32_t zero = 0;

	if (rh->rec_owner != r->owner) {
		return SHMQ_ERECLAIMED; /* reclaimed and reused since */
	}
	if (!abort) {
		rh->rec_crc = shmqi_rec_crc(rh, rh + 1);
	}
	if (!atomic_compare_exchange_strong(
	        &rh->rec_len, &zero, abort ? REC_ABORTED | total : total)) {
		return SHMQ_ERECLAIMED;
	}
	if (abort) {
		atomic_fetch_add_explicit(
		    &r->hdr->hdr_aborted, 1, memory_order_relaxed);
	}
	return 0;
}

int
shmqi_ring_commit_rec(struct ring *r, uint64_t pos)
{
	return rec_settle(r, pos, false);
}

int
shmqi_ring_abort_rec(struct ring *r, uint64_t pos)
{
	return rec_settle(r, pos, true);
}

void
shmqi_ring_wake_space(struct ring *r)
{
	struct ring_hdr *h = r->hdr;
	/* seq_cst load pairs with the waiter's seq_cst increment: either
	 * it sees our progress, or we see it waiting. */
	if (atomic_load(&h->hdr_space_waiters) > 0) {
		atomic_fetch_add(&h->hdr_space_seq, 1);
		shmqi_futex_wake(&h->hdr_space_seq);
	}
}

/* The walk of shmqi_ring_advance; [own, own_end) (may be empty) holds
 * only records the caller committed itself, which it jumps over. */
static void
advance(struct ring *r, uint64_t own, uint64_t own_end)
{
	struct ring_hdr *h = r->hdr;
	bool moved = false;
	uint64_t cp = atomic_load(&h->hdr_committed_pos);

	for (;;) {
		/* Acquire pairs with the writer's release of end_pos. */
		uint64_t ep = atomic_load_explicit(
		    &h->hdr_end_pos, memory_order_acquire);
		if (ep - cp > r->cap) {
			/* Our cp may be stale (we were preempted while the
			 * ring moved on): judge only a fresh one, loaded
			 * after ep, for which it cannot happen. */
			uint64_t fresh = atomic_load(&h->hdr_committed_pos);
			if (fresh != cp) {
				cp = fresh;
				continue;
			}
		}
		if (((cp | ep) & (REC_ALIGN - 1)) != 0 || cp > ep ||
		    ep - cp > r->cap) {
			ring_fail(r);
			return;
		}
		uint64_t p = cp;
		while (p < ep) {
			if (p == own) {
				/* Our own commit CASes made these complete
				 * (and they stay so): no need to load their
				 * words.  The handshake needs only the loads
				 * of words others commit, the ones below and
				 * above our run, which the walk still does. */
				p = own_end;
				continue;
			}
			struct rec_hdr *rh = shmqi_rec_at(r, p);
			/* seq_cst: pairs with the commit CAS (see top). */
			uint32_t len = atomic_load(&rh->rec_len);
			if (len == 0) {
				break;
			}
			uint64_t ext = rec_extent(r, p, len);
			if (ext == 0) {
				/* Our cp was stale and the ring moved on — or,
				 * if no one has advanced past p, the header
				 * between the watermarks is garbage, which no
				 * later commit will ever get past. */
				if (atomic_load(&h->hdr_committed_pos) <= p) {
					ring_fail(r);
				}
				break;
			}
			p += ext;
		}
		if (p <= cp) {
			break;
		}
		if (atomic_compare_exchange_strong(
		        &h->hdr_committed_pos, &cp, p)) {
			moved = true;
			cp = p;
		}
	}
	if (!moved) {
		return;
	}
	if (atomic_load(&h->hdr_commit_waiters) > 0) {
		atomic_fetch_add(&h->hdr_commit_seq, 1);
		shmqi_futex_wake(&h->hdr_commit_seq);
	}
	shmqi_ring_wake_space(r);
}

void
shmqi_ring_advance(struct ring *r)
{
	advance(r, UINT64_MAX, UINT64_MAX);
}

void
shmqi_ring_advance_over(struct ring *r, uint64_t own, uint64_t own_end)
{
	advance(r, own, own_end);
}

bool
shmqi_ring_reclaim(struct ring *r, int64_t stuck_since_ns)
{
	struct ring_hdr *h = r->hdr;
	uint64_t cp = atomic_load(&h->hdr_committed_pos);
	uint64_t ep =
	    atomic_load_explicit(&h->hdr_end_pos, memory_order_acquire);
	if (cp >= ep) {
		return false;
	}
	struct rec_hdr *rh = shmqi_rec_at(r, cp);
	if (atomic_load(&rh->rec_len) != 0) {
		shmqi_ring_advance(r);
		return true;
	}
	uint32_t owner = rh->rec_owner;
	uint32_t slot = owner >> 24, gen = owner & REC_OWNER_GEN_MASK;
	/* F_OFD_GETLK cannot see our own lock: our own reservation is
	 * alive by definition. */
	bool mine = owner == r->owner;
	bool dead = !mine &&
	    (slot >= RING_CLIENTS ||
	        (atomic_load(&h->hdr_clients[slot].cl_gen) &
	            REC_OWNER_GEN_MASK) != gen ||
	        !shmqi_lock_held(r->fd, LOCK_CLIENT_BASE + slot));
	bool stalled = r->stall_ms != 0 &&
	    shmqi_mono_ns() - stuck_since_ns >= (int64_t)r->stall_ms * 1000000;
	if (!dead && !stalled) {
		return false;
	}
	uint64_t total =
	    sizeof *rh + (uint64_t)rh->rec_key_len + rh->rec_value_len;
	uint32_t zero = 0;
	if (rec_extent(r, cp, 0) == 0 || total > r->max_record) {
		ring_fail(r);
		return false;
	}
	if (atomic_compare_exchange_strong(
	        &rh->rec_len, &zero, REC_ABORTED | (uint32_t)total)) {
		atomic_fetch_add(&h->hdr_aborted, 1);
	}
	shmqi_ring_advance(r);
	return true;
}

bool
shmqi_ring_blocked_by_self(struct ring *r)
{
	struct ring_hdr *h = r->hdr;
	uint64_t cp = atomic_load(&h->hdr_committed_pos);
	uint64_t ep =
	    atomic_load_explicit(&h->hdr_end_pos, memory_order_acquire);
	if (cp >= ep || !shmqi_hdr_fits(r, cp)) {
		return false;
	}
	struct rec_hdr *rh = shmqi_rec_at(r, cp);
	return atomic_load(&rh->rec_len) == 0 && rh->rec_owner == r->owner;
}

uint64_t
shmqi_ring_committed_off(struct ring *r)
{
	struct ring_hdr *h = r->hdr;
	for (int i = 0; i < 8; i++) {
		uint64_t cp = atomic_load(&h->hdr_committed_pos);
		uint64_t ep = atomic_load_explicit(
		    &h->hdr_end_pos, memory_order_acquire);
		uint64_t eo = atomic_load_explicit(
		    &h->hdr_end_off, memory_order_acquire);
		if (((cp | ep) & (REC_ALIGN - 1)) != 0) {
			break; /* damaged: readers will report it */
		}
		if (cp >= ep) {
			if (atomic_load(&h->hdr_end_pos) == ep) {
				return eo;
			}
			continue;
		}
		struct rec_hdr *rh = shmqi_rec_at(r, cp);
		uint64_t at = cp;
		if (rh->rec_type == REC_PAD) {
			uint64_t ext =
			    rec_extent(r, cp, atomic_load(&rh->rec_len));
			if (ext == 0 || cp + ext >= ep) {
				continue;
			}
			at = cp + ext;
			rh = shmqi_rec_at(r, at);
		}
		if (!shmqi_hdr_fits(r, at)) {
			continue;
		}
		uint64_t o = rh->rec_offset;
		if (atomic_load(&h->hdr_committed_pos) == cp && o <= eo) {
			return o;
		}
	}
	return atomic_load(&h->hdr_start_off);
}

/* Did the data at [pos, ...) survive until now?  The acquire fence pairs
 * with the writer's release fence after it publishes wrap_pos. */
static bool
intact(struct ring *r, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->hdr->hdr_wrap_pos,
	           memory_order_relaxed) <= pos + r->cap;
}

/* Walk from a known record start towards `off` (below committed). */
static int
walk_to(struct ring *r, uint64_t p, uint64_t cp, uint64_t off, bool known,
    uint64_t next, uint64_t *pos)
{
	while (p < cp) {
		struct rec_hdr *rh = shmqi_rec_at(r, p);
		uint64_t ext = rec_extent(r, p, atomic_load(&rh->rec_len));
		if (ext == 0) {
			return -EAGAIN;
		}
		if (rh->rec_type != REC_PAD) {
			uint64_t o = rh->rec_offset;
			if (o >= off) {
				*pos = p;
				return o == off ? LOC_FOUND : LOC_BELOW;
			}
			next = o + 1;
			known = true;
		}
		p += ext;
	}
	/* Reached the committed watermark. */
	struct ring_hdr *h = r->hdr;
	uint64_t ep =
	    atomic_load_explicit(&h->hdr_end_pos, memory_order_acquire);
	if (!known) {
		if (cp < ep && !shmqi_hdr_fits(r, cp)) {
			return -EAGAIN; /* a PAD at the end: look again */
		}
		next = cp < ep ? shmqi_rec_at(r, cp)->rec_offset
		               : atomic_load(&h->hdr_end_off);
	}
	if (off == next) {
		*pos = cp;
		return LOC_FOUND;
	}
	if (off < next) {
		return LOC_BELOW;
	}
	return off <= atomic_load(&h->hdr_end_off) ? LOC_PENDING : LOC_ABOVE;
}

int
shmqi_ring_locate(struct ring *r, uint64_t off, uint64_t *pos)
{
	struct ring_hdr *h = r->hdr;
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t sp = atomic_load_explicit(
		    &h->hdr_start_pos, memory_order_acquire);
		uint64_t so = atomic_load(&h->hdr_start_off);
		uint64_t cp = atomic_load(&h->hdr_committed_pos);
		uint64_t from = sp;
		if (!positions_ok(r, sp, cp, cp)) {
			/* Can be a moment's skew between the two loads;
			 * twice in a row with the data intact is not. */
			if (attempt > 0 && intact(r, sp)) {
				return ring_fail(r);
			}
			continue;
		}
		uint64_t ip = __atomic_load_n(
		    &r->index[(off >> RING_INDEX_STRIDE_SHIFT) &
		        r->index_mask],
		    __ATOMIC_RELAXED);
		uint64_t base =
		    off & ~(uint64_t)((1u << RING_INDEX_STRIDE_SHIFT) - 1);
		/* A zero length is a dead writer's header, which a PAD may
		 * cover (see retire_skip); the walk from `from` checks the
		 * rest.  Relaxed: only a hint, as the entry is. */
		if (ip >= sp && ip < cp && (ip & (REC_ALIGN - 1)) == 0 &&
		    (ip & r->mask) + sizeof(struct rec_hdr) <= r->cap &&
		    shmqi_rec_at(r, ip)->rec_type == REC_DATA &&
		    shmqi_rec_at(r, ip)->rec_offset == base &&
		    atomic_load_explicit(&shmqi_rec_at(r, ip)->rec_len,
		        memory_order_relaxed) != 0) {
			from = ip;
		}
		uint64_t p = 0;
		int rc = walk_to(r, from, cp, off, false, 0, &p);
		if (!intact(r, from)) {
			continue; /* overwritten under us: look again */
		}
		/* Not overwritten, yet an impossible header, or the records
		 * disagree with start_off (which is never above the offset
		 * at start_pos): corruption, not a race. */
		if (rc == -EAGAIN || (rc == LOC_BELOW && off >= so)) {
			return ring_fail(r);
		}
		if (rc == LOC_FOUND) {
			*pos = p;
		}
		return rc;
	}
	return LOC_BELOW;
}
