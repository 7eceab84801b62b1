/*
 * internal.h — shmqi_* declarations shared between the library's files.
 * Never installed.  Public entry points (shmq_*) check their arguments
 * once; everything declared here asserts its preconditions instead.
 */
#ifndef SHMQ_INTERNAL_H
#define SHMQ_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "layout.h"
#include "shmq.h"

#define SHMQ_PATH_MAX 4096
/* Directories are shorter, so every path built from them fits. */
#define SHMQ_DIR_MAX 3072

/* ---- instance ------------------------------------------------------ */

struct shmq {
	char home[SHMQ_DIR_MAX];
	char shm_dir[SHMQ_DIR_MAX];
	uint64_t instance_id;
	uint8_t boot_id[16];
	unsigned mode;
	pid_t pid; /* the attaching process: only it may change shared
	            * state when closing (see shmqi_is_owner) */
	unsigned reclaim_ms;
	unsigned stall_ms;
	pthread_mutex_t lock; /* serialises topic admin and open lists */
	struct shmq_producer *producers;
	struct shmq_consumer *consumers;
	struct shmq *reg_next; /* all attached instances (fork handler) */
};

bool shmqi_name_valid(const char *name);
/* After fork() a child may close inherited handles, but the OFD locks
 * and shared state they stand for still belong to the parent: the child
 * only unmaps and closes its file descriptors. */
bool shmqi_is_owner(const shmq_t *q);
/* Held across opens: fork() waits until no half-opened handle holds
 * locks the child handler could not find.  Recursive. */
void shmqi_fork_guard_enter(void);
void shmqi_fork_guard_exit(void);
int shmqi_topic_path(
    const shmq_t *q, const char *topic, char *buf, size_t cap);
int shmqi_ring_path(
    const shmq_t *q, const char *topic, uint32_t part, char *buf, size_t cap);
int shmqi_group_path(const shmq_t *q, const char *group, const char *topic,
    char *buf, size_t cap);
uint64_t shmqi_random64(void);
/* Instance-wide lock for creating, rebuilding and deleting files: an fd
 * holding an OFD lock (dropped by the kernel if we die), or -errno. */
int shmqi_instance_lock(const shmq_t *q);
void shmqi_instance_unlock(int fd);

/* ---- topic metadata ------------------------------------------------ */

struct topic_meta {
	uint64_t id; /* random, so a re-created topic is a new topic */
	uint32_t partitions;
	uint64_t ring_size;
	int overflow;
	int durability; /* enum shmq_durability */
	int fsync; /* enum shmq_fsync */
	uint32_t fsync_interval_ms;
	uint64_t segment_bytes;
	uint64_t retention_bytes; /* 0: keep */
	uint64_t retention_ms; /* 0: keep */
};

#define SEGMENT_BYTES_DEFAULT (64ull << 20)
#define SEGMENT_BYTES_MIN (64ull << 10)
#define FSYNC_INTERVAL_MAX 60000u

int shmqi_topic_load(const shmq_t *q, const char *name, struct topic_meta *m);

/* ---- ring ---------------------------------------------------------- */

struct ring {
	int fd;
	struct ring_hdr *hdr;
	uint8_t *data;
	uint64_t *index;
	uint64_t cap; /* capacity (copied once, validated) */
	uint64_t mask; /* cap - 1 */
	uint32_t index_mask;
	uint32_t max_record;
	size_t map_len;
	uint32_t slot; /* our client slot, or UINT32_MAX */
	bool excl; /* holds the exclusivity byte exclusively */
	uint32_t owner; /* slot << 24 | generation, for rec_owner */
	unsigned reclaim_ms;
	unsigned stall_ms;
	/* Idempotent producers with a name: the identity's fence word (in
	 * its state file) and the generation this handle holds.  Checked
	 * under the ring lock at every reservation; NULL otherwise. */
	const _Atomic uint32_t *fence;
	uint32_t fence_gen;
};

/* Open (creating or rebuilding when missing or stale) partition `part`
 * of topic `m`. */
int shmqi_ring_open(const shmq_t *q, const char *topic,
    const struct topic_meta *m, uint32_t part, struct ring *r);
void shmqi_ring_close(struct ring *r);
/* Claim a client slot (held until close; freed by the kernel at death). */
int shmqi_ring_claim_client(struct ring *r, uint32_t kind);
int shmqi_ring_check(const struct ring *r);

int shmqi_ring_lock(struct ring *r);
void shmqi_ring_unlock(struct ring *r);

static inline struct rec_hdr *
shmqi_rec_at(const struct ring *r, uint64_t pos)
{
	return (struct rec_hdr *)(r->data + (pos & r->mask));
}

/* Does a whole record header at pos lie inside the data area?  Headers
 * come from shared memory: check before reading past len and type. */
static inline bool
shmqi_hdr_fits(const struct ring *r, uint64_t pos)
{
	return (pos & (REC_ALIGN - 1)) == 0 &&
	    (pos & r->mask) + sizeof(struct rec_hdr) <= r->cap;
}

static inline uint64_t
shmqi_align8(uint64_t n)
{
	return (n + (REC_ALIGN - 1)) & ~(uint64_t)(REC_ALIGN - 1);
}

/* A reservation request and its result. */
struct rsv_item {
	uint32_t key_len;
	uint32_t value_len;
	uint64_t pos; /* out */
};

/* Reserve records [0, n) in order; caller holds the lock (or is the
 * exclusive writer).  Returns 0 and the first offset, -EAGAIN when the
 * ring has no room now, RSV_NOT_DURABLE when it has none because a
 * persistent ring's oldest bytes are not on disk yet (room then comes
 * only from a persister), -EMSGSIZE, SHMQ_ECORRUPT. */
#define RSV_NOT_DURABLE 1
int shmqi_ring_reserve(
    struct ring *r, struct rsv_item *items, size_t n, uint64_t *first_off);
/* Publish one reserved record (fills its CRC).  SHMQ_ERECLAIMED if a
 * reclaimer aborted it first. */
int shmqi_ring_commit_rec(struct ring *r, uint64_t pos);
int shmqi_ring_abort_rec(struct ring *r, uint64_t pos);
/* Advance committed_pos over every complete record; wake sleepers. */
void shmqi_ring_advance(struct ring *r);
/* The same, for a caller whose own commits just completed every record
 * in [own, own_end): the walk jumps over them instead of loading them. */
void shmqi_ring_advance_over(struct ring *r, uint64_t own, uint64_t own_end);
/* Abort the reservation blocking committed_pos if its owner is dead (or
 * stalled past stall_ms since `since_ns`).  Returns true if it did. */
bool shmqi_ring_reclaim(struct ring *r, int64_t stuck_since_ns);
/* Is the record blocking the committed watermark our own (this
 * handle's) open reservation?  Then waiting for it would never end. */
bool shmqi_ring_blocked_by_self(struct ring *r);
/* Rebuild writer state after a writer died mid-update. */
int shmqi_ring_repair(struct ring *r);
/* Recompute the limit up to which a writer may overwrite. */
uint64_t shmqi_ring_limit(struct ring *r);
void shmqi_ring_wake_space(struct ring *r);

/* Result of locating an offset. */
enum locate_rc {
	LOC_FOUND = 0,
	LOC_BELOW = 1, /* below the oldest record in the ring */
	LOC_ABOVE = 2, /* beyond the end of the log */
	LOC_PENDING = 3, /* not yet committed; try again later */
};
int shmqi_ring_locate(struct ring *r, uint64_t off, uint64_t *pos);
/* Offset at the committed watermark. */
uint64_t shmqi_ring_committed_off(struct ring *r);

/* Wait until seq != seen or timeout; wakes on futex.  ms < 0: forever. */
int shmqi_futex_wait(_Atomic uint32_t *word, uint32_t seen, int ms);
void shmqi_futex_wake(_Atomic uint32_t *word);
/* Wait on several words at once (futex_waitv); falls back to the first
 * word with a short timeout where the kernel lacks it. */
int shmqi_futex_waitv(
    _Atomic uint32_t **words, const uint32_t *seen, size_t n, int ms);

/* ---- OS seam (shm_linux.c) ----------------------------------------- */

int64_t shmqi_now_ns(void); /* CLOCK_REALTIME */
int64_t shmqi_mono_ns(void); /* CLOCK_MONOTONIC */
struct stat;
/* Is this file or directory ours to use under an instance `mode`? */
bool shmqi_ours(const struct stat *st, unsigned mode);
int shmqi_file_create(const char *path, unsigned mode, uint64_t size, int *fd);
int shmqi_file_open(const char *path, unsigned mode, int *fd, uint64_t *size);
int shmqi_map(int fd, size_t len, void **addr);
void shmqi_unmap(void *addr, size_t len);
/* OFD locks: taken for the lifetime of the fd; released by the kernel. */
int shmqi_lock_byte(int fd, int64_t byte, bool exclusive);
void shmqi_unlock_byte(int fd, int64_t byte);
int shmqi_lock_byte_wait(int fd, int64_t byte);
/* Is `byte` locked by any other open file description? */
bool shmqi_lock_held(int fd, int64_t byte);
int shmqi_write_file_atomic(const char *dir, const char *name,
    const void *data, size_t len, unsigned mode);
int shmqi_write_atomic_at(
    int dirfd, const char *name, const void *data, size_t len, unsigned mode);
int shmqi_read_boot_id(uint8_t id[16]);
int shmqi_mutex_init_shared(pthread_mutex_t *m);

/* Fault injection (tests): make the Nth OS operation fail with err. */
void shmqi_fault_set(long nth, int err, bool persistent);
long shmqi_fault_count(void);

/* Named crash points: a test sets shmqi_test_hook in a child process and
 * kills it at the point (tests/unit/test_crash.c).  NULL in production:
 * one predictable branch. */
enum shmqi_point {
	POINT_RESERVE_LOCKED = 1, /* inside the lock, headers half written */
	POINT_RESERVE_PUBLISHED, /* inside the lock, end_pos published,
	                          * end_off not yet */
	POINT_AFTER_RESERVE, /* reserved, nothing copied */
	POINT_MID_COPY, /* key copied, value not */
	POINT_BEFORE_COMMIT, /* copied, commit word not set */
	POINT_AFTER_COMMIT, /* committed, watermark not advanced */
	POINT_PERSIST_RECOVERING, /* a persister opened a partition's ring,
	                           * its segments not yet recovered */
	POINT_COUNT
};
extern void (*volatile shmqi_test_hook)(int point);
#define SHMQI_POINT(p)                                              \
	do {                                                        \
		if (__builtin_expect(shmqi_test_hook != NULL, 0)) { \
			shmqi_test_hook(p);                         \
		}                                                   \
	} while (0)

/* ---- checksums and hashing ---------------------------------------- */

uint32_t shmqi_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t shmqi_murmur2(const void *key, size_t len);
uint32_t shmqi_rec_crc(const struct rec_hdr *h, const void *payload);

/* Copy an idempotent producer's identity from a record header to what a
 * consumer is given (plain copies: the header is checked, or a copy). */
static inline void
shmqi_rec_identity(const struct rec_hdr *h, shmq_record_t *rec)
{
	rec->producer_id = h->rec_producer_id;
	rec->sequence = h->rec_sequence;
	rec->producer_epoch = h->rec_producer_epoch;
	rec->reserved2_ = 0;
}

/* ---- persistence ---------------------------------------------------- */

/* A segment's sparse index (segindex.c): entries (offset, position)
 * every IDX_EVERY bytes of log; an aid that readers verify, never trust. */
#define IDX_EVERY 4096u
#define IDX_ENTRY 16u
struct idx_ent;
struct segidx {
	int fd; /* <base>.index being appended, or -1 */
	unsigned mode;
	uint64_t base;
	struct idx_ent *v; /* every entry of the segment */
	size_t n, cap, written; /* written: appended to the file */
	uint64_t
	    next_pos; /* the next entry is the first record here or after */
	bool broken; /* a write failed: no more index for this segment */
	int err; /* the first failure, for the owner to report (then 0) */
	uint64_t err_base; /* the segment it concerns */
};
void shmqi_idx_init(struct segidx *ix, unsigned mode);
/* Start over for the segment whose first offset is `base`. */
void shmqi_idx_reset(struct segidx *ix, uint64_t base);
void shmqi_idx_close(struct segidx *ix);
/* The record `off` starts at byte `pos` of the log: an entry if due. */
void shmqi_idx_note(struct segidx *ix, uint64_t off, uint64_t pos);
/* Append the new entries (a batch of them, or all with `force`). */
int shmqi_idx_append(struct segidx *ix, int dirfd, bool force);
/* Write the whole index again, atomically and durably. */
int shmqi_idx_seal(struct segidx *ix, int dirfd);
/* Where to start reading segment `base` (log fd `logfd`) for offset
 * `off`: a checked entry at or below it, else the segment's start. */
void shmqi_idx_lookup(int dirfd, int logfd, uint64_t base, uint64_t off,
    uint64_t *pos, uint64_t *at);
void shmqi_idx_remove(int dirfd, uint64_t base);

/* A partition's segment files (segment.c). */
struct segment {
	int dirfd, fd;
	unsigned mode;
	uint64_t base; /* first offset of the current segment */
	uint64_t size; /* bytes of whole records in it */
	uint64_t end_off; /* offset after its last record */
	uint64_t truncated; /* bytes recovery cut off its tail */
	struct segidx ix; /* the current segment's index */
};
/* Open (making as needed) the partition's segments and recover the
 * last one: a torn tail is cut off. */
int shmqi_seg_open(
    const shmq_t *q, const char *topic, uint32_t part, struct segment *sg);
/* The offset after the last whole record on disk (0 when none): a new
 * ring of a persistent topic starts there. */
int shmqi_seg_end_offset(
    const shmq_t *q, const char *topic, uint32_t part, uint64_t *end);
/* A segment file: its first offset, size and last write. */
struct seg_ent {
	uint64_t base;
	uint64_t size;
	int64_t mtime_ns;
};
/* The partition's segments, sorted by first offset (*out: free it). */
int shmqi_seg_list(int dirfd, struct seg_ent **out, size_t *count);
/* The base of the segment holding `off` (the largest base <= off) and
 * the smallest base; -ENOENT without segments, -ERANGE when `off` is
 * older than all of them. */
int shmqi_seg_pick(int dirfd, uint64_t off, uint64_t *pick, uint64_t *first);
/* HOME/data/TOPIC/P, opened without making it (-ENOENT if absent). */
int shmqi_seg_dir_open(const shmq_t *q, const char *topic, uint32_t part);
/* Delete the oldest whole segments (never the one being written) while
 * the partition holds more than max_bytes, or while the oldest was last
 * written more than max_ms ago; 0 means no limit. */
int shmqi_seg_retain(struct segment *sg, uint64_t max_bytes, uint64_t max_ms,
    uint64_t *deleted);
/* Start a new segment whose first record has offset `base`. */
int shmqi_seg_roll(struct segment *sg, uint64_t base);
void shmqi_seg_close(struct segment *sg);
/* Bytes of buf[0..len) that are whole, valid records of a segment
 * starting at offset `base`; *next_off is the offset after them.  With
 * `ix`, their index entries are noted in it. */
uint64_t shmqi_seg_valid(const uint8_t *buf, uint64_t len, uint64_t base,
    uint64_t *next_off, struct segidx *ix);

/* Reading records back from segments (segread.c). */
struct segread {
	int dirfd, fd;
	uint64_t base; /* the open segment's first offset */
	uint64_t file_pos; /* read up to here */
	uint64_t next_off; /* offset of the next record */
	uint64_t want; /* records below are walked over, not returned */
	bool stuck; /* damage before `want`, nothing intact after it */
	uint8_t *buf;
	size_t cap, len, at;
	bool pending; /* pend is the next record to hand out */
	shmq_record_t pend;
};
/* Position at `off`: LOC_FOUND, LOC_BELOW (older than the oldest
 * segment), LOC_ABOVE (not on disk), or an error. */
int shmqi_segread_open(const shmq_t *q, const char *topic, uint32_t part,
    uint64_t off, size_t max_record, struct segread *sr);
/* 1 and the next record (pointing into sr's buffer until the next
 * call), 0 when nothing more is on disk, or an error. */
int shmqi_segread_next(struct segread *sr, shmq_record_t *rec);
void shmqi_segread_close(struct segread *sr);
int shmqi_seg_first_offset(
    const shmq_t *q, const char *topic, uint32_t part, uint64_t *off);

/* What a partition holds on disk (seginfo.c): its segment files, their
 * bytes, and the first offset (UINT64_MAX without segments).  No
 * segments, and 0 returned, when it has no data directory. */
struct seg_usage {
	uint64_t segments;
	uint64_t bytes;
	uint64_t first;
};
int shmqi_seg_usage(
    const shmq_t *q, const char *topic, uint32_t part, struct seg_usage *u);

/* The disk seam (persist_uring.c).  Asynchronous: start operations,
 * then reap them; each started operation is handed back to `done` by a
 * reap exactly once, with res 0 or -errno, a write only once all of it
 * is written (short writes are continued), and a write's flush after
 * the write and only once it ran after all of it. */
struct shmqi_pio;
#define SHMQI_PIO_IOV_MAX 4
struct shmqi_pio_op {
	void *owner; /* the caller's */
	int res; /* when handed back */
	/* persist_uring.c's own: */
	int state;
	int fd;
	struct shmqi_pio_op *next; /* ready to hand back */
	struct shmqi_pio_op *flush; /* a write's flush, or NULL */
	bool wdone; /* a linked flush: its write was handed back, */
	int wres; /* with this result */
	struct iovec v[SHMQI_PIO_IOV_MAX];
	int n, first;
	uint64_t off;
	size_t left;
};
int shmqi_pio_open(struct shmqi_pio **io);
void shmqi_pio_close(struct shmqi_pio *io);
/* Write iov[0..n) at off; with f, flush after it (fdatasync).  With
 * `now`, in this thread before returning (still handed back by a reap). */
int shmqi_pio_start_write(struct shmqi_pio *io, struct shmqi_pio_op *w, int fd,
    const struct iovec *iov, int n, uint64_t off, struct shmqi_pio_op *f,
    bool now);
int shmqi_pio_start_sync(struct shmqi_pio *io, struct shmqi_pio_op *f, int fd);
/* Hand finished operations to done(op, arg); wait up to timeout_ms (-1:
 * no limit, 0: no wait) for one if none is.  How many, or -errno. */
int shmqi_pio_reap(struct shmqi_pio *io, int timeout_ms,
    void (*done)(struct shmqi_pio_op *op, void *arg), void *arg);
/* The blocking form, for a caller with nothing else in flight (the
 * tests of short writes): write (with `sync`, then flush) and wait.  0
 * or -errno. */
int shmqi_pio_write(struct shmqi_pio *io, int fd, const struct iovec *iov,
    int n, uint64_t off, bool sync, bool now);

/* The largest range the persister writes in its own thread, not through
 * io_uring (persist.c); tests set 0 to run the io_uring pipeline. */
#define SHMQI_PERSIST_INLINE_MAX (64u * 1024)
extern uint64_t shmqi_persist_inline_max;

/* Is a persister (shmq-replicator) running for this instance? */
bool shmqi_persister_alive(const shmq_t *q);
/* The OS operation counter the fault injection uses (shm_linux.c):
 * 0, or the negative errno a test asked for. */
int shmqi_fault_hit(void);

/* ---- groups -------------------------------------------------------- */

/* HOME/data/TOPIC/groups/GROUP.offsets: a persistent topic's group
 * offsets as the persister last saved them. */
int shmqi_saved_offsets_path(const shmq_t *q, const char *group,
    const char *topic, char *buf, size_t cap);
#define SAVED_MAX (64u * 1024u) /* 1024 partitions, about 30 bytes each */

struct group {
	int fd;
	struct grp_hdr *hdr;
	size_t map_len;
	uint32_t partitions;
	int32_t slot; /* our member slot, -1 before join */
};

int shmqi_group_open(const shmq_t *q, const char *group, const char *topic,
    const struct topic_meta *m, bool create, struct group *g);
void shmqi_group_close(struct group *g);
int shmqi_group_join(struct group *g);
void shmqi_group_leave(struct group *g);
int shmqi_group_lock(struct group *g);
void shmqi_group_unlock(struct group *g);
/* Free slots of dead members and their partitions; returns true if any
 * changed.  Caller holds the lock. */
bool shmqi_group_reap(struct group *g);
int shmqi_group_live_members(struct group *g);
/* Compute this member's target set and claim/release accordingly under
 * the lock.  `release_cb` is called before each release. */
int shmqi_group_rebalance(
    struct group *g, void (*release_cb)(uint32_t part, void *arg), void *arg);
/* Make sure partition `part` of ring r has a gate for this group. */
int shmqi_group_gate(struct group *g, struct ring *r, uint32_t part);
void shmqi_group_bump(struct group *g);
/* Make the group's table hold at least `want` partitions (new ones
 * unowned, group offset 0) and this mapping cover `want` of them. */
int shmqi_group_grow(struct group *g, uint32_t want);

/* ---- producer/consumer handles ------------------------------------- */

struct shmq_producer {
	shmq_t *q;
	struct shmq_producer *next;
	char topic[SHMQ_NAME_MAX + 1];
	struct topic_meta meta;
	struct ring *rings;
	uint32_t nrings;
	int acks;
	unsigned flags;
	int timeout_ms;
	uint32_t sticky_records;
	uint32_t sticky_part;
	uint32_t sticky_left;
	struct rsv_item *items;
	size_t items_cap;
	struct {
		uint32_t part;
		uint64_t pos;
	} * open; /* slices reserved and not yet committed or aborted */
	size_t nopen, open_cap;
	struct idem *idem; /* SHMQ_PRODUCER_IDEMPOTENT, else NULL */
	int retries; /* -1: no limit */
	int backoff_ms, backoff_max_ms;
};

/* ---- topic growth (producer_grow.c) -------------------------------- */

/* Has the topic grown past this producer's partitions?  One relaxed
 * load of a word on ring 0's read-mostly identity line, on every send;
 * the acquire is in shmqi_producer_grow. */
static inline bool
shmqi_producer_grown(const struct shmq_producer *p)
{
	return __builtin_expect(
	    atomic_load_explicit(&p->rings[0].hdr->hdr_partitions,
	        memory_order_relaxed) > p->nrings,
	    0);
}
/* Open the new partitions' rings, set up each with `join` (the
 * producer's own per-ring set-up).  0, or an error with the producer
 * as it was. */
int shmqi_producer_grow(struct shmq_producer *p,
    int (*join)(struct shmq_producer *p, struct ring *r));

/* ---- idempotent producers (idempotent.c) ---------------------------- */

int shmqi_idem_open(shmq_producer_t *p, const char *name);
void shmqi_idem_close(shmq_producer_t *p);
/* Make partition `part` ready: its next sequence is read from the log
 * (once per handle and partition).  0, SHMQ_EFENCED, -EAGAIN (records
 * before ours still open past timeout_ms), or a read error. */
int shmqi_idem_ready(shmq_producer_t *p, uint32_t part);
/* How many of msgs[0..n) (all for `part`, which is ready) are new
 * records with consecutive sequences from the next one: 0 when msgs[0]
 * repeats or skips a sequence (see shmqi_idem_repeat). */
size_t shmqi_idem_fresh(
    const shmq_producer_t *p, uint32_t part, const shmq_msg_t *msgs, size_t n);
/* msgs[0] is not fresh: a repeat (0, offset set, *pos the record's ring
 * position or UINT64_MAX when it is no longer in the ring) or an error
 * (SHMQ_ESEQUENCE, SHMQ_EDUPLICATE). */
int shmqi_idem_repeat(
    shmq_producer_t *p, uint32_t part, shmq_msg_t *m, uint64_t *pos);
/* Stamp the records of a reservation (first sequence: the next one). */
void shmqi_idem_stamp(shmq_producer_t *p, uint32_t part, struct rec_hdr *rh,
    size_t i, shmq_msg_t *m);
/* `done` records of the run starting at offset `first` are committed. */
void shmqi_idem_appended(
    shmq_producer_t *p, uint32_t part, uint64_t first, size_t done);
void shmqi_idem_set_fenced(shmq_producer_t *p);
/* Retries: fix m's sequence before the first attempt.  A round (begun
 * by shmqi_idem_pin_begin, one per send call) hands out each
 * partition's sequences from the next one on, in message order; a
 * message that names its own sequence keeps it.  *pinned: we chose it.
 * 0, or shmqi_idem_ready's error, or SHMQ_ESEQUENCE (ran out). */
void shmqi_idem_pin_begin(shmq_producer_t *p);
int shmqi_idem_pin(
    shmq_producer_t *p, uint32_t part, shmq_msg_t *m, bool *pinned);

struct cpart {
	uint32_t id;
	bool active; /* assigned (standalone) or owned (group) */
	bool pos_valid;
	uint64_t next_off;
	uint64_t next_pos;
	uint64_t seen_committed; /* cached committed_pos */
	uint64_t commit_off; /* last committed by us */
	uint64_t returned_off; /* next offset after the last returned */
	uint64_t returned_pos;
	bool returned_any;
	uint64_t stuck_pos; /* committed_pos when progress stopped */
	uint64_t gate_pending; /* gate to set once the borrow ends, or 0 */
	bool returned_pos_known; /* false when it came from disk */
	bool peek_lap; /* the ring could lap the record last peeked */
	bool from_commit; /* next_off is the group's committed offset,
	                   * not yet resolved */
	struct segread *disk; /* reading from segments, or NULL */
	int64_t stuck_since;
};

struct shmq_consumer {
	shmq_t *q;
	struct shmq_consumer *next;
	char topic[SHMQ_NAME_MAX + 1];
	char group_name[SHMQ_NAME_MAX + 1];
	struct topic_meta meta;
	struct ring *rings;
	struct cpart *parts;
	uint32_t nparts;
	uint32_t rr; /* round-robin cursor */
	int reset;
	int idle;
	unsigned flags;
	unsigned spin_us;
	bool in_group;
	struct group group;
	uint32_t group_gen; /* generation last acted on */
	int64_t next_liveness_ns;
	uint32_t polls;
	uint64_t empty_polls; /* polls that found nothing (tests read it) */
	uint64_t parks; /* futex sleeps (tests read it) */
	bool borrowed;
	uint32_t borrow_part;
	uint64_t borrow_pos;
	uint64_t borrow_ext;
	bool auto_pending; /* auto-commit what the last poll returned */
};

#endif /* SHMQ_INTERNAL_H */
