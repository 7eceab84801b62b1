/*
 * group.c — consumer groups coordinated in shared memory.
 *
 * One file per (group, topic) holds the members, the owner of every
 * partition and the group's committed offsets.  Changes are made under a
 * robust mutex and announced by bumping g_generation (a futex word).
 *
 * Liveness: member slot s is held as an exclusive OFD lock on byte
 * LOCK_MEMBER_BASE + s of the group file.  The kernel drops it when the
 * member's process dies (kill -9 included), so a dead member is seen by
 * the next look — no heartbeats, no session timeout.  An OFD lock belongs
 * to the open file, not to a thread, so a handle may be used by any
 * thread and outlive the thread that opened it (a robust mutex would
 * not allow either).
 *
 * Assignment is sticky and decided by each member for itself: with n
 * live members (ranked by slot) member k's quota is P/n, plus one if
 * k < P % n.  A member above quota releases partitions; a member below
 * quota claims partitions that have no owner.  Only the owner (or the
 * reaper of a dead owner) ever clears an owner field, and only an
 * unowned partition is ever claimed, so a partition never has two
 * owners; the next owner starts from the group's committed offset, so
 * records that were not committed are delivered again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static size_t
group_size(uint32_t parts)
{
	return sizeof(struct grp_hdr) +
	    (size_t)parts * sizeof(struct grp_part);
}

int
shmqi_saved_offsets_path(const shmq_t *q, const char *group, const char *topic,
    char *buf, size_t cap)
{
	int w = snprintf(
	    buf, cap, "%s/data/%s/groups/%s.offsets", q->home, topic, group);
	return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

/* A persistent topic's group offsets, saved by the persister: a group
 * file made after a reboot starts from them.  A file for another
 * incarnation of the topic, or damaged, is ignored (logged by nobody:
 * the group then starts from its reset policy, as a new group would). */
static void
load_saved_offsets(const shmq_t *q, const char *group, const char *topic,
    const struct topic_meta *m, struct grp_hdr *g)
{
	char path[SHMQ_PATH_MAX], buf[SAVED_MAX];
	if (m->durability != SHMQ_DURABILITY_PERSISTENT ||
	    shmqi_saved_offsets_path(q, group, topic, path, sizeof path) !=
	        0) {
		return;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) {
		return;
	}
	buf[n] = '\0';
	unsigned long long tid;
	if (sscanf(buf, "topic_id=%llx", &tid) != 1 || tid != m->id) {
		return;
	}
	for (char *l = strchr(buf, '\n'); l != NULL; l = strchr(l + 1, '\n')) {
		unsigned p;
		unsigned long long off;
		if (sscanf(l + 1, "%u %llu", &p, &off) == 2 &&
		    p < m->partitions) {
			atomic_init(&g->g_parts[p].gp_committed, off);
		}
	}
}

static int
group_create(const shmq_t *q, const char *group, const char *topic,
    const struct topic_meta *m, const char *path)
{
	char tmp[SHMQ_PATH_MAX];
	size_t len = group_size(m->partitions);
	void *map = NULL;
	int fd = -1, rc;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof tmp) {
		return -ENAMETOOLONG;
	}
	unlink(tmp);
	if ((rc = shmqi_file_create(tmp, q->mode, len, &fd)) != 0 ||
	    (rc = shmqi_map(fd, len, &map)) != 0) {
		goto out;
	}
	struct grp_hdr *g = map;
	g->g_magic = GROUP_MAGIC;
	g->g_layout = LAYOUT_WORD;
	g->g_id = shmqi_random64();
	g->g_instance_id = q->instance_id;
	g->g_topic_id = m->id;
	g->g_partitions = m->partitions;
	snprintf(g->g_group, sizeof g->g_group, "%s", group);
	snprintf(g->g_topic, sizeof g->g_topic, "%s", topic);
	if ((rc = shmqi_mutex_init_shared(&g->g_lock)) != 0) {
		goto out;
	}
	for (uint32_t i = 0; i < m->partitions; i++) {
		atomic_init(&g->g_parts[i].gp_owner, -1);
		g->g_parts[i].gp_gate = UINT32_MAX;
		atomic_init(&g->g_parts[i].gp_committed, GP_NONE);
	}
	load_saved_offsets(q, group, topic, m, g);
	/* Last, with release: pairs with the acquire in group_map. */
	atomic_store_explicit(
	    &g->g_version, LAYOUT_VERSION, memory_order_release);
	if (link(tmp, path) != 0) {
		rc = -errno;
	}
out:
	shmqi_unmap(map, len);
	if (fd >= 0) {
		close(fd);
	}
	unlink(tmp);
	return rc;
}

#define GROUP_STALE 1

static int
group_map(const shmq_t *q, const struct topic_meta *m, const char *path,
    struct group *g)
{
	uint64_t size;
	void *map = NULL;
	int fd, rc;

	if ((rc = shmqi_file_open(path, q->mode, &fd, &size)) != 0) {
		return rc;
	}
	if (size < sizeof(struct grp_hdr)) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	if ((rc = shmqi_map(fd, sizeof(struct grp_hdr), &map)) != 0) {
		goto fail;
	}
	struct grp_hdr *h = map;
	uint32_t version =
	    atomic_load_explicit(&h->g_version, memory_order_acquire);
	uint64_t magic = h->g_magic, inst = h->g_instance_id;
	uint64_t tid = h->g_topic_id;
	/* Acquire pairs with the release in shmqi_group_grow, which
	 * extends the file first: a count read here fits the file's size
	 * as looked at after it. */
	uint32_t layout = h->g_layout,
	         parts = atomic_load_explicit(
	             &h->g_partitions, memory_order_acquire);
	shmqi_unmap(map, sizeof(struct grp_hdr));
	struct stat st;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > size) {
		size = (uint64_t)st.st_size; /* grown since the open */
	}
	if (magic != GROUP_MAGIC || version == 0) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	if ((version >> 16) != LAYOUT_MAJOR || layout != LAYOUT_WORD) {
		rc = SHMQ_EVERSION;
		goto fail;
	}
	if (inst != q->instance_id || tid != m->id) {
		rc = GROUP_STALE;
		goto fail;
	}
	if (parts == 0 || parts > SHMQ_PARTITIONS_MAX ||
	    size < group_size(parts)) {
		rc = SHMQ_ECORRUPT;
		goto fail;
	}
	/* The table may be ahead of the caller's metadata (the topic grew
	 * since it was read) or behind it (not grown yet: the caller grows
	 * it, shmqi_group_grow).  The mapping covers what both know of. */
	uint32_t view = parts < m->partitions ? parts : m->partitions;
	if ((rc = shmqi_map(fd, group_size(view), &map)) != 0) {
		goto fail;
	}
	g->fd = fd;
	g->hdr = map;
	g->map_len = group_size(view);
	g->partitions = view;
	return 0;
fail:
	close(fd);
	return rc;
}

int
shmqi_group_open(const shmq_t *q, const char *group, const char *topic,
    const struct topic_meta *m, bool create, struct group *g)
{
	char path[SHMQ_PATH_MAX];
	int rc;

	memset(g, 0, sizeof *g);
	g->fd = -1;
	g->slot = -1;
	if ((rc = shmqi_group_path(q, group, topic, path, sizeof path)) != 0) {
		return rc;
	}
	rc = group_map(q, m, path, g);
	if (rc == GROUP_STALE && !create) {
		return -ENOENT;
	}
	if (!create || (rc != -ENOENT && rc != GROUP_STALE)) {
		return rc;
	}
	int lk = shmqi_instance_lock(q);
	if (lk < 0) {
		return lk;
	}
	rc = group_map(q, m, path, g);
	if (rc == GROUP_STALE) {
		unlink(path); /* a deleted topic's group of the same name */
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		/* With the partition count read under the lock, as rings
		 * are made: a topic grown after the caller read it (grown
		 * under this lock) gets a table of the new size. */
		struct topic_meta now;
		rc = shmqi_topic_load(q, topic, &now);
		if (rc == 0 && now.id != m->id) {
			rc = SHMQ_EDELETED;
		}
		if (rc == 0) {
			rc = group_create(q, group, topic, &now, path);
		}
		if (rc == 0) {
			rc = group_map(q, m, path, g);
		}
	}
	shmqi_instance_unlock(lk);
	return rc == GROUP_STALE ? SHMQ_ECORRUPT : rc;
}

void
shmqi_group_close(struct group *g)
{
	if (g == NULL) {
		return;
	}
	shmqi_unmap(g->hdr, g->map_len);
	if (g->fd >= 0) {
		close(g->fd);
	}
	g->hdr = NULL;
	g->fd = -1;
}

int
shmqi_group_lock(struct group *g)
{
	int rc = pthread_mutex_lock(&g->hdr->g_lock);
	if (rc == EOWNERDEAD) {
		/* Every change under this lock is a single store to a
		 * word that is valid either way, so nothing to repair. */
		pthread_mutex_consistent(&g->hdr->g_lock);
		return 0;
	}
	return rc == ENOTRECOVERABLE ? SHMQ_EFAILED : -rc;
}

void
shmqi_group_unlock(struct group *g)
{
	pthread_mutex_unlock(&g->hdr->g_lock);
}

void
shmqi_group_bump(struct group *g)
{
	/* Release: members that see the new generation see the owner
	 * fields written before it. */
	atomic_fetch_add_explicit(
	    &g->hdr->g_generation, 1, memory_order_release);
	shmqi_futex_wake(&g->hdr->g_generation);
}

static void
release_slot_parts(struct group *g, int32_t slot)
{
	for (uint32_t i = 0; i < g->partitions; i++) {
		int32_t want = slot;
		atomic_compare_exchange_strong(
		    &g->hdr->g_parts[i].gp_owner, &want, -1);
	}
}

static bool
member_alive(struct group *g, uint32_t s)
{
	if (atomic_load(&g->hdr->g_members[s].m_state) != MEMBER_ACTIVE) {
		return false;
	}
	/* Our own lock is invisible to F_OFD_GETLK on our own fd. */
	return (int32_t)s == g->slot ||
	    shmqi_lock_held(g->fd, LOCK_MEMBER_BASE + s);
}

bool
shmqi_group_reap(struct group *g)
{
	bool changed = false;
	for (uint32_t s = 0; s < GROUP_MEMBERS; s++) {
		if (atomic_load(&g->hdr->g_members[s].m_state) ==
		        MEMBER_ACTIVE &&
		    !member_alive(g, s)) {
			release_slot_parts(g, (int32_t)s);
			atomic_store(
			    &g->hdr->g_members[s].m_state, MEMBER_FREE);
			changed = true;
		}
	}
	return changed;
}

int
shmqi_group_live_members(struct group *g)
{
	int n = 0;
	for (uint32_t s = 0; s < GROUP_MEMBERS; s++) {
		n += member_alive(g, s);
	}
	return n;
}

int
shmqi_group_join(struct group *g)
{
	for (uint32_t s = 0; s < GROUP_MEMBERS; s++) {
		int rc = shmqi_lock_byte(g->fd, LOCK_MEMBER_BASE + s, true);
		if (rc == -EAGAIN) {
			continue;
		}
		if (rc != 0 || (rc = shmqi_group_lock(g)) != 0) {
			return rc;
		}
		if (atomic_load(&g->hdr->g_flags) & GROUP_F_DELETED) {
			/* Deleted between our open and now: its gates are
			 * gone, and a new group file may exist already. */
			shmqi_group_unlock(g);
			shmqi_unlock_byte(g->fd, LOCK_MEMBER_BASE + s);
			return SHMQ_EDELETED;
		}
		/* The slot's previous holder, if any, is dead: what it
		 * owned is free again. */
		release_slot_parts(g, (int32_t)s);
		struct grp_member *mb = &g->hdr->g_members[s];
		mb->m_pid = (uint32_t)getpid();
		mb->m_joined_ns = shmqi_now_ns();
		atomic_store(&mb->m_state, MEMBER_ACTIVE);
		g->slot = (int32_t)s;
		shmqi_group_bump(g);
		shmqi_group_unlock(g);
		return 0;
	}
	return -EMFILE;
}

void
shmqi_group_leave(struct group *g)
{
	if (g->hdr == NULL || g->slot < 0) {
		return;
	}
	if (shmqi_group_lock(g) == 0) {
		release_slot_parts(g, g->slot);
		atomic_store(&g->hdr->g_members[g->slot].m_state, MEMBER_FREE);
		shmqi_group_bump(g);
		shmqi_group_unlock(g);
	}
	shmqi_unlock_byte(g->fd, LOCK_MEMBER_BASE + g->slot);
	g->slot = -1;
}

int
shmqi_group_rebalance(
    struct group *g, void (*release_cb)(uint32_t part, void *arg), void *arg)
{
	uint32_t n = 0, rank = 0, owned = 0;
	int rc = shmqi_group_lock(g);
	if (rc != 0) {
		return rc;
	}
	bool changed = shmqi_group_reap(g);
	for (uint32_t s = 0; s < GROUP_MEMBERS; s++) {
		if (member_alive(g, s)) {
			rank += (int32_t)s < g->slot;
			n++;
		}
	}
	uint32_t P = g->partitions;
	uint32_t quota = n == 0 ? 0 : P / n + (rank < P % n ? 1 : 0);
	for (uint32_t i = 0; i < P; i++) {
		owned += atomic_load(&g->hdr->g_parts[i].gp_owner) == g->slot;
	}
	/* Give up the highest-numbered extras, keep the rest (sticky). */
	for (uint32_t i = P; i-- > 0 && owned > quota;) {
		struct grp_part *gp = &g->hdr->g_parts[i];
		if (atomic_load(&gp->gp_owner) == g->slot) {
			release_cb(i, arg);
			atomic_store(&gp->gp_owner, -1);
			owned--;
			changed = true;
		}
	}
	for (uint32_t i = 0; i < P && owned < quota; i++) {
		struct grp_part *gp = &g->hdr->g_parts[i];
		if (atomic_load(&gp->gp_owner) == -1) {
			atomic_store(&gp->gp_owner, g->slot);
			owned++;
			changed = true;
		}
	}
	if (changed) {
		shmqi_group_bump(g);
	}
	shmqi_group_unlock(g);
	return 0;
}

int
shmqi_group_gate(struct group *g, struct ring *r, uint32_t part)
{
	struct grp_part *gp = &g->hdr->g_parts[part];
	uint64_t id = g->hdr->g_id;
	uint32_t gi = gp->gp_gate;
	int rc = 0;

	if (gi >= RING_GATES ||
	    atomic_load(&r->hdr->hdr_gates[gi].gt_owner) != id) {
		if ((rc = shmqi_ring_lock(r)) != 0) {
			return rc;
		}
		gi = RING_GATES;
		for (uint32_t i = 0; i < RING_GATES && gi == RING_GATES; i++) {
			if (atomic_load(&r->hdr->hdr_gates[i].gt_owner) ==
			    id) {
				gi = i;
			}
		}
		for (uint32_t i = 0; i < RING_GATES && gi == RING_GATES; i++) {
			struct ring_gate *gt = &r->hdr->hdr_gates[i];
			if (atomic_load(&gt->gt_owner) == 0) {
				/* Start at the oldest record: until the group
				 * commits, nothing it may still read is
				 * overwritten. */
				atomic_store(&gt->gt_pos,
				    atomic_load(&r->hdr->hdr_start_pos));
				atomic_store(&gt->gt_owner, id);
				gi = i;
			}
		}
		shmqi_ring_unlock(r);
		if (gi == RING_GATES) {
			return -ENOSPC; /* RING_GATES groups already */
		}
		gp->gp_gate = gi;
	}
	/* Shared lock: "this group has a live member" for producers. */
	return shmqi_lock_byte(r->fd, LOCK_GATE_BASE + gi, false);
}

/*
 * The topic grew.  The file is extended and the new entries set up under
 * the group lock, then g_partitions is raised (release) and the
 * generation bumped: members see the bump, map the larger table, and
 * their next rebalance counts the new partitions.  A new partition's
 * group offset is 0, not "never committed": the group was there before
 * the partition, so every record sent to it is the group's to read,
 * whatever the members' reset policy (with LATEST, records sent before
 * a member claimed it would otherwise be skipped).
 *
 * The lock lives in the mapping, and a robust mutex is known to the
 * kernel by its address: it is locked and unlocked through the old
 * mapping, and the new one (mapped first, beyond the end of the file
 * until it is extended) replaces it only after.
 */
int
shmqi_group_grow(struct group *g, uint32_t want)
{
	if (want <= g->partitions) {
		return 0;
	}
	if (want > SHMQ_PARTITIONS_MAX) {
		return -EINVAL;
	}
	size_t len = group_size(want);
	void *map = NULL;
	int rc = shmqi_map(g->fd, len, &map);
	if (rc != 0) {
		return rc;
	}
	struct grp_hdr *nh = map;
	if ((rc = shmqi_group_lock(g)) != 0) {
		shmqi_unmap(map, len);
		return rc;
	}
	uint32_t have = atomic_load(&nh->g_partitions);
	struct stat st;
	if (atomic_load(&nh->g_flags) & GROUP_F_DELETED) {
		rc = SHMQ_EDELETED;
	} else if (have < want) {
		if (fstat(g->fd, &st) != 0) {
			rc = -errno;
		} else if ((uint64_t)st.st_size < len &&
		    ftruncate(g->fd, (off_t)len) != 0) {
			rc = -errno;
		}
		for (uint32_t i = have; rc == 0 && i < want; i++) {
			struct grp_part *gp = &nh->g_parts[i];
			memset(gp, 0, sizeof *gp);
			atomic_init(&gp->gp_owner, -1);
			gp->gp_gate = UINT32_MAX;
			atomic_init(&gp->gp_committed, 0);
		}
		if (rc == 0) {
			/* Release: pairs with the acquire in group_map and
			 * in the members' look at the count (consumer.c). */
			atomic_store_explicit(
			    &nh->g_partitions, want, memory_order_release);
			shmqi_group_bump(g);
		}
	}
	shmqi_group_unlock(g);
	if (rc != 0) {
		shmqi_unmap(map, len);
		return rc;
	}
	shmqi_unmap(g->hdr, g->map_len);
	g->hdr = nh;
	g->map_len = len;
	g->partitions = want;
	return 0;
}

/* ---- administration -------------------------------------------------- */

struct group_admin {
	struct topic_meta meta;
	struct group g;
};

static int
admin_open(
    shmq_t *q, const char *group, const char *topic, struct group_admin *a)
{
	if (q == NULL || !shmqi_name_valid(group) ||
	    !shmqi_name_valid(topic)) {
		return -EINVAL;
	}
	int rc = shmqi_topic_load(q, topic, &a->meta);
	if (rc == 0) {
		rc = shmqi_group_open(q, group, topic, &a->meta, false, &a->g);
	}
	return rc;
}

int
shmq_group_list(shmq_t *q,
    int (*fn)(const char *group, const char *topic, void *arg), void *arg)
{
	char name[256];
	int rc = 0;
	if (q == NULL || fn == NULL) {
		return -EINVAL;
	}
	DIR *d = opendir(q->shm_dir);
	if (d == NULL) {
		return -errno;
	}
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 7 || l >= sizeof name ||
		    strcmp(e->d_name + l - 6, ".group") != 0) {
			continue;
		}
		memcpy(name, e->d_name, l - 6);
		name[l - 6] = '\0';
		char *at = strchr(name, '@');
		if (at == NULL) {
			continue;
		}
		*at = '\0';
		if (shmqi_name_valid(name) && shmqi_name_valid(at + 1)) {
			rc = fn(name, at + 1, arg);
		}
	}
	closedir(d);
	return rc;
}

ssize_t
shmq_group_describe(shmq_t *q, const char *group, const char *topic,
    shmq_group_partition_t *parts, size_t cap)
{
	struct group_admin a;
	if (parts == NULL && cap != 0) {
		return -EINVAL;
	}
	int rc = admin_open(q, group, topic, &a);
	if (rc != 0) {
		return rc;
	}
	uint32_t P = a.g.partitions;
	for (uint32_t i = 0; i < P && i < cap; i++) {
		struct grp_part *gp = &a.g.hdr->g_parts[i];
		shmq_group_partition_t *o = &parts[i];
		shmq_partition_info_t info;
		memset(o, 0, sizeof *o);
		o->partition = i;
		int32_t owner = atomic_load(&gp->gp_owner);
		if (owner >= 0 && owner < (int32_t)GROUP_MEMBERS &&
		    member_alive(&a.g, (uint32_t)owner)) {
			o->owner = owner;
			o->owner_pid = (pid_t)a.g.hdr->g_members[owner].m_pid;
		} else {
			o->owner = -1;
		}
		uint64_t c = atomic_load(&gp->gp_committed);
		o->records_out = atomic_load(&gp->gp_records_out);
		o->bytes_out = atomic_load(&gp->gp_bytes_out);
		o->lost = atomic_load(&gp->gp_lost);
		if (shmq_partition_info(q, topic, i, &info) == 0) {
			o->end = info.committed;
			/* Never committed: lag counts from the log start. */
			o->committed = c == GP_NONE ? info.log_start : c;
			o->lag =
			    o->end > o->committed ? o->end - o->committed : 0;
		}
	}
	shmqi_group_close(&a.g);
	return (ssize_t)P;
}

int
shmq_group_members(
    shmq_t *q, const char *group, const char *topic, uint32_t *members)
{
	struct group_admin a;
	if (members == NULL) {
		return -EINVAL;
	}
	int rc = admin_open(q, group, topic, &a);
	if (rc != 0) {
		return rc;
	}
	*members = (uint32_t)shmqi_group_live_members(&a.g);
	shmqi_group_close(&a.g);
	return 0;
}

int
shmq_group_set_offset(shmq_t *q, const char *group, const char *topic,
    uint32_t part, uint64_t offset)
{
	struct group_admin a;
	int rc = admin_open(q, group, topic, &a);
	if (rc != 0) {
		return rc;
	}
	if (part >= a.g.partitions) {
		rc = -EINVAL;
	} else if ((rc = shmqi_group_lock(&a.g)) == 0) {
		/* As Kafka: offsets of a group change only while it is
		 * empty, so no member reads past the change. */
		if (shmqi_group_live_members(&a.g) > 0) {
			rc = -EBUSY;
		} else {
			struct grp_part *gp = &a.g.hdr->g_parts[part];
			atomic_store(&gp->gp_committed, offset);
			atomic_store(&gp->gp_commit_ns, shmqi_now_ns());
		}
		shmqi_group_unlock(&a.g);
	}
	shmqi_group_close(&a.g);
	return rc;
}

int
shmq_group_delete(shmq_t *q, const char *group, const char *topic)
{
	struct group_admin a;
	char path[SHMQ_PATH_MAX];
	int rc = admin_open(q, group, topic, &a);
	if (rc != 0) {
		return rc;
	}
	if ((rc = shmqi_group_lock(&a.g)) == 0) {
		if (shmqi_group_live_members(&a.g) > 0) {
			rc = -EBUSY;
		} else {
			/* Under the lock, before the gates go: a consumer
			 * that mapped the file but has not joined yet sees
			 * this at join, and starts over with a new file. */
			atomic_fetch_or(&a.g.hdr->g_flags, GROUP_F_DELETED);
			/* Free the group's gates so producers stop
			 * waiting for it. */
			for (uint32_t i = 0; i < a.g.partitions; i++) {
				struct ring r;
				uint32_t gi = a.g.hdr->g_parts[i].gp_gate;
				if (gi >= RING_GATES ||
				    shmqi_ring_open(
				        q, topic, &a.meta, i, &r) != 0) {
					continue;
				}
				uint64_t id = a.g.hdr->g_id;
				atomic_compare_exchange_strong(
				    &r.hdr->hdr_gates[gi].gt_owner, &id, 0);
				shmqi_ring_wake_space(&r);
				shmqi_ring_close(&r);
			}
			shmqi_group_path(q, group, topic, path, sizeof path);
			rc = unlink(path) == 0 ? 0 : -errno;
			/* And its saved offsets, or a new group of the same
			 * name would inherit them. */
			if (shmqi_saved_offsets_path(
			        q, group, topic, path, sizeof path) == 0) {
				unlink(path);
			}
		}
		shmqi_group_unlock(&a.g);
	}
	shmqi_group_close(&a.g);
	return rc;
}
