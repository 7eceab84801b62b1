/*
 * test_diskfault.c — the persister against a failing disk (issue 3).
 *
 * Fail at N (STYLE.md §6 item 5, over the persister's whole run): the
 * persister runs in a child process with the fault injection of
 * shm_linux.c armed, so only its own operations count.  For N = 1,
 * 2, ... the Nth of them fails with EIO, once or from then on, while
 * the parent sends with acks DURABLE to two partitions whose segments
 * roll every few batches, and a consumer group commits.  The child
 * reports how many operations it saw; the loop ends at the first N the
 * run no longer reaches, so no operation count is written down here.
 * After each run the faulty persister is closed (even N) or killed -9
 * (odd N), a clean one recovers, and everything is checked:
 *
 *   - no process crashed, and no send was acknowledged after its
 *     partition failed (SHMQ_EFAILED, then SHMQ_EFAILED again);
 *   - a partition that failed shows the injected error in
 *     shmq_partition_info, and the persister logged it;
 *   - before anything recovers, every acknowledged record is in the
 *     segment files already (an ack means on disk, not "will be");
 *   - the recovering persister clears the error, and new DURABLE
 *     sends succeed, at the next offsets;
 *   - on disk, walked here without the library's scanner: segments of
 *     whole valid records that continue each other, offsets contiguous
 *     from 0, and exactly the appended records (every acknowledged one
 *     among them), once, in order, at their offsets, with their values;
 *   - after a "reboot" (tmpfs wiped) a consumer reads them all back
 *     from the segments, and the group resumes where it committed.
 *
 * A fault that fires proves little by itself: most operations can fail
 * without any visible harm.  So the loop checks what must hold whatever
 * failed, and targeted tests check that the failures that matter are
 * caught: ENOSPC from the first write on gives errors, not acks (for
 * each fsync policy, and on a real full tmpfs when mounting one is
 * permitted); a flush that fails after its write fails the partition;
 * short writes are completed (a pipe, where io_uring writes are short
 * for real) or reported (RLIMIT_FSIZE cuts a segment write short, as a
 * full disk does).  Last, kill -9 of the persister under DURABLE load
 * while segments roll (SHMQ_SOAK scales it; SOAK also makes the fail-
 * at-N script longer and adds fsync policies and ENOSPC to it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)
#define SEG_BYTES (64u * 1024u) /* the smallest: eight 8 KiB records */
#define V8K (8192u - 56u) /* value of an 8 KiB record */
#define VMAX V8K
#define PARTS 2u
#define BATCH 3u /* 24 KiB: a segment holds two */
#define BATCH_MAX 16u
#define MAX_N 5000
#define LOG_CAP 16384u
#define NONE UINT64_MAX

/* ---- checks that also work in a child process ------------------------ */

/* CU_ASSERT records in this process only: helpers that also run in a
 * child count their failures instead, print each, and the caller
 * asserts the count. */
#define EXPECT(bad, cond) expect_((cond), #cond, __LINE__, (bad))

static void
expect_(bool ok, const char *what, int line, int *bad)
{
	if (!ok) {
		fprintf(stderr, "\n    test_diskfault.c:%d: not true: %s",
		    line, what);
		(*bad)++;
	}
}

/* ---- what was sent ------------------------------------------------------ */

struct sent {
	size_t vlen; /* every value's length */
	size_t n, cap;
	uint64_t next_id;
	uint64_t *id;
	uint64_t *off; /* NONE: not appended */
	uint32_t *part;
	bool *acked;
	/* Per partition, offset -> index of the record (SIZE_MAX: none);
	 * end[p]: the offset after the last record appended. */
	size_t *at[PARTS];
	uint64_t end[PARTS], at_cap[PARTS];
};

static void
sent_free(struct sent *s)
{
	free(s->id);
	free(s->off);
	free(s->part);
	free(s->acked);
	for (uint32_t p = 0; p < PARTS; p++) {
		free(s->at[p]);
	}
	memset(s, 0, sizeof *s);
}

static void *
grow(void *v, size_t n, size_t size)
{
	void *nv = realloc(v, n * size);
	if (nv == NULL) {
		abort();
	}
	return nv;
}

static void
sent_note(struct sent *s, size_t j)
{
	uint32_t p = s->part[j];
	uint64_t off = s->off[j];
	if (off == NONE) {
		return;
	}
	while (off >= s->at_cap[p]) {
		uint64_t cap = s->at_cap[p] ? s->at_cap[p] * 2 : 1024;
		s->at[p] = grow(s->at[p], cap, sizeof *s->at[p]);
		for (uint64_t i = s->at_cap[p]; i < cap; i++) {
			s->at[p][i] = SIZE_MAX;
		}
		s->at_cap[p] = cap;
	}
	s->at[p][off] = j;
	if (off + 1 > s->end[p]) {
		s->end[p] = off + 1;
	}
}

static void
fill(uint8_t *v, size_t len, uint64_t id)
{
	memcpy(v, &id, sizeof id);
	for (size_t i = sizeof id; i < len; i++) {
		v[i] = (uint8_t)(id * 31 + i);
	}
}

/* The value of record `id`, as sent. */
static bool
holds(const struct sent *s, const void *value, size_t len, uint64_t id)
{
	static uint8_t want[VMAX];
	fill(want, s->vlen, id);
	return len == s->vlen && memcmp(value, want, len) == 0;
}

/* Send k records to `part` in one batch and note each: appended (its
 * offset was set) and acknowledged (counted by the return value). */
static ssize_t
send_run(shmq_producer_t *p, struct sent *s, uint32_t part, size_t k)
{
	shmq_msg_t m[BATCH_MAX];
	static uint8_t v[BATCH_MAX][VMAX];
	if (s->n + k > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->id = grow(s->id, s->cap, sizeof *s->id);
		s->off = grow(s->off, s->cap, sizeof *s->off);
		s->part = grow(s->part, s->cap, sizeof *s->part);
		s->acked = grow(s->acked, s->cap, sizeof *s->acked);
	}
	for (size_t i = 0; i < k; i++) {
		fill(v[i], s->vlen, s->next_id + i);
		memset(&m[i], 0, sizeof m[i]);
		m[i].value = v[i];
		m[i].value_len = s->vlen;
		m[i].partition = (int32_t)part;
		m[i].offset = NONE;
	}
	ssize_t r = shmq_send_batch(p, m, k);
	for (size_t i = 0; i < k; i++) {
		size_t j = s->n++;
		s->id[j] = s->next_id++;
		s->off[j] = m[i].offset;
		s->part[j] = part;
		s->acked[j] = r > 0 && i < (size_t)r;
		sent_note(s, j);
	}
	return r;
}

/* Records appended to `part`: the offset the next one gets. */
static uint64_t
sent_end(const struct sent *s, uint32_t part)
{
	return s->end[part];
}

/* The record at `off` of `part`, as sent: its id, or NONE. */
static uint64_t
id_at(const struct sent *s, uint32_t part, uint64_t off)
{
	if (part >= PARTS || off >= s->end[part] ||
	    s->at[part][off] == SIZE_MAX) {
		return NONE;
	}
	return s->id[s->at[part][off]];
}

/* ---- the persister, in a child ------------------------------------------ */

enum { ST_STARTING, ST_RUNNING, ST_OPEN_FAILED, ST_CLOSED };

/* Shared with the persister's process (th_shared). */
struct ctl {
	char home[SHMQ_DIR_MAX];
	long nth; /* fail at this operation (0: no fault) */
	int err;
	bool persistent;
	/* Arm when the parent sets `arm`, not at open: after a poll that
	 * found nothing to write, so that the next operation is the write
	 * of the parent's next send (an idle round has appended the
	 * index entries already, and nothing else is due). */
	bool on_request;
	uint64_t fsize; /* RLIMIT_FSIZE of the persister, 0: none */
	_Atomic int state;
	_Atomic int open_rc;
	_Atomic int stop; /* the parent asks for a clean close */
	_Atomic int arm;
	_Atomic int armed;
	_Atomic long hits; /* operations seen since armed */
	_Atomic int nlog[4]; /* messages per level */
	size_t loglen;
	char log[LOG_CAP];
};

static struct ctl *
ctl_new(const char *home)
{
	struct ctl *c = th_shared(sizeof *c);
	snprintf(c->home, sizeof c->home, "%s", home);
	return c;
}

static void
ctl_free(struct ctl *c)
{
	th_unshared(c, sizeof *c);
}

static void
child_log(int level, const char *msg, void *arg)
{
	struct ctl *c = arg;
	if (level >= 0 && level < 4) {
		atomic_fetch_add(&c->nlog[level], 1);
	}
	if (c->loglen < LOG_CAP - 1) {
		int w = snprintf(c->log + c->loglen, LOG_CAP - c->loglen,
		    "%d %s\n", level, msg);
		if (w > 0) {
			c->loglen += (size_t)w;
			if (c->loglen > LOG_CAP - 1) {
				c->loglen = LOG_CAP - 1;
			}
		}
	}
}

/* A line of the child's log at `level` holding both needles. */
static bool
log_has(const struct ctl *c, int level, const char *a, const char *b)
{
	const char *line = c->log;
	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[600];
		snprintf(buf, sizeof buf, "%.*s", (int)len, line);
		if (atoi(buf) == level && strstr(buf, a) != NULL &&
		    (b == NULL || strstr(buf, b) != NULL)) {
			return true;
		}
		line = end ? end + 1 : NULL;
	}
	return false;
}

static void
publish_hits(struct ctl *c)
{
	atomic_store(&c->hits, shmqi_fault_count());
}

static int
persister_child(void *arg)
{
	struct ctl *c = arg;
	shmq_persister_t *ps = NULL;
	shmq_t *q = th_attach_home(c->home);
	if (q == NULL) {
		return 10;
	}
	if (c->fsize != 0) {
		struct rlimit rl;
		signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG */
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = c->fsize;
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
			return 11;
		}
	}
	if (c->nth != 0 && !c->on_request) {
		shmqi_fault_set(c->nth, c->err, c->persistent);
	}
	int rc = shmq_persister_open(q, child_log, c, NULL, &ps);
	publish_hits(c);
	atomic_store(&c->open_rc, rc);
	atomic_store(&c->state, rc == 0 ? ST_RUNNING : ST_OPEN_FAILED);
	if (rc != 0) {
		return 0; /* an error returned is allowed: the parent checks */
	}
	ssize_t last = -1;
	while (!atomic_load(&c->stop)) {
		if (last == 0 && atomic_load(&c->arm) &&
		    !atomic_load(&c->armed)) {
			shmqi_fault_set(c->nth, c->err, c->persistent);
			atomic_store(&c->armed, 1);
		}
		if ((last = shmq_persister_poll(ps, 5)) < 0) {
			return 12;
		}
		publish_hits(c);
	}
	shmq_persister_close(ps);
	publish_hits(c);
	atomic_store(&c->state, ST_CLOSED);
	return 0;
}

/* Until the child has opened its persister (or failed to): the state,
 * or -1 if it died first. */
static int
wait_open(struct ctl *c, pid_t pid)
{
	int64_t deadline = th_mono_ms() + 10000;
	int st;
	while ((st = atomic_load(&c->state)) == ST_STARTING) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (th_mono_ms() > deadline ||
		    (waitid(P_PID, (id_t)pid, &si,
		         WEXITED | WNOHANG | WNOWAIT) == 0 &&
		        si.si_pid == pid)) {
			fprintf(stderr, "\n    persister did not open");
			return -1;
		}
		sched_yield();
	}
	return st;
}

/* Stop the child: a clean close, or kill -9.  Its exit status. */
static int
stop_child(struct ctl *c, pid_t pid, bool kill9)
{
	if (kill9) {
		kill(pid, SIGKILL);
	} else {
		atomic_store(&c->stop, 1);
	}
	return th_wait(pid);
}

/* ---- topics and consumers -------------------------------------------- */

static int
make_topic(
    shmq_t *q, const char *name, uint32_t parts, int fsync, uint64_t seg_bytes)
{
	shmq_topic_config_t c;
	th_persistent_config(&c, fsync);
	c.partitions = parts;
	c.ring_size = RING;
	c.fsync_interval_ms = 10;
	c.segment_bytes = seg_bytes;
	return shmq_topic_create(q, name, &c);
}

static shmq_producer_t *
durable_producer(shmq_t *q, int timeout_ms, int *rc)
{
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	shmq_producer_options_init(&po);
	po.acks = SHMQ_ACKS_DURABLE;
	po.timeout_ms = timeout_ms;
	*rc = shmq_producer_open(q, "t", &po, &p);
	return p;
}

/* A persister whose fault is armed on request: start it, acknowledge
 * `warm` batches, then arm it and wait (bounded) until it says so. */
static shmq_producer_t *
start_then_arm(
    shmq_t *q, struct ctl *ctl, struct sent *s, int warm, pid_t *pid)
{
	int rc;
	*pid = th_fork(persister_child, ctl);
	CU_ASSERT_FATAL(wait_open(ctl, *pid) == ST_RUNNING);
	shmq_producer_t *p = durable_producer(q, 10000, &rc);
	TH_OK(rc);
	for (int b = 0; b < warm; b++) {
		CU_ASSERT_EQUAL(send_run(p, s, 0, BATCH), BATCH);
	}
	atomic_store(&ctl->arm, 1);
	int64_t deadline = th_mono_ms() + 5000;
	while (!atomic_load(&ctl->armed) && th_mono_ms() < deadline) {
		sched_yield();
	}
	CU_ASSERT_FATAL(atomic_load(&ctl->armed));
	return p;
}

static shmq_consumer_t *
join_group(shmq_t *q, int *bad)
{
	shmq_consumer_options_t co;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&co);
	co.group = "g";
	EXPECT(bad, shmq_consumer_open(q, "t", &co, &c) == 0);
	return c;
}

/* Read what the member is given (it owns every partition) and check it
 * against the sends; then commit, and note the group's offsets. */
static void
read_and_commit(shmq_t *q, shmq_consumer_t *c, const struct sent *s,
    uint64_t *committed, int *bad)
{
	shmq_group_partition_t gp[PARTS];
	shmq_record_t r;
	static uint8_t buf[VMAX + 64];
	int rc;
	if (c == NULL) {
		return;
	}
	while ((rc = shmq_recv(c, buf, sizeof buf, &r, 0)) == 0) {
		EXPECT(bad, r.partition < PARTS);
		EXPECT(bad,
		    holds(s, r.value, r.value_len,
		        id_at(s, r.partition, r.offset)));
	}
	EXPECT(bad, rc == -EAGAIN);
	EXPECT(bad, shmq_consumer_commit(c) == 0);
	EXPECT(bad, shmq_group_describe(q, "g", "t", gp, PARTS) == PARTS);
	for (uint32_t p = 0; p < PARTS; p++) {
		committed[p] = gp[p].committed;
	}
}

/* ---- the disk, walked independently --------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* A record found on disk. */
struct drec {
	uint64_t off, id;
	bool value_ok; /* the value is record id's, byte for byte */
};

/*
 * Walk the segments of partition `part` of topic "t", oldest first,
 * with a walker of its own (not the library's): each record's length,
 * type, offset and CRC-32C.  Segments must continue each other and
 * offsets run from 0 without a hole.  With `whole`, every segment must
 * be valid records to its last byte (recovery cut any torn tail);
 * without, the walk ends at the first byte that is not (a kill -9 may
 * have torn the last write).  Returns the DATA records, not aborted,
 * each with the id its value starts with, and whether the rest of the
 * value is that record's (s).
 */
static struct drec *
walk_disk(const char *home, uint32_t part, bool whole, const struct sent *s,
    size_t *n, int *bad)
{
	char dir[SHMQ_PATH_MAX], path[SHMQ_PATH_MAX + 64];
	uint64_t *bases = NULL, next = 0;
	size_t nb = 0, cap = 0, rcap = 0;
	struct drec *v = NULL;
	bool torn = false;
	*n = 0;
	snprintf(dir, sizeof dir, "%s/data/t/%u", home, part);
	DIR *d = opendir(dir);
	EXPECT(bad, d != NULL || !whole); /* made when first opened */
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char *end;
		if (strlen(e->d_name) == 24 &&
		    strcmp(e->d_name + 20, ".log") == 0) {
			if (nb == cap) {
				cap = cap ? cap * 2 : 64;
				bases = grow(bases, cap, sizeof *bases);
			}
			bases[nb] = strtoull(e->d_name, &end, 10);
			nb += end == e->d_name + 20;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	if (nb > 1) {
		qsort(bases, nb, sizeof *bases, cmp_u64);
	}
	for (size_t k = 0; k < nb && !torn; k++) {
		snprintf(path, sizeof path, "%s/%020llu.log", dir,
		    (unsigned long long)bases[k]);
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			EXPECT(bad, !"a segment cannot be read");
			break;
		}
		uint64_t len = (uint64_t)st.st_size;
		uint8_t *buf = malloc(len + 8);
		EXPECT(bad, pread(fd, buf, len, 0) == (ssize_t)len);
		close(fd);
		if (bases[k] != next) {
			fprintf(stderr, "\n    segment %llu, expected %llu",
			    (unsigned long long)bases[k],
			    (unsigned long long)next);
			(*bad)++;
		}
		for (uint64_t p = 0; p < len;) {
			const struct rec_hdr *h = (const void *)(buf + p);
			uint32_t l = p + 8 <= len ? h->rec_len : 0;
			uint64_t total = l & REC_LEN_MASK;
			if (p + 8 <= len && h->rec_type == REC_PAD &&
			    l >= REC_ALIGN && l % REC_ALIGN == 0 &&
			    p + l <= len) {
				p += l;
				continue;
			}
			if (p + sizeof *h > len || h->rec_type != REC_DATA ||
			    total !=
			        sizeof *h + h->rec_key_len +
			            h->rec_value_len ||
			    p + shmqi_align8(total) > len ||
			    h->rec_offset != next ||
			    (!(l & REC_ABORTED) &&
			        shmqi_rec_crc(h, h + 1) != h->rec_crc)) {
				/* Torn: only the last segment's tail, and
				 * only before recovery. */
				torn = true;
				if (whole || k + 1 < nb) {
					fprintf(stderr,
					    "\n    %s: no valid record at "
					    "byte "
					    "%llu of %llu (offset %llu next)",
					    path, (unsigned long long)p,
					    (unsigned long long)len,
					    (unsigned long long)next);
					(*bad)++;
				}
				break;
			}
			next++;
			p += shmqi_align8(total);
			if (l & REC_ABORTED) {
				continue; /* a gap */
			}
			if (*n == rcap) {
				rcap = rcap ? rcap * 2 : 1024;
				v = grow(v, rcap, sizeof *v);
			}
			const uint8_t *val =
			    (const uint8_t *)(h + 1) + h->rec_key_len;
			v[*n].off = h->rec_offset;
			v[*n].id = NONE;
			if (h->rec_value_len >= 8) {
				memcpy(&v[*n].id, val, 8);
			}
			v[*n].value_ok =
			    holds(s, val, h->rec_value_len, v[*n].id);
			(*n)++;
		}
		free(buf);
	}
	free(bases);
	return v;
}

/* After recovery: the disk holds exactly the records appended to the
 * partition (s) — every acknowledged one among them — once, in order,
 * at their offsets, with their values, and nothing else. */
static void
check_disk(const char *home, uint32_t part, const struct sent *s, int *bad)
{
	size_t n, j = 0;
	int before = *bad;
	struct drec *v = walk_disk(home, part, true, s, &n, bad);
	for (size_t i = 0; i < n && *bad == before; i++) {
		while (j < s->n && (s->part[j] != part || s->off[j] == NONE)) {
			j++;
		}
		if (j == s->n || s->off[j] != v[i].off ||
		    s->id[j] != v[i].id || !v[i].value_ok) {
			fprintf(stderr,
			    "\n    partition %u: offset %llu on disk is not "
			    "the next record appended",
			    part, (unsigned long long)v[i].off);
			(*bad)++;
		}
		j++;
	}
	for (; j < s->n && *bad == before; j++) {
		if (s->part[j] == part && s->off[j] != NONE) {
			fprintf(stderr,
			    "\n    partition %u: offset %llu (%s) is not on "
			    "disk",
			    part, (unsigned long long)s->off[j],
			    s->acked[j] ? "acknowledged" : "not acknowledged");
			(*bad)++;
		}
	}
	free(v);
}

/* Before any recovery, as the failed or killed persister left it:
 * every acknowledged record of the partition is in its segment files
 * already (an ack means "on disk", not "will be, after a restart"). */
static void
check_acked_on_disk(
    const char *home, uint32_t part, const struct sent *s, int *bad)
{
	size_t n;
	struct drec *v = walk_disk(home, part, false, s, &n, bad);
	bool *seen = calloc(s->n ? s->n : 1, sizeof *seen);
	for (size_t i = 0; i < n; i++) {
		uint64_t off = v[i].off;
		if (off < s->end[part] && s->at[part][off] != SIZE_MAX &&
		    s->id[s->at[part][off]] == v[i].id && v[i].value_ok) {
			seen[s->at[part][off]] = true;
		}
	}
	for (size_t j = 0; j < s->n; j++) {
		if (s->part[j] == part && s->acked[j] && !seen[j]) {
			fprintf(stderr,
			    "\n    partition %u: offset %llu was acknowledged "
			    "but is not on disk",
			    part, (unsigned long long)s->off[j]);
			(*bad)++;
			break;
		}
	}
	free(seen);
	free(v);
}

/* Remove everything in the shm directory, as a reboot does. */
static void
wipe_shm(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..")) {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
}

/* A consumer from offset 0 reads every appended record of `part`, in
 * order, and then nothing. */
static void
check_read_back(shmq_t *q, uint32_t part, const struct sent *s, int *bad)
{
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	static uint8_t buf[VMAX + 64];
	int before = *bad;
	EXPECT(bad, shmq_consumer_open(q, "t", NULL, &c) == 0);
	EXPECT(bad, c != NULL && shmq_assign(c, &part, 1) == 0);
	for (size_t i = 0; c != NULL && i < s->n && *bad == before; i++) {
		if (s->part[i] != part || s->off[i] == NONE) {
			continue;
		}
		EXPECT(bad, shmq_recv(c, buf, sizeof buf, &r, 2000) == 0);
		EXPECT(bad, r.offset == s->off[i]);
		EXPECT(bad, holds(s, r.value, r.value_len, s->id[i]));
	}
	EXPECT(
	    bad, c != NULL && shmq_recv(c, buf, sizeof buf, &r, 0) == -EAGAIN);
	shmq_consumer_close(c);
}

/* The group resumes at what it committed, reading from the segments. */
static void
check_group(
    shmq_t *q, const struct sent *s, const uint64_t *committed, int *bad)
{
	uint64_t next[PARTS], left = 0;
	shmq_record_t r;
	static uint8_t buf[VMAX + 64];
	for (uint32_t p = 0; p < PARTS; p++) {
		next[p] = committed[p];
		left += sent_end(s, p) - committed[p];
	}
	shmq_consumer_t *c = join_group(q, bad);
	for (; c != NULL && left > 0; left--) {
		int rc = shmq_recv(c, buf, sizeof buf, &r, 2000);
		EXPECT(bad, rc == 0);
		if (rc != 0 || r.partition >= PARTS) {
			break;
		}
		EXPECT(bad, r.offset == next[r.partition]);
		EXPECT(bad,
		    holds(s, r.value, r.value_len,
		        id_at(s, r.partition, r.offset)));
		next[r.partition] = r.offset + 1;
	}
	EXPECT(
	    bad, c != NULL && shmq_recv(c, buf, sizeof buf, &r, 0) == -EAGAIN);
	shmq_consumer_close(c);
}

/*
 * After a faulty run: a clean persister recovers (no error logged, the
 * sticky errors cleared), new DURABLE sends succeed at the next
 * offsets, the disk holds exactly what was appended, and after a
 * reboot it reads back from the segments, the group resuming where it
 * committed (committed NULL: no group).  Detaches *qp (reattaching).
 */
static void
restart_and_verify(shmq_t **qp, uint32_t parts, struct sent *s,
    const uint64_t *committed, struct ctl **clean_log, int *bad)
{
	char home[SHMQ_DIR_MAX], shm[SHMQ_DIR_MAX];
	shmq_t *q = *qp;
	int rc;
	snprintf(home, sizeof home, "%s", shmq_home(q));
	snprintf(shm, sizeof shm, "%s", shmq_shm_dir(q));

	struct ctl *c = ctl_new(home);
	pid_t pid = th_fork(persister_child, c);
	EXPECT(bad, wait_open(c, pid) == ST_RUNNING);
	EXPECT(bad, atomic_load(&c->nlog[SHMQ_LOG_ERROR]) == 0);
	for (uint32_t p = 0; p < parts; p++) {
		shmq_partition_info_t pi;
		EXPECT(bad, shmq_partition_info(q, "t", p, &pi) == 0);
		EXPECT(bad, pi.persist_err == 0);
	}
	shmq_producer_t *pr = durable_producer(q, 10000, &rc);
	EXPECT(bad, rc == 0);
	for (uint32_t p = 0; pr != NULL && p < parts; p++) {
		uint64_t end = sent_end(s, p);
		EXPECT(bad, send_run(pr, s, p, BATCH) == BATCH);
		EXPECT(bad, s->off[s->n - BATCH] == end);
	}
	shmq_producer_close(pr);
	EXPECT(bad, stop_child(c, pid, false) == 0);
	if (clean_log != NULL) {
		*clean_log = c;
	} else {
		ctl_free(c);
	}

	for (uint32_t p = 0; p < parts; p++) {
		check_disk(home, p, s, bad);
	}

	/* The reboot: rings and group files are gone; the rings are
	 * rebuilt where the disk ends, and older offsets come from the
	 * segments. */
	shmq_detach(q);
	wipe_shm(shm);
	*qp = q = th_attach_home(home);
	EXPECT(bad, q != NULL);
	if (q == NULL) {
		return;
	}
	for (uint32_t p = 0; p < parts; p++) {
		shmq_partition_info_t pi;
		EXPECT(bad, shmq_partition_info(q, "t", p, &pi) == 0);
		EXPECT(bad, pi.end == sent_end(s, p));
		EXPECT(bad, pi.log_start == 0);
		check_read_back(q, p, s, bad);
	}
	if (committed != NULL) {
		check_group(q, s, committed, bad);
	}
}

/* ---- (a) fail at N --------------------------------------------------- */

struct fan_stats {
	long runs, hit, sticky, open_failed, unopened, acked, appended;
};

/* One run of the script with operation n failing; returns the number
 * of operations the persister saw (exact after a clean close). */
static long
fan_run(long n, int err, bool persistent, bool kill9, int batches, int fsync,
    struct fan_stats *fs)
{
	shmq_t *q = th_attach();
	struct sent s;
	uint64_t committed[PARTS] = { 0 };
	int efailed[PARTS] = { 0 };
	int bad = 0, rc;
	bool halt = false;

	memset(&s, 0, sizeof s);
	s.vlen = V8K;
	TH_OK(make_topic(q, "t", PARTS, fsync, SEG_BYTES));
	/* A member from the start: the persister finds the group's file
	 * when it opens, and saves the group's offsets. */
	shmq_consumer_t *c = join_group(q, &bad);
	struct ctl *ctl = ctl_new(shmq_home(q));
	ctl->nth = n;
	ctl->err = err;
	ctl->persistent = persistent;
	pid_t pid = th_fork(persister_child, ctl);
	int st = wait_open(ctl, pid);
	EXPECT(&bad, st == ST_RUNNING || st == ST_OPEN_FAILED);
	shmq_producer_t *p = durable_producer(q, 10000, &rc);
	if (st == ST_OPEN_FAILED) {
		EXPECT(&bad, atomic_load(&ctl->open_rc) == err);
		EXPECT(&bad, rc == SHMQ_ENOREPLICATOR);
		fs->open_failed++;
	} else {
		EXPECT(&bad, rc == 0);
	}
	/* A partition the persister could not open (it said so, and
	 * tries again each second) acknowledges nothing: one send with a
	 * short timeout shows it (SHMQ_EFAILED once the ring holds the
	 * error, a timeout if the ring itself could not be opened), then
	 * it is left alone.  Anywhere else a timeout is a failure. */
	bool unopened[PARTS];
	for (uint32_t part = 0; part < PARTS; part++) {
		char who[32];
		snprintf(who, sizeof who, "t/%u:", part);
		unopened[part] = p != NULL &&
		    log_has(ctl, SHMQ_LOG_ERROR, who, "cannot open");
		if (unopened[part]) {
			shmq_producer_t *quick = durable_producer(q, 50, &rc);
			ssize_t k = send_run(quick, &s, part, BATCH);
			EXPECT(&bad,
			    k == -ETIMEDOUT || k == SHMQ_EFAILED ||
			        k == BATCH);
			shmq_producer_close(quick);
			fs->unopened++;
		}
	}
	for (int b = 0; p != NULL && b < batches && !halt; b++) {
		for (uint32_t part = 0; part < PARTS && !halt; part++) {
			if (efailed[part] >= 2 || unopened[part]) {
				continue;
			}
			ssize_t k = send_run(p, &s, part, BATCH);
			if (k == BATCH) {
				/* Never an ack once the partition failed. */
				EXPECT(&bad, efailed[part] == 0);
			} else if (k == SHMQ_EFAILED) {
				efailed[part]++;
			} else {
				fprintf(stderr, "\n    send: %zd (%s)", k,
				    shmq_strerror((int)k));
				bad++;
				halt = true;
			}
		}
		if (b == 1) {
			/* Then leave: a group without a live member does
			 * not hold the ring (BLOCK), and its offsets stay. */
			read_and_commit(q, c, &s, committed, &bad);
			shmq_consumer_close(c);
			c = NULL;
		}
	}
	/* A failed partition shows the error that was injected; durable
	 * covers every ack. */
	int32_t pe[PARTS];
	for (uint32_t part = 0; part < PARTS; part++) {
		shmq_partition_info_t pi;
		uint64_t acked_end = 0;
		for (size_t i = 0; i < s.n; i++) {
			if (s.part[i] == part && s.acked[i]) {
				acked_end = s.off[i] + 1;
			}
		}
		EXPECT(&bad, shmq_partition_info(q, "t", part, &pi) == 0);
		pe[part] = pi.persist_err;
		EXPECT(&bad, pi.persist_err == 0 || pi.persist_err == err);
		EXPECT(&bad, efailed[part] == 0 || pi.persist_err == err);
		EXPECT(&bad, pi.durable >= acked_end);
	}
	int status = stop_child(ctl, pid, kill9);
	long hits = atomic_load(&ctl->hits);
	/* Nothing crashed: killed by us, or exited normally. */
	EXPECT(&bad,
	    status == 0 ||
	        (kill9 && st == ST_RUNNING && status == 128 + SIGKILL));
	for (uint32_t part = 0; part < PARTS; part++) {
		check_acked_on_disk(shmq_home(q), part, &s, &bad);
	}
	/* The error stays until a persister recovers the partition, and
	 * after a clean close the log is complete: each failed partition
	 * (also one that failed while closing) is in it, with the why. */
	bool sticky = false;
	for (uint32_t part = 0; part < PARTS; part++) {
		shmq_partition_info_t pi;
		char who[32];
		snprintf(who, sizeof who, "t/%u:", part);
		EXPECT(&bad, shmq_partition_info(q, "t", part, &pi) == 0);
		EXPECT(&bad, pi.persist_err == pe[part] || pe[part] == 0);
		EXPECT(&bad, pi.persist_err == 0 || pi.persist_err == err);
		sticky = sticky || pi.persist_err != 0;
		if (!kill9 && pi.persist_err != 0) {
			EXPECT(&bad,
			    log_has(
			        ctl, SHMQ_LOG_ERROR, who, shmq_strerror(err)));
		}
	}
	if (!kill9 && hits < n) {
		/* The fault never fired: a clean run. */
		EXPECT(&bad, !sticky && st == ST_RUNNING);
		EXPECT(&bad, atomic_load(&ctl->nlog[SHMQ_LOG_ERROR]) == 0);
		EXPECT(&bad, atomic_load(&ctl->nlog[SHMQ_LOG_WARN]) == 0);
		for (size_t i = 0; i < s.n; i++) {
			EXPECT(&bad, s.acked[i]);
		}
	}
	shmq_producer_close(p);
	shmq_consumer_close(c);
	fs->runs++;
	fs->hit += hits >= n;
	fs->sticky += sticky;
	for (size_t i = 0; i < s.n; i++) {
		fs->acked += s.acked[i];
		fs->appended += s.off[i] != NONE;
	}

	restart_and_verify(&q, PARTS, &s, committed, NULL, &bad);
	if (bad != 0) {
		fprintf(stderr,
		    "\n    ^ fail at %ld (%s, %s, %s): %d problems; the "
		    "faulty persister's log:\n%s",
		    n, shmq_strerror(err), persistent ? "persistent" : "once",
		    kill9 ? "killed" : "closed", bad, ctl->log);
	}
	CU_ASSERT_EQUAL(bad, 0);
	ctl_free(ctl);
	sent_free(&s);
	th_destroy(q);
	return hits;
}

static void
fail_at_n(int err, bool persistent, int fsync, int batches)
{
	struct fan_stats fs;
	int64_t t0 = th_mono_ms();
	long n;
	memset(&fs, 0, sizeof fs);
	for (n = 1; n < MAX_N; n++) {
		bool kill9 = n % 2 == 1;
		long hits =
		    fan_run(n, err, persistent, kill9, batches, fsync, &fs);
		if (!kill9 && hits < n) {
			break; /* the run no longer reaches operation n */
		}
	}
	CU_ASSERT(n < MAX_N);
	CU_ASSERT(fs.sticky > 0); /* some write or flush failed */
	fprintf(stderr,
	    "[%s %s fsync %d: %ld runs (%ld hit, %ld sticky, %ld open "
	    "failed, %ld partitions unopened), %ld/%ld acked, %lld ms] ",
	    shmq_strerror(err), persistent ? "persistent" : "once", fsync,
	    fs.runs, fs.hit, fs.sticky, fs.open_failed, fs.unopened, fs.acked,
	    fs.appended, (long long)(th_mono_ms() - t0));
}

/* Bigger scripts and more kinds under SHMQ_SOAK. */
static int
fan_batches(void)
{
	unsigned k = th_soak(1);
	return k > 1 ? 5 + (int)(k < 40 ? k : 40) / 4 : 5;
}

/* The script's ranges are small enough for the persister to write them
 * in its own thread; the second pass sends every write through the
 * io_uring pipeline (linked flushes, writes overlapping a flush). */
static void
fail_at_n_both_paths(int err, bool persistent, int fsync)
{
	fail_at_n(err, persistent, fsync, fan_batches());
	shmqi_persist_inline_max = 0;
	fail_at_n(err, persistent, fsync, fan_batches());
	shmqi_persist_inline_max = SHMQI_PERSIST_INLINE_MAX;
}

static void
test_diskfault_eio_once_at_every_step_loses_no_ack(void)
{
	fail_at_n_both_paths(-EIO, false, SHMQ_FSYNC_ALWAYS);
	if (th_soak(1) > 1) {
		fail_at_n(-EIO, false, SHMQ_FSYNC_INTERVAL, fan_batches());
		fail_at_n(-ENOSPC, false, SHMQ_FSYNC_NEVER, fan_batches());
	}
}

static void
test_diskfault_eio_from_every_step_on_loses_no_ack(void)
{
	fail_at_n_both_paths(-EIO, true, SHMQ_FSYNC_ALWAYS);
	if (th_soak(1) > 1) {
		fail_at_n(-EIO, true, SHMQ_FSYNC_INTERVAL, fan_batches());
		fail_at_n(-ENOSPC, true, SHMQ_FSYNC_NEVER, fan_batches());
	}
}

/* ---- (b) ENOSPC: errors, not acks ------------------------------------ */

/* With the persister running, every operation from now on fails with
 * ENOSPC: the next DURABLE send gets SHMQ_EFAILED (not an ack, and not
 * a timeout), so do the ones after; the error shows in
 * shmq_partition_info and in the log; after a restart with space,
 * everything acknowledged is there and new sends succeed. */
static void
enospc_from_now_on(int fsync)
{
	shmq_t *q = th_attach();
	struct sent s;
	int bad = 0;
	memset(&s, 0, sizeof s);
	s.vlen = V8K;
	TH_OK(make_topic(q, "t", 1, fsync, SEG_BYTES));
	struct ctl *ctl = ctl_new(shmq_home(q));
	ctl->nth = 1;
	ctl->err = -ENOSPC;
	ctl->persistent = true;
	ctl->on_request = true;
	pid_t pid;
	shmq_producer_t *p = start_then_arm(q, ctl, &s, 3, &pid);
	for (int b = 0; b < 3; b++) {
		TH_FAIL(send_run(p, &s, 0, BATCH), SHMQ_EFAILED);
	}
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.persist_err, -ENOSPC);
	CU_ASSERT_EQUAL(pi.durable, 3 * BATCH); /* the acks, no more */
	CU_ASSERT_EQUAL(pi.persister, 1);
	shmq_producer_close(p);
	CU_ASSERT_EQUAL(stop_child(ctl, pid, false), 0);
	CU_ASSERT(log_has(ctl, SHMQ_LOG_ERROR, "t/0:", strerror(ENOSPC)));
	check_acked_on_disk(shmq_home(q), 0, &s, &bad);
	for (size_t i = 0; i < s.n; i++) {
		CU_ASSERT_EQUAL(s.acked[i], i < 3 * BATCH);
		/* Appended or not (once the ring is full of what cannot
		 * go to disk, nothing more is), but never out of order. */
		CU_ASSERT(
		    s.off[i] == i || (i >= 3 * BATCH && s.off[i] == NONE));
	}
	restart_and_verify(&q, 1, &s, NULL, NULL, &bad);
	CU_ASSERT_EQUAL(bad, 0);
	ctl_free(ctl);
	sent_free(&s);
	th_destroy(q);
}

static void
test_diskfault_enospc_gives_errors_not_acks(void)
{
	enospc_from_now_on(SHMQ_FSYNC_ALWAYS);
	enospc_from_now_on(SHMQ_FSYNC_INTERVAL);
	enospc_from_now_on(SHMQ_FSYNC_NEVER);
}

/* A flush that fails after its write succeeded: from the operation
 * after the write on, everything fails (the linked flush of ALWAYS,
 * the interval flush of INTERVAL, and whatever comes next).  The send
 * waiting for it gets SHMQ_EFAILED, the partition is failed with the
 * error, and the log names the flush; the bytes are in the file (the
 * write happened), and after a restart they are there once. */
static void
flush_fails_after_its_write(int fsync)
{
	shmq_t *q = th_attach();
	struct sent s;
	int bad = 0;
	char path[SHMQ_PATH_MAX + 64];
	struct stat st;
	memset(&s, 0, sizeof s);
	s.vlen = V8K;
	TH_OK(make_topic(q, "t", 1, fsync, 1u << 20)); /* no roll */
	struct ctl *ctl = ctl_new(shmq_home(q));
	ctl->nth = 2;
	ctl->err = -EIO;
	ctl->persistent = true;
	ctl->on_request = true;
	pid_t pid;
	shmq_producer_t *p = start_then_arm(q, ctl, &s, 2, &pid);
	TH_FAIL(send_run(p, &s, 0, BATCH), SHMQ_EFAILED);
	TH_FAIL(send_run(p, &s, 0, BATCH), SHMQ_EFAILED);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.persist_err, -EIO);
	CU_ASSERT_EQUAL(pi.durable, 2 * BATCH);
	shmq_producer_close(p);
	CU_ASSERT_EQUAL(stop_child(ctl, pid, false), 0);
	CU_ASSERT(log_has(ctl, SHMQ_LOG_ERROR, "t/0: fdatasync failed", NULL));
	snprintf(path, sizeof path, "%s/data/t/0/%020d.log", shmq_home(q), 0);
	CU_ASSERT(stat(path, &st) == 0 &&
	    (uint64_t)st.st_size == 3ull * BATCH * (V8K + 56));
	check_acked_on_disk(shmq_home(q), 0, &s, &bad);
	restart_and_verify(&q, 1, &s, NULL, NULL, &bad);
	CU_ASSERT_EQUAL(bad, 0);
	if (bad != 0) {
		fprintf(stderr, "\n    the persister's log:\n%s", ctl->log);
	}
	ctl_free(ctl);
	sent_free(&s);
	th_destroy(q);
}

static void
test_diskfault_a_failed_flush_fails_the_partition(void)
{
	flush_fails_after_its_write(SHMQ_FSYNC_ALWAYS);
	flush_fails_after_its_write(SHMQ_FSYNC_INTERVAL);
}

/* The same on a real, small tmpfs (HOME on it), in a child with its own
 * mount namespace: sends until the file system is full get acks, then
 * SHMQ_EFAILED; after the file system grows, a restart finds every
 * acknowledged record.  77: mounting is not permitted here. */
#define SKIP 77

static int
tiny_fs_child(void *arg)
{
	const char *dir = arg;
	struct sent s;
	int bad = 0, rc;
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV,
	        "size=256k,mode=0700") != 0) {
		fprintf(stderr, "[mount: %s] ", strerror(errno));
		return SKIP;
	}
	memset(&s, 0, sizeof s);
	s.vlen = 1000;
	shmq_t *q = th_attach_home(dir);
	EXPECT(&bad, q != NULL);
	if (q == NULL) {
		return 1;
	}
	EXPECT(&bad, make_topic(q, "t", 1, SHMQ_FSYNC_ALWAYS, SEG_BYTES) == 0);
	struct ctl *ctl = ctl_new(dir);
	pid_t pid = th_fork(persister_child, ctl);
	EXPECT(&bad, wait_open(ctl, pid) == ST_RUNNING);
	shmq_producer_t *p = durable_producer(q, 10000, &rc);
	EXPECT(&bad, rc == 0);
	if (bad != 0) {
		return 1; /* the mount namespace goes with this process */
	}
	ssize_t k = BATCH;
	size_t acked = 0;
	while (p != NULL && k == BATCH && s.n < 20000) {
		k = send_run(p, &s, 0, BATCH);
		acked += k == BATCH ? BATCH : 0;
	}
	EXPECT(&bad, k == SHMQ_EFAILED);
	EXPECT(&bad, acked > 50); /* 50 KiB at least went in */
	for (int b = 0; p != NULL && b < 2; b++) {
		EXPECT(&bad, send_run(p, &s, 0, BATCH) == SHMQ_EFAILED);
	}
	shmq_partition_info_t pi;
	EXPECT(&bad, shmq_partition_info(q, "t", 0, &pi) == 0);
	EXPECT(&bad, pi.persist_err == -ENOSPC);
	EXPECT(&bad, pi.durable == acked);
	shmq_producer_close(p);
	EXPECT(&bad, stop_child(ctl, pid, false) == 0);
	EXPECT(&bad, log_has(ctl, SHMQ_LOG_ERROR, "t/0:", strerror(ENOSPC)));
	check_acked_on_disk(dir, 0, &s, &bad);
	/* Space again; a restart (which cuts a torn tail, if the last
	 * write was cut short at a page boundary). */
	EXPECT(&bad, mount(NULL, dir, NULL, MS_REMOUNT, "size=16m") == 0);
	struct ctl *clean = NULL;
	restart_and_verify(&q, 1, &s, NULL, &clean, &bad);
	fprintf(stderr, "[%zu acked before ENOSPC%s] ", acked,
	    clean && log_has(clean, SHMQ_LOG_WARN, "torn tail", NULL)
	        ? ", a torn tail cut"
	        : "");
	if (bad != 0) {
		fprintf(stderr, "\n    the persister's log:\n%s", ctl->log);
	}
	if (clean != NULL) {
		ctl_free(clean);
	}
	ctl_free(ctl);
	sent_free(&s);
	th_destroy(q);
	umount2(dir, MNT_DETACH);
	return bad == 0 ? 0 : 1;
}

static void
test_diskfault_a_full_tmpfs_gives_errors_not_acks(void)
{
	char dir[] = "/tmp/shmq-tinyfs-XXXXXX";
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	int status = th_wait(th_fork(tiny_fs_child, dir));
	rmdir(dir);
	if (status == SKIP) {
		fprintf(stderr,
		    "[SKIPPED: mounting a tmpfs is not permitted "
		    "here] ");
		return;
	}
	CU_ASSERT_EQUAL(status, 0);
}

/* ---- (c) short writes ----------------------------------------------- */

struct sink {
	int rfd, wfd;
	size_t got;
	uint8_t buf[256 * 1024];
};

static int
drain_pipe(void *arg)
{
	struct sink *k = arg;
	close(k->wfd);
	for (;;) {
		ssize_t r =
		    read(k->rfd, k->buf + k->got, sizeof k->buf - k->got);
		if (r <= 0) {
			return r == 0 ? 0 : 1;
		}
		k->got += (size_t)r;
	}
}

/* Write 100 KB in two pieces (as a wrapped ring range is) into a pipe
 * of one page: io_uring's writes to a pipe are short for real.  Every
 * byte arrives, in order; the number of rounds (operations counted by
 * the fault injection, armed never to fire) shows the writes were short
 * and were continued.  With a flush linked (which a pipe refuses with
 * EINVAL), the flush that is cancelled by each short write is issued
 * again after the last piece, and its own result is returned. */
static void
short_writes_to_a_pipe(bool sync)
{
	static uint8_t data[100000];
	struct sink *k = th_shared(sizeof *k);
	struct shmqi_pio *io = NULL;
	int fds[2];
	for (size_t i = 0; i < sizeof data; i++) {
		data[i] = (uint8_t)(i * 7 + i / 251);
	}
	CU_ASSERT_FATAL(pipe(fds) == 0);
	CU_ASSERT_FATAL(fcntl(fds[1], F_SETPIPE_SZ, 4096) >= 4096);
	k->rfd = fds[0];
	k->wfd = fds[1];
	pid_t pid = th_fork(drain_pipe, k);
	close(fds[0]);
	TH_OK(shmqi_pio_open(&io));
	struct iovec iov[2] = {
		{ .iov_base = data, .iov_len = 30001 },
		{ .iov_base = data + 30001, .iov_len = sizeof data - 30001 },
	};
	shmqi_fault_set(LONG_MAX, -EIO, false); /* count, never fire */
	int rc = shmqi_pio_write(io, fds[1], iov, 2, 0, sync, false);
	long ops = shmqi_fault_count();
	shmqi_fault_set(0, 0, false);
	close(fds[1]);
	shmqi_pio_close(io);
	CU_ASSERT_EQUAL(th_wait(pid), 0);
	TH_FAIL(rc, sync ? -EINVAL : 0);
	CU_ASSERT_EQUAL(k->got, sizeof data);
	CU_ASSERT(memcmp(k->buf, data, sizeof data) == 0);
	CU_ASSERT(ops >= (sync ? 4 : 2)); /* short, then continued */
	fprintf(
	    stderr, "[%s: %ld operations] ", sync ? "sync" : "no sync", ops);
	th_unshared(k, sizeof *k);
}

/* A segment write cut short (RLIMIT_FSIZE here; a full disk does the
 * same) is continued at the right offset, where it fails: the error is
 * returned, and the file holds exactly the bytes that fitted. */
static void
short_write_then_efbig(bool here)
{
	static uint8_t data[8000], back[8000];
	char path[] = "/tmp/shmq-short-XXXXXX";
	struct shmqi_pio *io = NULL;
	struct rlimit old, lim;
	const off_t limit = 5000; /* inside the second piece */
	for (size_t i = 0; i < sizeof data; i++) {
		data[i] = (uint8_t)(i * 13 + 1);
	}
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	TH_OK(shmqi_pio_open(&io));
	struct iovec iov[2] = {
		{ .iov_base = data, .iov_len = 3000 },
		{ .iov_base = data + 3000, .iov_len = sizeof data - 3000 },
	};
	CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = (rlim_t)limit;
	void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
	shmqi_fault_set(LONG_MAX, -EIO, false);
	CU_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	int rc = shmqi_pio_write(io, fd, iov, 2, 0, true, here);
	setrlimit(RLIMIT_FSIZE, &old);
	long ops = shmqi_fault_count();
	shmqi_fault_set(0, 0, false);
	signal(SIGXFSZ, was);
	shmqi_pio_close(io);
	TH_FAIL(rc, -EFBIG);
	/* Write + linked flush, then the rest of the write, which fails:
	 * the flush, cut from the short write, is never issued again. */
	CU_ASSERT_EQUAL(ops, 3);
	struct stat st;
	CU_ASSERT(fstat(fd, &st) == 0 && st.st_size == limit);
	CU_ASSERT(pread(fd, back, sizeof back, 0) == limit);
	CU_ASSERT(memcmp(back, data, (size_t)limit) == 0);
	close(fd);
}

static void
test_diskfault_short_writes_are_completed(void)
{
	/* A pipe takes no offsets (pwritev: ESPIPE), so the writes in the
	 * persister's own thread are tested on a file only. */
	short_writes_to_a_pipe(false);
	short_writes_to_a_pipe(true);
	short_write_then_efbig(false);
	short_write_then_efbig(true);
}

/* A reboot loses what only the rings held: the records not
 * acknowledged. */
static void
sent_forget_unacked(struct sent *s)
{
	memset(s->end, 0, sizeof s->end);
	for (size_t j = 0; j < s->n; j++) {
		uint32_t p = s->part[j];
		if (s->off[j] == NONE) {
			continue;
		}
		if (!s->acked[j]) {
			s->at[p][s->off[j]] = SIZE_MAX;
			s->off[j] = NONE;
		} else if (s->off[j] + 1 > s->end[p]) {
			s->end[p] = s->off[j] + 1;
		}
	}
}

/* The whole way: the persister's segment write is cut short inside a
 * record (RLIMIT_FSIZE), so the send waiting for it gets SHMQ_EFAILED
 * and the error is EFBIG.  A restart cuts the torn record off and
 * writes it again from the ring; after a reboot (the ring gone) the
 * cut alone must leave whole records — nothing writes over the torn
 * bytes then.  Every acknowledged record is there either way. */
static void
cut_short(bool reboot)
{
	shmq_t *q = th_attach();
	struct sent s;
	struct ctl *clean = NULL;
	int bad = 0, rc;
	char home[SHMQ_DIR_MAX], shm[SHMQ_DIR_MAX];
	const uint64_t rec = 256, whole = 10;
	memset(&s, 0, sizeof s);
	s.vlen = 200;
	snprintf(home, sizeof home, "%s", shmq_home(q));
	snprintf(shm, sizeof shm, "%s", shmq_shm_dir(q));
	TH_OK(make_topic(q, "t", 1, SHMQ_FSYNC_ALWAYS, 1u << 20));
	struct ctl *ctl = ctl_new(home);
	ctl->fsize = whole * rec + 100;
	pid_t pid = th_fork(persister_child, ctl);
	CU_ASSERT_FATAL(wait_open(ctl, pid) == ST_RUNNING);
	shmq_producer_t *p = durable_producer(q, 10000, &rc);
	TH_OK(rc);
	ssize_t k = 1;
	while (k == 1 && s.n < 100) {
		k = send_run(p, &s, 0, 1);
	}
	TH_FAIL(k, SHMQ_EFAILED);
	CU_ASSERT_EQUAL(s.n, whole + 1);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.persist_err, -EFBIG);
	CU_ASSERT_EQUAL(pi.durable, whole);
	shmq_producer_close(p);
	CU_ASSERT_EQUAL(stop_child(ctl, pid, false), 0);
	char path[SHMQ_PATH_MAX + 64];
	struct stat st;
	snprintf(path, sizeof path, "%s/data/t/0/%020d.log", home, 0);
	CU_ASSERT(stat(path, &st) == 0 && (uint64_t)st.st_size == ctl->fsize);
	check_acked_on_disk(home, 0, &s, &bad);
	if (reboot) {
		shmq_persister_t *ps = NULL;
		shmq_detach(q);
		wipe_shm(shm);
		q = th_attach_home(home);
		CU_ASSERT_FATAL(q != NULL);
		sent_forget_unacked(&s);
		clean = ctl_new(home);
		TH_OK(shmq_persister_open(q, child_log, clean, NULL, &ps));
		CU_ASSERT(stat(path, &st) == 0 &&
		    (uint64_t)st.st_size == whole * rec);
		shmq_persister_close(ps);
		CU_ASSERT(log_has(clean, SHMQ_LOG_WARN, "torn tail", NULL));
		ctl_free(clean);
		clean = NULL;
	}
	restart_and_verify(&q, 1, &s, NULL, &clean, &bad);
	CU_ASSERT_EQUAL(bad, 0);
	if (!reboot) {
		CU_ASSERT(
		    clean && log_has(clean, SHMQ_LOG_WARN, "torn tail", NULL));
	}
	if (clean != NULL) {
		ctl_free(clean);
	}
	ctl_free(ctl);
	sent_free(&s);
	th_destroy(q);
}

static void
test_diskfault_a_write_cut_short_fails_the_partition_and_recovers(void)
{
	cut_short(false);
	cut_short(true);
}

/* ---- an empty last segment --------------------------------------- */

struct reader {
	const char *home;
	const struct sent *s;
};

/* In a child (alarm: a spin cannot hang the suite): a reader from
 * offset 0 gets the records sent, then -EAGAIN within its timeout.
 * Exit 0, or the step that failed. */
static int
read_to_the_end(void *arg)
{
	const struct reader *rd = arg;
	const struct sent *s = rd->s;
	uint32_t part = 0;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	static uint8_t buf[VMAX + 64];
	alarm(20);
	shmq_t *q = th_attach_home(rd->home);
	if (q == NULL || shmq_consumer_open(q, "t", NULL, &c) != 0 ||
	    shmq_assign(c, &part, 1) != 0) {
		return 1;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (shmq_recv(c, buf, sizeof buf, &r, 2000) != 0 ||
		    r.offset != s->off[i] ||
		    !holds(s, r.value, r.value_len, s->id[i])) {
			return 2;
		}
	}
	return shmq_recv(c, buf, sizeof buf, &r, 100) == -EAGAIN ? 0 : 3;
}

/* A roll makes the next segment, empty, before writing to it.  If that
 * write fails (the partition then stops) or the persister dies, the
 * last segment stays empty until a persister writes there — after a
 * reboot, until producers send again.  A reader that reaches it is at
 * the end of the disk: it must wait out its timeout, not open the
 * empty segment again and again (it spun in shmq_recv for good). */
static void
test_diskfault_an_empty_last_segment_ends_the_disk(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = NULL;
	struct sent s;
	char path[SHMQ_PATH_MAX + 64], home[SHMQ_DIR_MAX];
	memset(&s, 0, sizeof s);
	s.vlen = 200;
	snprintf(home, sizeof home, "%s", shmq_home(q));
	TH_OK(make_topic(q, "t", 1, SHMQ_FSYNC_ALWAYS, SEG_BYTES));
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	shmq_producer_t *p = th_producer(q, "t");
	for (int i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(send_run(p, &s, 0, 1), 1);
	}
	shmq_producer_close(p);
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_persister_close(ps);
	/* What a roll leaves when the write after it does not happen. */
	snprintf(path, sizeof path, "%s/data/t/0/%020d.log", home, 10);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	char shm[SHMQ_DIR_MAX];
	snprintf(shm, sizeof shm, "%s", shmq_shm_dir(q));
	shmq_detach(q);
	wipe_shm(shm);
	q = th_attach_home(home);
	CU_ASSERT_FATAL(q != NULL);
	struct reader rd = { .home = home, .s = &s };
	CU_ASSERT_EQUAL(th_wait(th_fork(read_to_the_end, &rd)), 0);
	sent_free(&s);
	th_destroy(q);
}

/* ---- (d) kill -9 under DURABLE load, segments rolling ---------------- */

/* Rounds of: a persister, DURABLE batches of random size to random
 * partitions, kill -9 of the persister after a random number of them
 * (from outside: it lands wherever the persister is, rolls included),
 * sends on until the producer notices.  A group member commits after
 * each batch.
 * At the end every acknowledged record is on disk once, in order —
 * as is every record appended — and reads back after a reboot. */
static void
test_diskfault_kill9_soak_with_rolling_segments(void)
{
	unsigned seed = th_seed("disk kill soak");
	unsigned rounds = th_soak(6);
	int64_t t0 = th_mono_ms();
	shmq_t *q = th_attach();
	struct sent s;
	uint64_t committed[PARTS] = { 0 };
	int bad = 0, rc;
	size_t acked = 0;
	memset(&s, 0, sizeof s);
	s.vlen = 1000;
	TH_OK(make_topic(q, "t", PARTS, SHMQ_FSYNC_ALWAYS, SEG_BYTES));
	shmq_consumer_t *c = join_group(q, &bad);
	for (unsigned round = 0; round < rounds && bad == 0; round++) {
		struct ctl *ctl = ctl_new(shmq_home(q));
		pid_t pid = th_fork(persister_child, ctl);
		EXPECT(&bad, wait_open(ctl, pid) == ST_RUNNING);
		EXPECT(&bad, atomic_load(&ctl->nlog[SHMQ_LOG_ERROR]) == 0);
		shmq_producer_t *p = durable_producer(q, 10000, &rc);
		EXPECT(&bad, rc == 0);
		unsigned quota = 5 + (unsigned)rand_r(&seed) % 40;
		unsigned kill_at = (unsigned)rand_r(&seed) % quota;
		for (unsigned b = 0; p != NULL; b++) {
			uint32_t part = (uint32_t)rand_r(&seed) % PARTS;
			size_t k = 1 + (size_t)rand_r(&seed) % BATCH_MAX;
			ssize_t r = send_run(p, &s, part, k);
			if (r != (ssize_t)k) {
				/* Only the persister's death may stop it. */
				EXPECT(&bad, b > kill_at);
				EXPECT(&bad, r == SHMQ_ENOREPLICATOR);
				break;
			}
			if (b == kill_at) {
				kill(pid, SIGKILL);
			}
			/* A live member holds the ring (BLOCK) at what it
			 * committed. */
			read_and_commit(q, c, &s, committed, &bad);
		}
		kill(pid, SIGKILL);
		EXPECT(&bad, th_wait(pid) == 128 + SIGKILL);
		shmq_producer_close(p);
		ctl_free(ctl);
		/* What it acknowledged is on disk before anyone recovers. */
		for (uint32_t part = 0; part < PARTS; part++) {
			check_acked_on_disk(shmq_home(q), part, &s, &bad);
		}
	}
	read_and_commit(q, c, &s, committed, &bad);
	shmq_consumer_close(c);
	for (size_t i = 0; i < s.n; i++) {
		acked += s.acked[i];
	}
	restart_and_verify(&q, PARTS, &s, committed, NULL, &bad);
	CU_ASSERT_EQUAL(bad, 0);
	fprintf(stderr, "[%u rounds, %zu acked of %zu sent, %lld ms] ", rounds,
	    acked, s.n, (long long)(th_mono_ms() - t0));
	sent_free(&s);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_diskfault_eio_once_at_every_step_loses_no_ack",
	    test_diskfault_eio_once_at_every_step_loses_no_ack },
	{ "test_diskfault_eio_from_every_step_on_loses_no_ack",
	    test_diskfault_eio_from_every_step_on_loses_no_ack },
	{ "test_diskfault_enospc_gives_errors_not_acks",
	    test_diskfault_enospc_gives_errors_not_acks },
	{ "test_diskfault_a_failed_flush_fails_the_partition",
	    test_diskfault_a_failed_flush_fails_the_partition },
	{ "test_diskfault_a_full_tmpfs_gives_errors_not_acks",
	    test_diskfault_a_full_tmpfs_gives_errors_not_acks },
	{ "test_diskfault_short_writes_are_completed",
	    test_diskfault_short_writes_are_completed },
	{ "test_diskfault_a_write_cut_short_fails_the_partition_and_recovers",
	    test_diskfault_a_write_cut_short_fails_the_partition_and_recovers },
	{ "test_diskfault_an_empty_last_segment_ends_the_disk",
	    test_diskfault_an_empty_last_segment_ends_the_disk },
	{ "test_diskfault_kill9_soak_with_rolling_segments",
	    test_diskfault_kill9_soak_with_rolling_segments },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_diskfault = { "diskfault", tests };
