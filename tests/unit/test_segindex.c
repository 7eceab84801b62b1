/*
 * test_segindex.c — the sparse .index of each segment (segindex.c): what
 * the persister writes equals what a scan of the log says it should be,
 * every entry points at its record, a lookup lands within IDX_EVERY
 * bytes of any offset, and an index that is missing, short, torn, wrong
 * or unwritable costs only speed: every read still returns the right
 * record.  Recovery rebuilds the live segment's index; retention removes
 * indexes with their logs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING (64u * 1024u)
#define SEG (64u * 1024u)
#define FILLER_MAX 250u

/* Record `id`: its 8-byte id, then (id * 37) % FILLER_MAX bytes of
 * (uint8_t)(id + i): sizes vary, so index positions do too. */
static size_t
make_value(uint64_t id, uint8_t *buf)
{
	size_t n = (size_t)(id * 37 % FILLER_MAX);
	memcpy(buf, &id, 8);
	for (size_t i = 0; i < n; i++) {
		buf[8 + i] = (uint8_t)(id + i);
	}
	return 8 + n;
}

static bool
value_ok(uint64_t id, const void *v, size_t len)
{
	uint8_t want[8 + FILLER_MAX];
	size_t n = make_value(id, want);
	return len == n && memcmp(v, want, n) == 0;
}

static shmq_persister_t *
make_topic(shmq_t *q, const char *topic, uint64_t retention_bytes)
{
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	c.segment_bytes = SEG;
	c.retention_bytes = retention_bytes;
	TH_OK(shmq_topic_create(q, topic, &c));
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	return ps;
}

/* Records [from, to) through the persister ps (polled in this process
 * often enough that the ring never fills). */
static void
produce(shmq_t *q, shmq_persister_t *ps, const char *topic, uint64_t from,
    uint64_t to)
{
	uint8_t buf[8 + FILLER_MAX];
	shmq_producer_t *p = th_producer(q, topic);
	for (uint64_t id = from; id < to; id++) {
		shmq_msg_t m = { .value = buf,
			.value_len = make_value(id, buf),
			.partition = 0 };
		TH_OK(shmq_send(p, &m));
		if (id % 32 == 0) {
			(void)shmq_persister_poll(ps, 0);
		}
	}
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_producer_close(p);
}

static int
dir_of(shmq_t *q, const char *topic)
{
	int fd = shmqi_seg_dir_open(q, topic, 0);
	CU_ASSERT_FATAL(fd >= 0);
	return fd;
}

static uint8_t *
slurp(int dirfd, const char *name, uint64_t *len)
{
	struct stat st;
	*len = 0;
	int fd = openat(dirfd, name, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return NULL;
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_FATAL(
	    pread(fd, buf, (size_t)st.st_size, 0) == (ssize_t)st.st_size);
	close(fd);
	*len = (uint64_t)st.st_size;
	return buf;
}

static void
seg_names(uint64_t base, char *log, char *idx)
{
	sprintf(log, "%020llu.log", (unsigned long long)base);
	sprintf(idx, "%020llu.index", (unsigned long long)base);
}

/* The index of segment `base` must hold exactly the entries a scan of
 * its log gives, each pointing at its record, IDX_EVERY bytes apart. */
static void
check_index(int dirfd, uint64_t base)
{
	char ln[40], in[40];
	uint64_t llen, ilen, next;
	seg_names(base, ln, in);
	uint8_t *log = slurp(dirfd, ln, &llen);
	uint8_t *idx = slurp(dirfd, in, &ilen);
	CU_ASSERT_FATAL(log != NULL);
	CU_ASSERT_FATAL(idx != NULL);
	struct segidx want;
	shmqi_idx_init(&want, 0);
	shmqi_idx_reset(&want, base);
	CU_ASSERT_EQUAL(shmqi_seg_valid(log, llen, base, &next, &want), llen);
	/* One entry per IDX_EVERY bytes, give or take a record. */
	CU_ASSERT(llen < (want.n + 1) * (IDX_EVERY + 320));
	CU_ASSERT_EQUAL(ilen, want.n * IDX_ENTRY);
	CU_ASSERT(
	    ilen == want.n * IDX_ENTRY && memcmp(idx, want.v, ilen) == 0);
	uint64_t prev_pos = 0;
	for (uint64_t k = 0; k + IDX_ENTRY <= ilen; k += IDX_ENTRY) {
		uint64_t off, pos;
		memcpy(&off, idx + k, 8);
		memcpy(&pos, idx + k + 8, 8);
		CU_ASSERT(pos >= prev_pos + IDX_EVERY);
		CU_ASSERT_FATAL(pos + sizeof(struct rec_hdr) <= llen);
		const struct rec_hdr *h = (const void *)(log + pos);
		CU_ASSERT_EQUAL(h->rec_type, REC_DATA);
		CU_ASSERT_EQUAL(h->rec_offset, off);
		prev_pos = pos;
	}
	shmqi_idx_close(&want);
	free(log);
	free(idx);
}

static void
test_segindex_written_index_matches_the_log(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = make_topic(q, "t", 0);
	produce(q, ps, "t", 0, 12000);
	int dirfd = dir_of(q, "t");
	struct seg_ent *v;
	size_t n;
	TH_OK(shmqi_seg_list(dirfd, &v, &n));
	CU_ASSERT_FATAL(n >= 10); /* about 1.8 MB in 64 KiB segments */
	/* Finished segments: sealed at roll.  The live one: appended
	 * (idle polls append every entry). */
	for (size_t i = 0; i < n; i++) {
		check_index(dirfd, v[i].base);
	}
	shmq_persister_close(ps);
	free(v);
	close(dirfd);
	th_destroy(q);
}

/* The fixture most tests start from: topic "t" holding ids [0, records)
 * in 64 KiB segments, its persister closed; the partition directory and
 * its segments (at least min_segs). */
struct segs {
	int dirfd;
	struct seg_ent *v;
	size_t n;
};

static void
segs_made(shmq_t *q, uint64_t records, size_t min_segs, struct segs *sg)
{
	shmq_persister_t *ps = make_topic(q, "t", 0);
	produce(q, ps, "t", 0, records);
	shmq_persister_close(ps);
	sg->dirfd = dir_of(q, "t");
	TH_OK(shmqi_seg_list(sg->dirfd, &sg->v, &sg->n));
	CU_ASSERT_FATAL(sg->n >= min_segs);
}

/* The header offset at file position pos of segment `base`. */
static uint64_t
offset_at(int dirfd, uint64_t base, uint64_t pos)
{
	char ln[40], in[40];
	struct rec_hdr h;
	seg_names(base, ln, in);
	int fd = openat(dirfd, ln, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(pread(fd, &h, sizeof h, (off_t)pos) == sizeof h);
	close(fd);
	return h.rec_offset;
}

/* Positions of every record of segment `base` (pos[off - base]). */
static uint64_t *
positions(int dirfd, uint64_t base, uint64_t *count)
{
	char ln[40], in[40];
	uint64_t llen, next;
	seg_names(base, ln, in);
	uint8_t *log = slurp(dirfd, ln, &llen);
	CU_ASSERT_FATAL(log != NULL);
	CU_ASSERT_EQUAL(shmqi_seg_valid(log, llen, base, &next, NULL), llen);
	uint64_t *pos = calloc(next - base + 1, sizeof *pos);
	uint64_t off = base;
	for (uint64_t p = 0; p < llen;) {
		const struct rec_hdr *h = (const void *)(log + p);
		uint32_t len = atomic_load(&h->rec_len);
		if (h->rec_type == REC_PAD) {
			p += len;
			continue;
		}
		pos[off++ - base] = p;
		p += shmqi_align8(len & REC_LEN_MASK);
	}
	*count = next - base;
	free(log);
	return pos;
}

static void
test_segindex_lookup_lands_just_before_every_offset(void)
{
	shmq_t *q = th_attach();
	struct segs sg;
	segs_made(q, 6000, 3, &sg);
	int dirfd = sg.dirfd;
	struct seg_ent *v = sg.v;
	uint64_t base = v[1].base, count, far = 0;
	uint64_t *pos = positions(dirfd, base, &count);
	char ln[40], in[40];
	seg_names(base, ln, in);
	int logfd = openat(dirfd, ln, O_RDONLY);
	CU_ASSERT_FATAL(logfd >= 0);
	for (uint64_t off = base; off < base + count; off++) {
		uint64_t at_pos, at_off;
		shmqi_idx_lookup(dirfd, logfd, base, off, &at_pos, &at_off);
		CU_ASSERT(at_off <= off);
		CU_ASSERT(at_pos <= pos[off - base]);
		CU_ASSERT_EQUAL(offset_at(dirfd, base, at_pos), at_off);
		/* Within one interval plus one record of it. */
		CU_ASSERT(pos[off - base] - at_pos <
		    IDX_EVERY + sizeof(struct rec_hdr) + 8 + FILLER_MAX);
		far = pos[off - base] > far ? pos[off - base] : far;
	}
	CU_ASSERT(far > 4 * IDX_EVERY); /* the check above meant something */
	close(logfd);
	free(pos);
	free(v);
	close(dirfd);
	th_destroy(q);
}

/* Seek to every offset in [from, to) and read a few records from there:
 * each is the right one, whatever the index says. */
static void
reads_are_right(shmq_t *q, const char *topic, uint64_t from, uint64_t to)
{
	shmq_consumer_t *c = th_reader(q, topic, 0);
	uint8_t buf[8 + FILLER_MAX + 8];
	int bad = 0;
	for (uint64_t off = from; off < to && bad < 5; off++) {
		TH_OK(shmq_seek(c, 0, off));
		for (uint64_t k = 0; k < 3; k++) {
			shmq_record_t r;
			uint64_t id;
			int rc = shmq_recv(c, buf, sizeof buf, &r, 1000);
			memcpy(&id, buf, 8);
			if (rc != 0 || r.offset != off + k || id != off + k ||
			    !value_ok(id, buf, r.value_len)) {
				fprintf(stderr,
				    "seek %llu: rc %d offset %llu\n",
				    (unsigned long long)off, rc,
				    (unsigned long long)r.offset);
				bad++;
				break;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	shmq_consumer_close(c);
}

static void
put_index(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void
test_segindex_damaged_index_costs_only_speed(void)
{
	shmq_t *q = th_attach();
	struct segs sg;
	segs_made(q, 6000, 3, &sg);
	int dirfd = sg.dirfd;
	struct seg_ent *v = sg.v;
	uint64_t base = v[1].base, end = v[2].base, ilen;
	char ln[40], in[40];
	seg_names(base, ln, in);
	uint8_t *good = slurp(dirfd, in, &ilen);
	CU_ASSERT_FATAL(good != NULL && ilen >= 4 * IDX_ENTRY);
	uint8_t *bad = malloc(ilen + 64);
	unsigned seed = th_seed("segindex damage");
	for (int kind = 0; kind < 9; kind++) {
		uint64_t len = ilen, x;
		memcpy(bad, good, ilen);
		switch (kind) {
		case 0: /* missing */
			CU_ASSERT_FATAL(unlinkat(dirfd, in, 0) == 0);
			break;
		case 1: /* shorter than one entry */
			len = 7;
			break;
		case 2: /* a torn last entry */
			len = ilen - 5;
			break;
		case 3: /* positions off by one record header */
			for (uint64_t k = 8; k < ilen; k += IDX_ENTRY) {
				memcpy(&x, bad + k, 8);
				x += 8;
				memcpy(bad + k, &x, 8);
			}
			break;
		case 4: /* positions past the end of the log */
			for (uint64_t k = 8; k < ilen; k += IDX_ENTRY) {
				x = (uint64_t)1 << 40;
				memcpy(bad + k, &x, 8);
			}
			break;
		case 5: /* offsets off by one */
			for (uint64_t k = 0; k < ilen; k += IDX_ENTRY) {
				memcpy(&x, bad + k, 8);
				x++;
				memcpy(bad + k, &x, 8);
			}
			break;
		case 6: /* entries swapped pairwise: not sorted */
			for (uint64_t k = 0; k + 2 * IDX_ENTRY <= ilen;
			     k += 2 * IDX_ENTRY) {
				uint8_t t[IDX_ENTRY];
				memcpy(t, bad + k, IDX_ENTRY);
				memcpy(
				    bad + k, bad + k + IDX_ENTRY, IDX_ENTRY);
				memcpy(bad + k + IDX_ENTRY, t, IDX_ENTRY);
			}
			break;
		case 7: /* random bytes */
			for (uint64_t k = 0; k < ilen; k++) {
				bad[k] = (uint8_t)rand_r(&seed);
			}
			break;
		case 8: /* random single bit flips */
			for (int k = 0; k < 8; k++) {
				uint64_t at = (uint64_t)rand_r(&seed) % ilen;
				bad[at] ^=
				    (uint8_t)(1u << (rand_r(&seed) % 8));
			}
			break;
		}
		if (kind != 0) {
			put_index(dirfd, in, bad, len);
		}
		reads_are_right(q, "t", base, end);
	}
	/* An index file too large to be one is ignored, not read. */
	int fd = openat(dirfd, in, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, (off_t)1 << 30) == 0);
	close(fd);
	reads_are_right(q, "t", base, base + 50);
	free(bad);
	free(good);
	free(v);
	close(dirfd);
	th_destroy(q);
}

static void
test_segindex_recovery_rebuilds_the_live_index_and_sweeps_temp_files(void)
{
	shmq_t *q = th_attach();
	struct segs sg;
	segs_made(q, 3000, 2, &sg);
	int dirfd = sg.dirfd;
	struct seg_ent *v = sg.v;
	size_t n = sg.n;
	uint64_t last = v[n - 1].base;
	char ln[40], in[40];
	seg_names(last, ln, in);
	/* A crash mid-append: a garbled, torn index; a torn log tail; and
	 * temp files of an interrupted atomic write. */
	put_index(dirfd, in, "garbage-garbage-garb", 21);
	int fd = openat(dirfd, ln, O_WRONLY | O_APPEND);
	CU_ASSERT_FATAL(fd >= 0 && write(fd, "torn", 4) == 4);
	close(fd);
	put_index(dirfd, ".00000000000000000000.index.tmp.99999", "x", 1);
	put_index(dirfd, "00000000000000999999.log.tmp", "x", 1);
	shmq_persister_t *ps = NULL;
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	check_index(dirfd, last);
	CU_ASSERT(faccessat(dirfd, ".00000000000000000000.index.tmp.99999",
	              F_OK, 0) != 0);
	CU_ASSERT(
	    faccessat(dirfd, "00000000000000999999.log.tmp", F_OK, 0) != 0);
	/* And it goes on indexing after the rebuilt part. */
	produce(q, ps, "t", 3000, 3400);
	shmq_persister_close(ps);
	free(v);
	TH_OK(shmqi_seg_list(dirfd, &v, &n));
	for (size_t i = 0; i < n; i++) {
		check_index(dirfd, v[i].base);
	}
	reads_are_right(q, "t", 2900, 3300);
	free(v);
	close(dirfd);
	th_destroy(q);
}

/* Retention removes each index with its log: no index is left without
 * its segment. */
static void
test_segindex_retention_leaves_no_orphan_index(void)
{
	shmq_t *q = th_attach();
	shmq_persister_t *ps = make_topic(q, "t", 256 * 1024);
	produce(q, ps, "t", 0, 6000);
	shmq_persister_close(ps);
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps)); /* retention */
	shmq_persister_close(ps);
	int dirfd = dir_of(q, "t");
	struct seg_ent *v;
	size_t n, indexes = 0;
	TH_OK(shmqi_seg_list(dirfd, &v, &n));
	CU_ASSERT(n >= 2 && n <= 6);
	DIR *d = fdopendir(dup(dirfd));
	CU_ASSERT_FATAL(d != NULL);
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".index") == NULL) {
			continue;
		}
		indexes++;
		uint64_t b = strtoull(e->d_name, NULL, 10);
		bool has_log = false;
		for (size_t i = 0; i < n; i++) {
			has_log = has_log || v[i].base == b;
		}
		CU_ASSERT(has_log);
	}
	closedir(d);
	CU_ASSERT_EQUAL(indexes, n);
	free(v);
	close(dirfd);
	th_destroy(q);
}

static void
warn_log(int level, const char *msg, void *arg)
{
	int *warned = arg;
	if (level == SHMQ_LOG_WARN && strstr(msg, "index") != NULL) {
		(*warned)++;
	}
}

/* An index that cannot be written is logged; the partition goes on
 * acknowledging, and reads are right. */
static void
test_segindex_unwritable_index_does_not_fail_the_partition(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	int warned = 0;
	th_persistent_config(&c, SHMQ_FSYNC_ALWAYS);
	c.segment_bytes = SEG;
	TH_OK(shmq_topic_create(q, "t", &c));
	TH_OK(shmq_persister_open(q, warn_log, &warned, NULL, &ps));
	/* The first segment's index name is taken by a directory. */
	int dirfd = dir_of(q, "t");
	CU_ASSERT_FATAL(
	    mkdirat(dirfd, "00000000000000000000.index", 0700) == 0);
	produce(q, ps, "t", 0, 2000);
	CU_ASSERT(warned >= 1);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.durable, 2000);
	CU_ASSERT_EQUAL(pi.persist_err, 0);
	shmq_persister_close(ps);
	reads_are_right(q, "t", 0, 400);
	/* Later segments are indexed as usual. */
	struct seg_ent *v;
	size_t n;
	TH_OK(shmqi_seg_list(dirfd, &v, &n));
	CU_ASSERT_FATAL(n >= 3);
	check_index(dirfd, v[1].base);
	free(v);
	close(dirfd);
	th_destroy(q);
}

/* Flip one bit of the file at byte `at`. */
static void
flip(int dirfd, const char *name, uint64_t at)
{
	uint8_t b;
	int fd = openat(dirfd, name, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(pread(fd, &b, 1, (off_t)at) == 1);
	b ^= 0x10;
	CU_ASSERT_FATAL(pwrite(fd, &b, 1, (off_t)at) == 1);
	close(fd);
}

/* Bit flips in an old segment (recovery scans only the last one):
 * inside a record, it is reported with its offset, again on every call,
 * and never served; a seek past it gets past it.  Outside records (in
 * the filler of a PAD) it changes nothing. */
static void
test_segindex_bit_flips_in_old_segments_are_reported_never_served(void)
{
	shmq_t *q = th_attach();
	struct segs sg;
	segs_made(q, 8000, 5, &sg);
	int dirfd = sg.dirfd;
	struct seg_ent *v = sg.v;
	uint64_t base = v[1].base, count;
	uint64_t *pos = positions(dirfd, base, &count);
	uint64_t bad = base + count / 2;
	char ln[40], in[40];
	seg_names(base, ln, in);
	flip(dirfd, ln, pos[bad - base] + sizeof(struct rec_hdr) + 3);

	shmq_consumer_t *c = th_reader(q, "t", 0);
	uint8_t buf[8 + FILLER_MAX + 8];
	shmq_record_t r;
	TH_OK(shmq_seek(c, 0, base));
	for (uint64_t off = base; off < bad; off++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
		CU_ASSERT_EQUAL_FATAL(r.offset, off);
		CU_ASSERT(value_ok(off, buf, r.value_len));
	}
	for (int k = 0; k < 3; k++) {
		TH_FAIL(
		    shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ECORRUPT);
		CU_ASSERT_EQUAL(r.offset, bad);
		CU_ASSERT_EQUAL(r.partition, 0);
	}
	TH_FAIL(shmq_peek(c, &r, 1000), SHMQ_ECORRUPT);
	CU_ASSERT_EQUAL(r.offset, bad);
	/* A seek to it reports it; a seek past it reads on, into the next
	 * segments and the ring. */
	TH_OK(shmq_seek(c, 0, bad));
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ECORRUPT);
	CU_ASSERT_EQUAL(r.offset, bad);
	TH_OK(shmq_seek(c, 0, bad + 1));
	for (uint64_t off = bad + 1; off < 6000; off++) {
		TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
		CU_ASSERT_EQUAL_FATAL(r.offset, off);
		CU_ASSERT_FATAL(value_ok(off, buf, r.value_len));
	}
	shmq_consumer_close(c);

	/* Damaged framing (the offset field of a header) in another old
	 * segment: reported at that record; a seek past it finds the next
	 * intact record. */
	{
		uint64_t b3 = v[3].base, c3;
		uint64_t *p3 = positions(dirfd, b3, &c3);
		uint64_t hit = b3 + c3 / 3;
		char l3[40], i3[40];
		seg_names(b3, l3, i3);
		flip(dirfd, l3, p3[hit - b3] + 20); /* rec_offset */
		flip(dirfd, l3, p3[hit + 1 - b3] + 6); /* rec_key_len */
		c = th_reader(q, "t", 0);
		TH_OK(shmq_seek(c, 0, hit));
		TH_FAIL(
		    shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ECORRUPT);
		CU_ASSERT_EQUAL(r.offset, hit);
		TH_OK(shmq_seek(c, 0, hit + 1));
		TH_FAIL(
		    shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ECORRUPT);
		CU_ASSERT_EQUAL(r.offset, hit + 1);
		TH_FAIL(
		    shmq_recv(c, buf, sizeof buf, &r, 1000), SHMQ_ECORRUPT);
		CU_ASSERT_EQUAL(r.offset, hit + 1);
		TH_OK(shmq_seek(c, 0, hit + 2));
		for (uint64_t off = hit + 2; off < b3 + c3 + 50; off++) {
			TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
			CU_ASSERT_EQUAL_FATAL(r.offset, off);
			CU_ASSERT_FATAL(value_ok(off, buf, r.value_len));
		}
		shmq_consumer_close(c);
		free(p3);
	}

	/* A flip in a PAD's filler, in another old segment. */
	char ln2[40], in2[40];
	uint64_t llen, pad_at = 0;
	seg_names(v[2].base, ln2, in2);
	uint8_t *log = slurp(dirfd, ln2, &llen);
	CU_ASSERT_FATAL(log != NULL);
	for (uint64_t p = 0; p < llen && pad_at == 0;) {
		const struct rec_hdr *h = (const void *)(log + p);
		uint32_t len = atomic_load(&h->rec_len);
		if (h->rec_type == REC_PAD && len >= 16) {
			pad_at = p + len - 1;
		}
		p += h->rec_type == REC_PAD ? len
		                            : shmqi_align8(len & REC_LEN_MASK);
	}
	CU_ASSERT_FATAL(pad_at != 0); /* the ring wraps inside a segment */
	free(log);
	flip(dirfd, ln2, pad_at);
	reads_are_right(q, "t", v[2].base, v[3].base);
	free(pos);
	free(v);
	close(dirfd);
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_segindex_bit_flips_in_old_segments_are_reported_never_served",
	    test_segindex_bit_flips_in_old_segments_are_reported_never_served },
	{ "test_segindex_written_index_matches_the_log",
	    test_segindex_written_index_matches_the_log },
	{ "test_segindex_lookup_lands_just_before_every_offset",
	    test_segindex_lookup_lands_just_before_every_offset },
	{ "test_segindex_damaged_index_costs_only_speed",
	    test_segindex_damaged_index_costs_only_speed },
	{ "test_segindex_recovery_rebuilds_the_live_index_and_sweeps_temp_"
	  "files",
	    test_segindex_recovery_rebuilds_the_live_index_and_sweeps_temp_files },
	{ "test_segindex_retention_leaves_no_orphan_index",
	    test_segindex_retention_leaves_no_orphan_index },
	{ "test_segindex_unwritable_index_does_not_fail_the_partition",
	    test_segindex_unwritable_index_does_not_fail_the_partition },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_segindex = { "segindex", tests };
