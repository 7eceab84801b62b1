/*
 * producer.c — producer handles: choosing a partition, reserving (with a
 * bounded wait for space), copying, committing, and waiting for the ack
 * level.  The protocol itself is in ring.c.
 *
 * Each producer holds, per partition ring, a client slot (so readers can
 * tell whether a stuck reservation's owner is alive) and a shared OFD
 * lock on the ring's "exclusive" byte; an exclusive producer holds it
 * exclusively and may then skip the ring mutex altogether.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define STICKY_DEFAULT 1024u
#define SPACE_SLICE_MS 20 /* re-check gates of groups that died */
#define DURABLE_SLICE_MS 100 /* re-check that the persister lives */
#define BATCH_ITEMS_MIN 64u
#define BACKOFF_DEFAULT_MS 10
#define BACKOFF_MAX_DEFAULT_MS 1000
#define PRODUCER_FLAGS (SHMQ_PRODUCER_EXCLUSIVE | SHMQ_PRODUCER_IDEMPOTENT)

void
shmq_producer_options_init(shmq_producer_options_t *o)
{
	if (o == NULL) {
		return;
	}
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->acks = SHMQ_ACKS_LEADER;
	o->timeout_ms = -1;
	o->sticky_records = STICKY_DEFAULT;
	o->retry_backoff_ms = BACKOFF_DEFAULT_MS;
	o->retry_backoff_max_ms = BACKOFF_MAX_DEFAULT_MS;
}

static bool
exclusive(const shmq_producer_t *p)
{
	return (p->flags & SHMQ_PRODUCER_EXCLUSIVE) != 0;
}

/* Take this producer's place on one ring: client slot, then the
 * exclusivity byte; repair what a dead exclusive writer left. */
static int
producer_join_ring(shmq_producer_t *p, struct ring *r)
{
	int rc = shmqi_ring_claim_client(r, CLIENT_PRODUCER);
	if (rc != 0) {
		return rc;
	}
	rc = shmqi_lock_byte(r->fd, LOCK_EXCL_BYTE, exclusive(p));
	if (rc == -EAGAIN) {
		return -EBUSY;
	}
	/* Only a handle that holds the byte exclusively may later clear
	 * the flag that marks an exclusive writer's unfinished work. */
	r->excl = rc == 0 && exclusive(p);
	if (rc != 0 || (rc = shmqi_ring_lock(r)) != 0) {
		return rc;
	}
	uint32_t f = atomic_load(&r->hdr->hdr_flags);
	if (f & RING_F_EXCL_DIRTY) {
		/* We got the byte, so its previous exclusive holder is
		 * gone without cleaning up: it may have died mid-update. */
		rc = shmqi_ring_repair(r);
		atomic_fetch_and(&r->hdr->hdr_flags, ~RING_F_EXCL_DIRTY);
	}
	if (rc == 0 && exclusive(p)) {
		atomic_fetch_or(&r->hdr->hdr_flags, RING_F_EXCL_DIRTY);
	}
	shmqi_ring_unlock(r);
	return rc;
}

static int
producer_open(shmq_t *q, const char *topic,
    const shmq_producer_options_t *opts, shmq_producer_t **out)
{
	shmq_producer_options_t o;
	int rc;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	if (q == NULL || !shmqi_name_valid(topic)) {
		return -EINVAL;
	}
	shmq_producer_options_init(&o);
	if (opts != NULL) {
		if (opts->size < sizeof(size_t) || opts->size > sizeof o) {
			return -EINVAL;
		}
		memcpy(&o, opts, opts->size);
	}
	bool idem = (o.flags & SHMQ_PRODUCER_IDEMPOTENT) != 0;
	if (o.acks < SHMQ_ACKS_NONE || o.acks > SHMQ_ACKS_ALL ||
	    (o.flags & ~PRODUCER_FLAGS) != 0 || o.timeout_ms < -1 ||
	    o.retries < -1 || o.retry_backoff_ms < 0 ||
	    o.retry_backoff_max_ms < o.retry_backoff_ms) {
		return -EINVAL;
	}
	/* Retries without idempotence would append a record twice when an
	 * attempt failed after appending (a DURABLE wait): refused, never
	 * a silent duplicate. */
	if (!idem && (o.producer_name != NULL || o.retries != 0)) {
		return -EINVAL;
	}
	if (o.producer_name != NULL && !shmqi_name_valid(o.producer_name)) {
		return -EINVAL;
	}
	if (o.acks == SHMQ_ACKS_ALL) {
		return SHMQ_ENOREPLICATOR; /* replication is not built yet */
	}
	shmq_producer_t *p = calloc(1, sizeof *p);
	if (p == NULL) {
		return -ENOMEM;
	}
	p->q = q;
	snprintf(p->topic, sizeof p->topic, "%s", topic);
	p->acks = o.acks;
	p->flags = o.flags;
	p->timeout_ms = o.timeout_ms;
	p->sticky_records =
	    o.sticky_records ? o.sticky_records : STICKY_DEFAULT;
	p->retries = o.retries;
	p->backoff_ms = o.retry_backoff_ms;
	p->backoff_max_ms = o.retry_backoff_max_ms;
	if ((rc = shmqi_topic_load(q, topic, &p->meta)) != 0) {
		goto fail;
	}
	if (p->acks == SHMQ_ACKS_DURABLE) {
		/* Refuse up front rather than append and then fail. */
		if (p->meta.durability != SHMQ_DURABILITY_PERSISTENT) {
			rc = -EINVAL; /* a volatile topic has no disk */
			goto fail;
		}
		if (!shmqi_persister_alive(q)) {
			rc = SHMQ_ENOREPLICATOR;
			goto fail;
		}
	}
	p->rings = calloc(p->meta.partitions, sizeof *p->rings);
	if (p->rings == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < p->meta.partitions; i++) {
		rc = shmqi_ring_open(q, topic, &p->meta, i, &p->rings[i]);
		if (rc != 0) {
			goto fail;
		}
		p->nrings++;
		if ((rc = producer_join_ring(p, &p->rings[i])) != 0) {
			goto fail;
		}
	}
	if (idem && (rc = shmqi_idem_open(p, o.producer_name)) != 0) {
		goto fail;
	}
	p->sticky_part = (uint32_t)(shmqi_random64() % p->nrings);
	p->sticky_left = p->sticky_records;
	pthread_mutex_lock(&q->lock);
	p->next = q->producers;
	q->producers = p;
	pthread_mutex_unlock(&q->lock);
	*out = p;
	return 0;
fail:
	shmq_producer_close(p);
	return rc;
}

int
shmq_producer_open(shmq_t *q, const char *topic,
    const shmq_producer_options_t *opts, shmq_producer_t **out)
{
	shmqi_fork_guard_enter();
	int rc = producer_open(q, topic, opts, out);
	shmqi_fork_guard_exit();
	return rc;
}

void
shmq_producer_close(shmq_producer_t *p)
{
	if (p == NULL) {
		return;
	}
	shmq_t *q = p->q;
	pthread_mutex_lock(&q->lock);
	for (shmq_producer_t **pp = &q->producers; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	/* Slices still reserved are aborted now, not left for a reclaimer
	 * to find after reclaim_ms. */
	for (size_t k = 0; k < p->nopen && shmqi_is_owner(q); k++) {
		struct ring *r = &p->rings[p->open[k].part];
		(void)shmqi_ring_abort_rec(r, p->open[k].pos);
		shmqi_ring_advance(r);
	}
	for (uint32_t i = 0; i < p->nrings; i++) {
		struct ring *r = &p->rings[i];
		if (r->excl && shmqi_is_owner(q) && shmqi_ring_lock(r) == 0) {
			atomic_fetch_and(
			    &r->hdr->hdr_flags, ~RING_F_EXCL_DIRTY);
			shmqi_ring_unlock(r);
		}
		/* Closing the fd drops the client slot: a reservation
		 * still open is then reclaimed as if we had died. */
		shmqi_ring_close(r);
	}
	shmqi_idem_close(p);
	free(p->rings);
	free(p->items);
	free(p->open);
	free(p);
}

static inline int
pick_partition(shmq_producer_t *p, const shmq_msg_t *m, uint32_t *part)
{
	int rc;
	/* The topic grew: take the new partitions first (producer_grow.c). */
	if (shmqi_producer_grown(p) &&
	    (rc = shmqi_producer_grow(p, producer_join_ring)) != 0) {
		return rc;
	}
	if (m->partition >= 0) {
		if ((uint32_t)m->partition >= p->nrings) {
			return -EINVAL;
		}
		*part = (uint32_t)m->partition;
	} else if (m->partition != SHMQ_PARTITION_ANY) {
		return -EINVAL;
	} else if (m->key != NULL) {
		*part = (shmqi_murmur2(m->key, m->key_len) & 0x7fffffffu) %
		    p->nrings;
	} else {
		if (p->sticky_left == 0) {
			p->sticky_part = (p->sticky_part + 1) % p->nrings;
			p->sticky_left = p->sticky_records;
		}
		p->sticky_left--;
		*part = p->sticky_part;
	}
	return 0;
}

static int64_t
deadline_for(int timeout_ms)
{
	return timeout_ms < 0
	    ? INT64_MAX
	    : shmqi_mono_ns() + (int64_t)timeout_ms * 1000000;
}

static int
remaining_ms(int64_t deadline, int cap)
{
	if (deadline == INT64_MAX) {
		return cap;
	}
	int64_t left = (deadline - shmqi_mono_ns()) / 1000000;
	if (left <= 0) {
		return 0;
	}
	return left < cap ? (int)left : cap;
}

static int
try_reserve(shmq_producer_t *p, struct ring *r, struct rsv_item *it, size_t n,
    uint64_t *first)
{
	int rc;
	if (!exclusive(p) && (rc = shmqi_ring_lock(r)) != 0) {
		return rc;
	}
	rc = shmqi_ring_reserve(r, it, n, first);
	if (!exclusive(p)) {
		shmqi_ring_unlock(r);
	}
	return rc;
}

/* A persistent ring found full because its oldest bytes are not on
 * disk: only a persister makes room there.  Without one, or with one
 * that failed this partition (a sticky error: it never writes it
 * again), the wait would last the whole timeout (forever by default),
 * so say why now.  A dead persister's error is cleared by the next
 * one, so starting one is the remedy then.  Asked only after a
 * reservation failed, never on the fast path: it costs an open and an
 * F_OFD_GETLK. */
static int
not_durable(shmq_producer_t *p, struct ring *r)
{
	if (!shmqi_persister_alive(p->q)) {
		return SHMQ_ENOREPLICATOR;
	}
	return atomic_load(&r->hdr->hdr_persist_err) != 0 ? SHMQ_EFAILED
	                                                  : -EAGAIN;
}

/* Reserve, waiting on a full ring: a group catching up, a committer or
 * the persister wakes us; a reservation abandoned by a dead process is
 * reclaimed. */
static int
reserve(shmq_producer_t *p, struct ring *r, struct rsv_item *it, size_t n,
    uint64_t *first)
{
	struct ring_hdr *h = r->hdr;
	int64_t deadline = 0;
	uint64_t stuck_pos = UINT64_MAX;
	int64_t stuck_since = 0;
	bool timed = false;

	for (;;) {
		int rc = try_reserve(p, r, it, n, first);
		if (rc == RSV_NOT_DURABLE) {
			/* Before any wait, also with timeout_ms 0: the
			 * caller learns why, not just -EAGAIN. */
			rc = not_durable(p, r);
		}
		if (rc != -EAGAIN) {
			return rc;
		}
		if (!timed) {
			/* The clock is read only once the ring is found
			 * full: a send that finds room reads none. */
			deadline = deadline_for(p->timeout_ms);
			timed = true;
		}
		uint32_t seq = atomic_load(&h->hdr_space_seq);
		/* seq_cst increment pairs with the load in
		 * shmqi_ring_wake_space: then retry once before sleeping,
		 * so a wake-up between the two cannot be missed. */
		atomic_fetch_add(&h->hdr_space_waiters, 1);
		/* Full fence: the retry's loads may not move above the
		 * increment (they are acquire, not seq_cst). */
		atomic_thread_fence(memory_order_seq_cst);
		rc = try_reserve(p, r, it, n, first);
		if (rc == RSV_NOT_DURABLE) {
			rc = -EAGAIN; /* the persister's death or failure is
			               * seen above, one slice later */
		}
		if (rc == -EAGAIN) {
			int ms = remaining_ms(deadline, SPACE_SLICE_MS);
			if (ms == 0) {
				rc = -EAGAIN;
			} else {
				shmqi_futex_wait(&h->hdr_space_seq, seq, ms);
				rc = 1; /* go round */
			}
		}
		atomic_fetch_sub(&h->hdr_space_waiters, 1);
		if (rc != 1) {
			return rc;
		}
		if (shmqi_ring_blocked_by_self(r)) {
			/* Our own open slice holds the ring. */
			return -EDEADLK;
		}
		uint64_t cp = atomic_load(&h->hdr_committed_pos);
		if (cp != stuck_pos) {
			stuck_pos = cp;
			stuck_since = shmqi_mono_ns();
		} else if (shmqi_mono_ns() - stuck_since >=
		    (int64_t)r->reclaim_ms * 1000000) {
			(void)shmqi_ring_reclaim(r, stuck_since);
		}
	}
}

/* LEADER: wait until the committed watermark passes pos, i.e. the
 * record is visible to consumers (normally at once: we advanced it).
 * The record is appended already, so only a deleted or failed ring is
 * an error: after timeout_ms, or behind our own open slice, it returns
 * 0 and the record becomes visible once what precedes it is settled
 * (committed, aborted or reclaimed).  Failing here would invite a
 * retry, and a retry would append the record twice. */
static int
wait_visible(shmq_producer_t *p, struct ring *r, uint64_t pos)
{
	struct ring_hdr *h = r->hdr;
	if (atomic_load(&h->hdr_committed_pos) > pos) {
		return 0; /* the usual case: we advanced it ourselves */
	}
	int64_t deadline = deadline_for(p->timeout_ms);
	int64_t since = shmqi_mono_ns();

	while (atomic_load(&h->hdr_committed_pos) <= pos) {
		int rc = shmqi_ring_check(r);
		if (rc != 0) {
			return rc;
		}
		uint32_t seq = atomic_load(&h->hdr_commit_seq);
		atomic_fetch_add(&h->hdr_commit_waiters, 1);
		int ms = remaining_ms(deadline, (int)r->reclaim_ms);
		if (atomic_load(&h->hdr_committed_pos) <= pos && ms > 0) {
			shmqi_futex_wait(&h->hdr_commit_seq, seq, ms);
		}
		atomic_fetch_sub(&h->hdr_commit_waiters, 1);
		if (ms == 0 || shmqi_ring_blocked_by_self(r)) {
			return 0;
		}
		if (shmqi_mono_ns() - since >=
		    (int64_t)r->reclaim_ms * 1000000) {
			(void)shmqi_ring_reclaim(r, since);
		}
	}
	return 0;
}

/* DURABLE: wait until the durable watermark passes pos.  The record is
 * appended already; an error here means "not known to be on disk"
 * (like Kafka's NotEnoughReplicasAfterAppend): -ETIMEDOUT, the
 * persister gone (SHMQ_ENOREPLICATOR: it persists the record when it
 * comes back), or the partition's disk failed (SHMQ_EFAILED). */
static int
wait_durable(shmq_producer_t *p, struct ring *r, uint64_t pos)
{
	struct ring_hdr *h = r->hdr;
	int64_t deadline = deadline_for(p->timeout_ms);

	while (atomic_load(&h->hdr_durable_pos) <= pos) {
		int rc = shmqi_ring_check(r);
		if (rc != 0) {
			return rc;
		}
		if (atomic_load(&h->hdr_persist_err) != 0) {
			return SHMQ_EFAILED;
		}
		if (!shmqi_persister_alive(p->q)) {
			return SHMQ_ENOREPLICATOR;
		}
		uint32_t seq = atomic_load(&h->hdr_durable_seq);
		/* seq_cst increment, then a fence before the re-check: pairs
		 * with the persister's store of durable_pos and load of the
		 * waiter count. */
		atomic_fetch_add(&h->hdr_durable_waiters, 1);
		atomic_thread_fence(memory_order_seq_cst);
		int ms = remaining_ms(deadline, DURABLE_SLICE_MS);
		if (atomic_load(&h->hdr_durable_pos) <= pos && ms > 0) {
			shmqi_futex_wait(&h->hdr_durable_seq, seq, ms);
		}
		atomic_fetch_sub(&h->hdr_durable_waiters, 1);
		if (ms == 0) {
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static inline int
check_msg(const shmq_producer_t *p, const shmq_msg_t *m)
{
	if ((m->key == NULL && m->key_len != 0) ||
	    (m->value == NULL && m->value_len != 0)) {
		return -EINVAL;
	}
	if (m->key_len > REC_KEY_MAX ||
	    sizeof(struct rec_hdr) + m->key_len + m->value_len >
	        p->rings[0].max_record) {
		return -EMSGSIZE;
	}
	return 0;
}

static int
ensure_items(shmq_producer_t *p, size_t n)
{
	if (n <= p->items_cap) {
		return 0;
	}
	size_t cap = n < BATCH_ITEMS_MIN ? BATCH_ITEMS_MIN : n;
	struct rsv_item *it = realloc(p->items, cap * sizeof *it);
	if (it == NULL) {
		return -ENOMEM;
	}
	p->items = it;
	p->items_cap = cap;
	return 0;
}

/* Append msgs[0..n), all for partition `part`, as one reservation.
 * Returns how many were appended: n, or fewer if a commit was refused
 * (we stalled past stall_ms and were reclaimed), in which case the
 * rest of the run is aborted rather than left reserved.  A negative
 * error if none was. */
static ssize_t
append_run(shmq_producer_t *p, uint32_t part, shmq_msg_t *msgs, size_t n)
{
	struct ring *r = &p->rings[part];
	uint64_t first;
	size_t done = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		p->items[i].key_len = (uint32_t)msgs[i].key_len;
		p->items[i].value_len = (uint32_t)msgs[i].value_len;
	}
	if ((rc = reserve(p, r, p->items, n, &first)) != 0) {
		if (rc == SHMQ_EFENCED) {
			shmqi_idem_set_fenced(p);
		}
		return rc;
	}
	SHMQI_POINT(POINT_AFTER_RESERVE);
	int64_t now = shmqi_now_ns();
	for (; done < n; done++) {
		struct rec_hdr *rh = shmqi_rec_at(r, p->items[done].pos);
		uint8_t *d = (uint8_t *)(rh + 1);
		shmq_msg_t *m = &msgs[done];
		if (m->key_len != 0) {
			memcpy(d, m->key, m->key_len);
		}
		SHMQI_POINT(POINT_MID_COPY);
		if (m->value_len != 0) {
			memcpy(d + m->key_len, m->value, m->value_len);
		}
		m->timestamp = m->timestamp ? m->timestamp : now;
		rh->rec_timestamp = m->timestamp;
		if (p->idem != NULL) {
			shmqi_idem_stamp(p, part, rh, done, m);
		}
		m->partition = (int32_t)part;
		m->offset = first + done;
		SHMQI_POINT(POINT_BEFORE_COMMIT);
		if ((rc = shmqi_ring_commit_rec(r, p->items[done].pos)) != 0) {
			break;
		}
	}
	for (size_t j = done + 1; j < n; j++) {
		(void)shmqi_ring_abort_rec(r, p->items[j].pos);
	}
	SHMQI_POINT(POINT_AFTER_COMMIT);
	if (p->idem != NULL) {
		shmqi_idem_appended(p, part, first, done);
	}
	if (done == n) {
		/* The whole run is ours and complete. */
		const struct rsv_item *last = &p->items[n - 1];
		shmqi_ring_advance_over(r, p->items[0].pos,
		    last->pos +
		        shmqi_align8(sizeof(struct rec_hdr) + last->key_len +
		            last->value_len));
	} else {
		shmqi_ring_advance(r);
	}
	if (done == 0) {
		return rc;
	}
	if (p->acks >= SHMQ_ACKS_LEADER) {
		(void)wait_visible(p, r, p->items[done - 1].pos);
	}
	if (p->acks == SHMQ_ACKS_DURABLE &&
	    (rc = wait_durable(p, r, p->items[done - 1].pos)) != 0) {
		return rc;
	}
	return (ssize_t)done;
}

/* An idempotent producer's message that repeats a sequence: nothing is
 * appended; the original record is waited for as a new one would be. */
static int
send_repeat(shmq_producer_t *p, uint32_t part, shmq_msg_t *m)
{
	uint64_t pos;
	int rc = shmqi_idem_repeat(p, part, m, &pos);
	if (rc != 0 || pos == UINT64_MAX) {
		return rc; /* out of the ring: a persistent one's is on disk */
	}
	struct ring *r = &p->rings[part];
	if (p->acks >= SHMQ_ACKS_LEADER) {
		(void)wait_visible(p, r, pos);
	}
	if (p->acks == SHMQ_ACKS_DURABLE) {
		rc = wait_durable(p, r, pos);
	}
	return rc;
}

/* Append msgs[0..n) (one partition) once.  For an idempotent producer
 * only the leading run of fresh sequences goes in one reservation; a
 * repeated first sequence is answered from the producer's window. */
static ssize_t
send_run(shmq_producer_t *p, uint32_t part, shmq_msg_t *msgs, size_t n,
    size_t *tried)
{
	*tried = n;
	if (p->idem != NULL) {
		int rc = shmqi_idem_ready(p, part);
		if (rc != 0) {
			return rc;
		}
		size_t fresh = shmqi_idem_fresh(p, part, msgs, n);
		if (fresh == 0) {
			*tried = 1;
			rc = send_repeat(p, part, &msgs[0]);
			return rc != 0 ? rc : 1;
		}
		*tried = n = fresh;
	}
	return append_run(p, part, msgs, n);
}

static int
send_once(shmq_producer_t *p, shmq_msg_t *m)
{
	uint32_t part;
	int rc;
	if ((rc = check_msg(p, m)) != 0 ||
	    (rc = pick_partition(p, m, &part)) || (rc = ensure_items(p, 1))) {
		return rc;
	}
	size_t tried;
	ssize_t k = send_run(p, part, m, 1, &tried);
	return k == 1 ? 0 : (int)k;
}

/* Kafka's retriable errors: the record may go in if sent again (a full
 * ring drains, a persister comes back, a stalled slice is re-sent). */
static bool
retriable(int rc)
{
	return rc == -EAGAIN || rc == -ETIMEDOUT || rc == SHMQ_ENOREPLICATOR ||
	    rc == SHMQ_EFAILED || rc == SHMQ_ERECLAIMED;
}

/* Between attempts: the producer's own backoff, not a synchronisation. */
static void
backoff(shmq_producer_t *p, int *ms)
{
	struct timespec ts = { *ms / 1000, (long)(*ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	*ms =
	    (int64_t)*ms * 2 > p->backoff_max_ms ? p->backoff_max_ms : *ms * 2;
}

/* A message's partition, once it is found valid.  Picked exactly once
 * per message, in order: the sticky partition counts them. */
static int
msg_part(shmq_producer_t *p, shmq_msg_t *m, uint32_t *part)
{
	int rc = check_msg(p, m);
	return rc != 0 ? rc : pick_partition(p, m, part);
}

/* Fix msgs[0..n) to their partition and sequence before the first
 * attempt, so that every retry repeats them exactly: a record an attempt
 * appended is then answered by the window, never appended again, and a
 * later record can never overtake an earlier one.  Returns how many
 * were pinned (a bad message ends the batch, its error in *bad);
 * pinned[i] says the sequence was ours to pick (cleared afterwards). */
static size_t
pin_batch(
    shmq_producer_t *p, shmq_msg_t *msgs, size_t n, bool *pinned, int *bad)
{
	size_t i = 0;
	*bad = 0;
	shmqi_idem_pin_begin(p);
	for (; i < n; i++) {
		uint32_t part;
		if ((*bad = msg_part(p, &msgs[i], &part)) != 0 ||
		    (*bad = shmqi_idem_pin(p, part, &msgs[i], &pinned[i])) !=
		        0) {
			break;
		}
		msgs[i].partition = (int32_t)part;
	}
	return i;
}

static ssize_t send_batch_once(shmq_producer_t *p, shmq_msg_t *msgs, size_t n);

#define PIN_STACK 16 /* flags of small batches stay off the heap */

/* Pin (until at least the first message is pinned), send what is
 * pinned, and on a retriable error back off and go again, at most
 * `retries` times.  Returns how many were sent (the rest says its error
 * on the next call, as shmq_send_batch does), or the last error. */
static ssize_t
send_retrying(shmq_producer_t *p, shmq_msg_t *msgs, size_t n)
{
	bool stack[PIN_STACK] = { false };
	bool *pinned = n <= PIN_STACK ? stack : calloc(n, sizeof *pinned);
	int bad, ms = p->backoff_ms;
	size_t todo = 0, done = 0;
	ssize_t rc = 0;
	if (n == 0 || pinned == NULL) {
		return n == 0 ? 0 : -ENOMEM;
	}
	for (int tries = 0;; tries++) {
		if (todo == 0) {
			/* Pinning reads a partition's log back at its first
			 * send, which may time out: retriable too. */
			todo = pin_batch(p, msgs, n, pinned, &bad);
			rc = bad;
		}
		while (done < todo &&
		    (rc = send_batch_once(p, msgs + done, todo - done)) > 0) {
			done += (size_t)rc;
		}
		if ((todo > 0 && done == todo) || !retriable((int)rc) ||
		    (p->retries >= 0 && tries >= p->retries)) {
			break;
		}
		backoff(p, &ms);
	}
	for (size_t i = 0; i < todo; i++) {
		if (pinned[i]) {
			/* The caller sent it once: a copy an earlier attempt
			 * of this call appended is not a duplicate to them. */
			msgs[i].flags &=
			    ~(SHMQ_MSG_SEQUENCE | SHMQ_MSG_DUPLICATE);
		}
	}
	if (pinned != stack) {
		free(pinned);
	}
	return done > 0 ? (ssize_t)done : rc;
}

int
shmq_send(shmq_producer_t *p, shmq_msg_t *m)
{
	if (p == NULL || m == NULL) {
		return -EINVAL;
	}
	if (p->retries != 0) {
		ssize_t k = send_retrying(p, m, 1);
		return k == 1 ? 0 : (int)k;
	}
	return send_once(p, m);
}

static ssize_t
send_batch_once(shmq_producer_t *p, shmq_msg_t *msgs, size_t n)
{
	size_t done = 0, end = 0;
	uint32_t part = 0, next = 0;
	int rc = 0, bad = 0;

	if ((rc = ensure_items(p, n)) != 0) {
		return rc;
	}
	/* Runs of consecutive messages for one partition go as one
	 * reservation each.  msgs[done, end) are checked and go to
	 * `part`; msgs[end] (if end < n) is checked and goes to `next`.
	 * A bad message ends the batch: what precedes it is sent. */
	if (n > 0 && (bad = msg_part(p, &msgs[0], &next)) != 0) {
		n = 0;
	}
	while (done < n) {
		if (done == end) {
			part = next;
			end++;
			while (end < n &&
			    (bad = msg_part(p, &msgs[end], &next)) == 0 &&
			    next == part) {
				end++;
			}
			if (bad != 0) {
				n = end;
			}
		}
		size_t run = end - done, tried;
		ssize_t k = send_run(p, part, msgs + done, run, &tried);
		while (k == -EMSGSIZE && tried > 1) {
			run = tried / 2; /* more than half a ring: split */
			k = send_run(p, part, msgs + done, run, &tried);
		}
		if (k < 0) {
			rc = (int)k;
			break;
		}
		done += (size_t)k;
		if ((size_t)k < tried) {
			rc = SHMQ_ERECLAIMED;
			break;
		}
	}
	return done > 0 ? (ssize_t)done : rc != 0 ? rc : bad;
}

ssize_t
shmq_send_batch(shmq_producer_t *p, shmq_msg_t *msgs, size_t n)
{
	if (p == NULL || (msgs == NULL && n != 0)) {
		return -EINVAL;
	}
	return p->retries != 0 ? send_retrying(p, msgs, n)
	                       : send_batch_once(p, msgs, n);
}

void (*volatile shmqi_test_hook)(int point);

#define SLICE_MAGIC 0x51c3000000000000ull

/* Open slices, so that close can abort them. */
static int
slice_track(shmq_producer_t *p, uint32_t part, uint64_t pos)
{
	if (p->nopen == p->open_cap) {
		size_t cap = p->open_cap ? p->open_cap * 2 : 8;
		void *o = realloc(p->open, cap * sizeof *p->open);
		if (o == NULL) {
			return -ENOMEM;
		}
		p->open = o;
		p->open_cap = cap;
	}
	p->open[p->nopen].part = part;
	p->open[p->nopen].pos = pos;
	p->nopen++;
	return 0;
}

static void
slice_untrack(shmq_producer_t *p, uint32_t part, uint64_t pos)
{
	for (size_t k = 0; k < p->nopen; k++) {
		if (p->open[k].part == part && p->open[k].pos == pos) {
			p->open[k] = p->open[--p->nopen];
			return;
		}
	}
}

int
shmq_reserve(shmq_producer_t *p, int32_t partition, size_t key_len,
    size_t value_len, shmq_slice_t *s)
{
	shmq_msg_t m = { .key_len = key_len,
		.value_len = value_len,
		.partition = partition };
	uint32_t part;
	uint64_t first;
	int rc;

	/* An idempotent producer's slice would get no sequence (see
	 * SHMQ_PRODUCER_IDEMPOTENT): refused rather than left out. */
	if (p == NULL || s == NULL || key_len > REC_KEY_MAX ||
	    p->idem != NULL) {
		return -EINVAL;
	}
	/* Lengths only: check_msg must not see NULL data as an error. */
	m.key = key_len ? (const void *)s : NULL;
	m.value = (const void *)s;
	if ((rc = check_msg(p, &m)) != 0) {
		return rc;
	}
	m.key = NULL; /* no key yet: ANY means the sticky partition */
	if ((rc = pick_partition(p, &m, &part)) != 0 ||
	    (rc = ensure_items(p, 1)) != 0) {
		return rc;
	}
	struct ring *r = &p->rings[part];
	p->items[0].key_len = (uint32_t)key_len;
	p->items[0].value_len = (uint32_t)value_len;
	if ((rc = reserve(p, r, p->items, 1, &first)) != 0) {
		return rc;
	}
	struct rec_hdr *rh = shmqi_rec_at(r, p->items[0].pos);
	memset(s, 0, sizeof *s);
	s->key = rh + 1;
	s->value = (uint8_t *)(rh + 1) + key_len;
	s->key_len = key_len;
	s->value_len = value_len;
	s->partition = (int32_t)part;
	s->offset = first;
	s->opaque_[0] = p->items[0].pos;
	s->opaque_[1] = SLICE_MAGIC | part;
	if ((rc = slice_track(p, part, p->items[0].pos)) != 0) {
		(void)shmqi_ring_abort_rec(r, p->items[0].pos);
		shmqi_ring_advance(r);
		memset(s, 0, sizeof *s);
	}
	return rc;
}

static int
slice_ring(shmq_producer_t *p, const shmq_slice_t *s, struct ring **r)
{
	if (p == NULL || s == NULL ||
	    (s->opaque_[1] & ~0xffffffffull) != SLICE_MAGIC ||
	    (uint32_t)s->opaque_[1] >= p->nrings) {
		return -EINVAL;
	}
	*r = &p->rings[(uint32_t)s->opaque_[1]];
	if (!shmqi_hdr_fits(*r, s->opaque_[0])) {
		return -EINVAL;
	}
	struct rec_hdr *rh = shmqi_rec_at(*r, s->opaque_[0]);
	if (rh->rec_offset != s->offset) {
		return SHMQ_ERECLAIMED;
	}
	return 0;
}

int
shmq_commit(shmq_producer_t *p, shmq_slice_t *s)
{
	struct ring *r;
	int rc = slice_ring(p, s, &r);
	if (rc != 0) {
		return rc;
	}
	slice_untrack(p, (uint32_t)s->opaque_[1], s->opaque_[0]);
	shmqi_rec_at(r, s->opaque_[0])->rec_timestamp = shmqi_now_ns();
	rc = shmqi_ring_commit_rec(r, s->opaque_[0]);
	shmqi_ring_advance(r);
	if (rc == 0 && p->acks >= SHMQ_ACKS_LEADER) {
		(void)wait_visible(p, r, s->opaque_[0]);
	}
	if (rc == 0 && p->acks == SHMQ_ACKS_DURABLE) {
		rc = wait_durable(p, r, s->opaque_[0]);
	}
	s->opaque_[1] = 0; /* a slice is committed once */
	return rc;
}

int
shmq_abort(shmq_producer_t *p, shmq_slice_t *s)
{
	struct ring *r;
	int rc = slice_ring(p, s, &r);
	if (rc != 0) {
		return rc;
	}
	slice_untrack(p, (uint32_t)s->opaque_[1], s->opaque_[0]);
	rc = shmqi_ring_abort_rec(r, s->opaque_[0]);
	shmqi_ring_advance(r);
	s->opaque_[1] = 0;
	return rc;
}
