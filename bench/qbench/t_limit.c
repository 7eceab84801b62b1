/*
 * t_limit.c — what no queue between two processes can beat.
 *
 * limit-spsc: a bare single-producer, single-consumer byte ring in
 *   shared memory.  One copy in, one copy out, busy-spinning, no CRC, no
 *   persistence, no bookkeeping: the ceiling for any shared-memory queue
 *   that copies (shmq copies too).
 * limit-futex: one message slot and a futex wait/wake per message,
 *   never spinning: the floor of a parked hand-off (PINGPONG only).
 * --limit memcpy: one process copying a buffer, the bandwidth any
 *   copying transport divides.
 * --limit cacheline: one cache line bounced between a process on CPU 0
 *   and one on CPU 1: the floor of any cross-core round trip.  Each
 *   sample includes one clock read (about 20 ns with the vDSO).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define LINE 64

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* Busy waiting on one CPU would only wait out the other process's time
 * slice; with fewer than two CPUs the spinners yield instead. */
static void
spin(int yield)
{
	if (yield) {
		sched_yield();
	} else {
		cpu_relax();
	}
}

static void *
map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A limit channel's state is one shared mapping that starts with its
 * own length, so that one open(), close() and cleanup() serve both. */
struct lim_map {
	size_t len;
};

/* One end of a limit channel. */
struct lim_chan {
	void *shm; /* the channel's struct spsc or struct fslot */
	/* limit-spsc */
	uint64_t mine; /* head (sender) or tail (receiver) */
	uint64_t theirs; /* last seen tail (sender) or head (receiver) */
	/* limit-futex */
	uint32_t n; /* messages this end has passed */
};

static int
lim_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	struct lim_chan *ch = calloc(1, sizeof *ch);

	(void)c;
	(void)id;
	(void)role;
	(void)who;
	if (ch == NULL) {
		return -ENOMEM;
	}
	ch->shm = state;
	*out = (struct qb_chan *)(void *)ch;
	return 0;
}

static void
lim_close(struct qb_chan *qc)
{
	free(qc);
}

static void
lim_cleanup(const struct qb_cfg *c, int id, void *state)
{
	struct lim_map *m = state;

	(void)c;
	(void)id;
	munmap(m, m->len);
}

/* ---- limit-spsc ------------------------------------------------------ */

/*
 * head and tail count bytes ever written and read; each lives on its
 * own cache line, and each side keeps a private copy of the other's
 * index, so the lines move only when a side has run out of what it knew.
 * Messages sit back to back, wrapping at the end of the data area; the
 * consumer frames them by hdr.len, as a stream transport would.
 */
struct spsc {
	struct lim_map map; /* first, for lim_cleanup() */
	_Alignas(LINE) _Atomic uint64_t head;
	_Alignas(LINE) _Atomic uint64_t tail;
	_Alignas(LINE) uint64_t cap; /* data bytes, a power of two */
	int yield;
	_Alignas(LINE) unsigned char data[];
};

static int
spsc_prepare(const struct qb_cfg *c, int id, void **state)
{
	uint64_t cap = 1u << 24;
	struct spsc *r;
	size_t len;

	(void)id;
	/* 16 MiB, as a shmq topic's default ring: a ring of 1 MiB came out
	 * below shmq at 4-16 KiB messages (the producer rewrote lines the
	 * consumer had just read), which is no ceiling.  At least room for
	 * several messages at any size, so neither side waits for the other
	 * message by message. */
	while (cap < 4 * (uint64_t)c->size) {
		cap <<= 1;
	}
	len = sizeof *r + cap;
	r = map_shared(len);
	if (r == NULL) {
		return -errno;
	}
	r->map.len = len;
	r->cap = cap;
	r->yield = qb_cpus() < 2;
	*state = r;
	return 0;
}

static void
ring_put(struct spsc *r, uint64_t at, const void *src, size_t len)
{
	size_t off = (size_t)(at & (r->cap - 1));
	size_t first = r->cap - off < len ? r->cap - off : len;

	memcpy(r->data + off, src, first);
	memcpy(r->data, (const unsigned char *)src + first, len - first);
}

static void
ring_get(const struct spsc *r, uint64_t at, void *dst, size_t len)
{
	size_t off = (size_t)(at & (r->cap - 1));
	size_t first = r->cap - off < len ? r->cap - off : len;

	memcpy(dst, r->data + off, first);
	memcpy((unsigned char *)dst + first, r->data, len - first);
}

static int
spsc_send(struct qb_chan *qc, const void *msg, size_t len)
{
	struct lim_chan *ch = (struct lim_chan *)(void *)qc;
	struct spsc *r = ch->shm;

	if (len > r->cap) {
		return -EMSGSIZE;
	}
	while (ch->mine + len - ch->theirs > r->cap) {
		ch->theirs =
		    atomic_load_explicit(&r->tail, memory_order_acquire);
		if (ch->mine + len - ch->theirs > r->cap) {
			spin(r->yield);
		}
	}
	ring_put(r, ch->mine, msg, len);
	ch->mine += len;
	atomic_store_explicit(&r->head, ch->mine, memory_order_release);
	return 0;
}

static ssize_t
spsc_recv(struct qb_chan *qc, void *buf, size_t cap)
{
	struct lim_chan *ch = (struct lim_chan *)(void *)qc;
	struct spsc *r = ch->shm;
	struct qb_hdr h;

	/* A published head covers whole messages only. */
	while (ch->theirs == ch->mine) {
		ch->theirs =
		    atomic_load_explicit(&r->head, memory_order_acquire);
		if (ch->theirs == ch->mine) {
			spin(r->yield);
		}
	}
	ring_get(r, ch->mine, &h, sizeof h);
	if (h.len < QB_HDR_SIZE || h.len > ch->theirs - ch->mine) {
		return -EPROTO;
	}
	if (h.len > cap) {
		return -EMSGSIZE;
	}
	ring_get(r, ch->mine, buf, h.len);
	ch->mine += h.len;
	atomic_store_explicit(&r->tail, ch->mine, memory_order_release);
	return (ssize_t)h.len;
}

const struct qb_transport qb_t_limit_spsc = {
	.name = "limit-spsc",
	.what = "bare SPSC ring in shared memory, busy-spin, no CRC, no "
	        "persistence: the shm ceiling",
	.flags = 0,
	.max_size = 0,
	.prepare = spsc_prepare,
	.open = lim_open,
	.send = spsc_send,
	.flush = NULL,
	.recv = spsc_recv,
	.close = lim_close,
	.cleanup = lim_cleanup,
};

/* ---- limit-futex ----------------------------------------------------- */

/*
 * One slot: the sender copies the message in, bumps `posted` and wakes;
 * the receiver sleeps on `posted` in FUTEX_WAIT (no spinning: this is
 * the parked floor), copies out and bumps `taken`.  A sender that finds
 * the slot still full (never in PINGPONG) says so in `swait` and sleeps
 * on `taken`; seq_cst on both flags keeps that wake-up from being lost.
 */
struct fslot {
	struct lim_map map; /* first, for lim_cleanup() */
	_Alignas(LINE) _Atomic uint32_t posted;
	_Alignas(LINE) _Atomic uint32_t taken;
	_Atomic uint32_t swait;
	size_t cap;
	size_t len;
	_Alignas(LINE) unsigned char data[];
};

static void
futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	/* EAGAIN (already moved) and EINTR both mean: look again. */
	syscall(
	    SYS_futex, (uint32_t *)(void *)w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void
futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)(void *)w, FUTEX_WAKE, INT_MAX, NULL,
	    NULL, 0);
}

static int
fslot_prepare(const struct qb_cfg *c, int id, void **state)
{
	size_t len = sizeof(struct fslot) + c->size;
	struct fslot *s = map_shared(len);

	(void)id;
	if (s == NULL) {
		return -errno;
	}
	s->map.len = len;
	s->cap = c->size;
	*state = s;
	return 0;
}

static int
fslot_send(struct qb_chan *qc, const void *msg, size_t len)
{
	struct lim_chan *ch = (struct lim_chan *)(void *)qc;
	struct fslot *s = ch->shm;
	uint32_t t;

	if (len > s->cap) {
		return -EMSGSIZE;
	}
	while ((t = atomic_load(&s->taken)) != ch->n) {
		atomic_store(&s->swait, 1);
		if ((t = atomic_load(&s->taken)) != ch->n) {
			futex_wait(&s->taken, t);
		}
	}
	memcpy(s->data, msg, len);
	s->len = len;
	ch->n++;
	atomic_store_explicit(&s->posted, ch->n, memory_order_release);
	futex_wake(&s->posted);
	return 0;
}

static ssize_t
fslot_recv(struct qb_chan *qc, void *buf, size_t cap)
{
	struct lim_chan *ch = (struct lim_chan *)(void *)qc;
	struct fslot *s = ch->shm;
	size_t len;

	while (
	    atomic_load_explicit(&s->posted, memory_order_acquire) == ch->n) {
		futex_wait(&s->posted, ch->n);
	}
	len = s->len;
	if (len > cap) {
		return -EMSGSIZE;
	}
	memcpy(buf, s->data, len);
	ch->n++;
	atomic_store(&s->taken, ch->n);
	if (atomic_load(&s->swait)) {
		atomic_store(&s->swait, 0);
		futex_wake(&s->taken);
	}
	return (ssize_t)len;
}

const struct qb_transport qb_t_limit_futex = {
	.name = "limit-futex",
	.what = "one slot and a futex wait/wake per message, no spinning: "
	        "the parked floor",
	.flags = QB_F_NO_STREAM,
	.max_size = 0,
	.prepare = fslot_prepare,
	.open = lim_open,
	.send = fslot_send,
	.flush = NULL,
	.recv = fslot_recv,
	.close = lim_close,
	.cleanup = lim_cleanup,
};

/* ---- --limit memcpy -------------------------------------------------- */

int
qb_limit_memcpy(size_t size, double duration_s, int json)
{
	unsigned char *src = malloc(size);
	unsigned char *dst = malloc(size);
	uint64_t copies = 0, t0, t1, stop;
	/* Small copies are fast: look at the clock less often. */
	uint64_t every = size >= (64u << 10) ? 1 : (64u << 10) / size;
	double secs;

	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		fprintf(stderr,
		    "qbench: memcpy: cannot allocate 2 x %zu "
		    "bytes\n",
		    size);
		return QB_EXIT_FAIL;
	}
	qb_pin(0);
	/* Fault every page in, and warm the caches as a steady stream
	 * would have them. */
	memset(src, 0x5a, size);
	memset(dst, 0, size);
	memcpy(dst, src, size);
	t0 = qb_now_ns();
	stop = t0 + (uint64_t)(duration_s * 1e9);
	do {
		for (uint64_t i = 0; i < every; i++) {
			memcpy(dst, src, size);
			/* The copy must happen although nothing reads dst. */
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		copies += every;
		t1 = qb_now_ns();
	} while (t1 < stop);
	secs = (double)(t1 - t0) / 1e9;
	if (json) {
		printf(
		    "{\"limit\":\"memcpy\",\"size\":%zu,\"mb_per_s\":%.1f}\n",
		    size, (double)copies * (double)size / secs / 1e6);
	} else {
		printf("memcpy %zu B: %llu copies in %.3f s = %.1f MB/s\n",
		    size, (unsigned long long)copies, secs,
		    (double)copies * (double)size / secs / 1e6);
	}
	free(src);
	free(dst);
	return QB_EXIT_OK;
}

/* ---- --limit cacheline ----------------------------------------------- */

int
qb_limit_cacheline(uint64_t count, int json)
{
	uint64_t total = QB_WARMUP + count;
	_Atomic uint64_t *w;
	uint64_t *lat;
	pid_t pid, parent;
	int st;

	if (qb_cpus() < 2) {
		fprintf(stderr,
		    "qbench: cacheline: needs two CPUs, this "
		    "process may use one\n");
		return QB_EXIT_FAIL;
	}
	w = map_shared(LINE);
	lat = malloc(count * sizeof *lat);
	if (w == NULL || lat == NULL) {
		fprintf(stderr, "qbench: cacheline: out of memory\n");
		return QB_EXIT_FAIL;
	}
	atomic_store(w, 0);
	parent = getpid();
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		qb_fail("fork", -errno);
		return QB_EXIT_FAIL;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(1);
		}
		qb_pin(1);
		for (uint64_t i = 0; i < total; i++) {
			while (atomic_load_explicit(w, memory_order_acquire) !=
			    2 * i + 1) {
				cpu_relax();
			}
			atomic_store_explicit(
			    w, 2 * i + 2, memory_order_release);
		}
		_exit(0);
	}
	qb_pin(0);
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = qb_now_ns(), spins = 0;

		atomic_store_explicit(w, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(w, memory_order_acquire) !=
		    2 * i + 2) {
			cpu_relax();
			/* A partner that died would leave us spinning. */
			if (++spins % (1u << 24) == 0 &&
			    waitpid(pid, &st, WNOHANG) == pid) {
				fprintf(stderr,
				    "qbench: cacheline: partner "
				    "died\n");
				return QB_EXIT_FAIL;
			}
		}
		if (i >= QB_WARMUP) {
			lat[i - QB_WARMUP] = qb_now_ns() - t0;
		}
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "qbench: cacheline: partner failed\n");
		return QB_EXIT_FAIL;
	}
	qb_sort_u64(lat, count);
	if (json) {
		printf("{\"limit\":\"cacheline\",\"n\":%llu,\"p50_ns\":%llu,"
		       "\"p99_ns\":%llu,\"p999_ns\":%llu}\n",
		    (unsigned long long)count,
		    (unsigned long long)qb_pct(lat, count, 0.5),
		    (unsigned long long)qb_pct(lat, count, 0.99),
		    (unsigned long long)qb_pct(lat, count, 0.999));
	} else {
		printf("cacheline round trip (ns): p50 %llu  p99 %llu  p99.9 "
		       "%llu  (%llu)\n",
		    (unsigned long long)qb_pct(lat, count, 0.5),
		    (unsigned long long)qb_pct(lat, count, 0.99),
		    (unsigned long long)qb_pct(lat, count, 0.999),
		    (unsigned long long)count);
	}
	free(lat);
	munmap((void *)w, LINE);
	return QB_EXIT_OK;
}
