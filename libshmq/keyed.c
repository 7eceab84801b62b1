/*
 * keyed.c — order with parallelism: one consumer's records go to N
 * worker threads by key, so that records with the same key are
 * processed in order by one worker and different keys in parallel, and
 * the group commit never passes a record that has not finished (the
 * pattern of Confluent's parallel consumer, and what a Kafka team
 * otherwise writes by hand around poll()).
 *
 * The caller's thread is the dispatcher: it alone touches the consumer
 * (shmq_consumer_t is not thread-safe), reading records, copying each
 * into a work item, and queueing it to worker hash(key) % N.  Each
 * worker has a bounded FIFO, so a slow key holds up only the keys that
 * share its worker once that FIFO is full.  A record without a key is
 * ordered by its partition instead.
 *
 * Commits: per partition, the records dispatched and not yet retired
 * sit in a FIFO in offset order (the order the consumer returned
 * them).  A worker marks its record's entry done; the dispatcher pops
 * done entries from the head, and commits the offset of the first
 * entry not done, or the one after the last dispatched when none is
 * left: the lowest offset not yet processed.  So a crash at any moment
 * leaves a committed offset below every record that had not finished:
 * those are read again (at-least-once), none is skipped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define KEYED_BATCH 1024 /* records one poll dispatches at most */
#define KEYED_FIFO_MAX 65536 /* entries per partition at most */
#define KEYED_SLICE_MS 10 /* waits are cut into slices: commits go on */

enum { E_RUNNING = 0, E_DONE = 1, E_FAILED = 2 };

/* A dispatched record, as its partition's FIFO holds it. */
struct kentry {
	uint64_t offset;
	_Atomic int state; /* E_*: set by the worker, read by dispatcher */
};

struct kpart {
	struct kentry *e; /* ring of cap entries */
	size_t cap, head, count;
	uint64_t next; /* offset after the last dispatched */
	uint64_t committed; /* last offset committed, UINT64_MAX: none */
};

struct kwork {
	shmq_record_t r;
	struct kentry *entry;
	unsigned char data[]; /* key, then value */
};

struct kworker {
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct kwork **q; /* ring of `depth` items */
	size_t head, count;
	struct shmq_keyed *k;
	unsigned idx;
	bool started;
};

struct shmq_keyed {
	shmq_consumer_t *c;
	shmq_keyed_fn fn;
	void *arg;
	unsigned nworkers;
	size_t depth;
	struct kworker *w;
	struct kpart *parts[SHMQ_PARTITIONS_MAX];
	void *buf; /* the dispatcher's read buffer */
	size_t cap;
	struct kwork *pending; /* read, not yet queued (a FIFO was full) */
	unsigned pending_worker;
	bool pending_tracked; /* it has its entry in its partition's FIFO */
	_Atomic int err; /* the first error a worker's fn returned */
	_Atomic bool stop;
	/* Records queued or being processed; drain waits for 0. */
	pthread_mutex_t idle_mu;
	pthread_cond_t idle_cv;
	size_t inflight;
};

void
shmq_keyed_options_init(shmq_keyed_options_t *o)
{
	if (o == NULL) {
		return;
	}
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->workers = 4;
	o->queue = 256;
}

/* FNV-1a: stable across processes and runs, so a key keeps its worker
 * for the life of the facility. */
static uint32_t
key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

static unsigned
pick_worker(const struct shmq_keyed *k, const shmq_record_t *r)
{
	if (r->key_len == 0) {
		uint32_t part = r->partition;
		return key_hash(&part, sizeof part) % k->nworkers;
	}
	return key_hash(r->key, r->key_len) % k->nworkers;
}

/* Every change wakes the dispatcher if it waits: for all work to end
 * (drain), or for some to (a partition's FIFO is full). */
static void
idle_add(struct shmq_keyed *k, long d)
{
	pthread_mutex_lock(&k->idle_mu);
	k->inflight = (size_t)((long)k->inflight + d);
	pthread_cond_broadcast(&k->idle_cv);
	pthread_mutex_unlock(&k->idle_mu);
}

/* Condition variables on CLOCK_MONOTONIC: a clock step does not
 * stretch or cut a wait (deadline_in). */
static void
cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static void
deadline_in(struct timespec *dl, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, dl);
	if (ms > 0) {
		dl->tv_sec += ms / 1000;
		dl->tv_nsec += (long)(ms % 1000) * 1000000;
		if (dl->tv_nsec >= 1000000000) {
			dl->tv_sec++;
			dl->tv_nsec -= 1000000000;
		}
	}
}

/* Wait up to ms for some record to finish. */
static void
wait_progress(struct shmq_keyed *k, int ms)
{
	struct timespec dl;
	deadline_in(&dl, ms);
	pthread_mutex_lock(&k->idle_mu);
	size_t was = k->inflight;
	while (k->inflight == was && was > 0) {
		if (pthread_cond_timedwait(&k->idle_cv, &k->idle_mu, &dl) !=
		    0) {
			break;
		}
	}
	pthread_mutex_unlock(&k->idle_mu);
}

static void *
worker_main(void *arg)
{
	struct kworker *w = arg;
	struct shmq_keyed *k = w->k;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->count == 0 && !atomic_load(&k->stop)) {
			pthread_cond_wait(&w->not_empty, &w->mu);
		}
		if (w->count == 0) {
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		struct kwork *it = w->q[w->head];
		w->head = (w->head + 1) % k->depth;
		w->count--;
		pthread_cond_signal(&w->not_full);
		pthread_mutex_unlock(&w->mu);

		/* Once a record failed, nothing more runs: a later record
		 * of the failed one's key would break that key's order when
		 * the failed one is delivered again. */
		int rc = atomic_load(&k->err);
		if (rc == 0) {
			rc = k->fn(&it->r, k->arg, w->idx);
		}
		if (rc != 0) {
			int none = 0;
			atomic_compare_exchange_strong(
			    &k->err, &none, rc < 0 ? rc : -EIO);
		}
		/* Release: pairs with the dispatcher's acquire load in
		 * retire(); whatever fn did happens before the commit that
		 * passes this record. */
		atomic_store_explicit(&it->entry->state,
		    rc == 0 ? E_DONE : E_FAILED, memory_order_release);
		free(it);
		idle_add(k, -1);
	}
}

static struct kpart *
part_get(struct shmq_keyed *k, uint32_t p)
{
	if (p >= SHMQ_PARTITIONS_MAX) {
		return NULL;
	}
	if (k->parts[p] == NULL) {
		struct kpart *kp = calloc(1, sizeof *kp);
		/* Done entries stay behind an unfinished one, so the FIFO can
		 * hold more than the queues do; when it is full the
		 * dispatcher waits (track). */
		size_t cap = 4 * k->nworkers * (k->depth + 1) + 2;
		cap = cap < KEYED_FIFO_MAX ? cap : KEYED_FIFO_MAX;
		if (kp == NULL ||
		    (kp->e = calloc(cap, sizeof *kp->e)) == NULL) {
			free(kp);
			return NULL;
		}
		kp->cap = cap;
		kp->committed = UINT64_MAX;
		k->parts[p] = kp;
	}
	return k->parts[p];
}

/* Pop what finished and commit the lowest offset not yet processed. */
static int
retire(struct shmq_keyed *k, uint32_t p, struct kpart *kp)
{
	while (kp->count > 0 &&
	    atomic_load_explicit(
	        &kp->e[kp->head].state, memory_order_acquire) == E_DONE) {
		kp->head = (kp->head + 1) % kp->cap;
		kp->count--;
	}
	uint64_t low = kp->count > 0 ? kp->e[kp->head].offset : kp->next;
	if (low == kp->committed) {
		return 0;
	}
	int rc = shmq_consumer_commit_offset(k->c, p, low);
	if (rc == SHMQ_ENOTOWNER) {
		/* Rebalanced away: the new owner starts from our last
		 * commit, so what we still finish is processed twice at
		 * worst, never skipped.  Nothing is remembered: if the
		 * partition comes back, the next retire commits again. */
		return 0;
	}
	if (rc == 0) {
		kp->committed = low;
	}
	return rc;
}

static int
retire_all(struct shmq_keyed *k)
{
	int first = 0;
	for (uint32_t p = 0; p < SHMQ_PARTITIONS_MAX; p++) {
		if (k->parts[p] != NULL) {
			int rc = retire(k, p, k->parts[p]);
			first = first != 0 ? first : rc;
		}
	}
	return first;
}

/* Wait until every queued record has been processed (or ms pass; -1:
 * no limit).  0, or -ETIMEDOUT. */
static int
wait_idle(struct shmq_keyed *k, int ms)
{
	struct timespec dl;
	deadline_in(&dl, ms);
	int rc = 0;
	pthread_mutex_lock(&k->idle_mu);
	while (k->inflight > 0 && rc == 0) {
		rc = ms < 0
		    ? pthread_cond_wait(&k->idle_cv, &k->idle_mu)
		    : pthread_cond_timedwait(&k->idle_cv, &k->idle_mu, &dl);
	}
	pthread_mutex_unlock(&k->idle_mu);
	return rc == 0 ? 0 : -ETIMEDOUT;
}

static void
stop_workers(struct shmq_keyed *k)
{
	atomic_store(&k->stop, true);
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *w = &k->w[i];
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->not_empty);
		pthread_mutex_unlock(&w->mu);
		if (w->started) {
			pthread_join(w->tid, NULL);
			w->started = false;
		}
	}
}

static void
keyed_free(struct shmq_keyed *k)
{
	stop_workers(k);
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *w = &k->w[i];
		for (size_t j = 0; j < w->count; j++) {
			free(w->q[(w->head + j) % k->depth]);
		}
		free(w->q);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->not_empty);
		pthread_cond_destroy(&w->not_full);
	}
	for (uint32_t p = 0; p < SHMQ_PARTITIONS_MAX; p++) {
		if (k->parts[p] != NULL) {
			free(k->parts[p]->e);
			free(k->parts[p]);
		}
	}
	free(k->pending);
	free(k->w);
	free(k->buf);
	pthread_mutex_destroy(&k->idle_mu);
	pthread_cond_destroy(&k->idle_cv);
	free(k);
}

int
shmq_keyed_open(shmq_consumer_t *c, const shmq_keyed_options_t *opts,
    shmq_keyed_fn fn, void *arg, shmq_keyed_t **out)
{
	shmq_keyed_options_t o;
	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	shmq_keyed_options_init(&o);
	if (opts != NULL) {
		if (opts->size < offsetof(shmq_keyed_options_t, queue) +
		        sizeof opts->queue) {
			return -EINVAL;
		}
		o.workers = opts->workers;
		o.queue = opts->queue;
	}
	/* The commit is the point: a group consumer, committing only
	 * through us (its own auto-commit would pass running records). */
	if (c != NULL &&
	    (!c->in_group || (c->flags & SHMQ_CONSUMER_AUTO_COMMIT))) {
		return -EINVAL;
	}
	if (c == NULL || fn == NULL || o.workers == 0 ||
	    o.workers > SHMQ_KEYED_WORKERS_MAX || o.queue == 0 ||
	    o.queue > SHMQ_KEYED_QUEUE_MAX) {
		return -EINVAL;
	}
	struct shmq_keyed *k = calloc(1, sizeof *k);
	if (k == NULL) {
		return -ENOMEM;
	}
	k->c = c;
	k->fn = fn;
	k->arg = arg;
	k->nworkers = o.workers;
	k->depth = o.queue;
	pthread_mutex_init(&k->idle_mu, NULL);
	cond_init(&k->idle_cv);
	k->cap = 4096;
	k->buf = malloc(k->cap);
	k->w = calloc(o.workers, sizeof *k->w);
	if (k->buf == NULL || k->w == NULL) {
		free(k->buf);
		free(k->w);
		free(k);
		return -ENOMEM;
	}
	int rc = 0;
	for (unsigned i = 0; i < o.workers; i++) {
		struct kworker *w = &k->w[i];
		pthread_mutex_init(&w->mu, NULL);
		cond_init(&w->not_empty);
		cond_init(&w->not_full);
		w->k = k;
		w->idx = i;
		w->q = calloc(o.queue, sizeof *w->q);
		if (w->q == NULL) {
			rc = -ENOMEM;
		}
	}
	for (unsigned i = 0; i < o.workers && rc == 0; i++) {
		int e =
		    pthread_create(&k->w[i].tid, NULL, worker_main, &k->w[i]);
		if (e != 0) {
			rc = -e;
		} else {
			k->w[i].started = true;
		}
	}
	if (rc != 0) {
		keyed_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy the record the consumer returned into a work item. */
static struct kwork *
work_new(const shmq_record_t *r)
{
	struct kwork *it = malloc(sizeof *it + r->key_len + r->value_len + 1);
	if (it == NULL) {
		return NULL;
	}
	it->r = *r;
	memcpy(it->data, r->key, r->key_len);
	memcpy(it->data + r->key_len, r->value, r->value_len);
	it->r.key = r->key_len > 0 ? it->data : NULL;
	it->r.value = it->data + r->key_len;
	return it;
}

/* Queue the pending item to its worker; false if that worker's FIFO
 * stayed full for `ms` (0: don't wait). */
static bool
enqueue(struct shmq_keyed *k, int ms)
{
	struct kworker *w = &k->w[k->pending_worker];
	struct timespec dl;
	deadline_in(&dl, ms);
	pthread_mutex_lock(&w->mu);
	while (w->count == k->depth && ms != 0) {
		int e = ms < 0
		    ? pthread_cond_wait(&w->not_full, &w->mu)
		    : pthread_cond_timedwait(&w->not_full, &w->mu, &dl);
		if (e != 0) {
			break;
		}
	}
	bool ok = w->count < k->depth;
	if (ok) {
		w->q[(w->head + w->count) % k->depth] = k->pending;
		w->count++;
		pthread_cond_signal(&w->not_empty);
		k->pending = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* Give the record its entry in its partition's FIFO.  -EAGAIN (try
 * again after some work finished) when the FIFO is full, or when the
 * consumer went back on the partition (a rebalance gave it back, or a
 * seek) while records of it are still in flight: the FIFO's offset
 * order would break, so those finish first and the partition starts
 * over. */
static int
track(struct shmq_keyed *k, struct kwork *it)
{
	uint32_t p = it->r.partition;
	struct kpart *kp = part_get(k, p);
	if (kp == NULL) {
		return -ENOMEM;
	}
	int rc = retire(k, p, kp);
	if (rc != 0) {
		return rc;
	}
	if (kp->count > 0 && it->r.offset < kp->next) {
		return -EAGAIN;
	}
	if (kp->count == 0 && it->r.offset < kp->next) {
		kp->head = 0;
		kp->committed = UINT64_MAX; /* commit the new low again */
	}
	if (kp->count == kp->cap) {
		return -EAGAIN;
	}
	struct kentry *e = &kp->e[(kp->head + kp->count) % kp->cap];
	e->offset = it->r.offset;
	/* Relaxed: the worker sees it through its FIFO's mutex. */
	atomic_store_explicit(&e->state, E_RUNNING, memory_order_relaxed);
	kp->count++;
	kp->next = it->r.offset + 1;
	it->entry = e;
	return 0;
}

/* The next record, waiting up to `ms` (-1: no limit) in slices, with
 * the finished work committed between them: on a `block` topic the
 * producer may be waiting for exactly that commit. */
static int
recv_sliced(struct shmq_keyed *k, shmq_record_t *r, int ms)
{
	int64_t end = mono_ms() + (ms > 0 ? ms : 0);
	for (;;) {
		int slice = ms == 0 ? 0 : KEYED_SLICE_MS;
		if (ms > 0) {
			int64_t left = end - mono_ms();
			slice =
			    left < slice ? (int)(left > 0 ? left : 0) : slice;
		}
		int rc = shmq_recv(k->c, k->buf, k->cap, r, slice);
		if (rc == -EMSGSIZE) {
			size_t need = r->key_len + r->value_len;
			void *nb = malloc(need);
			if (nb == NULL) {
				return -ENOMEM;
			}
			free(k->buf);
			k->buf = nb;
			k->cap = need;
			continue;
		}
		if (rc != -EAGAIN || ms == 0 || (ms > 0 && mono_ms() >= end)) {
			return rc;
		}
		if ((rc = retire_all(k)) != 0 ||
		    (rc = atomic_load(&k->err)) != 0) {
			return rc;
		}
	}
}

ssize_t
shmq_keyed_poll(shmq_keyed_t *k, int timeout_ms)
{
	if (k == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	ssize_t n = 0;
	int rc = 0;
	int64_t end = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	/* May this call still wait (for room, or for work to finish)? */
#define KEYED_CAN_WAIT (timeout_ms < 0 || (timeout_ms > 0 && mono_ms() < end))
	while (n < KEYED_BATCH && (rc = atomic_load(&k->err)) == 0) {
		if (k->pending == NULL) {
			shmq_record_t r;
			int64_t left = end - mono_ms();
			int wait = n > 0     ? 0
			    : timeout_ms < 0 ? -1
			    : left > 0       ? (int)left
			                     : 0;
			rc = recv_sliced(k, &r, wait);
			if (rc != 0) {
				break;
			}
			struct kwork *it = work_new(&r);
			if (it == NULL) {
				/* Give the record back: read again next time.
				 */
				(void)shmq_seek(k->c, r.partition, r.offset);
				rc = -ENOMEM;
				break;
			}
			k->pending = it;
			k->pending_tracked = false;
			k->pending_worker = pick_worker(k, &it->r);
		}
		if (!k->pending_tracked) {
			rc = track(k, k->pending);
			if (rc == -EAGAIN) {
				if (!KEYED_CAN_WAIT) {
					break; /* it stays pending */
				}
				wait_progress(k, KEYED_SLICE_MS);
				continue;
			}
			if (rc != 0) {
				break;
			}
			k->pending_tracked = true;
			idle_add(k, 1);
		}
		/* A full worker FIFO: commit what finished while we wait, a
		 * slice at a time; past the timeout the record stays
		 * pending for the next call. */
		bool queued;
		while (!(queued = enqueue(
		             k, KEYED_CAN_WAIT ? KEYED_SLICE_MS : 0))) {
			if ((rc = retire_all(k)) != 0 ||
			    (rc = atomic_load(&k->err)) != 0 ||
			    !KEYED_CAN_WAIT) {
				break;
			}
		}
		if (!queued) {
			break;
		}
		n++;
	}
#undef KEYED_CAN_WAIT
	if (rc == -EAGAIN) {
		rc = 0;
	}
	int crc = retire_all(k);
	rc = rc != 0 ? rc : crc;
	if (rc == 0) {
		rc = atomic_load(&k->err);
	}
	return rc != 0 ? rc : n;
}

int
shmq_keyed_drain(shmq_keyed_t *k, int timeout_ms)
{
	if (k == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	int64_t end = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;
	while (k->pending != NULL && (rc = atomic_load(&k->err)) == 0) {
		bool late = timeout_ms >= 0 && mono_ms() >= end;
		if (!k->pending_tracked) {
			rc = track(k, k->pending);
			if (rc == -EAGAIN) {
				if (late) {
					return -ETIMEDOUT;
				}
				wait_progress(k, KEYED_SLICE_MS);
				continue;
			}
			if (rc != 0) {
				return rc;
			}
			k->pending_tracked = true;
			idle_add(k, 1);
		}
		if (!enqueue(k, late ? 0 : KEYED_SLICE_MS)) {
			if ((rc = retire_all(k)) != 0) {
				return rc;
			}
			if (late) {
				return -ETIMEDOUT;
			}
		}
	}
	if (rc == 0) {
		int64_t left = end - mono_ms();
		rc = wait_idle(k,
		    timeout_ms < 0 ? -1
		        : left > 0 ? (int)left
		                   : 0);
	}
	int crc = retire_all(k);
	int err = atomic_load(&k->err);
	return err != 0 ? err : rc != 0 ? rc : crc;
}

int
shmq_keyed_close(shmq_keyed_t *k)
{
	if (k == NULL) {
		return 0;
	}
	/* What is queued is processed (the workers empty their FIFOs
	 * before they stop), then committed; a pending record that never
	 * reached a FIFO is not, and is read again by whoever comes next. */
	stop_workers(k);
	int rc = retire_all(k);
	int err = atomic_load(&k->err);
	/* The consumer has read past what was not processed (the failed
	 * record and what came after it, a pending record): send it back
	 * to the lowest such offset per partition, so that whoever uses
	 * it next (a new keyed facility, or shmq_recv) reads them again
	 * instead of committing past them. */
	for (uint32_t p = 0; p < SHMQ_PARTITIONS_MAX; p++) {
		struct kpart *kp = k->parts[p];
		if (kp != NULL) {
			uint64_t low =
			    kp->count > 0 ? kp->e[kp->head].offset : kp->next;
			(void)shmq_seek(k->c, p, low);
		}
	}
	if (k->pending != NULL) {
		if (k->parts[k->pending->r.partition] == NULL) {
			(void)shmq_seek(k->c, k->pending->r.partition,
			    k->pending->r.offset);
		}
		if (k->pending_tracked) {
			idle_add(k, -1);
		}
	}
	keyed_free(k);
	return err != 0 ? err : rc;
}
