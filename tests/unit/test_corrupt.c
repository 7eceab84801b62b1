/*
 * test_corrupt.c — damaged shared memory and files give errors, never
 * crashes and never bad records: ring headers (magic, version, layout,
 * geometry, size, mode, symlinks), stale rings (another instance, a
 * deleted topic) rebuilt empty, record headers in the data area, topic
 * metadata, the instance id, and group files.
 *
 * Every offset comes from layout.h (offsetof), never a literal.  Files
 * are damaged with pwrite/ftruncate while nothing has them mapped,
 * except for records, which are damaged under a live producer as a
 * stray write would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define RING SHMQ_RING_SIZE_MIN
#define VLEN 100u
#define EXT ((sizeof(struct rec_hdr) + VLEN + 7u) & ~(size_t)7u)
#define BUFSZ 4096

/* ---- helpers ------------------------------------------------------------ */

static void
ring_file(shmq_t *q, const char *topic, uint32_t part, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s.%u.ring", shmq_shm_dir(q), topic, part);
}

static void
fill(uint8_t *v, size_t len, uint32_t idx)
{
	memcpy(v, &idx, sizeof idx);
	for (size_t i = sizeof idx; i < len; i++) {
		v[i] = (uint8_t)(idx * 7u + i);
	}
}

static int
open_producer(shmq_t *q, const char *topic, shmq_producer_t **p)
{
	shmq_producer_options_t o;
	shmq_producer_options_init(&o);
	o.timeout_ms = 100;
	return shmq_producer_open(q, topic, &o, p);
}

/* Open a producer only to see whether it opens. */
static int
producer_rc(shmq_t *q, const char *topic)
{
	shmq_producer_t *p = NULL;
	int rc = open_producer(q, topic, &p);
	CU_ASSERT((rc == 0) == (p != NULL));
	shmq_producer_close(p);
	return rc;
}

static int
consumer_rc(shmq_t *q, const char *topic, const char *group)
{
	shmq_consumer_options_t o;
	shmq_consumer_t *c = NULL;
	shmq_consumer_options_init(&o);
	o.group = group;
	int rc = shmq_consumer_open(q, topic, &o, &c);
	CU_ASSERT((rc == 0) == (c != NULL));
	shmq_consumer_close(c);
	return rc;
}

static int
send_idx(shmq_producer_t *p, uint32_t idx)
{
	uint8_t v[VLEN];
	shmq_msg_t m = { 0 };
	fill(v, sizeof v, idx);
	m.value = v;
	m.value_len = sizeof v;
	m.partition = 0;
	return shmq_send(p, &m);
}

/* A one-partition topic whose ring exists and holds n records. */
static void
make_ring(shmq_t *q, const char *topic, uint32_t n)
{
	shmq_producer_t *p = NULL;
	th_topic(q, topic, 1, RING, SHMQ_OVERFLOW_BLOCK);
	TH_OK(open_producer(q, topic, &p));
	for (uint32_t i = 0; i < n; i++) {
		TH_OK(send_idx(p, i));
	}
	shmq_producer_close(p);
}

static void
poke(const char *path, uint64_t off, const void *data, size_t len)
{
	int fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void
peek_file(const char *path, uint64_t off, void *data, size_t len)
{
	int fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void
poke64(const char *path, uint64_t off, uint64_t v)
{
	poke(path, off, &v, sizeof v);
}

static void
poke32(const char *path, uint64_t off, uint32_t v)
{
	poke(path, off, &v, sizeof v);
}

static void
poke16(const char *path, uint64_t off, uint16_t v)
{
	poke(path, off, &v, sizeof v);
}

static uint64_t
read64(const char *path, uint64_t off)
{
	uint64_t v = 0;
	peek_file(path, off, &v, sizeof v);
	return v;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Read a whole (small) file; returns its length. */
static size_t
read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	ssize_t n = read(fd, buf, cap);
	close(fd);
	CU_ASSERT_FATAL(n >= 0);
	return (size_t)n;
}

/* ---- ring header -------------------------------------------------------- */

#define HDR(field) ((uint64_t)offsetof(struct ring_hdr, field))

static void
test_corrupt_ring_with_bad_magic_is_refused_not_rebuilt(void)
{
	shmq_t *q = th_attach();
	shmq_partition_info_t info;
	char path[SHMQ_PATH_MAX];
	make_ring(q, "t", 3);
	ring_file(q, "t", 0, path, sizeof path);
	poke64(path, HDR(hdr_magic), 0x0123456789abcdefull);
	TH_FAIL(producer_rc(q, "t"), SHMQ_ECORRUPT);
	TH_FAIL(consumer_rc(q, "t", NULL), SHMQ_ECORRUPT);
	TH_FAIL(consumer_rc(q, "t", "g"), SHMQ_ECORRUPT);
	TH_FAIL(shmq_partition_info(q, "t", 0, &info), SHMQ_ECORRUPT);
	/* Refused, not silently replaced by an empty ring. */
	CU_ASSERT_EQUAL(read64(path, HDR(hdr_magic)), 0x0123456789abcdefull);
	th_destroy(q);
}

static void
test_corrupt_ring_with_byte_swapped_magic_reports_a_version_mismatch(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	make_ring(q, "t", 0);
	ring_file(q, "t", 0, path, sizeof path);
	poke64(path, HDR(hdr_magic), __builtin_bswap64(RING_MAGIC));
	TH_FAIL(producer_rc(q, "t"), SHMQ_EVERSION);
	TH_FAIL(consumer_rc(q, "t", NULL), SHMQ_EVERSION);
	th_destroy(q);
}

static void
test_corrupt_ring_of_another_layout_is_refused_with_eversion(void)
{
	static const struct {
		uint64_t off;
		uint32_t value;
		int want;
	} cases[] = {
		{ HDR(hdr_version), LAYOUT_VERSION + (1u << 16),
		    SHMQ_EVERSION },
		{ HDR(hdr_version), (LAYOUT_MAJOR + 7u) << 16, SHMQ_EVERSION },
		{ HDR(hdr_layout), LAYOUT_WORD ^ 0x10u, SHMQ_EVERSION },
		/* Never published: a creator died before the version. */
		{ HDR(hdr_version), 0, SHMQ_ECORRUPT },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		shmq_t *q = th_attach();
		char path[SHMQ_PATH_MAX];
		make_ring(q, "t", 1);
		ring_file(q, "t", 0, path, sizeof path);
		poke32(path, cases[i].off, cases[i].value);
		TH_FAIL(producer_rc(q, "t"), cases[i].want);
		TH_FAIL(consumer_rc(q, "t", "g"), cases[i].want);
		th_destroy(q);
	}
}

static void
test_corrupt_ring_with_impossible_geometry_is_refused(void)
{
	static const struct {
		const char *what;
		uint64_t off;
		size_t width;
		uint64_t value; /* added to the field */
	} cases[] = {
		{ "capacity not a power of two", HDR(hdr_capacity), 8, 8 },
		{ "capacity larger than the file", HDR(hdr_capacity), 8,
		    RING },
		{ "capacity zero", HDR(hdr_capacity), 8, (uint64_t)-RING },
		{ "capacity at the maximum", HDR(hdr_capacity), 8,
		    SHMQ_RING_SIZE_MAX - RING },
		{ "index offset moved", HDR(hdr_index_off), 8, 8 },
		{ "index slots changed", HDR(hdr_index_slots), 4, 1 },
		{ "data offset moved", HDR(hdr_data_off), 8, RING_PAGE },
		{ "data offset into the header", HDR(hdr_data_off), 8,
		    (uint64_t)-RING_PAGE },
		{ "another partition", HDR(hdr_partition), 4, 3 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		shmq_t *q = th_attach();
		char path[SHMQ_PATH_MAX];
		make_ring(q, "t", 2);
		ring_file(q, "t", 0, path, sizeof path);
		if (cases[i].width == 8) {
			poke64(path, cases[i].off,
			    read64(path, cases[i].off) + cases[i].value);
		} else {
			uint32_t v = 0;
			peek_file(path, cases[i].off, &v, sizeof v);
			poke32(
			    path, cases[i].off, v + (uint32_t)cases[i].value);
		}
		int rc = producer_rc(q, "t");
		if (rc != SHMQ_ECORRUPT) {
			fprintf(stderr, "%s: %s\n", cases[i].what,
			    shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL(rc, SHMQ_ECORRUPT);
		TH_FAIL(consumer_rc(q, "t", NULL), SHMQ_ECORRUPT);
		th_destroy(q);
	}
}

static void
test_corrupt_truncated_ring_is_refused_without_sigbus(void)
{
	const off_t sizes[] = { 0, 100, RING_HDR_SIZE - 1, RING_HDR_SIZE,
		-(off_t)(RING / 2), -1 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		shmq_t *q = th_attach();
		char path[SHMQ_PATH_MAX];
		struct stat st;
		make_ring(q, "t", 2);
		ring_file(q, "t", 0, path, sizeof path);
		CU_ASSERT_FATAL(stat(path, &st) == 0);
		/* Negative: that much short of the full file (the header is
		 * intact, the data area is not all there). */
		off_t len = sizes[i] >= 0 ? sizes[i] : st.st_size + sizes[i];
		CU_ASSERT_FATAL(truncate(path, len) == 0);
		int rc = producer_rc(q, "t");
		if (rc != SHMQ_ECORRUPT) {
			fprintf(stderr, "size %lld: %s\n", (long long)len,
			    shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL(rc, SHMQ_ECORRUPT);
		TH_FAIL(consumer_rc(q, "t", "g"), SHMQ_ECORRUPT);
		th_destroy(q);
	}
}

static void
test_corrupt_ring_writable_by_others_is_refused(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	struct stat st;
	make_ring(q, "t", 1);
	ring_file(q, "t", 0, path, sizeof path);
	CU_ASSERT_FATAL(chmod(path, 0666) == 0);
	TH_FAIL(producer_rc(q, "t"), -EPERM);
	TH_FAIL(consumer_rc(q, "t", NULL), -EPERM);
	/* Left alone: not rebuilt, not chmod'ed back. */
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0666);
	CU_ASSERT_EQUAL(read64(path, HDR(hdr_magic)), RING_MAGIC);
	th_destroy(q);
}

static void
test_corrupt_symlink_in_place_of_a_ring_is_never_followed(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX], target[SHMQ_PATH_MAX];
	uint8_t before[RING_HDR_SIZE], after[RING_HDR_SIZE];
	struct stat st;
	make_ring(q, "t", 1);
	ring_file(q, "t", 0, path, sizeof path);
	snprintf(target, sizeof target, "%s/elsewhere", shmq_shm_dir(q));
	CU_ASSERT_FATAL(rename(path, target) == 0);
	CU_ASSERT_FATAL(symlink(target, path) == 0);
	peek_file(target, 0, before, sizeof before);
	TH_FAIL(producer_rc(q, "t"), -ELOOP);
	TH_FAIL(consumer_rc(q, "t", "g"), -ELOOP);
	peek_file(target, 0, after, sizeof after);
	CU_ASSERT(memcmp(before, after, sizeof before) == 0);
	CU_ASSERT(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));

	/* A dangling link is not a missing ring: nothing is created at
	 * its target. */
	CU_ASSERT_FATAL(unlink(path) == 0);
	snprintf(target, sizeof target, "%s/planted", shmq_shm_dir(q));
	CU_ASSERT_FATAL(symlink(target, path) == 0);
	TH_FAIL(producer_rc(q, "t"), -ELOOP);
	CU_ASSERT(lstat(target, &st) != 0 && errno == ENOENT);

	/* Nor is a FIFO (and opening one must not hang). */
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(mkfifo(path, 0600) == 0);
	TH_FAIL(producer_rc(q, "t"), -EPERM);
	th_destroy(q);
}

/* ---- stale rings -------------------------------------------------------- */

/* The topic reads as new: empty, the next record at offset 0. */
static void
expect_empty_topic(shmq_t *q, const char *topic)
{
	shmq_partition_info_t info;
	shmq_producer_t *p = NULL;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	uint8_t buf[BUFSZ];
	const uint32_t part = 0;

	TH_OK(open_producer(q, topic, &p));
	TH_OK(shmq_partition_info(q, topic, 0, &info));
	CU_ASSERT_EQUAL(info.end, 0);
	CU_ASSERT_EQUAL(info.log_start, 0);
	CU_ASSERT_EQUAL(info.records_in, 0);
	TH_OK(send_idx(p, 500));
	TH_OK(shmq_consumer_open(q, topic, NULL, &c));
	TH_OK(shmq_assign(c, &part, 1));
	TH_OK(shmq_recv(c, buf, sizeof buf, &r, 1000));
	CU_ASSERT_EQUAL(r.offset, 0);
	CU_ASSERT_EQUAL(r.value_len, VLEN);
	CU_ASSERT_EQUAL(*(const uint32_t *)r.value, 500);
	TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), -EAGAIN);
	shmq_consumer_close(c);
	shmq_producer_close(p);
}

static void
test_corrupt_ring_of_another_instance_is_rebuilt_empty(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	make_ring(q, "t", 5);
	ring_file(q, "t", 0, path, sizeof path);
	poke64(path, HDR(hdr_instance_id),
	    read64(path, HDR(hdr_instance_id)) ^ 0x5a5a5a5aull);
	expect_empty_topic(q, "t");
	th_destroy(q);
}

static void
test_corrupt_ring_of_a_previous_boot_is_rebuilt_empty(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	uint8_t boot[16];
	make_ring(q, "t", 5);
	ring_file(q, "t", 0, path, sizeof path);
	peek_file(path, HDR(hdr_boot_id), boot, sizeof boot);
	boot[3] ^= 0xff;
	poke(path, HDR(hdr_boot_id), boot, sizeof boot);
	expect_empty_topic(q, "t");
	th_destroy(q);
}

static void
test_corrupt_ring_of_a_deleted_topic_of_the_same_name_is_rebuilt_empty(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX];
	struct stat st;
	make_ring(q, "t", 5);
	ring_file(q, "t", 0, path, sizeof path);
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	size_t len = (size_t)st.st_size;
	uint8_t *old = malloc(len);
	CU_ASSERT_FATAL(old != NULL);
	CU_ASSERT_EQUAL(read_file(path, old, len), len);

	/* Same name, new topic; the old topic's ring comes back (as if
	 * a process had it open and the unlink raced a re-creation). */
	TH_OK(shmq_topic_delete(q, "t"));
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	write_file(path, old, len);
	free(old);
	expect_empty_topic(q, "t");
	th_destroy(q);
}

/* ---- records ------------------------------------------------------------ */

#define REC(field) ((uint64_t)offsetof(struct rec_hdr, field))

struct rec_case {
	const char *what;
	uint64_t off;
	size_t width;
	uint64_t value;
};

static const struct rec_case rec_cases[] = {
	{ "rec_len huge", REC(rec_len), 4, 0x7ffffff0u },
	{ "rec_len too small", REC(rec_len), 4, 16 },
	{ "rec_len unaligned", REC(rec_len), 4, sizeof(struct rec_hdr) + 3 },
	{ "rec_offset wrong", REC(rec_offset), 8, 12345 },
	{ "rec_type garbage", REC(rec_type), 2, 0x7777 },
	{ "rec_type pad", REC(rec_type), 2, REC_PAD },
	{ "rec_value_len huge", REC(rec_value_len), 4, 1u << 30 },
	{ "rec_key_len wrong", REC(rec_key_len), 2, 40 },
};

/* Damage record `idx` of three under a live producer; a consumer reads
 * the records before it, then gets SHMQ_ECORRUPT — never the damaged
 * record, never a crash — and the partition is failed from then on. */
static void
check_damaged_record(const struct rec_case *rc_, uint32_t idx)
{
	shmq_t *q = th_attach();
	shmq_producer_t *p = NULL;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	uint8_t buf[BUFSZ];
	char path[SHMQ_PATH_MAX];
	const uint32_t part = 0;
	int rc = 0;

	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	TH_OK(open_producer(q, "t", &p));
	for (uint32_t i = 0; i < 3; i++) {
		TH_OK(send_idx(p, i));
	}
	ring_file(q, "t", 0, path, sizeof path);
	uint64_t at = read64(path, HDR(hdr_data_off)) + idx * EXT + rc_->off;
	if (rc_->width == 8) {
		poke64(path, at, rc_->value);
	} else if (rc_->width == 4) {
		poke32(path, at, (uint32_t)rc_->value);
	} else {
		poke16(path, at, (uint16_t)rc_->value);
	}

	TH_OK(shmq_consumer_open(q, "t", NULL, &c));
	TH_OK(shmq_assign(c, &part, 1));
	uint32_t got = 0;
	while ((rc = shmq_recv(c, buf, sizeof buf, &r, 100)) == 0) {
		/* Only the intact records before the damage. */
		CU_ASSERT(got < idx);
		CU_ASSERT_EQUAL(r.offset, got);
		CU_ASSERT_EQUAL(r.value_len, VLEN);
		CU_ASSERT_EQUAL(*(const uint32_t *)r.value, got);
		if (++got > 3) {
			break;
		}
	}
	if (rc != SHMQ_ECORRUPT || got != idx) {
		fprintf(stderr, "\n    record %u, %s: read %u, then %s", idx,
		    rc_->what, got, shmq_strerror(rc));
	}
	CU_ASSERT_EQUAL(got, idx);
	CU_ASSERT_EQUAL(rc, SHMQ_ECORRUPT);
	if (rc == SHMQ_ECORRUPT) {
		/* Sticky: readers and writers are told to stop. */
		TH_FAIL(shmq_recv(c, buf, sizeof buf, &r, 0), SHMQ_EFAILED);
		TH_FAIL(send_idx(p, 3), SHMQ_EFAILED);
	}
	shmq_consumer_close(c);
	shmq_producer_close(p);
	th_destroy(q);
}

static void
test_corrupt_record_header_after_good_records_gives_ecorrupt(void)
{
	for (size_t i = 0; i < sizeof rec_cases / sizeof rec_cases[0]; i++) {
		check_damaged_record(&rec_cases[i], 1);
	}
}

static void
test_corrupt_first_record_header_gives_ecorrupt(void)
{
	for (size_t i = 0; i < sizeof rec_cases / sizeof rec_cases[0]; i++) {
		check_damaged_record(&rec_cases[i], 0);
	}
}

/* What a client saw of a damaged ring, filled in by a child process (so
 * that a crash is a failed test, not a dead runner). */
struct seen {
	int open_rc;
	int recv_rc; /* how reading ended */
	int send_rc; /* a send before or after reading */
	uint32_t good; /* intact records returned, in order */
	uint32_t wrong; /* records returned that were not sent so */
};

struct use_arg {
	char home[SHMQ_DIR_MAX];
	bool send_first;
	struct seen *seen;
};

static int
use_ring(void *arg)
{
	struct use_arg *a = arg;
	struct seen *sn = a->seen;
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_producer_t *p = NULL;
	shmq_consumer_t *c = NULL;
	shmq_record_t r;
	uint8_t buf[BUFSZ];
	const uint32_t part = 0;

	shmq_options_init(&o);
	o.reclaim_ms = 50;
	if ((sn->open_rc = shmq_attach(a->home, &o, &q)) != 0 ||
	    (sn->open_rc = shmq_consumer_open(q, "t", NULL, &c)) != 0 ||
	    (sn->open_rc = shmq_assign(c, &part, 1)) != 0 ||
	    (sn->open_rc = open_producer(q, "t", &p)) != 0) {
		shmq_detach(q);
		return 0;
	}
	if (a->send_first) {
		sn->send_rc = send_idx(p, 3);
	}
	for (uint32_t i = 0; i < 8; i++) {
		sn->recv_rc = shmq_recv(c, buf, sizeof buf, &r, 100);
		if (sn->recv_rc != 0) {
			break;
		}
		if (r.offset == sn->good && r.value_len == VLEN &&
		    *(const uint32_t *)r.value == sn->good) {
			sn->good++;
		} else {
			sn->wrong++;
		}
	}
	if (!a->send_first) {
		sn->send_rc = send_idx(p, 99);
	}
	shmq_detach(q);
	return 0;
}

static void
test_corrupt_misaligned_ring_positions_give_ecorrupt(void)
{
	static const struct {
		const char *what;
		uint64_t off;
	} cases[] = {
		{ "start_pos", HDR(hdr_start_pos) },
		{ "committed_pos", HDR(hdr_committed_pos) },
		{ "end_pos", HDR(hdr_end_pos) },
	};
	for (size_t i = 0; i < 2 * sizeof cases / sizeof cases[0]; i++) {
		shmq_t *q = th_attach();
		struct use_arg a;
		char path[SHMQ_PATH_MAX];
		size_t k = i / 2;
		make_ring(q, "t", 3);
		ring_file(q, "t", 0, path, sizeof path);
		/* Positions are multiples of REC_ALIGN; this one is not. */
		poke64(path, cases[k].off, read64(path, cases[k].off) + 3);
		snprintf(a.home, sizeof a.home, "%s", shmq_home(q));
		a.send_first = i % 2 == 1;
		a.seen = th_shared(sizeof *a.seen);
		int st = th_wait(th_fork(use_ring, &a));
		struct seen *sn = a.seen;
		/* Reading first: the reader finds the damage and fails the
		 * partition.  Sending first: the send fails, or its record
		 * is read back intact; either way the reader then reports
		 * the damage rather than waiting forever. */
		bool ok = st == 0 && sn->open_rc == 0 && sn->wrong == 0;
		if (a.send_first) {
			ok = ok &&
			    (sn->recv_rc == SHMQ_ECORRUPT ||
			        sn->recv_rc == SHMQ_EFAILED) &&
			    (sn->send_rc < 0 || sn->good == 4);
		} else {
			/* The damage may be found by the reader's wait loop
			 * (reclaim), in which case the read reports the
			 * sticky SHMQ_EFAILED it left behind. */
			ok = ok &&
			    (sn->recv_rc == SHMQ_ECORRUPT ||
			        sn->recv_rc == SHMQ_EFAILED) &&
			    sn->send_rc == SHMQ_EFAILED;
		}
		if (!ok) {
			fprintf(stderr,
			    "\n    %s misaligned, %s first: exit %d, open %s, "
			    "read %u good %u wrong, then %s; send %s",
			    cases[k].what, a.send_first ? "send" : "read", st,
			    shmq_strerror(sn->open_rc), sn->good, sn->wrong,
			    shmq_strerror(sn->recv_rc),
			    shmq_strerror(sn->send_rc));
		}
		CU_ASSERT(ok);
		th_unshared(a.seen, sizeof *a.seen);
		th_destroy(q);
	}
}

/* ---- topic metadata and instance id ------------------------------------- */

static void
topic_file(shmq_t *q, const char *topic, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/topics/%s.topic", shmq_home(q), topic);
}

static void
expect_corrupt_topic(shmq_t *q, const char *topic, const char *what)
{
	shmq_topic_config_t cfg;
	int rc = producer_rc(q, topic);
	if (rc != SHMQ_ECORRUPT) {
		fprintf(stderr, "\n    topic file %s: %s", what,
		    shmq_strerror(rc));
	}
	CU_ASSERT_EQUAL(rc, SHMQ_ECORRUPT);
	TH_FAIL(consumer_rc(q, topic, NULL), SHMQ_ECORRUPT);
	TH_FAIL(shmq_topic_describe(q, topic, &cfg), SHMQ_ECORRUPT);
}

static void
test_corrupt_topic_file_garbage_gives_ecorrupt(void)
{
	static const char *const bad[] = {
		"hello world\n",
		"",
		"\0\0\0\0\0\0\0\0",
		"version=2\nid=00000000000000ab\npartitions=1\n"
		"ring_size=65536\noverflow=block\n",
		"version=1\nid=0000000000000000\npartitions=1\n"
		"ring_size=65536\noverflow=block\n",
		"version=1\nid=00000000000000ab\npartitions=0\n"
		"ring_size=65536\noverflow=block\n",
		"version=1\nid=00000000000000ab\npartitions=1025\n"
		"ring_size=65536\noverflow=block\n",
		"version=1\nid=00000000000000ab\npartitions=1\n"
		"ring_size=65537\noverflow=block\n",
		"version=1\nid=00000000000000ab\npartitions=1\n"
		"ring_size=1024\noverflow=block\n",
		"version=1\nid=00000000000000ab\npartitions=1\n"
		"ring_size=65536\noverflow=sideways\n",
	};
	shmq_t *q = th_attach();
	shmq_topic_config_t cfg;
	char path[SHMQ_PATH_MAX];
	th_topic(q, "t", 1, RING, SHMQ_OVERFLOW_BLOCK);
	topic_file(q, "t", path, sizeof path);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t len = strlen(bad[i]);
		write_file(path, bad[i], len == 0 && i == 2 ? 8 : len);
		expect_corrupt_topic(q, "t", bad[i]);
	}
	/* A damaged topic still exists: not re-created over, but it can
	 * be deleted. */
	shmq_topic_config_init(&cfg);
	cfg.ring_size = RING;
	TH_FAIL(shmq_topic_create(q, "t", &cfg), -EEXIST);
	TH_OK(shmq_topic_delete(q, "t"));
	TH_FAIL(shmq_topic_describe(q, "t", &cfg), -ENOENT);
	th_destroy(q);
}

static void
test_corrupt_topic_file_truncated_anywhere_gives_ecorrupt(void)
{
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX], full[512], what[32];
	th_topic(q, "t", 16, RING, SHMQ_OVERFLOW_BLOCK);
	topic_file(q, "t", path, sizeof path);
	size_t len = read_file(path, full, sizeof full);
	CU_ASSERT_FATAL(len > 2 && full[len - 1] == '\n');
	/* Every cut short of the last field's last character. */
	for (size_t cut = 0; cut + 1 < len; cut++) {
		CU_ASSERT_FATAL(truncate(path, (off_t)cut) == 0);
		snprintf(what, sizeof what, "cut at %zu", cut);
		expect_corrupt_topic(q, "t", what);
		write_file(path, full, len);
	}
	TH_OK(producer_rc(q, "t"));
	th_destroy(q);
}

static void
test_corrupt_instance_id_garbage_fails_attach(void)
{
	static const char *const bad[] = {
		"not an id at all\n",
		"",
		"0000000000000000\n",
		"12345\n",
		"0123456789abcdef0123\n",
		"0123456789abcdeg\n",
	};
	shmq_t *q = th_attach();
	char path[SHMQ_PATH_MAX], good[64];
	snprintf(path, sizeof path, "%s/instance.id", shmq_home(q));
	size_t len = read_file(path, good, sizeof good);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		shmq_t *q2 = (shmq_t *)path; /* must be reset to NULL */
		write_file(path, bad[i], strlen(bad[i]));
		int rc = shmq_attach(shmq_home(q), NULL, &q2);
		if (rc != SHMQ_ECORRUPT) {
			fprintf(stderr, "\n    instance.id \"%s\": %s", bad[i],
			    shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL(rc, SHMQ_ECORRUPT);
		CU_ASSERT_PTR_NULL(q2);
		if (rc == 0) {
			shmq_detach(q2);
		}
	}
	write_file(path, good, len);
	th_destroy(q);
}

/* ---- group files -------------------------------------------------------- */

#define GRP(field) ((uint64_t)offsetof(struct grp_hdr, field))

static void
test_corrupt_group_file_is_refused_for_that_group_only(void)
{
	static const struct {
		const char *what;
		uint64_t off;
		size_t width;
		uint64_t value;
		int want;
	} cases[] = {
		{ "bad magic", GRP(g_magic), 8, 0x1122334455667788ull,
		    SHMQ_ECORRUPT },
		{ "swapped magic", GRP(g_magic), 8,
		    __builtin_bswap64(GROUP_MAGIC), SHMQ_ECORRUPT },
		{ "unpublished", GRP(g_version), 4, 0, SHMQ_ECORRUPT },
		{ "next major", GRP(g_version), 4, LAYOUT_VERSION + (1u << 16),
		    SHMQ_EVERSION },
		{ "layout word", GRP(g_layout), 4, LAYOUT_WORD ^ 0x100u,
		    SHMQ_EVERSION },
		{ "partition count", GRP(g_partitions), 4, 3, SHMQ_ECORRUPT },
		{ "partition count huge", GRP(g_partitions), 4, 0x7fffffffu,
		    SHMQ_ECORRUPT },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		shmq_t *q = th_attach();
		shmq_group_partition_t gp[4];
		char path[SHMQ_PATH_MAX];
		uint32_t members;
		th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
		TH_OK(consumer_rc(q, "t", "g"));
		snprintf(path, sizeof path, "%s/g@t.group", shmq_shm_dir(q));
		if (cases[i].width == 8) {
			poke64(path, cases[i].off, cases[i].value);
		} else {
			poke32(path, cases[i].off, (uint32_t)cases[i].value);
		}
		int rc = consumer_rc(q, "t", "g");
		if (rc != cases[i].want) {
			fprintf(stderr, "\n    group file %s: %s",
			    cases[i].what, shmq_strerror(rc));
		}
		CU_ASSERT_EQUAL(rc, cases[i].want);
		TH_FAIL(
		    shmq_group_describe(q, "g", "t", gp, 4), cases[i].want);
		TH_FAIL(
		    shmq_group_members(q, "g", "t", &members), cases[i].want);
		TH_FAIL(shmq_group_delete(q, "g", "t"), cases[i].want);
		/* Other groups and plain consumers are not affected. */
		TH_OK(consumer_rc(q, "t", "h"));
		TH_OK(consumer_rc(q, "t", NULL));
		TH_OK(producer_rc(q, "t"));
		th_destroy(q);
	}
}

static void
test_corrupt_truncated_group_file_is_refused(void)
{
	const off_t sizes[] = { 0, 100, (off_t)sizeof(struct grp_hdr) };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		shmq_t *q = th_attach();
		char path[SHMQ_PATH_MAX];
		th_topic(q, "t", 2, RING, SHMQ_OVERFLOW_BLOCK);
		TH_OK(consumer_rc(q, "t", "g"));
		snprintf(path, sizeof path, "%s/g@t.group", shmq_shm_dir(q));
		CU_ASSERT_FATAL(truncate(path, sizes[i]) == 0);
		TH_FAIL(consumer_rc(q, "t", "g"), SHMQ_ECORRUPT);
		th_destroy(q);
	}
}

/* ---- random damage ------------------------------------------------------ */

#define FUZZ_DEADLINE_MS 10000

struct fuzz_arg {
	char home[SHMQ_DIR_MAX];
	int done; /* write end: closed when the child exits */
};

/* Use a damaged ring every way a client can.  Returns the number of
 * calls that returned something other than 0 or a negative error. */
static int
fuzz_child(void *arg)
{
	struct fuzz_arg *a = arg;
	static uint8_t buf[BUFSZ * 4];
	shmq_options_t o;
	shmq_t *q = NULL;
	shmq_producer_t *p = NULL;
	shmq_consumer_t *c = NULL, *g = NULL;
	shmq_consumer_options_t co;
	shmq_partition_info_t info;
	shmq_record_t r;
	uint64_t off;
	const uint32_t part = 0;
	int bad = 0, rc;

	shmq_options_init(&o);
	o.reclaim_ms = 50;
	o.stall_ms = 100;
	if (shmq_attach(a->home, &o, &q) != 0) {
		return 100;
	}
	shmq_consumer_options_init(&co);
	co.group = "g";
	bad += open_producer(q, "t", &p) > 0;
	bad += shmq_consumer_open(q, "t", NULL, &c) > 0;
	bad += shmq_consumer_open(q, "t", &co, &g) > 0;
	if (c != NULL) {
		bad += shmq_assign(c, &part, 1) > 0;
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; c != NULL && i < 200; i++) {
			rc = shmq_recv(c, buf, sizeof buf, &r, 0);
			bad += rc > 0;
			if (rc == -EAGAIN || rc == SHMQ_EFAILED ||
			    rc == SHMQ_EDELETED) {
				break;
			}
			bad += rc == 0 && r.key_len + r.value_len > sizeof buf;
		}
		for (int i = 0; g != NULL && i < 200; i++) {
			rc = shmq_peek(g, &r, 0);
			bad += rc > 0;
			if (rc != 0 && rc != SHMQ_ELAPPED) {
				break;
			}
			if (rc == 0) {
				/* Touch every byte lent out. */
				volatile uint8_t sum = 0;
				for (size_t k = 0; k < r.value_len; k++) {
					sum ^= ((const uint8_t *)r.value)[k];
				}
				(void)sum;
				bad += shmq_release(g, &r) > 0;
			}
		}
		if (g != NULL) {
			bad += shmq_consumer_commit(g) > 0;
		}
		for (uint32_t i = 0; p != NULL && i < 40; i++) {
			rc = send_idx(p, 1000 + i);
			bad += rc > 0;
			if (rc != 0) {
				break;
			}
		}
		bad += shmq_partition_info(q, "t", 0, &info) > 0;
		bad += shmq_offset_for_time(q, "t", 0, 0, &off) > 0;
	}
	shmq_consumer_close(g);
	shmq_consumer_close(c);
	shmq_producer_close(p);
	shmq_detach(q);
	return bad;
}

/* Run the child; fail (and kill it) if it does not finish in time. */
static int
run_fuzz_child(struct fuzz_arg *a)
{
	int fds[2];
	struct pollfd pfd;
	char b;
	CU_ASSERT_FATAL(pipe(fds) == 0);
	a->done = fds[1];
	pid_t pid = th_fork(fuzz_child, a);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	/* The child never writes: the pipe reads EOF when it exits. */
	int n = poll(&pfd, 1, FUZZ_DEADLINE_MS);
	bool hung = n == 0 || (n == 1 && read(fds[0], &b, 1) != 0);
	close(fds[0]);
	if (hung) {
		kill(pid, SIGKILL);
	}
	int st = th_wait(pid);
	return hung ? -1 : st;
}

static void
test_corrupt_random_damage_to_a_ring_never_crashes_or_hangs(void)
{
	unsigned seed = th_seed("ring damage");
	unsigned iters = th_soak(40);
	for (unsigned it = 0; it < iters; it++) {
		shmq_t *q = th_attach();
		shmq_producer_t *p = NULL;
		struct fuzz_arg a;
		char path[SHMQ_PATH_MAX];
		uint8_t v[2048];
		unsigned s0 = seed + it;
		unsigned s = s0;

		th_topic(q, "t", 1, RING,
		    rand_r(&s) % 2 ? SHMQ_OVERFLOW_DROP : SHMQ_OVERFLOW_BLOCK);
		TH_OK(open_producer(q, "t", &p));
		uint32_t n = (uint32_t)rand_r(&s) % 200;
		for (uint32_t i = 0; i < n; i++) {
			shmq_msg_t m = { 0 };
			m.value = v;
			m.value_len = (size_t)rand_r(&s) % sizeof v;
			m.partition = 0;
			fill(v, m.value_len < 4 ? 4 : m.value_len, i);
			TH_OK(shmq_send(p, &m));
		}
		shmq_producer_close(p);

		/* Damage: writer state (not the mutex), index and data. */
		ring_file(q, "t", 0, path, sizeof path);
		uint64_t data_off = read64(path, HDR(hdr_data_off));
		uint64_t lo = HDR(hdr_end_pos), hi = data_off + RING;
		int flips = 1 + rand_r(&s) % 8;
		for (int f = 0; f < flips; f++) {
			uint64_t at = lo + (uint64_t)rand_r(&s) % (hi - lo);
			uint8_t byte;
			if (rand_r(&s) % 2) {
				/* Aim at a header word or a counter. */
				at = rand_r(&s) % 2
				    ? lo + (uint64_t)(rand_r(&s) % 64) * 8
				    : data_off +
				        (uint64_t)(rand_r(&s) % 64) * EXT;
			}
			peek_file(path, at, &byte, 1);
			byte ^= (uint8_t)(1u << (rand_r(&s) % 8));
			if (rand_r(&s) % 4 == 0) {
				byte = (uint8_t)rand_r(&s);
			}
			poke(path, at, &byte, 1);
		}

		snprintf(a.home, sizeof a.home, "%s", shmq_home(q));
		int st = run_fuzz_child(&a);
		if (st != 0) {
			fprintf(stderr,
			    "\n    iteration %u (SHMQ_SEED=%u): %s %d", it,
			    seed, st < 0 ? "hung" : "exit/signal", st);
		}
		CU_ASSERT_EQUAL(st, 0);
		th_destroy(q);
		(void)s0;
	}
}

static CU_TestInfo tests[] = {
	{ "test_corrupt_ring_with_bad_magic_is_refused_not_rebuilt",
	    test_corrupt_ring_with_bad_magic_is_refused_not_rebuilt },
	{ "test_corrupt_ring_with_byte_swapped_magic_reports_a_version_"
	  "mismatch",
	    test_corrupt_ring_with_byte_swapped_magic_reports_a_version_mismatch },
	{ "test_corrupt_ring_of_another_layout_is_refused_with_eversion",
	    test_corrupt_ring_of_another_layout_is_refused_with_eversion },
	{ "test_corrupt_ring_with_impossible_geometry_is_refused",
	    test_corrupt_ring_with_impossible_geometry_is_refused },
	{ "test_corrupt_truncated_ring_is_refused_without_sigbus",
	    test_corrupt_truncated_ring_is_refused_without_sigbus },
	{ "test_corrupt_ring_writable_by_others_is_refused",
	    test_corrupt_ring_writable_by_others_is_refused },
	{ "test_corrupt_symlink_in_place_of_a_ring_is_never_followed",
	    test_corrupt_symlink_in_place_of_a_ring_is_never_followed },
	{ "test_corrupt_ring_of_another_instance_is_rebuilt_empty",
	    test_corrupt_ring_of_another_instance_is_rebuilt_empty },
	{ "test_corrupt_ring_of_a_previous_boot_is_rebuilt_empty",
	    test_corrupt_ring_of_a_previous_boot_is_rebuilt_empty },
	{ "test_corrupt_ring_of_a_deleted_topic_of_the_same_name_is_rebuilt_"
	  "empty",
	    test_corrupt_ring_of_a_deleted_topic_of_the_same_name_is_rebuilt_empty },
	{ "test_corrupt_record_header_after_good_records_gives_ecorrupt",
	    test_corrupt_record_header_after_good_records_gives_ecorrupt },
	{ "test_corrupt_first_record_header_gives_ecorrupt",
	    test_corrupt_first_record_header_gives_ecorrupt },
	{ "test_corrupt_misaligned_ring_positions_give_ecorrupt",
	    test_corrupt_misaligned_ring_positions_give_ecorrupt },
	{ "test_corrupt_topic_file_garbage_gives_ecorrupt",
	    test_corrupt_topic_file_garbage_gives_ecorrupt },
	{ "test_corrupt_topic_file_truncated_anywhere_gives_ecorrupt",
	    test_corrupt_topic_file_truncated_anywhere_gives_ecorrupt },
	{ "test_corrupt_instance_id_garbage_fails_attach",
	    test_corrupt_instance_id_garbage_fails_attach },
	{ "test_corrupt_group_file_is_refused_for_that_group_only",
	    test_corrupt_group_file_is_refused_for_that_group_only },
	{ "test_corrupt_truncated_group_file_is_refused",
	    test_corrupt_truncated_group_file_is_refused },
	{ "test_corrupt_random_damage_to_a_ring_never_crashes_or_hangs",
	    test_corrupt_random_damage_to_a_ring_never_crashes_or_hangs },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_corrupt = { "corrupt", tests };
