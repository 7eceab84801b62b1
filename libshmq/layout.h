/*
 * layout.h — the bytes other processes depend on: the ring file (header,
 * sparse offset index, data area), the record header, and the group
 * state file.  Everything here is ABI between processes of possibly
 * different builds, so every size and offset has a _Static_assert, only
 * fixed-width types are used, padding is explicit, and the layout word
 * below changes whenever any of them does.
 *
 * Ring file:
 *   [0, RING_HDR_SIZE)          struct ring_hdr
 *   [index_off, +slots*8)       sparse index: position of every 64th offset
 *   [data_off, +capacity)       records, 8-byte aligned, never wrapping
 *
 * Byte ranges far beyond the end of the file are used only for OFD
 * locks (fcntl F_OFD_SETLK), which the kernel drops when the holder dies:
 * that is how death is noticed at once, without heartbeats.
 */
#ifndef SHMQ_LAYOUT_H
#define SHMQ_LAYOUT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* "SHMQRING" read as a little-endian u64: a big-endian reader sees it
 * byte-swapped, so a byte-order mismatch shows as a bad magic. */
#define RING_MAGIC 0x474e4952514d4853ull
#define GROUP_MAGIC 0x5052475f514d4853ull /* "SHMQ_GRP" */
#define LAYOUT_MAJOR 1u
#define LAYOUT_MINOR 0u
#define LAYOUT_VERSION ((LAYOUT_MAJOR << 16) | LAYOUT_MINOR)

/* Hot counters get a line pair each: adjacent-line prefetch on x86 makes
 * 64-byte separation insufficient (Aeron pads to 128 for this reason). */
#define HOT_LINE 128
#define RING_HDR_SIZE 8192u
#define RING_PAGE 4096u

/* Client slots (producers and consumers that have the ring open) and
 * gates (per consumer group, the committed position that producers of a
 * `block` topic may not overwrite). */
#define RING_CLIENTS 256u
#define RING_GATES 32u
#define RING_INDEX_STRIDE_SHIFT 6u /* one index entry per 64 offsets */

/* OFD lock byte ranges (beyond any real file size). */
#define LOCK_CLIENT_BASE (1ll << 40)
#define LOCK_GATE_BASE ((1ll << 40) + 4096)
#define LOCK_EXCL_BYTE ((1ll << 40) + 8192)
#define LOCK_MEMBER_BASE (1ll << 40)

/* hdr_flags bits */
#define RING_F_DELETED 0x1u /* topic deleted: handles stop */
#define RING_F_FAILED 0x2u /* sticky failure: corrupt state seen */
#define RING_F_EXCL_DIRTY 0x4u /* an exclusive writer is (or was) active */
#define RING_F_PERSISTENT 0x8u /* space is reused only below durable_pos */

struct ring_client {
	_Atomic uint32_t cl_gen; /* bumped on every claim: owner words
	                          * of dead clients stop matching */
	uint32_t cl_pid;
	uint32_t cl_kind; /* CLIENT_PRODUCER / CLIENT_CONSUMER */
	uint32_t cl_pad;
};
#define CLIENT_PRODUCER 1u
#define CLIENT_CONSUMER 2u

struct ring_gate {
	_Atomic uint64_t gt_pos; /* group's committed position */
	_Atomic uint64_t gt_owner; /* group file id; 0 = free */
};

struct ring_hdr {
	/* Identity: written once before hdr_version is published. */
	uint64_t hdr_magic;
	_Atomic uint32_t hdr_version; /* stored last, with release */
	uint32_t hdr_layout;
	uint64_t hdr_capacity; /* data bytes, a power of two */
	uint64_t hdr_data_off; /* file offset of the data area */
	uint64_t hdr_index_off; /* file offset of the index */
	uint32_t hdr_index_slots;
	uint32_t hdr_partition;
	uint64_t hdr_instance_id;
	uint64_t hdr_topic_id;
	uint32_t hdr_overflow;
	uint32_t hdr_max_record;
	uint32_t hdr_creator_pid;
	/* The topic's partition count as last announced: set at creation
	 * from the metadata, raised (release) by shmq_topic_add_partitions
	 * once the grown metadata is durable.  Producers compare it with
	 * their own count on every send (ARCHITECTURE.md §6, growth). */
	_Atomic uint32_t hdr_partitions;
	int64_t hdr_created_ns;
	uint8_t hdr_boot_id[16];
	/* Read on every call, written almost never: kept off the lines
	 * that writers dirty. */
	_Atomic uint32_t hdr_flags;
	_Atomic uint32_t hdr_leader_epoch;
	uint8_t hdr_pad1[HOT_LINE - 112];

	/* Writer state, changed under hdr_lock (or by the exclusive
	 * writer). */
	alignas(HOT_LINE) pthread_mutex_t hdr_lock;
	_Atomic uint64_t hdr_end_pos; /* published after headers */
	_Atomic uint64_t hdr_end_off; /* next offset to hand out */
	_Atomic uint64_t hdr_wrap_pos; /* writers may overwrite below
	                                * wrap_pos - capacity */
	_Atomic uint64_t hdr_records_in;
	_Atomic uint64_t hdr_bytes_in;

	/* Oldest record still in the ring. */
	alignas(HOT_LINE) _Atomic uint64_t hdr_start_pos;
	_Atomic uint64_t hdr_start_off;

	/* Every record below committed_pos is complete. */
	alignas(HOT_LINE) _Atomic uint64_t hdr_committed_pos;
	_Atomic uint32_t hdr_commit_seq; /* futex word */
	_Atomic uint32_t hdr_commit_waiters; /* sleepers on it */

	/* Producers waiting for space on a full ring. */
	alignas(HOT_LINE) _Atomic uint32_t hdr_space_seq;
	_Atomic uint32_t hdr_space_waiters;
	_Atomic uint64_t hdr_aborted;

	/* Persistent topics: every record below durable_pos is on disk
	 * under the topic's fsync policy.  Written by the persister only. */
	alignas(HOT_LINE) _Atomic uint64_t hdr_durable_pos;
	_Atomic uint64_t hdr_durable_off;
	_Atomic uint32_t hdr_durable_seq; /* futex word */
	_Atomic uint32_t hdr_durable_waiters; /* DURABLE producers asleep */
	_Atomic int32_t hdr_persist_err; /* sticky: -errno, or 0 */
	uint32_t hdr_pad2;

	alignas(HOT_LINE) struct ring_client hdr_clients[RING_CLIENTS];
	struct ring_gate hdr_gates[RING_GATES];
};

_Static_assert(sizeof(struct ring_hdr) <= RING_HDR_SIZE, "header page");
_Static_assert(offsetof(struct ring_hdr, hdr_version) == 8, "version");
_Static_assert(offsetof(struct ring_hdr, hdr_pad1) == 112, "identity");
_Static_assert(offsetof(struct ring_hdr, hdr_lock) == 128, "lock line");
_Static_assert(offsetof(struct ring_hdr, hdr_start_pos) == 256, "head");
_Static_assert(offsetof(struct ring_hdr, hdr_committed_pos) == 384, "c");
_Static_assert(offsetof(struct ring_hdr, hdr_space_seq) == 512, "space");
_Static_assert(offsetof(struct ring_hdr, hdr_durable_pos) == 640, "dur");
_Static_assert(offsetof(struct ring_hdr, hdr_clients) == 768, "clients");
_Static_assert(sizeof(pthread_mutex_t) == 40, "glibc x86-64 mutex");
_Static_assert(sizeof(struct ring_client) == 16, "client slot");
_Static_assert(sizeof(struct ring_gate) == 16, "gate");

/*
 * Record header: the one record format of ring, segment and wire.
 *
 * rec_len is the commit word: 0 while the record is being written, then
 * the record's unpadded length (header + key + value) — stored last, by
 * compare-and-swap, so that a reclaimer that aborts an abandoned
 * reservation (setting REC_ABORTED) and a late commit cannot both win.
 * The CRC32C covers bytes 16..end (offset through value), so the commit
 * word and the leader epoch (which a new leader may rewrite, as in
 * Kafka's v2 batches) stay outside it.
 */
struct rec_hdr {
	_Atomic uint32_t rec_len;
	uint16_t rec_type;
	uint16_t rec_key_len;
	uint32_t rec_crc;
	uint32_t rec_leader_epoch;
	uint64_t rec_offset; /* PAD: the offset of the next record */
	int64_t rec_timestamp;
	uint64_t rec_producer_id;
	uint32_t rec_sequence;
	uint16_t rec_producer_epoch;
	uint16_t rec_attrs;
	uint32_t rec_value_len;
	uint32_t rec_owner; /* client slot << 24 | slot generation */
};
_Static_assert(sizeof(struct rec_hdr) == 56, "record header");
_Static_assert(offsetof(struct rec_hdr, rec_offset) == 16, "crc start");
#define REC_CRC_START 16u

#define REC_DATA 1u
#define REC_PAD 2u
#define REC_ABORTED 0x80000000u
#define REC_LEN_MASK 0x7fffffffu
#define REC_OWNER_GEN_MASK 0xffffffu
#define REC_ALIGN 8u
#define REC_KEY_MAX 65535u
/* Clear-ahead: each reservation also resets the first REC_PEEK bytes at
 * its end (commit word 0, offset REC_NO_OFFSET), so a reader at the end
 * of the log sees "nothing yet" there, never bytes of an older lap. */
#define REC_PEEK 24u
#define REC_NO_OFFSET UINT64_MAX

/* Group state file: one per (group, topic). */
#define GROUP_MEMBERS 64u
#define GROUP_F_DELETED 0x1u /* unlinked: whoever maps it must not join */

struct grp_member {
	_Atomic uint32_t m_state; /* MEMBER_FREE / MEMBER_ACTIVE */
	uint32_t m_pid;
	int64_t m_joined_ns;
};
#define MEMBER_FREE 0u
#define MEMBER_ACTIVE 1u

struct grp_part {
	_Atomic int32_t gp_owner; /* member slot, -1 = none */
	uint32_t gp_gate; /* gate index in the ring */
	_Atomic uint64_t gp_committed; /* GP_NONE: never committed */
	_Atomic uint64_t gp_records_out;
	_Atomic uint64_t gp_bytes_out;
	_Atomic uint64_t gp_lost;
	_Atomic int64_t gp_commit_ns;
	uint64_t gp_pad[2];
};
#define GP_NONE UINT64_MAX
_Static_assert(sizeof(struct grp_part) == 64, "group partition");

struct grp_hdr {
	uint64_t g_magic;
	_Atomic uint32_t g_version; /* stored last, with release */
	uint32_t g_layout;
	uint64_t g_id; /* random: names the group in ring gates */
	uint64_t g_instance_id;
	uint64_t g_topic_id;
	/* Entries in g_parts: raised (release, under g_lock, after the
	 * file was extended and the new entries set up) when the topic
	 * grows; never lowered.  A mapping covers the count it was made
	 * for (struct group.partitions), which may be behind this. */
	_Atomic uint32_t g_partitions;
	_Atomic uint32_t g_flags; /* GROUP_F_*, changed under g_lock */
	char g_group[104];
	char g_topic[104];
	alignas(HOT_LINE) pthread_mutex_t g_lock;
	_Atomic uint32_t g_generation; /* futex word: bumped on any
	                                * membership or ownership change */
	_Atomic uint32_t g_waiters;
	alignas(HOT_LINE) struct grp_member g_members[GROUP_MEMBERS];
	alignas(HOT_LINE) struct grp_part g_parts[];
};
_Static_assert(offsetof(struct grp_hdr, g_lock) == 256, "group lock");
_Static_assert(sizeof(struct grp_member) == 16, "member slot");

/*
 * Idempotent producer state file: one per (topic, producer name).  Kept
 * with the log: in the topic's data directory for a persistent topic
 * (so an identity survives a reboot with its records), in the shm
 * directory for a volatile one.  It holds the identity, the fence word,
 * and per partition hints for the scan of the log that a resuming
 * instance makes: the log, not this file, decides every sequence.
 */
#define PSTATE_MAGIC 0x44495050514d4853ull /* "SHMQPPID" */
#define PSTATE_WINDOW 64u
#define PSTATE_NONE UINT64_MAX

/* One recent record of the identity: written off, seq, then check (an
 * entry torn by a crash or by a fenced instance fails the check). */
struct pst_ent {
	_Atomic uint64_t pe_off;
	_Atomic uint64_t pe_seq;
	_Atomic uint64_t pe_check; /* pe_off ^ pe_seq ^ PSTATE_MAGIC */
};

struct pst_part {
	/* No record of the identity below this offset: stored before its
	 * first append to the partition; PSTATE_NONE = never written. */
	_Atomic uint64_t pp_scan_from;
	_Atomic uint64_t pp_count; /* entries ever written */
	struct pst_ent pp_win[PSTATE_WINDOW];
};

struct pst_hdr {
	uint64_t ps_magic;
	_Atomic uint32_t ps_version; /* stored last, with release */
	uint32_t ps_layout;
	uint64_t ps_topic_id;
	uint64_t ps_producer_id;
	/* Fence word: grows at every open of the name (changed under the
	 * file's OFD lock); a handle whose generation differs is fenced. */
	_Atomic uint32_t ps_generation;
	_Atomic uint32_t ps_partitions; /* pst_part entries (grows, under
	                                 * the file's lock) */
	int64_t ps_created_ns;
	uint8_t ps_pad[128 - 48];
	struct pst_part ps_parts[];
};
_Static_assert(sizeof(struct pst_hdr) == 128, "producer state header");
_Static_assert(sizeof(struct pst_part) == 16 + 24 * PSTATE_WINDOW, "part");

/* A layout word derived from sizes and offsets, like LMDB's
 * MDB_LOCK_FORMAT: two builds that disagree on any of them refuse each
 * other's files. */
#define LAYOUT_WORD                                        \
	((uint32_t)(sizeof(struct ring_hdr) ^              \
	    (sizeof(struct rec_hdr) << 12) ^               \
	    (offsetof(struct ring_hdr, hdr_gates) << 16) ^ \
	    (sizeof(struct grp_hdr) << 20) ^ (sizeof(struct grp_part) << 8)))

#endif /* SHMQ_LAYOUT_H */
