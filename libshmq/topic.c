/*
 * topic.c — topic metadata and administration.
 *
 * A topic is a small text file in the home directory
 * (topics/NAME.topic: id, partitions, ring size, overflow policy),
 * written atomically (temp, fsync, rename, directory fsync).  Its rings
 * are built lazily from it by the first process that opens a partition,
 * and rebuilt the same way after a reboot wipes tmpfs.  The random id
 * makes a re-created topic a different topic: rings and group state of
 * the old one are recognised as stale.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define META_MAX 512

void
shmq_topic_config_init(shmq_topic_config_t *c)
{
	if (c == NULL) {
		return;
	}
	memset(c, 0, sizeof *c);
	c->size = sizeof *c;
	c->partitions = 1;
	c->ring_size = SHMQ_RING_SIZE_DEFAULT;
	c->overflow = SHMQ_OVERFLOW_BLOCK;
	c->durability = SHMQ_DURABILITY_PERSISTENT;
	c->fsync = SHMQ_FSYNC_ALWAYS;
	c->segment_bytes = SEGMENT_BYTES_DEFAULT;
}

/* The persistence lines after the first five.  Every key is required,
 * and the file ends with a newline: a file cut short anywhere is
 * corrupt, never silently a different topic. */
static int
parse_persistence(const char *text, struct topic_meta *m)
{
	char key[32], val[32];
	unsigned seen = 0;
	size_t tl = strlen(text);
	if (tl == 0 || text[tl - 1] != '\n') {
		return SHMQ_ECORRUPT;
	}
	for (const char *l = strchr(text, '\n'); l != NULL && l[1] != '\0';
	     l = strchr(l + 1, '\n')) {
		if (sscanf(l + 1, "%31[a-z_]=%31[^\n]", key, val) != 2) {
			continue;
		}
		char *end = NULL;
		unsigned long long v = strtoull(val, &end, 10);
		bool num = end != val && *end == '\0';
		if (strcmp(key, "durability") == 0) {
			seen |= 1;
			if (strcmp(val, "persistent") == 0) {
				m->durability = SHMQ_DURABILITY_PERSISTENT;
			} else if (strcmp(val, "volatile") == 0) {
				m->durability = SHMQ_DURABILITY_VOLATILE;
			} else {
				return SHMQ_ECORRUPT;
			}
		} else if (strcmp(key, "fsync") == 0) {
			seen |= 2;
			if (strcmp(val, "never") == 0) {
				m->fsync = SHMQ_FSYNC_NEVER;
			} else if (strcmp(val, "interval") == 0) {
				m->fsync = SHMQ_FSYNC_INTERVAL;
			} else if (strcmp(val, "always") == 0) {
				m->fsync = SHMQ_FSYNC_ALWAYS;
			} else {
				return SHMQ_ECORRUPT;
			}
		} else if (strcmp(key, "fsync_interval_ms") == 0) {
			seen |= 4;
			if (!num || v > FSYNC_INTERVAL_MAX) {
				return SHMQ_ECORRUPT;
			}
			m->fsync_interval_ms = (uint32_t)v;
		} else if (strcmp(key, "segment_bytes") == 0) {
			seen |= 8;
			if (!num || v < SEGMENT_BYTES_MIN) {
				return SHMQ_ECORRUPT;
			}
			m->segment_bytes = v;
		} else if (strcmp(key, "retention_bytes") == 0 && num) {
			seen |= 16;
			m->retention_bytes = v;
		} else if (strcmp(key, "retention_ms") == 0 && num) {
			seen |= 32;
			m->retention_ms = v;
		}
	}
	return seen == 63 ? 0 : SHMQ_ECORRUPT;
}

static int
parse_meta(const char *text, struct topic_meta *m)
{
	unsigned long long id = 0, parts = 0, ring = 0;
	char overflow[16] = "";
	int version = 0;
	if (sscanf(text,
	        "version=%d\nid=%llx\npartitions=%llu\nring_size=%llu\n"
	        "overflow=%15s",
	        &version, &id, &parts, &ring, overflow) != 5 ||
	    version != 1 || id == 0 || parts == 0 ||
	    parts > SHMQ_PARTITIONS_MAX || ring < SHMQ_RING_SIZE_MIN ||
	    ring > SHMQ_RING_SIZE_MAX || (ring & (ring - 1)) != 0) {
		return SHMQ_ECORRUPT;
	}
	if (strcmp(overflow, "block") == 0) {
		m->overflow = SHMQ_OVERFLOW_BLOCK;
	} else if (strcmp(overflow, "drop") == 0) {
		m->overflow = SHMQ_OVERFLOW_DROP;
	} else {
		return SHMQ_ECORRUPT;
	}
	m->id = id;
	m->partitions = (uint32_t)parts;
	m->ring_size = ring;
	return parse_persistence(text, m);
}

int
shmqi_topic_load(const shmq_t *q, const char *name, struct topic_meta *m)
{
	char path[SHMQ_PATH_MAX], buf[META_MAX];
	int rc = shmqi_topic_path(q, name, path, sizeof path);
	if (rc != 0) {
		return rc;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc != 0) {
		return rc;
	}
	buf[n] = '\0';
	return parse_meta(buf, m);
}

static int
check_config(const shmq_topic_config_t *c)
{
	if (c->size < sizeof(size_t) || c->partitions == 0 ||
	    c->partitions > SHMQ_PARTITIONS_MAX ||
	    c->ring_size < SHMQ_RING_SIZE_MIN ||
	    c->ring_size > SHMQ_RING_SIZE_MAX ||
	    (c->ring_size & (c->ring_size - 1)) != 0 ||
	    (c->overflow != SHMQ_OVERFLOW_BLOCK &&
	        c->overflow != SHMQ_OVERFLOW_DROP) ||
	    (c->durability != SHMQ_DURABILITY_VOLATILE &&
	        c->durability != SHMQ_DURABILITY_PERSISTENT) ||
	    c->fsync < SHMQ_FSYNC_ALWAYS || c->fsync > SHMQ_FSYNC_NEVER ||
	    (c->fsync == SHMQ_FSYNC_INTERVAL &&
	        (c->fsync_interval_ms == 0 ||
	            c->fsync_interval_ms > FSYNC_INTERVAL_MAX)) ||
	    c->segment_bytes < SEGMENT_BYTES_MIN) {
		return -EINVAL;
	}
	return 0;
}

/* The metadata file's text: the five lines of version 1, then the
 * persistence lines (parse_persistence wants every one of them). */
static int
format_meta(const struct topic_meta *m, char *buf, size_t cap)
{
	static const char *const fsyncs[] = { "always", "interval", "never" };
	int len = snprintf(buf, cap,
	    "version=1\nid=%016llx\npartitions=%u\nring_size=%llu\n"
	    "overflow=%s\ndurability=%s\nfsync=%s\nfsync_interval_ms=%u\n"
	    "segment_bytes=%llu\nretention_bytes=%llu\nretention_ms=%llu\n",
	    (unsigned long long)m->id, m->partitions,
	    (unsigned long long)m->ring_size,
	    m->overflow == SHMQ_OVERFLOW_DROP ? "drop" : "block",
	    m->durability == SHMQ_DURABILITY_PERSISTENT ? "persistent"
	                                                : "volatile",
	    fsyncs[m->fsync], m->fsync_interval_ms,
	    (unsigned long long)m->segment_bytes,
	    (unsigned long long)m->retention_bytes,
	    (unsigned long long)m->retention_ms);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : len;
}

/*
 * Write topics/NAME.topic atomically (caller holds the instance lock).
 * shmqi_write_atomic_at also fails when only its last step, the
 * directory's fsync, failed: the rename is done then, and every process
 * already sees the new file.  Reporting that as a failure made `topic
 * create` say "error" for a topic that exists (a retry then got
 * -EEXIST).  So after an error we look: a file that carries exactly
 * what we wrote (its random id, and the partition count) was renamed
 * into place, and the change is made.  The directory is flushed once
 * more so that the name survives a crash; if that fails too, the
 * change stands all the same (it is visible, and undoing it could fail
 * just the same), and SHMQI_META_NODIRSYNC says so to the caller.
 */
#define SHMQI_META_NODIRSYNC 1
static int
write_meta(const shmq_t *q, const char *name, const struct topic_meta *m)
{
	char dir[SHMQ_PATH_MAX], file[SHMQ_NAME_MAX + 8], buf[META_MAX];
	struct topic_meta now;
	int len = format_meta(m, buf, sizeof buf);
	if (len < 0) {
		return len;
	}
	snprintf(dir, sizeof dir, "%s/topics", q->home);
	snprintf(file, sizeof file, "%s.topic", name);
	int rc = shmqi_write_file_atomic(
	    dir, file, buf, (size_t)len, q->mode & 0666);
	if (rc == 0 || shmqi_topic_load(q, name, &now) != 0 ||
	    now.id != m->id || now.partitions != m->partitions) {
		return rc;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool synced = dfd >= 0 && fsync(dfd) == 0;
	if (dfd >= 0) {
		close(dfd);
	}
	return synced ? 0 : SHMQI_META_NODIRSYNC;
}

int
shmq_topic_create(shmq_t *q, const char *name, const shmq_topic_config_t *cfg)
{
	shmq_topic_config_t c;
	struct topic_meta m, old;
	int rc;

	if (q == NULL || !shmqi_name_valid(name)) {
		return -EINVAL;
	}
	shmq_topic_config_init(&c);
	if (cfg != NULL) {
		if (cfg->size < sizeof(size_t) || cfg->size > sizeof c) {
			return -EINVAL;
		}
		memcpy(&c, cfg, cfg->size);
	}
	if ((rc = check_config(&c)) != 0) {
		return rc;
	}
	memset(&m, 0, sizeof m);
	m.id = shmqi_random64();
	m.partitions = c.partitions;
	m.ring_size = c.ring_size;
	m.overflow = c.overflow;
	m.durability = c.durability;
	m.fsync = c.fsync;
	m.fsync_interval_ms = c.fsync_interval_ms;
	m.segment_bytes = c.segment_bytes;
	m.retention_bytes = c.retention_bytes;
	m.retention_ms = c.retention_ms;

	int lk = shmqi_instance_lock(q);
	if (lk < 0) {
		return lk;
	}
	rc = shmqi_topic_load(q, name, &old);
	if (rc == 0 || rc == SHMQ_ECORRUPT) {
		rc = -EEXIST;
	} else if (rc == -ENOENT) {
		/* The topic exists once renamed into place, even if the
		 * directory's fsync then failed (write_meta). */
		rc = write_meta(q, name, &m);
		rc = rc == SHMQI_META_NODIRSYNC ? 0 : rc;
	}
	shmqi_instance_unlock(lk);
	return rc;
}

/* Tell open handles the ring is gone, wake every sleeper, unlink. */
static void
retire_ring(const shmq_t *q, const char *name, const struct topic_meta *m,
    uint32_t part)
{
	char path[SHMQ_PATH_MAX];
	int fd;
	uint64_t size;
	if (shmqi_ring_path(q, name, part, path, sizeof path) != 0) {
		return;
	}
	if (shmqi_file_open(path, q->mode, &fd, &size) == 0) {
		void *map = NULL;
		if (size >= RING_HDR_SIZE &&
		    shmqi_map(fd, RING_HDR_SIZE, &map) == 0) {
			struct ring_hdr *h = map;
			if (h->hdr_magic == RING_MAGIC &&
			    h->hdr_topic_id == m->id) {
				atomic_fetch_or(&h->hdr_flags, RING_F_DELETED);
				atomic_fetch_add(&h->hdr_commit_seq, 1);
				atomic_fetch_add(&h->hdr_space_seq, 1);
				shmqi_futex_wake(&h->hdr_commit_seq);
				shmqi_futex_wake(&h->hdr_space_seq);
			}
			shmqi_unmap(map, RING_HDR_SIZE);
		}
		close(fd);
	}
	unlink(path);
}

/* Remove group files of the topic ("GROUP@TOPIC.group"), a volatile
 * topic's idempotent producer state ("NAME@TOPIC.producer") and
 * leftover temp files of its rings. */
static void
remove_topic_files(const shmq_t *q, const char *name)
{
	char suffix[SHMQ_NAME_MAX + 16], prefix[SHMQ_NAME_MAX + 8];
	DIR *d = opendir(q->shm_dir);
	if (d == NULL) {
		return;
	}
	char psuffix[SHMQ_NAME_MAX + 16];
	snprintf(suffix, sizeof suffix, "@%s.group", name);
	snprintf(psuffix, sizeof psuffix, "@%s.producer", name);
	snprintf(prefix, sizeof prefix, "%s.", name);
	size_t sl = strlen(suffix), psl = strlen(psuffix), pl = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		bool group =
		    (n > sl && strcmp(e->d_name + n - sl, suffix) == 0) ||
		    (n > psl && strcmp(e->d_name + n - psl, psuffix) == 0);
		bool tmp = strncmp(e->d_name, prefix, pl) == 0 &&
		    strstr(e->d_name, ".ring.tmp.") != NULL;
		if (group || tmp) {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
	closedir(d);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* A persistent topic's segments and saved group offsets: a topic made
 * later under the same name must not continue from them. */
static void
remove_topic_data(const shmq_t *q, const char *name)
{
	char dir[SHMQ_PATH_MAX];
	int w = snprintf(dir, sizeof dir, "%s/data/%s", q->home, name);
	if (w > 0 && (size_t)w < sizeof dir) {
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

int
shmq_topic_delete(shmq_t *q, const char *name)
{
	struct topic_meta m;
	char path[SHMQ_PATH_MAX];
	int rc;

	if (q == NULL || !shmqi_name_valid(name)) {
		return -EINVAL;
	}
	int lk = shmqi_instance_lock(q);
	if (lk < 0) {
		return lk;
	}
	rc = shmqi_topic_load(q, name, &m);
	if (rc == 0 || rc == SHMQ_ECORRUPT) {
		/* Metadata first: from here no one can open the topic. */
		shmqi_topic_path(q, name, path, sizeof path);
		if (unlink(path) != 0) {
			rc = -errno;
		} else if (rc == 0) {
			for (uint32_t p = 0; p < m.partitions; p++) {
				retire_ring(q, name, &m, p);
			}
		}
		if (rc == 0 || rc == SHMQ_ECORRUPT) {
			remove_topic_files(q, name);
			remove_topic_data(q, name);
			rc = 0;
		}
	}
	shmqi_instance_unlock(lk);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
shmq_topic_list(shmq_t *q, int (*fn)(const char *name, void *arg), void *arg)
{
	char dir[SHMQ_PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (q == NULL || fn == NULL) {
		return -EINVAL;
	}
	snprintf(dir, sizeof dir, "%s/topics", q->home);
	DIR *d = opendir(dir);
	if (d == NULL) {
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l <= 6 || strcmp(e->d_name + l - 6, ".topic") != 0) {
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *names);
			if (nn == NULL) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		names[n] = strndup(e->d_name, l - 6);
		if (names[n] == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (!shmqi_name_valid(names[n])) {
			free(names[n]);
			continue;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 1) {
		qsort(names, n, sizeof *names, cmp_str);
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			rc = fn(names[i], arg);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
shmq_topic_describe(shmq_t *q, const char *name, shmq_topic_config_t *cfg)
{
	struct topic_meta m;
	if (q == NULL || cfg == NULL || !shmqi_name_valid(name)) {
		return -EINVAL;
	}
	int rc = shmqi_topic_load(q, name, &m);
	if (rc != 0) {
		return rc;
	}
	shmq_topic_config_init(cfg);
	cfg->partitions = m.partitions;
	cfg->ring_size = m.ring_size;
	cfg->overflow = m.overflow;
	cfg->durability = m.durability;
	cfg->fsync = m.fsync;
	cfg->fsync_interval_ms = m.fsync_interval_ms;
	cfg->segment_bytes = m.segment_bytes;
	cfg->retention_bytes = m.retention_bytes;
	cfg->retention_ms = m.retention_ms;
	return 0;
}

/* Tell partition `part`'s ring, if it exists, that the topic has
 * `total` partitions now.  Caller holds the instance lock, so no ring
 * is being made meanwhile (one made later reads the new metadata). */
static void
announce_ring(const shmq_t *q, const char *name, const struct topic_meta *m,
    uint32_t part)
{
	char path[SHMQ_PATH_MAX];
	int fd;
	uint64_t size;
	void *map = NULL;
	if (shmqi_ring_path(q, name, part, path, sizeof path) != 0 ||
	    shmqi_file_open(path, q->mode, &fd, &size) != 0) {
		return; /* not made yet: made from the new metadata */
	}
	if (size >= RING_HDR_SIZE && shmqi_map(fd, RING_HDR_SIZE, &map) == 0) {
		struct ring_hdr *h = map;
		if (h->hdr_magic == RING_MAGIC && h->hdr_topic_id == m->id &&
		    atomic_load(&h->hdr_partitions) < m->partitions) {
			/* Release, after the metadata is durable: pairs with
			 * the acquire load in shmqi_producer_grow (and the
			 * consumer's in consumer_grow), which then read the
			 * new metadata file. */
			atomic_store_explicit(&h->hdr_partitions,
			    m->partitions, memory_order_release);
		}
		shmqi_unmap(map, RING_HDR_SIZE);
	}
	close(fd);
}

/* Grow the partition table of every group file of the topic.  Without
 * the instance lock: group delete takes it while holding a group lock. */
static void
grow_groups(shmq_t *q, const char *name, const struct topic_meta *m)
{
	char suffix[SHMQ_NAME_MAX + 16], group[SHMQ_NAME_MAX + 1];
	DIR *d = opendir(q->shm_dir);
	if (d == NULL) {
		return;
	}
	snprintf(suffix, sizeof suffix, "@%s.group", name);
	size_t sl = strlen(suffix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= sl || n - sl > SHMQ_NAME_MAX ||
		    strcmp(e->d_name + n - sl, suffix) != 0) {
			continue;
		}
		memcpy(group, e->d_name, n - sl);
		group[n - sl] = '\0';
		struct group g;
		if (!shmqi_name_valid(group) ||
		    shmqi_group_open(q, group, name, m, false, &g) != 0) {
			continue;
		}
		/* A failure leaves it to the members: each one grows the
		 * table when it sees the new count in ring 0. */
		(void)shmqi_group_grow(&g, m->partitions);
		shmqi_group_close(&g);
	}
	closedir(d);
}

int
shmq_topic_add_partitions(shmq_t *q, const char *name, uint32_t total)
{
	struct topic_meta m;
	if (q == NULL || !shmqi_name_valid(name) || total == 0 ||
	    total > SHMQ_PARTITIONS_MAX) {
		return -EINVAL;
	}
	int lk = shmqi_instance_lock(q);
	if (lk < 0) {
		return lk;
	}
	int rc = shmqi_topic_load(q, name, &m);
	bool loaded = rc == 0;
	uint32_t old = m.partitions;
	if (rc == 0 && total <= old) {
		/* A topic only grows.  An earlier growth to this count may
		 * have stopped after its rename (the admin was killed): the
		 * announcement and the groups below are done again, so
		 * that running the command again finishes it. */
		rc = -EINVAL;
	}
	if (rc == 0) {
		m.partitions = total; /* and the id stays: the same topic */
		rc = write_meta(q, name, &m);
		rc = rc == SHMQI_META_NODIRSYNC ? 0 : rc;
	}
	bool announce = loaded && (rc == 0 || rc == -EINVAL);
	if (announce) {
		for (uint32_t p = 0; p < old; p++) {
			announce_ring(q, name, &m, p);
		}
	}
	shmqi_instance_unlock(lk);
	if (announce) {
		grow_groups(q, name, &m);
	}
	return rc;
}

/* Open one partition's ring for an administrative look. */
static int
admin_ring(shmq_t *q, const char *topic, uint32_t part, struct ring *r)
{
	struct topic_meta m;
	if (q == NULL || !shmqi_name_valid(topic)) {
		return -EINVAL;
	}
	int rc = shmqi_topic_load(q, topic, &m);
	if (rc != 0) {
		return rc;
	}
	if (part >= m.partitions) {
		return -EINVAL;
	}
	return shmqi_ring_open(q, topic, &m, part, r);
}

int
shmq_partition_info(
    shmq_t *q, const char *topic, uint32_t part, shmq_partition_info_t *info)
{
	struct ring r;
	if (info == NULL) {
		return -EINVAL;
	}
	int rc = admin_ring(q, topic, part, &r);
	if (rc != 0) {
		return rc;
	}
	struct ring_hdr *h = r.hdr;
	memset(info, 0, sizeof *info);
	info->log_start = atomic_load(&h->hdr_start_off);
	info->committed = shmqi_ring_committed_off(&r);
	info->end = atomic_load(&h->hdr_end_off);
	info->ring_size = r.cap;
	info->ring_used =
	    atomic_load(&h->hdr_end_pos) - atomic_load(&h->hdr_start_pos);
	info->records_in = atomic_load(&h->hdr_records_in);
	info->bytes_in = atomic_load(&h->hdr_bytes_in);
	info->aborted = atomic_load(&h->hdr_aborted);
	info->leader_epoch = atomic_load(&h->hdr_leader_epoch);
	info->durable = atomic_load(&h->hdr_durable_off);
	if (atomic_load(&h->hdr_flags) & RING_F_PERSISTENT) {
		struct seg_usage u;
		if ((rc = shmqi_seg_usage(q, topic, part, &u)) != 0) {
			shmqi_ring_close(&r);
			return rc;
		}
		info->segments = u.segments;
		info->segment_bytes = u.bytes;
		if (u.first < info->log_start) {
			info->log_start = u.first; /* older ones are on disk */
		}
	}
	info->persist_err = atomic_load(&h->hdr_persist_err);
	info->persister = shmqi_persister_alive(q);
	for (uint32_t s = 0; s < RING_CLIENTS; s++) {
		if (!shmqi_lock_held(r.fd, LOCK_CLIENT_BASE + s)) {
			continue;
		}
		if (h->hdr_clients[s].cl_kind == CLIENT_PRODUCER) {
			info->producers++;
		} else {
			info->consumers++;
		}
	}
	shmqi_ring_close(&r);
	return 0;
}

int
shmq_offset_for_time(shmq_t *q, const char *topic, uint32_t part,
    int64_t ts_ns, uint64_t *offset)
{
	struct ring r;
	if (offset == NULL) {
		return -EINVAL;
	}
	int rc = admin_ring(q, topic, part, &r);
	if (rc != 0) {
		return rc;
	}
	struct ring_hdr *h = r.hdr;
	/* A walk from the oldest record; on a ring that is being
	 * overwritten under us, start again (the lap check). */
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t sp = atomic_load_explicit(
		    &h->hdr_start_pos, memory_order_acquire);
		uint64_t cp = atomic_load(&h->hdr_committed_pos);
		uint64_t found = shmqi_ring_committed_off(&r);
		bool bad = false;
		if (((sp | cp) & (REC_ALIGN - 1)) != 0 || cp < sp ||
		    cp - sp > r.cap) {
			shmqi_ring_close(&r);
			return SHMQ_ECORRUPT; /* positions are 8-aligned */
		}
		for (uint64_t p = sp; p < cp;) {
			struct rec_hdr *rh = shmqi_rec_at(&r, p);
			uint32_t len = atomic_load(&rh->rec_len);
			uint64_t ext = rh->rec_type == REC_PAD
			    ? len
			    : shmqi_align8(len & REC_LEN_MASK);
			if (ext < REC_ALIGN || ext > r.cap - (p & r.mask) ||
			    (rh->rec_type != REC_PAD &&
			        !shmqi_hdr_fits(&r, p))) {
				bad = true;
				break;
			}
			if (rh->rec_type == REC_DATA && !(len & REC_ABORTED) &&
			    rh->rec_timestamp >= ts_ns) {
				found = rh->rec_offset;
				break;
			}
			p += ext;
		}
		atomic_thread_fence(memory_order_acquire);
		if (!bad && atomic_load(&h->hdr_wrap_pos) <= sp + r.cap) {
			*offset = found;
			shmqi_ring_close(&r);
			return 0;
		}
	}
	shmqi_ring_close(&r);
	return -EAGAIN;
}
