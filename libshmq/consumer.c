/*
 * consumer.c — consumer handles: positions per partition, the read path
 * (zero-copy peek/release and copy recv), waiting (spin, then park on the
 * partitions' commit futexes and the group's generation word at once),
 * group membership upkeep, and commits.
 *
 * A position is (next_off, next_pos).  next_pos is only trusted while
 * pos_valid; otherwise it is found again from next_off (seek, reset, a
 * new owner, a lap).  Records below the ring's committed watermark are
 * complete; each read ends with the lap check (ring.c) before anything
 * read is handed out, so a torn or overwritten record is never returned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SPIN_US_DEFAULT 50u
#define GROUP_SLICE_MS                                \
	100 /* how often a parked member looks at the \
	     * other members' liveness */
/* How often a spinning reader looks for reservations to reclaim: it
 * reads lines the producer writes, so not on every poll. */
#define RECLAIM_LOOK_NS 1000000
#define LIVENESS_POLLS 1024u
#define BACKOFF_MAX                                                        \
	64u /* pauses between polls, at most (~2-5 us) */ /* polls between \
	                                                     looks at the  \
	                                                     clock */

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

void
shmq_consumer_options_init(shmq_consumer_options_t *o)
{
	if (o == NULL) {
		return;
	}
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->reset = SHMQ_RESET_EARLIEST;
	o->idle = SHMQ_IDLE_SPIN_PARK;
	o->spin_us = SPIN_US_DEFAULT;
}

/* ---- positions --------------------------------------------------------- */

static bool lappable(
    const shmq_consumer_t *c, const struct cpart *cp, uint64_t pos);

#define NEED_RESET UINT64_MAX
#define LAPPED_NOTHING_LOST 1
#define RELAPSE_RETRY 2

/* Reading from segments ends (caught up with the ring, seek, close). */
static void
disk_close(struct cpart *cp)
{
	if (cp->disk != NULL) {
		shmqi_segread_close(cp->disk);
		free(cp->disk);
		cp->disk = NULL;
	}
}

static bool
persistent(const shmq_consumer_t *c)
{
	return c->meta.durability == SHMQ_DURABILITY_PERSISTENT;
}

/* next_off has left the ring (or never was in it): read it from the
 * segments.  0, LOC_BELOW/LOC_ABOVE (not on disk either), or an error. */
static int
disk_open(shmq_consumer_t *c, struct cpart *cp)
{
	struct segread *sr = calloc(1, sizeof *sr);
	if (sr == NULL) {
		return -ENOMEM;
	}
	int rc = shmqi_segread_open(c->q, c->topic, cp->id, cp->next_off,
	    c->rings[cp->id].max_record, sr);
	if (rc != LOC_FOUND) {
		shmqi_segread_close(sr);
		free(sr);
		return rc;
	}
	cp->disk = sr;
	return 0;
}

static void
part_start(shmq_consumer_t *c, struct cpart *cp, uint64_t off)
{
	disk_close(cp);
	cp->active = true;
	cp->pos_valid = false;
	cp->next_off = off;
	cp->returned_any = false;
	cp->stuck_pos = UINT64_MAX;
	cp->from_commit = false;
	(void)c;
}

static void
set_gate(shmq_consumer_t *c, uint32_t i, uint64_t pos)
{
	if (!c->in_group || c->meta.overflow != SHMQ_OVERFLOW_BLOCK) {
		return;
	}
	struct ring *r = &c->rings[i];
	uint32_t gi = c->group.hdr->g_parts[i].gp_gate;
	if (gi >= RING_GATES) {
		return;
	}
	/* seq_cst store, then the seq_cst load of space_waiters in
	 * wake_space: a producer that went to sleep on the old gate is
	 * either seen or sees the new one (its retry pairs with this). */
	atomic_store(&r->hdr->hdr_gates[gi].gt_pos, pos);
	shmqi_ring_wake_space(r);
}

/* The oldest offset still readable: the ring's oldest record, or on a
 * persistent topic the first one on disk if that is older. */
static uint64_t
log_start(shmq_consumer_t *c, uint32_t part)
{
	uint64_t off = atomic_load(&c->rings[part].hdr->hdr_start_off);
	uint64_t first;
	if (persistent(c) &&
	    shmqi_seg_first_offset(c->q, c->topic, part, &first) == 0 &&
	    first < off) {
		off = first; /* the log starts on disk */
	}
	return off;
}

/* Apply the reset policy: where to read when there is no valid offset. */
static int
part_reset(shmq_consumer_t *c, struct cpart *cp)
{
	struct ring *r = &c->rings[cp->id];
	switch (c->reset) {
	case SHMQ_RESET_EARLIEST:
		cp->next_off = log_start(c, cp->id);
		return 0;
	case SHMQ_RESET_LATEST:
		cp->next_off = shmqi_ring_committed_off(r);
		return 0;
	default:
		return SHMQ_EOUTOFRANGE;
	}
}

/* Find next_pos for next_off.  0 = valid now, -EAGAIN = not yet. */
static int
part_resolve(shmq_consumer_t *c, struct cpart *cp)
{
	struct ring *r = &c->rings[cp->id];
	bool from_reset = false;
	int rc;

	for (int attempt = 0; attempt < 8; attempt++) {
		if (cp->next_off == NEED_RESET) {
			if ((rc = part_reset(c, cp)) != 0) {
				cp->next_off = NEED_RESET;
				return rc;
			}
			from_reset = true;
		}
		uint64_t pos;
		rc = shmqi_ring_locate(r, cp->next_off, &pos);
		if (rc == LOC_FOUND) {
			cp->next_pos = pos;
			cp->pos_valid = true;
			cp->seen_committed = 0;
			if (from_reset) {
				/* This group will never read below here. */
				set_gate(c, cp->id, pos);
			}
			return 0;
		}
		if (rc == LOC_PENDING) {
			return -EAGAIN;
		}
		if (rc < 0) {
			return rc; /* the ring is corrupt */
		}
		if (rc == LOC_BELOW && persistent(c)) {
			/* Out of the ring, maybe not out of the log. */
			int drc = disk_open(c, cp);
			if (drc == 0 || drc < 0) {
				return drc;
			}
		}
		/* Below the log start or beyond its end: out of range. */
		cp->next_off = NEED_RESET;
	}
	return -EAGAIN;
}

/* The ring overran this reader: say how much was lost, move to the
 * oldest record. */
static int
part_lapped(shmq_consumer_t *c, struct cpart *cp, shmq_record_t *rec)
{
	struct ring *r = &c->rings[cp->id];
	uint64_t start = atomic_load(&r->hdr->hdr_start_off);
	uint64_t first;
	if (persistent(c) &&
	    shmqi_seg_first_offset(c->q, c->topic, cp->id, &first) == 0 &&
	    first < start) {
		start = first; /* the log starts on disk */
	}
	uint64_t lost = start > cp->next_off ? start - cp->next_off : 0;
	if (lost == 0) {
		/* Only a PAD (or the clear-ahead slot) was overwritten, or
		 * the topic is persistent and the offset is still on disk
		 * (a persistent ring reuses space only below durable; only
		 * retention loses records).  No record is lost: find the
		 * position again, quietly (on disk, if it is there now). */
		cp->pos_valid = false;
		return LAPPED_NOTHING_LOST;
	}
	memset(rec, 0, sizeof *rec);
	rec->partition = cp->id;
	rec->offset = cp->next_off;
	rec->lost = lost;
	cp->next_off = start;
	cp->pos_valid = false;
	if (c->in_group) {
		atomic_fetch_add(&c->group.hdr->g_parts[cp->id].gp_lost, lost);
	}
	return SHMQ_ELAPPED;
}

/* Can the ring overwrite the record at pos before we are done with it?
 * Not on a `block` topic read by a group member at or above its gate:
 * the gate (held live by our own lock) stops producers there.  Below it
 * — after a seek back, or a commit ahead of what was read — it can.
 * The ring can overwrite the positions below the limit returned
 * (UINT64_MAX: all of them). */
static uint64_t
lap_limit(const shmq_consumer_t *c, const struct cpart *cp)
{
	if (!c->in_group || c->meta.overflow != SHMQ_OVERFLOW_BLOCK) {
		return UINT64_MAX; /* positions are below it */
	}
	uint32_t gi = c->group.hdr->g_parts[cp->id].gp_gate;
	if (gi >= RING_GATES) {
		return UINT64_MAX;
	}
	/* Acquire: the gate is written by this member's own commits. */
	return atomic_load_explicit(
	    &c->rings[cp->id].hdr->hdr_gates[gi].gt_pos, memory_order_acquire);
}

/* lappable(pos) is pos < lap_limit(): a caller that asks of several
 * positions in one go loads the gate once. */
static bool
lappable(const shmq_consumer_t *c, const struct cpart *cp, uint64_t pos)
{
	return pos < lap_limit(c, cp);
}

static bool
intact(const struct ring *r, uint64_t pos)
{
	/* Pairs with the writer's release fence after wrap_pos. */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->hdr->hdr_wrap_pos,
	           memory_order_relaxed) <= pos + r->cap;
}

/* After a lap: report the loss, or (nothing lost) carry on reading from
 * the position found again.  Returns what part_peek should return. */
static int
relapse(shmq_consumer_t *c, struct cpart *cp, shmq_record_t *rec)
{
	int rc = part_lapped(c, cp, rec);
	if (rc != LAPPED_NOTHING_LOST) {
		return rc;
	}
	rc = part_resolve(c, cp);
	return rc == -EAGAIN ? 0 : rc < 0 ? rc : RELAPSE_RETRY;
}

/*
 * At the end of the log, look at the record slot itself rather than the
 * committed watermark, which the producer rewrites on every commit:
 * polling it would pull that line across cores for every record.
 * 1: a complete record is here; 0: nothing yet; -1: ask the watermark.
 * Only for readers the ring cannot lap (`lap` false: see lappable), for
 * which the slot holds either a reserved record or the clear-ahead mark
 * — never older bytes.
 */
static int
peek_commit_word(const struct ring *r, const struct cpart *cp, bool lap)
{
	if (lap || (cp->next_pos & r->mask) + REC_PEEK > r->cap) {
		return -1;
	}
	struct rec_hdr *rh = shmqi_rec_at(r, cp->next_pos);
	uint64_t off = __atomic_load_n(&rh->rec_offset, __ATOMIC_ACQUIRE);
	if (rh->rec_type == REC_PAD) {
		return -1;
	}
	if (off == REC_NO_OFFSET) {
		return 0;
	}
	if (off != cp->next_off) {
		return -1;
	}
	/* Acquire pairs with the commit CAS: the payload is complete. */
	return atomic_load_explicit(&rh->rec_len, memory_order_acquire) != 0
	    ? 1
	    : 0;
}

/*
 * Look at the next record of one partition without consuming it.
 * Returns 1 and fills rec/ext, 0 if there is none yet, or an error.
 */
static int part_peek_once(shmq_consumer_t *c, struct cpart *cp,
    shmq_record_t *rec, uint64_t *ext_out);

static int
part_peek(shmq_consumer_t *c, struct cpart *cp, shmq_record_t *rec,
    uint64_t *ext_out)
{
	int rc;
	for (int i = 0; i < 8; i++) {
		if (cp->disk != NULL) {
			rc = shmqi_segread_next(cp->disk, rec);
			if (rc != 0) {
				rec->partition = cp->id;
				*ext_out = 0; /* from disk: no ring position */
				return rc;
			}
			/* Nothing more on disk: back to the ring, where the
			 * rest is (the persister writes nothing the ring
			 * does not hold). */
			cp->next_off = cp->disk->next_off;
			disk_close(cp);
			cp->pos_valid = false;
		}
		if ((rc = part_peek_once(c, cp, rec, ext_out)) !=
		    RELAPSE_RETRY) {
			return rc;
		}
	}
	return 0; /* overwritten again and again: the writer is lapping
	           * us; the next poll tries again */
}

static int
part_peek_once(shmq_consumer_t *c, struct cpart *cp, shmq_record_t *rec,
    uint64_t *ext_out)
{
	struct ring *r = &c->rings[cp->id];
	int rc;
	/* Acquire, as in shmqi_ring_check, which says what is wrong. */
	if ((atomic_load_explicit(&r->hdr->hdr_flags, memory_order_acquire) &
	        (RING_F_DELETED | RING_F_FAILED)) != 0 &&
	    (rc = shmqi_ring_check(r)) != 0) {
		return rc;
	}
	if (!cp->pos_valid && cp->from_commit) {
		cp->from_commit = false;
		/* The group's committed offset is no longer in the log: the
		 * group had no live member while the ring moved on (nothing
		 * holds producers for it then), or retention deleted it.
		 * Under EARLIEST the records in between are lost: say so,
		 * with the count, as for a lap, rather than reset quietly.
		 * (LATEST and ERROR say what they do already.) */
		if (c->reset == SHMQ_RESET_EARLIEST &&
		    cp->next_off < log_start(c, cp->id)) {
			rc = part_lapped(c, cp, rec);
			if (rc != LAPPED_NOTHING_LOST) {
				return rc;
			}
		}
	}
	if (!cp->pos_valid && (rc = part_resolve(c, cp)) != 0) {
		return rc == -EAGAIN ? 0 : rc;
	}
	if (cp->disk != NULL) {
		return RELAPSE_RETRY; /* resolved onto disk: read it there */
	}
	/* Only this member's own commits move its gate, and none
	 * happens during this call: load it once. */
	uint64_t lap_below = lap_limit(c, cp);
	for (;;) {
		bool lap = cp->next_pos < lap_below;
		if (cp->next_pos >= cp->seen_committed) {
			int f = peek_commit_word(r, cp, lap);
			if (f == 0) {
				return 0;
			}
			if (f < 0) {
				/* Acquire pairs with the CAS that advanced it:
				 * every record below is complete. */
				cp->seen_committed = atomic_load_explicit(
				    &r->hdr->hdr_committed_pos,
				    memory_order_acquire);
				if (cp->next_pos >= cp->seen_committed) {
					return 0;
				}
				/* Untrusted: a watermark more than a ring
				 * ahead, or misaligned, is damage (or a lap).
				 */
				if (cp->seen_committed - cp->next_pos >
				        r->cap ||
				    (cp->seen_committed & (REC_ALIGN - 1)) !=
				        0) {
					if (lap && !intact(r, cp->next_pos)) {
						return relapse(c, cp, rec);
					}
					atomic_fetch_or(
					    &r->hdr->hdr_flags, RING_F_FAILED);
					return SHMQ_ECORRUPT;
				}
			}
		}
		struct rec_hdr *rh = shmqi_rec_at(r, cp->next_pos);
		/* Copy the header once; validate the copy, never re-read. */
		uint32_t len =
		    atomic_load_explicit(&rh->rec_len, memory_order_relaxed);
		uint16_t type = rh->rec_type;
		uint64_t room = r->cap - (cp->next_pos & r->mask);
		if (type == REC_PAD) {
			/* A PAD may be as short as 8 bytes (len and type):
			 * read nothing else of it. */
			uint64_t ext = len;
			if (lap && !intact(r, cp->next_pos)) {
				return relapse(c, cp, rec);
			}
			if (ext < REC_ALIGN || ext > room ||
			    (ext & (REC_ALIGN - 1)) != 0) {
				atomic_fetch_or(
				    &r->hdr->hdr_flags, RING_F_FAILED);
				return SHMQ_ECORRUPT;
			}
			cp->next_pos += ext;
			continue;
		}
		bool fits = room >= sizeof *rh;
		uint64_t off = fits ? rh->rec_offset : 0;
		uint32_t klen = fits ? rh->rec_key_len : 0;
		uint32_t vlen = fits ? rh->rec_value_len : 0;
		int64_t ts = fits ? rh->rec_timestamp : 0;
		uint64_t ext = shmqi_align8(len & REC_LEN_MASK);
		bool sane = fits && type == REC_DATA && ext >= REC_ALIGN &&
		    ext <= r->max_record && ext <= room && len != 0 &&
		    off == cp->next_off &&
		    (len & REC_LEN_MASK) == sizeof *rh + (uint64_t)klen + vlen;
		if (lap && !intact(r, cp->next_pos)) {
			return relapse(c, cp, rec);
		}
		if (!sane) {
			atomic_fetch_or(&r->hdr->hdr_flags, RING_F_FAILED);
			return SHMQ_ECORRUPT;
		}
		if (len & REC_ABORTED) {
			cp->next_pos += ext;
			cp->next_off++;
			continue;
		}
		const uint8_t *d = (const uint8_t *)(rh + 1);
		rec->key = d;
		rec->key_len = klen;
		rec->value = d + klen;
		rec->value_len = vlen;
		rec->partition = cp->id;
		rec->reserved_ = 0;
		rec->offset = off;
		rec->timestamp = ts;
		rec->lost = 0;
		shmqi_rec_identity(rh, rec);
		*ext_out = ext;
		cp->peek_lap = lap;
		return 1;
	}
}

/* Consume the record part_peek returned. */
static void
part_advance(shmq_consumer_t *c, struct cpart *cp, const shmq_record_t *rec,
    uint64_t ext)
{
	cp->next_pos += ext;
	cp->next_off = rec->offset + 1;
	cp->returned_off = cp->next_off;
	cp->returned_pos = cp->next_pos;
	cp->returned_pos_known = ext != 0; /* 0: it came from disk */
	cp->returned_any = true;
	if (c->in_group) {
		struct grp_part *gp = &c->group.hdr->g_parts[cp->id];
		/* Only the owner writes these: load + store, no RMW. */
		atomic_store_explicit(&gp->gp_records_out,
		    atomic_load_explicit(
		        &gp->gp_records_out, memory_order_relaxed) +
		        1,
		    memory_order_relaxed);
		atomic_store_explicit(&gp->gp_bytes_out,
		    atomic_load_explicit(
		        &gp->gp_bytes_out, memory_order_relaxed) +
		        rec->key_len + rec->value_len,
		    memory_order_relaxed);
	}
}

/* ---- commits ------------------------------------------------------------ */

static int
part_commit(
    shmq_consumer_t *c, uint32_t i, uint64_t off, bool pos_known, uint64_t pos)
{
	if (!c->in_group) {
		return -EINVAL;
	}
	struct grp_part *gp = &c->group.hdr->g_parts[i];
	if (atomic_load(&gp->gp_owner) != c->group.slot) {
		return SHMQ_ENOTOWNER;
	}
	atomic_store_explicit(&gp->gp_committed, off, memory_order_release);
	atomic_store_explicit(
	    &gp->gp_commit_ns, shmqi_now_ns(), memory_order_relaxed);
	c->parts[i].commit_off = off;
	if (pos_known) {
		if (c->borrowed && c->borrow_part == i &&
		    c->borrow_pos < pos) {
			/* A borrowed view must outlive the commit: hold the
			 * gate at it, and move on at shmq_release. */
			c->parts[i].gate_pending = pos;
			pos = c->borrow_pos;
		}
		set_gate(c, i, pos);
	}
	return 0;
}

static int
commit_returned(shmq_consumer_t *c)
{
	int rc = 0;
	for (uint32_t i = 0; i < c->nparts; i++) {
		struct cpart *cp = &c->parts[i];
		if (cp->active && cp->returned_any &&
		    cp->returned_off != cp->commit_off) {
			int prc = part_commit(c, i, cp->returned_off,
			    cp->returned_pos_known, cp->returned_pos);
			rc = rc ? rc : prc;
		}
	}
	c->auto_pending = false;
	return rc;
}

int
shmq_consumer_commit(shmq_consumer_t *c)
{
	if (c == NULL || !c->in_group) {
		return -EINVAL;
	}
	return commit_returned(c);
}

int
shmq_consumer_commit_offset(shmq_consumer_t *c, uint32_t part, uint64_t offset)
{
	uint64_t pos = 0;
	bool known = false;
	if (c == NULL || !c->in_group || part >= c->nparts) {
		return -EINVAL;
	}
	struct cpart *cp = &c->parts[part];
	if (cp->returned_any && offset == cp->returned_off) {
		pos = cp->returned_pos;
		known = cp->returned_pos_known;
	} else if (shmqi_ring_locate(&c->rings[part], offset, &pos) ==
	    LOC_FOUND) {
		known = true;
	}
	return part_commit(c, part, offset, known, pos);
}

/* ---- group upkeep --------------------------------------------------------
 */

static void
on_release(uint32_t part, void *arg)
{
	shmq_consumer_t *c = arg;
	struct cpart *cp = &c->parts[part];
	if ((c->flags & SHMQ_CONSUMER_AUTO_COMMIT) && cp->returned_any &&
	    cp->returned_off != cp->commit_off) {
		(void)part_commit(c, part, cp->returned_off,
		    cp->returned_pos_known, cp->returned_pos);
	}
	disk_close(cp);
	cp->active = false;
}

/*
 * The topic grew (shmq_topic_add_partitions): open the new partitions'
 * rings and, for a group member, bring the group's table to the new
 * count (the admin normally did; a member that sees the count first does
 * it itself), with this group's gate on each new ring.  All or nothing:
 * on an error the handle is as it was, and the next look tries again.
 * The arrays move (realloc): callers hold no pointer into them across
 * this call.
 */
static int
consumer_grow(shmq_consumer_t *c)
{
	struct topic_meta m;
	int rc = shmqi_topic_load(c->q, c->topic, &m);
	if (rc != 0 || m.id != c->meta.id) {
		/* Deleted: the rings say so at the next read. */
		return rc == -ENOENT || rc == 0 ? 0 : rc;
	}
	uint32_t old = c->nparts, P = m.partitions, n = old;
	if (P <= old) {
		return 0;
	}
	/* The fork handler walks rings[0, nparts): no fork meanwhile. */
	shmqi_fork_guard_enter();
	struct ring *rings = realloc(c->rings, P * sizeof *rings);
	if (rings != NULL) {
		c->rings = rings;
	}
	struct cpart *parts = realloc(c->parts, P * sizeof *parts);
	if (parts != NULL) {
		c->parts = parts;
	}
	rc = rings == NULL || parts == NULL ? -ENOMEM : 0;
	for (; rc == 0 && n < P; n++) {
		memset(&c->parts[n], 0, sizeof c->parts[n]);
		c->parts[n].id = n;
		if ((rc = shmqi_ring_open(
		         c->q, c->topic, &m, n, &c->rings[n])) != 0) {
			break;
		}
		rc = shmqi_ring_claim_client(&c->rings[n], CLIENT_CONSUMER);
	}
	if (rc == 0 && c->in_group) {
		rc = shmqi_group_grow(&c->group, P);
		for (uint32_t i = old; rc == 0 && i < P &&
		     c->meta.overflow == SHMQ_OVERFLOW_BLOCK;
		     i++) {
			rc = shmqi_group_gate(&c->group, &c->rings[i], i);
		}
		if (rc != 0 && c->group.partitions > old) {
			/* Keep the mapping (map_len says how long), but
			 * rebalance over what we can read. */
			c->group.partitions = old;
		}
	}
	if (rc == 0) {
		c->nparts = P;
		c->meta.partitions = P;
	} else {
		/* Closing drops the client slots and gate locks taken. */
		for (uint32_t i = old; i < n; i++) {
			shmqi_ring_close(&c->rings[i]);
		}
	}
	shmqi_fork_guard_exit();
	return rc;
}

/* Has the topic grown past this member's view?  The group's count is
 * raised by whoever grew the table; ring 0's word by the admin (a table
 * the admin could not grow is grown by the member that sees it). */
static bool
group_grown(const shmq_consumer_t *c)
{
	/* Acquire pairs with the release stores in shmqi_group_grow and in
	 * announce_ring (topic.c). */
	return atomic_load_explicit(&c->group.hdr->g_partitions,
	           memory_order_acquire) > c->group.partitions ||
	    atomic_load_explicit(&c->rings[0].hdr->hdr_partitions,
	        memory_order_acquire) > c->nparts;
}

/* Act on membership changes and on members that died. */
static int
group_sync_slow(shmq_consumer_t *c, uint32_t gen)
{
	int64_t now = shmqi_mono_ns();
	int rc;
	if (gen == c->group_gen && now < c->next_liveness_ns) {
		return 0;
	}
	/* Before the rebalance, so that it counts the new partitions.  A
	 * growth that fails (no room for a ring, no gate left) leaves the
	 * handle as it was: rebalance over the old count (it can only
	 * under-claim) and keep reading; the next slow sync, within
	 * GROUP_SLICE_MS, tries again.  Only a topic or table found
	 * damaged is this member's error. */
	if (group_grown(c) && (rc = consumer_grow(c)) != 0 &&
	    (rc == SHMQ_ECORRUPT || rc == SHMQ_EVERSION)) {
		return rc;
	}
	struct grp_hdr *g = c->group.hdr; /* remapped by a growth */
	rc = shmqi_group_rebalance(&c->group, on_release, c);
	if (rc != 0) {
		return rc;
	}
	/* Acquire pairs with the release in shmqi_group_bump. */
	c->group_gen =
	    atomic_load_explicit(&g->g_generation, memory_order_acquire);
	c->next_liveness_ns = now + (int64_t)GROUP_SLICE_MS * 1000000;
	for (uint32_t i = 0; i < c->nparts; i++) {
		bool mine =
		    atomic_load(&g->g_parts[i].gp_owner) == c->group.slot;
		struct cpart *cp = &c->parts[i];
		if (mine && !cp->active) {
			uint64_t off = atomic_load_explicit(
			    &g->g_parts[i].gp_committed, memory_order_acquire);
			part_start(c, cp, off == GP_NONE ? NEED_RESET : off);
			cp->from_commit = off != GP_NONE;
			cp->commit_off = off;
		} else if (!mine && cp->active) {
			disk_close(cp);
			cp->active = false;
		}
	}
	return 0;
}

/* The usual poll: no change seen, and not the poll that looks at the
 * clock. */
static inline int
group_sync(shmq_consumer_t *c, bool force)
{
	/* Acquire pairs with the release in shmqi_group_bump. */
	uint32_t gen = atomic_load_explicit(
	    &c->group.hdr->g_generation, memory_order_acquire);
	if (!force && gen == c->group_gen &&
	    (++c->polls & (LIVENESS_POLLS - 1)) != 0) {
		return 0; /* the clock is read every LIVENESS_POLLS polls */
	}
	return group_sync_slow(c, gen);
}

/* ---- waiting ---------------------------------------------------------------
 */

/* Abort reservations that block a partition because their producer
 * died; bounded by reclaim_ms from when progress stopped. */
static void
reclaim_stuck(shmq_consumer_t *c)
{
	int64_t now = shmqi_mono_ns();
	for (uint32_t i = 0; i < c->nparts; i++) {
		struct cpart *cp = &c->parts[i];
		struct ring *r = &c->rings[i];
		if (!cp->active) {
			continue;
		}
		uint64_t cpos = atomic_load(&r->hdr->hdr_committed_pos);
		if (cpos >= atomic_load(&r->hdr->hdr_end_pos)) {
			cp->stuck_pos = UINT64_MAX;
			continue;
		}
		if (cpos != cp->stuck_pos) {
			cp->stuck_pos = cpos;
			cp->stuck_since = now;
		} else if (now - cp->stuck_since >=
		    (int64_t)r->reclaim_ms * 1000000) {
			(void)shmqi_ring_reclaim(r, cp->stuck_since);
		}
	}
}

/* One pass over the active partitions, round robin. */
static int
scan(shmq_consumer_t *c, shmq_record_t *rec, uint64_t *ext, uint32_t *which)
{
	uint32_t i = c->rr < c->nparts ? c->rr : 0;
	for (uint32_t k = 0; k < c->nparts;
	     k++, i = i + 1 < c->nparts ? i + 1 : 0) {
		struct cpart *cp = &c->parts[i];
		if (!cp->active) {
			continue;
		}
		int rc = part_peek(c, cp, rec, ext);
		if (rc != 0) {
			/* Stay on this partition while it has records:
			 * one cache line stream at a time. */
			c->rr = i;
			*which = i;
			return rc;
		}
	}
	return 0;
}

static int
park(shmq_consumer_t *c, int ms, shmq_record_t *rec, uint64_t *ext,
    uint32_t *which)
{
	_Atomic uint32_t *words[SHMQ_PARTITIONS_MAX + 1];
	uint32_t seen[SHMQ_PARTITIONS_MAX + 1];
	size_t n = 0;

	if (c->in_group) {
		words[n] = &c->group.hdr->g_generation;
		seen[n++] = c->group_gen;
	}
	for (uint32_t i = 0; i < c->nparts; i++) {
		if (c->parts[i].active) {
			struct ring_hdr *h = c->rings[i].hdr;
			words[n] = &h->hdr_commit_seq;
			seen[n++] = atomic_load(&h->hdr_commit_seq);
			/* seq_cst: pairs with the load of commit_waiters
			 * after a committer's CAS (shmqi_ring_advance). */
			atomic_fetch_add(&h->hdr_commit_waiters, 1);
		}
	}
	/* The re-check must not be ordered before the increments above
	 * (RCpc acquire loads could be, on AArch64): a full fence. */
	atomic_thread_fence(memory_order_seq_cst);
	int rc = scan(c, rec, ext, which);
	if (rc == 0 && n > 0) {
		(void)shmqi_futex_waitv(words, seen, n, ms);
	} else if (rc == 0) {
		/* Nothing to wait on (no partitions): sleep on a private
		 * word until the timeout. */
		_Atomic uint32_t w = 0;
		(void)shmqi_futex_wait(&w, 0, ms);
	}
	for (uint32_t i = 0; i < c->nparts; i++) {
		if (c->parts[i].active) {
			atomic_fetch_sub(
			    &c->rings[i].hdr->hdr_commit_waiters, 1);
		}
	}
	return rc;
}

static bool
any_stuck(shmq_consumer_t *c)
{
	for (uint32_t i = 0; i < c->nparts; i++) {
		struct ring_hdr *h = c->rings[i].hdr;
		if (c->parts[i].active &&
		    atomic_load(&h->hdr_committed_pos) <
		        atomic_load(&h->hdr_end_pos)) {
			return true;
		}
	}
	return false;
}

/* Nothing was found: poll again, waiting up to timeout_ms.  Kept out of
 * line, so that a poll that finds a record does not pay for its frame. */
__attribute__((noinline)) static int
wait_record(shmq_consumer_t *c, shmq_record_t *rec, uint64_t *ext,
    uint32_t *which, int timeout_ms)
{
	/* The clock is read only once there is nothing to read: a poll
	 * that finds a record costs no clock access. */
	int64_t deadline = 0, spin_end = 0, next_reclaim = 0;
	bool timed = false, polled = true;
	unsigned backoff = 1;
	int rc;

	for (;;) {
		if (!polled) {
			if (c->in_group && (rc = group_sync(c, false)) != 0) {
				return rc;
			}
			if ((rc = scan(c, rec, ext, which)) != 0) {
				return rc < 0 ? rc : 0;
			}
		}
		polled = false;
		/* Nothing to read: not the hot path, so look at the clock
		 * and, every GROUP_SLICE_MS, at the other members. */
		if (c->in_group && (rc = group_sync(c, true)) != 0) {
			return rc;
		}
		if (timeout_ms == 0) {
			return -EAGAIN;
		}
		if (!timed) {
			int64_t start = shmqi_mono_ns();
			deadline = timeout_ms < 0
			    ? INT64_MAX
			    : start + (int64_t)timeout_ms * 1000000;
			spin_end = start + (int64_t)c->spin_us * 1000;
			timed = true;
		}
		c->empty_polls++;
		if (c->idle == SHMQ_IDLE_BUSY_SPIN || c->spin_us > 0) {
			/* Back off exponentially between empty polls: each
			 * poll pulls the line the producer is writing, and
			 * every pull costs it a cross-core transfer.  The
			 * clock is read once a poll lasts BACKOFF_MAX
			 * pauses (microseconds: the reading is noise). */
			for (unsigned k = 0; k < backoff; k++) {
				cpu_relax();
			}
			if (backoff < BACKOFF_MAX) {
				backoff *= 2;
				continue;
			}
		}
		int64_t now = shmqi_mono_ns();
		if (now >= deadline) {
			return -EAGAIN;
		}
		if (now >= next_reclaim) {
			reclaim_stuck(c);
			next_reclaim = now + RECLAIM_LOOK_NS;
		}
		if (c->idle == SHMQ_IDLE_BUSY_SPIN || now < spin_end) {
			continue;
		}
		int64_t left = (deadline - now) / 1000000 + 1;
		int slice = c->in_group ? GROUP_SLICE_MS : 1000;
		if (any_stuck(c)) {
			slice = (int)c->rings[0].reclaim_ms / 2 + 1;
		}
		int ms = left < slice ? (int)left : slice;
		c->parks++;
		if ((rc = park(c, ms, rec, ext, which)) != 0) {
			return rc < 0 ? rc : 0;
		}
	}
}

/* Find the next record, waiting up to timeout_ms. */
static int
next_record(shmq_consumer_t *c, shmq_record_t *rec, uint64_t *ext,
    uint32_t *which, int timeout_ms)
{
	int rc;

	if ((c->flags & SHMQ_CONSUMER_AUTO_COMMIT) && c->auto_pending) {
		(void)commit_returned(c);
	}
	if (c->in_group && (rc = group_sync(c, false)) != 0) {
		return rc;
	}
	if ((rc = scan(c, rec, ext, which)) != 0) {
		return rc < 0 ? rc : 0;
	}
	return wait_record(c, rec, ext, which, timeout_ms);
}

/* ---- public read API ---------------------------------------------------- */

int
shmq_peek(shmq_consumer_t *c, shmq_record_t *rec, int timeout_ms)
{
	uint64_t ext;
	uint32_t which;
	if (c == NULL || rec == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	if (c->borrowed) {
		return -EBUSY;
	}
	int rc = next_record(c, rec, &ext, &which, timeout_ms);
	if (rc != 0) {
		return rc;
	}
	struct cpart *cp = &c->parts[which];
	c->borrowed = true;
	c->borrow_part = which;
	c->borrow_pos = cp->next_pos;
	c->borrow_ext = ext;
	part_advance(c, cp, rec, ext);
	c->auto_pending = true;
	rec->opaque_[0] = c->borrow_pos;
	rec->opaque_[1] = which;
	return 0;
}

int
shmq_release(shmq_consumer_t *c, shmq_record_t *rec)
{
	if (c == NULL || rec == NULL || !c->borrowed ||
	    rec->opaque_[0] != c->borrow_pos) {
		return -EINVAL;
	}
	c->borrowed = false;
	struct cpart *cp = &c->parts[c->borrow_part];
	bool stale = c->borrow_ext != 0 && /* 0: a copy read from disk */
	    lappable(c, cp, c->borrow_pos) &&
	    !intact(&c->rings[c->borrow_part], c->borrow_pos);
	if (cp->gate_pending != 0) {
		set_gate(c, c->borrow_part, cp->gate_pending);
		cp->gate_pending = 0;
	}
	if (stale) {
		/* Overwritten while borrowed: whatever was read is void.
		 * Re-read from the oldest record, as after a lap. */
		shmq_record_t tmp;
		cp->next_off = rec->offset;
		(void)part_lapped(c, cp, &tmp);
		cp->returned_any = false;
		return SHMQ_ESTALE;
	}
	return 0;
}

int
shmq_recv(shmq_consumer_t *c, void *buf, size_t cap, shmq_record_t *rec,
    int timeout_ms)
{
	uint64_t ext;
	uint32_t which;
	if (c == NULL || rec == NULL || (buf == NULL && cap != 0) ||
	    timeout_ms < -1) {
		return -EINVAL;
	}
	if (c->borrowed) {
		return -EBUSY;
	}
	for (;;) {
		int rc = next_record(c, rec, &ext, &which, timeout_ms);
		if (rc != 0) {
			return rc;
		}
		struct cpart *cp = &c->parts[which];
		size_t need = rec->key_len + rec->value_len;
		if (need > cap) {
			if (ext == 0 && cp->disk != NULL) {
				/* From disk: read, so put it back. */
				cp->disk->pend = *rec;
				cp->disk->pending = true;
			}
			return -EMSGSIZE; /* lengths say what is needed */
		}
		uint8_t *b = buf;
		if (need != 0) {
			memcpy(b, rec->key, need); /* key and value adjoin */
		}
		if (ext != 0 && cp->peek_lap &&
		    !intact(&c->rings[which], cp->next_pos)) {
			int lrc = part_lapped(c, cp, rec);
			if (lrc == LAPPED_NOTHING_LOST) {
				continue; /* read again from the new position
				           */
			}
			return lrc;
		}
		rec->key = b;
		rec->value = b + rec->key_len;
		part_advance(c, cp, rec, ext);
		c->auto_pending = true;
		return 0;
	}
}

/* ---- lifecycle -----------------------------------------------------------
 */

/* Map the group, hold its gates, join.  A group deleted in between
 * (GROUP_F_DELETED, seen at join) is left, and a new one is made. */
static int
join_group(shmq_consumer_t *c, const char *name)
{
	int rc = SHMQ_EDELETED;
	for (int attempt = 0; attempt < 2 && rc == SHMQ_EDELETED; attempt++) {
		rc = shmqi_group_open(
		    c->q, name, c->topic, &c->meta, true, &c->group);
		if (rc == 0 && c->group.partitions < c->nparts) {
			/* Made before the topic grew, not grown yet. */
			rc = shmqi_group_grow(&c->group, c->nparts);
			if (rc != 0) {
				shmqi_group_close(&c->group);
				if (rc == SHMQ_EDELETED) {
					continue; /* a new file, as below */
				}
				return rc;
			}
		}
		for (uint32_t i = 0; rc == 0 && i < c->nparts &&
		     c->meta.overflow == SHMQ_OVERFLOW_BLOCK;
		     i++) {
			rc = shmqi_group_gate(&c->group, &c->rings[i], i);
		}
		if (rc == 0) {
			rc = shmqi_group_join(&c->group);
		}
		if (rc == SHMQ_EDELETED) {
			/* Let go of the old file's gates: another group
			 * may be given them. */
			for (uint32_t i = 0; i < c->nparts; i++) {
				uint32_t gi = c->group.hdr->g_parts[i].gp_gate;
				if (gi < RING_GATES) {
					shmqi_unlock_byte(c->rings[i].fd,
					    LOCK_GATE_BASE + gi);
				}
			}
			shmqi_group_close(&c->group);
		}
	}
	return rc;
}

static int
consumer_open(shmq_t *q, const char *topic,
    const shmq_consumer_options_t *opts, shmq_consumer_t **out)
{
	shmq_consumer_options_t o;
	int rc;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	shmq_consumer_options_init(&o);
	if (opts != NULL) {
		if (opts->size < sizeof(size_t) || opts->size > sizeof o) {
			return -EINVAL;
		}
		memcpy(&o, opts, opts->size);
	}
	if (q == NULL || !shmqi_name_valid(topic) ||
	    (o.group != NULL && !shmqi_name_valid(o.group)) ||
	    o.reset < SHMQ_RESET_EARLIEST || o.reset > SHMQ_RESET_ERROR ||
	    o.idle < SHMQ_IDLE_SPIN_PARK || o.idle > SHMQ_IDLE_BUSY_SPIN ||
	    (o.flags & ~SHMQ_CONSUMER_AUTO_COMMIT) != 0) {
		return -EINVAL;
	}
	shmq_consumer_t *c = calloc(1, sizeof *c);
	if (c == NULL) {
		return -ENOMEM;
	}
	c->q = q;
	c->group.fd = -1;
	c->group.slot = -1;
	snprintf(c->topic, sizeof c->topic, "%s", topic);
	c->reset = o.reset;
	c->idle = o.idle;
	c->flags = o.flags;
	c->spin_us = o.spin_us;
	if ((rc = shmqi_topic_load(q, topic, &c->meta)) != 0) {
		goto fail;
	}
	uint32_t P = c->meta.partitions;
	c->rings = calloc(P, sizeof *c->rings);
	c->parts = calloc(P, sizeof *c->parts);
	if (c->rings == NULL || c->parts == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < P; i++) {
		c->parts[i].id = i;
		rc = shmqi_ring_open(q, topic, &c->meta, i, &c->rings[i]);
		if (rc != 0) {
			goto fail;
		}
		c->nparts++;
		if ((rc = shmqi_ring_claim_client(
		         &c->rings[i], CLIENT_CONSUMER)) != 0) {
			goto fail;
		}
	}
	if (o.group != NULL) {
		snprintf(c->group_name, sizeof c->group_name, "%s", o.group);
		c->in_group = true;
		rc = join_group(c, o.group);
		if (rc == 0) {
			rc = group_sync(c, true);
		}
		if (rc != 0) {
			goto fail;
		}
	}
	pthread_mutex_lock(&q->lock);
	c->next = q->consumers;
	q->consumers = c;
	pthread_mutex_unlock(&q->lock);
	*out = c;
	return 0;
fail:
	shmq_consumer_close(c);
	return rc;
}

int
shmq_consumer_open(shmq_t *q, const char *topic,
    const shmq_consumer_options_t *opts, shmq_consumer_t **out)
{
	shmqi_fork_guard_enter();
	int rc = consumer_open(q, topic, opts, out);
	shmqi_fork_guard_exit();
	return rc;
}

void
shmq_consumer_close(shmq_consumer_t *c)
{
	if (c == NULL) {
		return;
	}
	shmq_t *q = c->q;
	pthread_mutex_lock(&q->lock);
	for (shmq_consumer_t **pp = &q->consumers; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (c->in_group && c->group.hdr != NULL && shmqi_is_owner(q)) {
		if (c->flags & SHMQ_CONSUMER_AUTO_COMMIT) {
			(void)commit_returned(c);
		}
		shmqi_group_leave(&c->group);
	}
	shmqi_group_close(&c->group);
	for (uint32_t i = 0; i < c->nparts; i++) {
		disk_close(&c->parts[i]);
		shmqi_ring_close(&c->rings[i]);
	}
	free(c->rings);
	free(c->parts);
	free(c);
}

int
shmq_assign(shmq_consumer_t *c, const uint32_t *parts, size_t n)
{
	if (c == NULL || c->in_group || (parts == NULL && n != 0)) {
		return -EINVAL;
	}
	if (c->borrowed) {
		return -EBUSY; /* release the view first */
	}
	for (size_t k = 0; k < n; k++) {
		if (parts[k] >= c->nparts) {
			/* A partition added since the open? */
			int rc = consumer_grow(c);
			if (rc != 0) {
				return rc;
			}
			if (parts[k] >= c->nparts) {
				return -EINVAL;
			}
		}
	}
	c->borrowed = false;
	for (uint32_t i = 0; i < c->nparts; i++) {
		disk_close(&c->parts[i]);
		c->parts[i].active = false;
	}
	for (size_t k = 0; k < n; k++) {
		part_start(c, &c->parts[parts[k]], NEED_RESET);
	}
	return 0;
}

int
shmq_seek(shmq_consumer_t *c, uint32_t part, uint64_t offset)
{
	if (c == NULL || part >= c->nparts || !c->parts[part].active ||
	    offset == NEED_RESET) {
		return -EINVAL;
	}
	if (c->borrowed) {
		return -EBUSY; /* the view may point into what would go */
	}
	struct cpart *cp = &c->parts[part];
	disk_close(cp);
	cp->next_off = offset;
	cp->pos_valid = false;
	return 0;
}

int
shmq_seek_to(shmq_consumer_t *c, uint32_t part, int whence)
{
	if (c == NULL || part >= c->nparts || !c->parts[part].active ||
	    (whence != SHMQ_SEEK_BEGINNING && whence != SHMQ_SEEK_END)) {
		return -EINVAL;
	}
	/* BEGINNING is the log start, as for reset EARLIEST: on disk for
	 * a persistent topic, not the ring's oldest record. */
	return shmq_seek(c, part,
	    whence == SHMQ_SEEK_BEGINNING
	        ? log_start(c, part)
	        : shmqi_ring_committed_off(&c->rings[part]));
}

ssize_t
shmq_assignment(shmq_consumer_t *c, uint32_t *parts, size_t cap)
{
	size_t n = 0;
	if (c == NULL || (parts == NULL && cap != 0)) {
		return -EINVAL;
	}
	if (c->in_group) {
		int rc = group_sync(c, false);
		if (rc != 0) {
			return rc;
		}
	}
	for (uint32_t i = 0; i < c->nparts; i++) {
		if (c->parts[i].active) {
			if (n < cap) {
				parts[n] = i;
			}
			n++;
		}
	}
	return (ssize_t)n;
}

int
shmq_consumer_lag(shmq_consumer_t *c, uint64_t *records)
{
	uint64_t lag = 0;
	if (c == NULL || records == NULL) {
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->nparts; i++) {
		struct cpart *cp = &c->parts[i];
		if (!cp->active) {
			continue;
		}
		uint64_t end = shmqi_ring_committed_off(&c->rings[i]);
		uint64_t from = cp->next_off;
		if (from == NEED_RESET) {
			/* Not positioned yet: where the reset policy will
			 * put it (LATEST: the end, so no lag). */
			from = c->reset == SHMQ_RESET_LATEST
			    ? end
			    : atomic_load(&c->rings[i].hdr->hdr_start_off);
		}
		lag += end > from ? end - from : 0;
	}
	*records = lag;
	return 0;
}
