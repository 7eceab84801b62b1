/*
 * shmq.h — the only public header of libshmq.
 *
 * shmq gives processes on one Linux host Kafka's semantics (topics,
 * partitions, offsets, consumer groups, committed offsets) at shared-memory
 * speed.  Producers and consumers attach to an *instance* (one directory)
 * and exchange records through mmap'd partition ring files on tmpfs.
 *
 * Conventions used throughout this header:
 *
 *  - Functions return 0 on success and a negative number on failure:
 *    either a negative errno (-EINVAL, -ENOMEM, -EAGAIN, -ETIMEDOUT,
 *    -EMSGSIZE, -ENOENT, -EEXIST, ...) or one of the SHMQ_E* codes below,
 *    which live far below the errno range.  Functions that return a count
 *    return ssize_t: >= 0 is the count, < 0 an error.  shmq_strerror()
 *    describes every value.  There is no global error state.
 *  - Ownership changes hands only on success: when a call fails, nothing
 *    was consumed, sent or freed, and the caller still owns what it had.
 *  - Handles (shmq_t, shmq_producer_t, shmq_consumer_t) belong to the
 *    process that opened them.  After fork() the child must not use the
 *    parent's handles (except to close them); it attaches on its own.
 *    The child's copies of the handles' file descriptors are closed at
 *    fork (pthread_atfork), so a parent that dies is seen as dead even
 *    while its children live.
 *  - Thread safety: shmq_t may be shared by threads (topic and open calls
 *    are serialised internally).  A producer or consumer handle must be
 *    used by one thread at a time; different handles need no locking.
 *  - Options structs start with their own size so that they can grow
 *    without breaking the ABI: fill them with the *_init() function, then
 *    change fields.  NULL options mean the defaults.
 */
#ifndef SHMQ_H
#define SHMQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMQ_BUILDING)
#define SHMQ_API __attribute__((visibility("default")))
#else
#define SHMQ_API
#endif

#define SHMQ_VERSION_MAJOR 0
#define SHMQ_VERSION_MINOR 1
#define SHMQ_VERSION_PATCH 0
#define SHMQ_MAKE_VERSION(a, b, c) ((a)*10000 + (b)*100 + (c))
#define SHMQ_VERSION       \
	SHMQ_MAKE_VERSION( \
	    SHMQ_VERSION_MAJOR, SHMQ_VERSION_MINOR, SHMQ_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library actually loaded. */
SHMQ_API const char *shmq_version(void);

/*
 * Library error codes.  They sit in a block far below the errno range, so
 * a negative return is either -errno or one of these.
 */
#define SHMQ_ERRBASE (-30000)
/* Shared memory or a file failed validation: stop using the object. */
#define SHMQ_ECORRUPT (SHMQ_ERRBASE - 1)
/* A ring or group file of another layout major version: upgrade. */
#define SHMQ_EVERSION (SHMQ_ERRBASE - 2)
/* The partition is sticky-failed; only close is allowed. */
#define SHMQ_EFAILED (SHMQ_ERRBASE - 3)
/* The ack level needs shmq-replicator, which is not available yet. */
#define SHMQ_ENOREPLICATOR (SHMQ_ERRBASE - 4)
/* The consumer was lapped on a `drop` topic: records were lost. */
#define SHMQ_ELAPPED (SHMQ_ERRBASE - 5)
/* The consumer's offset is outside the log and its reset policy is
 * SHMQ_RESET_ERROR. */
#define SHMQ_EOUTOFRANGE (SHMQ_ERRBASE - 6)
/* The reservation was reclaimed (the producer stalled too long). */
#define SHMQ_ERECLAIMED (SHMQ_ERRBASE - 7)
/* The topic was deleted while the handle was open. */
#define SHMQ_EDELETED (SHMQ_ERRBASE - 8)
/* The partition is not owned by this group member (rebalanced away). */
#define SHMQ_ENOTOWNER (SHMQ_ERRBASE - 9)
/* A zero-copy view was overwritten before it was released (see
 * shmq_release): what was read from it is void. */
#define SHMQ_ESTALE (SHMQ_ERRBASE - 10)
/* An idempotent producer was fenced: another instance opened with the
 * same producer_name since.  Sticky for the handle; nothing appended. */
#define SHMQ_EFENCED (SHMQ_ERRBASE - 11)
/* An idempotent send named a sequence beyond the next one expected for
 * its partition (a gap): nothing appended. */
#define SHMQ_ESEQUENCE (SHMQ_ERRBASE - 12)
/* An idempotent send named a sequence that is already in the log but
 * older than the producer's window of recent records, so its offset is
 * not known: nothing appended (treat as success). */
#define SHMQ_EDUPLICATE (SHMQ_ERRBASE - 13)

/* Never NULL.  Covers 0, -errno and every SHMQ_E*; thread-safe. */
SHMQ_API const char *shmq_strerror(int err);

/* Limits.  Names are [A-Za-z0-9._-], 1..SHMQ_NAME_MAX bytes, and not
 * "." or "..". */
#define SHMQ_NAME_MAX 100
#define SHMQ_PARTITIONS_MAX 1024
#define SHMQ_RING_SIZE_MIN (64u * 1024u)
#define SHMQ_RING_SIZE_MAX (1ull << 36)
#define SHMQ_RING_SIZE_DEFAULT (16u * 1024u * 1024u)
/* A record (header + key + value) may use at most this fraction of the
 * ring, so that a ring always holds a few records. */
#define SHMQ_RECORD_FRACTION 4
/* Bytes of record header stored in front of key and value. */
#define SHMQ_RECORD_OVERHEAD 56

/* ------------------------------------------------------------------ */
/* Instance                                                           */
/* ------------------------------------------------------------------ */

typedef struct shmq shmq_t;

typedef struct shmq_options {
	size_t size; /* sizeof(shmq_options_t), set by shmq_options_init */
	/* Directory (on tmpfs) for rings and group state.  NULL: a
	 * directory under /dev/shm named after the instance id. */
	const char *shm_dir;
	/* File mode for everything shmq creates: 0600 (default) or 0660
	 * to share an instance with a group. */
	unsigned mode;
	/* Create the home directory if it does not exist (default 1). */
	int create;
	/* A reservation whose owner process died is aborted after this
	 * many ms without progress (default 100; max 1000). */
	unsigned reclaim_ms;
	/* A reservation held this long by a live but stalled producer is
	 * aborted too; its late commit gets SHMQ_ERECLAIMED.  0 = never
	 * (default 10000). */
	unsigned stall_ms;
} shmq_options_t;

SHMQ_API void shmq_options_init(shmq_options_t *opts);

/*
 * Attach to the instance in directory `home` (NULL: $SHMQ_HOME, else
 * ./shmq-home; "" is -EINVAL).  An instance is removed by deleting its
 * topics, detaching, and removing `home` and shmq_shm_dir().  On success *q is
 * the handle.  On failure *q is set to NULL; shmq_detach(NULL) is allowed, so
 * cleanup code need not care. Errors: -EINVAL (bad argument), -ENOENT (home
 * missing and create == 0), -EACCES/-EPERM (ownership or mode of home or shm
 * dir is not ours), SHMQ_ECORRUPT (instance id file damaged), -errno from the
 * system.
 */
SHMQ_API int shmq_attach(
    const char *home, const shmq_options_t *opts, shmq_t **q);

/* Close every producer and consumer still open on q, then free q.
 * Accepts NULL. */
SHMQ_API void shmq_detach(shmq_t *q);

/* The absolute home directory and shm directory of an attached
 * instance; valid until shmq_detach. */
SHMQ_API const char *shmq_home(const shmq_t *q);
SHMQ_API const char *shmq_shm_dir(const shmq_t *q);

/* ------------------------------------------------------------------ */
/* Topics                                                             */
/* ------------------------------------------------------------------ */

/* Whether a topic's records go to disk (shmq-replicator). */
enum shmq_durability {
	SHMQ_DURABILITY_VOLATILE = 0, /* shared memory only */
	SHMQ_DURABILITY_PERSISTENT = 1, /* segment files, by the replicator
	                                 * (default) */
};

/*
 * When a persistent topic's writes are flushed to the disk, and so what
 * a DURABLE ack (SHMQ_ACKS_DURABLE) and shmq_partition_info().durable
 * promise.  The persister writes each batch of committed records to the
 * segment file (then they are in the kernel's page cache), and:
 *
 *  ALWAYS    flushes the batch (fdatasync, linked after the write)
 *            before it acknowledges it.  An acknowledged record is on
 *            stable storage: it survives process crashes, kernel
 *            crashes and power loss.
 *  INTERVAL  flushes once fsync_interval_ms have passed since the last
 *            flush (also before starting a new segment, and when it
 *            stops), and acknowledges at the flush.  So an acknowledged
 *            record is on stable storage, as with ALWAYS, but a DURABLE
 *            send waits up to the interval (plus the persister's poll,
 *            at most 100 ms, when nothing else arrives): a producer that
 *            waits for each ack gets about one per interval; batch or
 *            pipeline instead.  Written but not yet flushed records
 *            (not yet acknowledged DURABLE, and those of acks NONE and
 *            LEADER producers) survive the death of any process, the
 *            persister's included (the next one flushes them), but a
 *            kernel crash or power loss loses up to one interval of them.
 *  NEVER     acknowledges once the write is done, with no flush.  An
 *            acknowledged record is in the page cache: it survives the
 *            death of any process, the persister's included (the kernel
 *            owns those pages), but a kernel crash or power loss loses
 *            whatever the kernel's writeback had not written yet
 *            (vm.dirty_expire_centisecs: 30 s by default), acknowledged
 *            or not.  Only a persister's start (its recovery) flushes.
 *
 * After a crash, recovery cuts a torn tail off the last segment, and
 * readers check every record's CRC-32C (SHMQ_ECORRUPT).
 */
enum shmq_fsync {
	SHMQ_FSYNC_ALWAYS = 0, /* every batch (group commit) */
	SHMQ_FSYNC_INTERVAL = 1, /* every fsync_interval_ms */
	SHMQ_FSYNC_NEVER = 2, /* leave it to the page cache */
};

enum shmq_overflow {
	/* Producers wait for the slowest group that has a live member.
	 * A group holds space from its *committed* offset, not from what
	 * it has read: a member that reads without committing (manually
	 * or with SHMQ_CONSUMER_AUTO_COMMIT) stops the producers one ring
	 * later, and so does a seek that is not committed. */
	SHMQ_OVERFLOW_BLOCK = 0,
	/* Producers overwrite; a lapped consumer gets SHMQ_ELAPPED.  On
	 * a persistent topic only what is on disk is overwritten: past
	 * that, producers wait for the replicator as under BLOCK. */
	SHMQ_OVERFLOW_DROP = 1,
};

typedef struct shmq_topic_config {
	size_t size; /* sizeof, set by shmq_topic_config_init */
	uint32_t partitions; /* 1..SHMQ_PARTITIONS_MAX (default 1) */
	uint64_t ring_size; /* bytes per partition ring, power of two,
	                     * SHMQ_RING_SIZE_MIN..MAX (default 16 MiB) */
	int overflow; /* enum shmq_overflow (default BLOCK) */
	/* Persistence (default PERSISTENT).  A persistent topic's ring
	 * reuses space only once on disk, so it needs shmq-replicator
	 * running once a ring's worth has been sent: until then sends
	 * fail with SHMQ_ENOREPLICATOR.  VOLATILE needs no replicator
	 * and does not survive a reboot. */
	int durability; /* enum shmq_durability */
	int fsync; /* enum shmq_fsync (default ALWAYS) */
	uint32_t fsync_interval_ms; /* with SHMQ_FSYNC_INTERVAL */
	uint32_t reserved_;
	uint64_t segment_bytes; /* segment file size (default 64 MiB) */
	/* Retention (persistent topics): whole segments beyond these are
	 * deleted, oldest first, never the one being written; 0 = keep.
	 * A consumer below the log start then takes its reset policy. */
	uint64_t retention_bytes;
	uint64_t retention_ms; /* age of a segment's last write */
} shmq_topic_config_t;

SHMQ_API void shmq_topic_config_init(shmq_topic_config_t *cfg);

/* Create a topic.  -EEXIST if it exists, -EINVAL for a bad name or
 * config (ring size not a power of two, out of range, ...). */
SHMQ_API int shmq_topic_create(
    shmq_t *q, const char *name, const shmq_topic_config_t *cfg);

/* Delete a topic and its rings and group state.  Open handles on it get
 * SHMQ_EDELETED from then on.  -ENOENT if there is no such topic. */
SHMQ_API int shmq_topic_delete(shmq_t *q, const char *name);

/* Call fn(name, arg) for every topic, in name order.  A non-zero return
 * from fn stops the walk and is returned. */
SHMQ_API int shmq_topic_list(
    shmq_t *q, int (*fn)(const char *name, void *arg), void *arg);

/* Read a topic's configuration.  -ENOENT if there is no such topic. */
SHMQ_API int shmq_topic_describe(
    shmq_t *q, const char *name, shmq_topic_config_t *cfg);

/* Grow a topic to `total` partitions (more than it has, at most
 * SHMQ_PARTITIONS_MAX); the topic keeps its id, records and groups.
 * -ENOENT if there is no such topic, -EINVAL if `total` is not larger.
 * Open producers see the new partitions at their next send, without
 * reopening; group members get them at their next rebalance (a new
 * partition's group offset starts at 0, so a group reads all of it);
 * standalone consumers keep their assignment (shmq_assign may name the
 * new partitions).  Keyed records hash over `total` from then on: a
 * key may map to another partition than before, so per-key order holds
 * only among records sent after the change. */
SHMQ_API int shmq_topic_add_partitions(
    shmq_t *q, const char *name, uint32_t total);

/* Fields are only ever added at the end.  The struct has no size field
 * (the caller allocates it, the library fills its own sizeof), so a
 * program built against an older shmq.h must be rebuilt when fields are
 * added, as segments and segment_bytes were. */
typedef struct shmq_partition_info {
	/* Oldest offset still readable: on a persistent topic the first
	 * offset of the oldest segment, when that is older than the ring's
	 * oldest record (it moves up as retention deletes segments). */
	uint64_t log_start;
	uint64_t committed; /* every offset below is fully written */
	uint64_t end; /* next offset to be handed out */
	uint64_t ring_size; /* bytes */
	uint64_t ring_used; /* bytes between oldest record and end */
	uint64_t records_in; /* records appended since the ring was made */
	uint64_t bytes_in; /* key + value bytes appended */
	uint64_t aborted; /* reservations aborted or reclaimed */
	uint32_t producers; /* live producer handles */
	uint32_t consumers; /* live consumer handles */
	uint32_t leader_epoch;
	uint32_t reserved;
	/* Persistent topics: */
	uint64_t durable; /* every offset below is durable, as the
	                   * topic's enum shmq_fsync policy defines it */
	int32_t persist_err; /* sticky write/flush error (-errno), or 0 */
	uint32_t persister; /* 1 while a persister runs for the instance */
	uint64_t segments; /* segment files on disk (0: none, or volatile) */
	uint64_t segment_bytes; /* their total size: what retention_bytes
	                         * is compared with */
} shmq_partition_info_t;

/* Snapshot of one partition.  The fields are read without a lock, so
 * they may be from slightly different instants, but each is exact. */
SHMQ_API int shmq_partition_info(shmq_t *q, const char *topic,
    uint32_t partition, shmq_partition_info_t *info);

/* ------------------------------------------------------------------ */
/* Producers                                                          */
/* ------------------------------------------------------------------ */

typedef struct shmq_producer shmq_producer_t;

/* Ack levels (Kafka's acks).  The send returns once the level is
 * reached.  DURABLE needs a persistent topic (else -EINVAL) and a
 * running shmq-replicator, ALL needs replication, which does not exist
 * yet: without them they return SHMQ_ENOREPLICATOR, never a silent
 * downgrade. */
enum shmq_acks {
	SHMQ_ACKS_NONE = 0, /* written into the ring (may still be
	                     * hidden behind an earlier reservation) */
	SHMQ_ACKS_LEADER = 1, /* visible to consumers (default) */
	/* In the segment file on local disk, and flushed as the topic's
	 * fsync policy says (persistent topics, with shmq-replicator
	 * running): on stable storage under ALWAYS and INTERVAL (which
	 * acknowledges at its next flush), in the page cache under NEVER
	 * (lost on a kernel crash or power loss, not on a process crash).
	 * See enum shmq_fsync. */
	SHMQ_ACKS_DURABLE = 2,
	SHMQ_ACKS_ALL = 3, /* on every in-sync replica */
};

/* Producer flags. */
/* This producer is the only writer of the topic: it skips the shared
 * lock.  Opening fails with -EBUSY while another producer is open, and
 * other producers get -EBUSY while it is open. */
#define SHMQ_PRODUCER_EXCLUSIVE 0x1u
/* Idempotent producer (Kafka's enable.idempotence): every record carries
 * a producer id, an epoch and a per-partition sequence, and a send that
 * repeats a sequence (SHMQ_MSG_SEQUENCE) returns the original record's
 * offset instead of appending it again.  With producer_name the identity
 * is kept on the topic and resumed by the next open of that name, which
 * fences the previous instance (SHMQ_EFENCED).  Not with shmq_reserve
 * (a zero-copy slice gets no sequence: -EINVAL). */
#define SHMQ_PRODUCER_IDEMPOTENT 0x2u

typedef struct shmq_producer_options {
	size_t size; /* set by shmq_producer_options_init */
	int acks; /* enum shmq_acks (default LEADER) */
	unsigned flags; /* SHMQ_PRODUCER_* */
	/* How long a send may wait for ring space (on a `block` topic,
	 * or on a persistent topic for the replicator's disk writes)
	 * before -EAGAIN; -1 waits forever (default). */
	int timeout_ms;
	/* Keyless records stick to one partition for this many records,
	 * then move to the next (Kafka's sticky partitioner).  Default
	 * 1024. */
	uint32_t sticky_records;
	/* SHMQ_PRODUCER_IDEMPOTENT: the identity to resume on this topic
	 * ([A-Za-z0-9._-], like topic names; Kafka's transactional.id,
	 * without transactions).  NULL: a new anonymous identity. */
	const char *producer_name;
	/* Retry sends that failed with a retriable error (-EAGAIN,
	 * -ETIMEDOUT, SHMQ_ENOREPLICATOR, SHMQ_EFAILED, SHMQ_ERECLAIMED)
	 * this many times; -1 without limit (Kafka's retries=MAX: a send
	 * then returns only once it succeeds or meets another error; a
	 * partition whose disk failed is retried until a new
	 * shmq-replicator recovers it).  Needs SHMQ_PRODUCER_IDEMPOTENT (a
	 * retry repeats the partition and sequence, so a record that an
	 * attempt appended is never appended twice; the send then reports
	 * no SHMQ_MSG_DUPLICATE, as the caller sent it once). */
	int retries;
	/* Wait before the first retry (default 10 ms), doubled each time
	 * up to retry_backoff_max_ms (default 1000). */
	int retry_backoff_ms;
	int retry_backoff_max_ms;
} shmq_producer_options_t;

SHMQ_API void shmq_producer_options_init(shmq_producer_options_t *opts);

/* Open a producer on `topic`.  Errors: -ENOENT (no topic), -EBUSY (see
 * SHMQ_PRODUCER_EXCLUSIVE), SHMQ_ENOREPLICATOR (acks DURABLE/ALL),
 * SHMQ_ECORRUPT/SHMQ_EVERSION (ring validation), -EINVAL (also: a
 * producer_name or retries without SHMQ_PRODUCER_IDEMPOTENT, or an
 * invalid name). */
SHMQ_API int shmq_producer_open(shmq_t *q, const char *topic,
    const shmq_producer_options_t *opts, shmq_producer_t **p);

/* Abort the slices this handle still has reserved (their offsets become
 * gaps), and close.  Accepts NULL. */
SHMQ_API void shmq_producer_close(shmq_producer_t *p);

/* Pass as `partition` to choose by key (murmur2, as Kafka's Java
 * client) or, without a key, by the sticky partitioner. */
#define SHMQ_PARTITION_ANY (-1)

typedef struct shmq_msg {
	const void *key; /* may be NULL when key_len == 0 */
	size_t key_len;
	const void *value; /* may be NULL when value_len == 0 */
	size_t value_len;
	int32_t partition; /* in: SHMQ_PARTITION_ANY or a partition;
	                    * out: the partition used */
	int64_t timestamp; /* in: ns since the epoch, 0 = now; out: used */
	uint64_t offset; /* out: the record's offset */
	/* Idempotent producers.  in: with SHMQ_MSG_SEQUENCE in flags, send
	 * this sequence (else the partition's next one); out: the sequence
	 * of the record. */
	uint32_t sequence;
	uint32_t flags; /* SHMQ_MSG_*: in SEQUENCE; out DUPLICATE */
} shmq_msg_t;

/* msg.flags.  In: use msg.sequence.  Out (idempotent producers): the
 * sequence was in the log already; offset is the original record's
 * and nothing was appended. */
#define SHMQ_MSG_SEQUENCE 0x1u
#define SHMQ_MSG_DUPLICATE 0x2u

/*
 * Append one record.  On success m->partition, m->timestamp and
 * m->offset say where it went (and, for an idempotent producer,
 * m->sequence and SHMQ_MSG_DUPLICATE in m->flags: see below).  Blocks only on
 * a full ring (up to timeout_ms) and, with acks LEADER, until the record is
 * visible: if an earlier reservation of another producer still hides it when
 * timeout_ms has passed (or it is this handle's own open slice), the
 * send returns 0 all the same — the record is appended and becomes
 * visible once that reservation is settled.  A send that returns an
 * error appended nothing, so retrying it cannot duplicate — except the
 * errors of an acks DURABLE wait (-ETIMEDOUT, SHMQ_ENOREPLICATOR,
 * SHMQ_EFAILED after the record went into the ring): the record is in
 * the log but not known to be on disk, and only an idempotent producer
 * can retry it without a second copy (see below).  Errors:
 * -EINVAL (partition out of range, NULL data with non-zero length),
 * -EMSGSIZE (record larger than ring/4, key over 65535 bytes), -EAGAIN
 * (no room within timeout_ms), -EDEADLK (no room, and what holds the
 * ring is this handle's own open slice), SHMQ_ENOREPLICATOR (a
 * persistent topic's ring is full of records not yet on disk, and no
 * shmq-replicator runs to write them: returned at once, not after
 * timeout_ms), SHMQ_ERECLAIMED (this producer stalled longer than
 * stall_ms between reserving and committing), SHMQ_EDELETED,
 * SHMQ_EFAILED (also when a persistent ring is full and the running
 * replicator failed to write that partition: a sticky error).
 */
SHMQ_API int shmq_send(shmq_producer_t *p, shmq_msg_t *m);

/*
 * Idempotent producers (SHMQ_PRODUCER_IDEMPOTENT).  Each partition's
 * records get sequences 0, 1, 2, ... of this identity.  A send with
 * SHMQ_MSG_SEQUENCE and sequence s:
 *  - s is the next sequence: appended as usual;
 *  - s is in the log already: nothing is appended; the send returns 0
 *    with the original record's partition and offset (not its
 *    timestamp), waits for the ack level on it, and sets
 *    SHMQ_MSG_DUPLICATE; SHMQ_EDUPLICATE when the record
 *    is older than the 128 most recent of this identity in the
 *    partition (its offset is not kept);
 *  - s is beyond the next: SHMQ_ESEQUENCE.
 * So the outcome of a send that failed after appending (a DURABLE wait
 * that timed out, a process that died before it learned the offset) is
 * settled by sending the same sequence again.  After a restart the next
 * sequence continues from the log (shmq_producer_next_sequence).  Once
 * another instance opened the same producer_name, every send returns
 * SHMQ_EFENCED.  Set partition explicitly (or by key) when using
 * SHMQ_MSG_SEQUENCE: a keyless SHMQ_PARTITION_ANY send picks the sticky
 * partition, which need not be the one the sequence belongs to.
 */

/* This identity: producer id and epoch (the epoch grows by one at every
 * open of the same producer_name).  -EINVAL if not idempotent. */
SHMQ_API int shmq_producer_identity(
    shmq_producer_t *p, uint64_t *producer_id, uint16_t *epoch);

/* The sequence the next fresh record to `partition` gets (read from the
 * log at the first call for a partition after a restart).  -EINVAL if
 * not idempotent or partition out of range; also SHMQ_EFENCED. */
SHMQ_API int shmq_producer_next_sequence(
    shmq_producer_t *p, uint32_t partition, uint32_t *sequence);

/* Append n records with one reservation per partition run.  Returns how
 * many were appended, from the first on: all of them, or fewer when one
 * failed (send the rest again to see its error; msgs[k].offset is set
 * for each k appended), or a negative error if none was.  Records to
 * one partition keep their order and get consecutive offsets. */
SHMQ_API ssize_t shmq_send_batch(
    shmq_producer_t *p, shmq_msg_t *msgs, size_t n);

/* The partition Kafka's default partitioner picks for this key:
 * (murmur2(key) & 0x7fffffff) % partitions. */
SHMQ_API int32_t shmq_partition_for_key(
    const void *key, size_t key_len, uint32_t partitions);

/* Zero-copy write: a slice of the ring, lent out until commit/abort. */
typedef struct shmq_slice {
	void *key; /* key_len bytes to fill */
	void *value; /* value_len bytes to fill */
	size_t key_len;
	size_t value_len;
	int32_t partition;
	uint32_t reserved_;
	uint64_t offset; /* the offset the record will have */
	uint64_t opaque_[2];
} shmq_slice_t;

/*
 * Reserve room for one record in `partition` (SHMQ_PARTITION_ANY: the
 * sticky partition — to place by key, pass shmq_partition_for_key()).
 * Write key and value in place, then call shmq_commit or shmq_abort.
 * Offsets are handed out in reservation order, and consumers see
 * records in offset order, so hold a slice briefly: until it is
 * committed or aborted, later records of the partition are invisible.
 * If this process dies while holding it, another process aborts it
 * after reclaim_ms; the offset then stays unused (a gap).  Waits for
 * room and fails as shmq_send does.
 */
SHMQ_API int shmq_reserve(shmq_producer_t *p, int32_t partition,
    size_t key_len, size_t value_len, shmq_slice_t *s);

/* Publish a reserved slice.  SHMQ_ERECLAIMED if it was reclaimed
 * because this producer stalled longer than stall_ms. */
SHMQ_API int shmq_commit(shmq_producer_t *p, shmq_slice_t *s);

/* Give a reserved slice up: its offset becomes a gap. */
SHMQ_API int shmq_abort(shmq_producer_t *p, shmq_slice_t *s);

/* ------------------------------------------------------------------ */
/* Consumers                                                          */
/* ------------------------------------------------------------------ */

typedef struct shmq_consumer shmq_consumer_t;

enum shmq_reset {
	SHMQ_RESET_EARLIEST = 0, /* default: oldest retained record */
	SHMQ_RESET_LATEST = 1, /* the end of the log */
	SHMQ_RESET_ERROR = 2, /* fail with SHMQ_EOUTOFRANGE */
};

enum shmq_idle {
	SHMQ_IDLE_SPIN_PARK = 0, /* spin briefly, then sleep on a futex */
	SHMQ_IDLE_BUSY_SPIN = 1, /* never sleep: lowest latency, one core */
};

/* Consumer flags. */
/* Each poll commits what the previous poll returned (at-least-once). */
#define SHMQ_CONSUMER_AUTO_COMMIT 0x1u

typedef struct shmq_consumer_options {
	size_t size; /* set by shmq_consumer_options_init */
	const char *group; /* NULL: standalone (use shmq_assign) */
	int reset; /* enum shmq_reset */
	int idle; /* enum shmq_idle */
	unsigned flags; /* SHMQ_CONSUMER_* */
	unsigned spin_us; /* spin before parking (default 50) */
} shmq_consumer_options_t;

SHMQ_API void shmq_consumer_options_init(shmq_consumer_options_t *opts);

/*
 * Open a consumer.  With a group it joins the group's membership (kept
 * in shared memory) and is given partitions by the group's sticky
 * assignment; it starts each from the group's committed offset, or the
 * reset policy.  Without a group it reads nothing until shmq_assign.
 * Errors: -ENOENT (no topic), -EINVAL, -EMFILE (group full: 64
 * members), -ENOSPC (a `block` topic already gates 32 groups),
 * SHMQ_ECORRUPT/SHMQ_EVERSION.
 */
SHMQ_API int shmq_consumer_open(shmq_t *q, const char *topic,
    const shmq_consumer_options_t *opts, shmq_consumer_t **c);

/* Leave the group (auto-commit first, if enabled) and close.  The
 * partitions move to the remaining members.  Accepts NULL. */
SHMQ_API void shmq_consumer_close(shmq_consumer_t *c);

/* Standalone consumers: read exactly these partitions, each from the
 * reset policy's position until shmq_seek moves it.  -EINVAL in a
 * group or for a partition out of range; -EBUSY while a record is
 * borrowed. */
SHMQ_API int shmq_assign(
    shmq_consumer_t *c, const uint32_t *partitions, size_t n);

/* Next read of `partition` starts at `offset`.  Offsets below the log
 * start or above its end take the reset policy when read.  The
 * partition must be assigned (in a group: owned now) or -EINVAL;
 * -EBUSY while a record is borrowed (shmq_peek).  On a
 * `block` topic, records below the group's committed offset are not
 * held for it: reading there, a member may be lapped (SHMQ_ELAPPED). */
SHMQ_API int shmq_seek(
    shmq_consumer_t *c, uint32_t partition, uint64_t offset);

/* SHMQ_SEEK_* for shmq_seek_to. */
#define SHMQ_SEEK_BEGINNING 0
#define SHMQ_SEEK_END 1
SHMQ_API int shmq_seek_to(shmq_consumer_t *c, uint32_t partition, int whence);

/* One record as seen by a consumer. */
typedef struct shmq_record {
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	uint32_t partition;
	uint32_t reserved_;
	uint64_t offset;
	int64_t timestamp; /* ns since the epoch, set by the producer */
	uint64_t lost; /* with SHMQ_ELAPPED: records skipped */
	/* Idempotent producers' records: who wrote it, and its sequence in
	 * the partition (producer_id 0: not an idempotent producer's).  An
	 * idempotent consumer can keep (producer_id, sequence) as the
	 * record's unique id. */
	uint64_t producer_id;
	uint32_t sequence;
	uint16_t producer_epoch;
	uint16_t reserved2_;
	uint64_t opaque_[2];
} shmq_record_t;

/*
 * Zero-copy read: wait up to timeout_ms (0: don't wait, -1: forever) for
 * the next record of any assigned partition and lend it out.  r->key and
 * r->value point into the shared ring and stay valid until
 * shmq_release(c, r) or the consumer is closed; do not write through
 * them.  One record may be borrowed at a time.  Returns 0, -EAGAIN
 * (nothing within the timeout), SHMQ_ELAPPED (on a volatile topic the
 * ring overran this consumer; r->partition and r->lost say where and
 * how many; the next call continues from the oldest record.  On a
 * persistent topic an overrun reader goes on from the segments, and
 * gets SHMQ_ELAPPED only for offsets retention deleted meanwhile; a
 * group member whose group's committed offset left the log while the
 * group had no live member gets it too, under SHMQ_RESET_EARLIEST,
 * with the count of records skipped, instead of a quiet reset),
 * SHMQ_EOUTOFRANGE (reset policy ERROR), SHMQ_EDELETED, or
 * SHMQ_ECORRUPT: a record read back from a segment file failed its
 * checks (the disk changed it).  r->partition and r->offset name it; it
 * is never handed out, and every call says so again until shmq_seek
 * moves past it (to r->offset + 1, skipping that record knowingly).
 */
SHMQ_API int shmq_peek(shmq_consumer_t *c, shmq_record_t *r, int timeout_ms);

/* Return a borrowed record.  0, or SHMQ_ESTALE if the ring overwrote it
 * while it was borrowed (possible on `drop` topics, for standalone
 * consumers, and below a group's committed offset): whatever was read
 * from it must be discarded (the consumer then continues as after
 * SHMQ_ELAPPED; on a persistent topic it reads that record again, from
 * the segments).  A commit made while a record is borrowed keeps that
 * record from being overwritten until it is released. */
SHMQ_API int shmq_release(shmq_consumer_t *c, shmq_record_t *r);

/*
 * Copy read: like shmq_peek, but copies key then value into buf (cap
 * bytes) and sets r->key/r->value to point into buf.  -EMSGSIZE if cap
 * is too small: r->key_len + r->value_len is then the size needed and
 * the record stays queued.
 */
SHMQ_API int shmq_recv(shmq_consumer_t *c, void *buf, size_t cap,
    shmq_record_t *r, int timeout_ms);

/* Commit, for every partition, the offset after the last record
 * returned (Kafka's commitSync()).  In a group the offsets are stored
 * in the group's shared state and survive process restarts. */
SHMQ_API int shmq_consumer_commit(shmq_consumer_t *c);

/* Commit `offset` (the next record to read) for one partition. */
SHMQ_API int shmq_consumer_commit_offset(
    shmq_consumer_t *c, uint32_t partition, uint64_t offset);

/* The partitions this consumer reads now, ascending, in parts[0..n).
 * Returns the count (which may exceed cap; only cap are written). */
SHMQ_API ssize_t shmq_assignment(
    shmq_consumer_t *c, uint32_t *parts, size_t cap);

/* Records between this consumer's position and the end, over its
 * partitions. */
SHMQ_API int shmq_consumer_lag(shmq_consumer_t *c, uint64_t *records);

/* ------------------------------------------------------------------ */
/* Order with parallelism: records by key to worker threads            */
/* ------------------------------------------------------------------ */

/*
 * One consumer, N worker threads: records with the same key are
 * processed in order, by one worker; different keys in parallel; and
 * the consumer's commit never passes a record that has not finished —
 * per partition it is the lowest offset not yet processed, so a crash
 * at any point re-delivers unfinished records (at-least-once) and skips
 * none.  A record without a key is ordered by its partition.
 *
 * The consumer must be a group member without
 * SHMQ_CONSUMER_AUTO_COMMIT (the facility makes every commit).  The
 * thread that calls shmq_keyed_poll (the dispatcher) is the only one
 * that uses the consumer, which must not be used by anyone else
 * meanwhile; nor may fn call shmq_keyed_* (it would deadlock).  fn runs
 * on a worker thread with a copy of the record, valid until fn
 * returns.  fn returning non-zero stops the facility: no record runs
 * after it (records still queued are not processed), the commit never
 * passes it, and every later call returns the error.
 */
typedef struct shmq_keyed shmq_keyed_t;
typedef int (*shmq_keyed_fn)(
    const shmq_record_t *r, void *arg, unsigned worker);

#define SHMQ_KEYED_WORKERS_MAX 256
#define SHMQ_KEYED_QUEUE_MAX 65536

typedef struct shmq_keyed_options {
	size_t size; /* set by shmq_keyed_options_init */
	unsigned workers; /* worker threads (default 4) */
	unsigned queue; /* records queued per worker (default 256) */
} shmq_keyed_options_t;

SHMQ_API void shmq_keyed_options_init(shmq_keyed_options_t *opts);

/* Start the workers over consumer c (opts may be NULL).  -EINVAL (also
 * for a consumer outside a group or with auto-commit), -ENOMEM, or a
 * pthread_create error. */
SHMQ_API int shmq_keyed_open(shmq_consumer_t *c,
    const shmq_keyed_options_t *opts, shmq_keyed_fn fn, void *arg,
    shmq_keyed_t **k);

/* Read records (waiting up to timeout_ms for the first, as shmq_recv),
 * hand each to its key's worker, and commit what finished.  A worker
 * whose queue is full holds the dispatcher up, while commits go on.
 * While it waits, for a record or for room, it commits every 10 ms (on
 * a `block` topic the producer may be waiting for that commit); it
 * never waits past timeout_ms.  Returns the number of records handed
 * out, or an error: a worker's fn error, or the consumer's (SHMQ_ELAPPED
 * and the others of shmq_peek). */
SHMQ_API ssize_t shmq_keyed_poll(shmq_keyed_t *k, int timeout_ms);

/* Wait up to timeout_ms (-1: no limit) until every record handed out
 * has been processed, and commit.  0, -ETIMEDOUT, or fn's error. */
SHMQ_API int shmq_keyed_drain(shmq_keyed_t *k, int timeout_ms);

/* Let the workers finish what is queued, commit, stop them and free.
 * The consumer stays open, sent back (shmq_seek) per partition to the
 * lowest record not processed, so that whoever reads it next reads
 * those again.  0 or fn's error. */
SHMQ_API int shmq_keyed_close(shmq_keyed_t *k);

/* ------------------------------------------------------------------ */
/* Persistence engine (used by shmq-replicator)                       */
/* ------------------------------------------------------------------ */

typedef struct shmq_persister shmq_persister_t;

/* Log levels of the persister's messages. */
enum shmq_log {
	SHMQ_LOG_ERROR = 0,
	SHMQ_LOG_WARN = 1,
	SHMQ_LOG_INFO = 2,
	SHMQ_LOG_DEBUG = 3,
};

/*
 * Become the instance's persister: the one process that writes its
 * persistent partitions to segment files under HOME/data.  Takes the
 * instance's replicator lock (an OFD lock on HOME/replicator.lock, so a
 * crash frees it): -EBUSY if another persister holds it, and then
 * *holder (if not NULL) is its pid.  On start it recovers every
 * persistent partition: verifies the tail of its last segment, truncates
 * a torn tail, and aligns the ring with what is on disk.  `log` (may be
 * NULL) receives its messages, from the calling thread.
 */
SHMQ_API int shmq_persister_open(shmq_t *q,
    void (*log)(int level, const char *msg, void *arg), void *log_arg,
    pid_t *holder, shmq_persister_t **out);

/*
 * One round: write what is committed in every persistent partition to
 * its segments (io_uring), flush per the topic's fsync policy, advance
 * the durable watermark and wake DURABLE producers; then wait up to
 * timeout_ms for new commits.  New and deleted topics are noticed.
 * Returns the number of records written (under SHMQ_FSYNC_INTERVAL they
 * become durable at the next flush).  A write or flush that
 * fails is sticky for its partition (it stops acknowledging and says
 * why in the log and in shmq_partition_info) and is not returned here;
 * a negative return concerns the persister as a whole.
 */
SHMQ_API ssize_t shmq_persister_poll(shmq_persister_t *ps, int timeout_ms);

/* Flush everything written, release the lock, free.  Accepts NULL. */
SHMQ_API void shmq_persister_close(shmq_persister_t *ps);

/* Is a persister (shmq-replicator) running for this instance?  1 (and
 * *pid, if not NULL, is its pid), 0, or a negative error. */
SHMQ_API int shmq_persister_running(shmq_t *q, pid_t *pid);

/* ------------------------------------------------------------------ */
/* Groups (administration; members use shmq_consumer_open)            */
/* ------------------------------------------------------------------ */

/* Call fn(group, topic, arg) for every group of the instance. */
SHMQ_API int shmq_group_list(shmq_t *q,
    int (*fn)(const char *group, const char *topic, void *arg), void *arg);

typedef struct shmq_group_partition {
	uint32_t partition;
	int32_t owner; /* member slot, -1 = none */
	pid_t owner_pid; /* 0 = none */
	uint32_t reserved_;
	uint64_t committed; /* next offset the group will read */
	uint64_t end; /* partition end */
	uint64_t lag; /* end - committed, in records */
	uint64_t records_out;
	uint64_t bytes_out;
	uint64_t lost; /* records overrun on a `drop` topic */
} shmq_group_partition_t;

/* Per-partition state of `group` on `topic`, in parts[0..n) for n up to
 * cap.  Returns the number of partitions (which may exceed cap), -ENOENT
 * if the group never consumed the topic. */
SHMQ_API ssize_t shmq_group_describe(shmq_t *q, const char *group,
    const char *topic, shmq_group_partition_t *parts, size_t cap);

/* Live members of the group. */
SHMQ_API int shmq_group_members(
    shmq_t *q, const char *group, const char *topic, uint32_t *members);

/* Set the group's committed offset of one partition.  -EBUSY while the
 * group has live members (as Kafka requires an inactive group). */
SHMQ_API int shmq_group_set_offset(shmq_t *q, const char *group,
    const char *topic, uint32_t partition, uint64_t offset);

/* Delete the group's state.  -EBUSY while it has live members. */
SHMQ_API int shmq_group_delete(
    shmq_t *q, const char *group, const char *topic);

/* First offset whose timestamp is >= ts_ns, or the partition end when
 * there is none (Kafka's offsetsForTimes). */
SHMQ_API int shmq_offset_for_time(shmq_t *q, const char *topic,
    uint32_t partition, int64_t ts_ns, uint64_t *offset);

#ifdef __cplusplus
}
#endif
#endif /* SHMQ_H */
