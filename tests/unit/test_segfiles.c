/*
 * test_segfiles.c — files of a persistent topic that are not what their
 * names say.
 *
 * Which files of a partition's data directory are segments
 * (shmqi_seg_list): only regular files named <20 digits>.log.  A
 * directory, fifo or symlink under such a name was not made by the
 * library; taking it for a segment would make recovery open it as the
 * live segment and reads of the offsets after its name fail.  With such
 * names in place, listing, partition info, recovery and reading must be
 * as without them.
 *
 * A group file (shm dir, GROUP@TOPIC.group) that the persister cannot
 * map: its offsets cannot be saved, which the persister's log says once
 * for the group, not at every scan; once the file is good again they
 * are saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define SEG (64u * 1024u)
#define VAL 120u /* bytes per record: about 500 per segment */

static void
seg_name(uint64_t base, char *name, size_t len)
{
	snprintf(name, len, "%020llu.log", (unsigned long long)base);
}

/* Records [from, to), each VAL bytes starting with its id, through the
 * persister ps (polled here often enough that the ring never fills). */
static void
produce(shmq_t *q, shmq_persister_t *ps, uint64_t from, uint64_t to)
{
	uint8_t buf[VAL];
	shmq_producer_t *p = th_producer(q, "t");
	memset(buf, 0xab, sizeof buf);
	for (uint64_t id = from; id < to; id++) {
		shmq_msg_t m = {
			.value = buf, .value_len = VAL, .partition = 0
		};
		memcpy(buf, &id, 8);
		TH_OK(shmq_send(p, &m));
		if (id % 32 == 0) {
			(void)shmq_persister_poll(ps, 0);
		}
	}
	while (shmq_persister_poll(ps, 0) > 0) {
	}
	shmq_producer_close(p);
}

/* Every record of [from, to) reads back, in order, with its id. */
static void
reads_back(shmq_t *q, uint64_t from, uint64_t to)
{
	shmq_consumer_t *c = th_reader(q, "t", 0);
	uint8_t buf[VAL];
	TH_OK(shmq_seek(c, 0, from));
	for (uint64_t want = from; want < to; want++) {
		shmq_record_t r;
		uint64_t id = UINT64_MAX;
		int rc = shmq_recv(c, buf, sizeof buf, &r, 2000);
		if (rc == 0) {
			memcpy(&id, buf, 8);
		}
		if (rc != 0 || r.offset != want || id != want) {
			fprintf(stderr,
			    "offset %llu: rc %d (%s), got %llu/%llu\n",
			    (unsigned long long)want, rc, shmq_strerror(rc),
			    (unsigned long long)r.offset,
			    (unsigned long long)id);
			CU_FAIL("a record did not read back");
			break;
		}
	}
	shmq_consumer_close(c);
}

/* In a plain directory: a regular file, a directory, a fifo and a
 * symlink, all named like segments; only the regular file is listed. */
static void
test_segfiles_only_regular_files_are_listed(void)
{
	char dir[] = "/tmp/shmq-segfiles.XXXXXX", name[32];
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CU_ASSERT_FATAL(dirfd >= 0);
	seg_name(0, name, sizeof name);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CU_ASSERT_FATAL(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	seg_name(100, name, sizeof name);
	TH_OK(mkdirat(dirfd, name, 0700));
	seg_name(200, name, sizeof name);
	TH_OK(mkfifoat(dirfd, name, 0600));
	seg_name(300, name, sizeof name);
	TH_OK(symlinkat("00000000000000000000.log", dirfd, name));

	struct seg_ent *v = NULL;
	size_t n = 0;
	TH_OK(shmqi_seg_list(dirfd, &v, &n));
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT(n < 1 || (v[0].base == 0 && v[0].size == 1));
	free(v);

	const uint64_t bases[] = { 0, 100, 200, 300 };
	for (size_t i = 0; i < 4; i++) {
		seg_name(bases[i], name, sizeof name);
		CU_ASSERT(
		    unlinkat(dirfd, name, i == 1 ? AT_REMOVEDIR : 0) == 0);
	}
	close(dirfd);
	CU_ASSERT(rmdir(dir) == 0);
}

/* A persistent topic with several segments, and directories named like
 * segments: one between the first two (it would shadow the first one's
 * later offsets) and one past the end (it would be taken for the live
 * segment).  Recovery, appending, partition info and reading from disk
 * are unaffected, and the directories are left alone. */
static void
test_segfiles_directories_named_like_segments_change_nothing(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	const uint64_t n1 = 3000, n2 = 4000;
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	c.segment_bytes = SEG;
	TH_OK(shmq_topic_create(q, "t", &c));
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	produce(q, ps, 0, n1);
	shmq_persister_close(ps);

	int dirfd = shmqi_seg_dir_open(q, "t", 0);
	CU_ASSERT_FATAL(dirfd >= 0);
	struct seg_ent *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	TH_OK(shmqi_seg_list(dirfd, &before, &nb));
	CU_ASSERT_FATAL(nb >= 3);
	char mid[32], past[32];
	seg_name(before[0].base + 10, mid, sizeof mid);
	seg_name(n1 + 1000000, past, sizeof past);
	TH_OK(mkdirat(dirfd, mid, 0700));
	TH_OK(mkdirat(dirfd, past, 0700));

	/* Listing and partition info. */
	TH_OK(shmqi_seg_list(dirfd, &after, &na));
	CU_ASSERT_EQUAL(na, nb);
	for (size_t i = 0; i < na && i < nb; i++) {
		CU_ASSERT_EQUAL(after[i].base, before[i].base);
	}
	free(after);
	uint64_t end = 0;
	TH_OK(shmqi_seg_end_offset(q, "t", 0, &end));
	CU_ASSERT_EQUAL(end, n1);
	shmq_partition_info_t pi;
	TH_OK(shmq_partition_info(q, "t", 0, &pi));
	CU_ASSERT_EQUAL(pi.segments, nb);
	CU_ASSERT_EQUAL(pi.log_start, 0);

	/* Recovery (a new persister opens the last segment), then more
	 * records appended after it. */
	TH_OK(shmq_persister_open(q, NULL, NULL, NULL, &ps));
	produce(q, ps, n1, n2);
	shmq_persister_close(ps);
	TH_OK(shmqi_seg_end_offset(q, "t", 0, &end));
	CU_ASSERT_EQUAL(end, n2);

	/* Everything reads back: the early records only from disk (the
	 * 64 KiB ring holds the last few hundred). */
	reads_back(q, 0, n2);
	reads_back(q, 15, 40); /* inside the first segment, past `mid` */

	struct stat st;
	CU_ASSERT(fstatat(dirfd, mid, &st, 0) == 0 && S_ISDIR(st.st_mode));
	CU_ASSERT(fstatat(dirfd, past, &st, 0) == 0 && S_ISDIR(st.st_mode));
	CU_ASSERT(unlinkat(dirfd, mid, AT_REMOVEDIR) == 0);
	CU_ASSERT(unlinkat(dirfd, past, AT_REMOVEDIR) == 0);
	free(before);
	close(dirfd);
	th_destroy(q);
}

struct glog {
	int warn; /* WARN lines naming group g on t */
	int info; /* INFO lines naming it */
	char text[2048]; /* every line, for a failure */
	size_t len;
};

static void
glog_hook(int level, const char *msg, void *arg)
{
	struct glog *l = arg;
	if (strstr(msg, "group g on t:") != NULL) {
		l->warn += level == SHMQ_LOG_WARN;
		l->info += level == SHMQ_LOG_INFO;
	}
	if (l->len < sizeof l->text) {
		int w = snprintf(l->text + l->len, sizeof l->text - l->len,
		    "%d %s\n", level, msg);
		l->len += w > 0 ? (size_t)w : 0;
	}
}

static void
test_segfiles_unmappable_group_file_is_logged_once(void)
{
	shmq_t *q = th_attach();
	shmq_topic_config_t c;
	shmq_persister_t *ps = NULL;
	struct glog l = { 0 };
	char path[SHMQ_PATH_MAX], name[16];
	th_persistent_config(&c, SHMQ_FSYNC_NEVER);
	TH_OK(shmq_topic_create(q, "t", &c));
	/* All zeroes: no group magic, so it cannot be mapped. */
	TH_OK(shmqi_group_path(q, "g", "t", path, sizeof path));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	TH_OK(ftruncate(fd, 4096));
	close(fd);

	TH_OK(shmq_persister_open(q, glog_hook, &l, NULL, &ps));
	/* Each new topic makes the next poll scan again (the topics
	 * directory changed). */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "x%d", i);
		th_topic(q, name, 1, 64 * 1024, SHMQ_OVERFLOW_BLOCK);
		(void)shmq_persister_poll(ps, 0);
	}
	CU_ASSERT_EQUAL(l.warn, 1);
	CU_ASSERT(strstr(l.text, "cannot open the group file") != NULL);

	/* A good group file of the same name: its offsets are saved (at
	 * the latest when the persister closes), and the log says so. */
	CU_ASSERT_FATAL(unlink(path) == 0);
	shmq_producer_t *p = th_producer(q, "t");
	uint64_t v = 7;
	shmq_msg_t m = { .value = &v, .value_len = 8, .partition = 0 };
	TH_OK(shmq_send(p, &m));
	shmq_producer_close(p);
	shmq_consumer_options_t co;
	shmq_consumer_t *cs = NULL;
	shmq_record_t r;
	char buf[16];
	shmq_consumer_options_init(&co);
	co.group = "g";
	TH_OK(shmq_consumer_open(q, "t", &co, &cs));
	TH_OK(shmq_recv(cs, buf, sizeof buf, &r, 2000));
	TH_OK(shmq_consumer_commit(cs));
	shmq_consumer_close(cs);
	th_topic(q, "y", 1, 64 * 1024, SHMQ_OVERFLOW_BLOCK);
	(void)shmq_persister_poll(ps, 0);
	shmq_persister_close(ps);
	CU_ASSERT_EQUAL(l.warn, 1);
	CU_ASSERT_EQUAL(l.info, 1);
	snprintf(
	    path, sizeof path, "%s/data/t/groups/g.offsets", shmq_home(q));
	CU_ASSERT(access(path, F_OK) == 0);
	if (l.warn != 1 || l.info != 1) {
		fprintf(stderr, "\n    the persister's log:\n%s", l.text);
	}
	th_destroy(q);
}

static CU_TestInfo tests[] = {
	{ "test_segfiles_only_regular_files_are_listed",
	    test_segfiles_only_regular_files_are_listed },
	{ "test_segfiles_directories_named_like_segments_change_nothing",
	    test_segfiles_directories_named_like_segments_change_nothing },
	{ "test_segfiles_unmappable_group_file_is_logged_once",
	    test_segfiles_unmappable_group_file_is_logged_once },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_segfiles = { "segfiles", tests };
