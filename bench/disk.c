/*
 * disk.c — the machine's durable-write baselines for bench/durable.sh,
 * measured in a given directory (the shmq instance's home, so that the
 * disk and filesystem are the ones the persister writes to):
 *
 *   lat  a 4 KiB pwrite + fdatasync, one after the other at growing
 *        offsets: the time of each pair (p50, p99, mean), as a DURABLE
 *        send of one small record needs at least one of them;
 *   bw   sequential 1 MiB pwrites with an fdatasync after each: MB/s
 *        (10^6 bytes) over the whole run;
 *   read the bw test's append file read back with 1 MiB preads while it
 *        is in the page cache (one untimed pass first): MB/s, the
 *        floor for reading a backlog of segments.
 *
 * Each test runs on three kinds of file:
 *   append     a new, empty file that grows with every write, as shmq's
 *              segments do (no preallocation): each fdatasync also
 *              commits the new file size and block allocation;
 *   fallocate  fallocate()d to its full size first (unwritten extents):
 *              the allocation is done, the extent conversion is not;
 *   overwrite  written in full and flushed first, then overwritten: the
 *              data alone, the floor of what the device can do.
 * Page-cache I/O (no O_DIRECT), as the persister's.  The files are
 * removed at the end (and on a failure).
 *
 * usage: disk DIR [LAT_COUNT [BW_MIB]]   (defaults 2000 and 256)
 * prints one JSON object per line:
 *   {"test":"lat","file":"append","n":2000,"p50_us":..,"p99_us":..,
 *    "mean_us":..}
 *   {"test":"bw","file":"append","mib":256,"mb_per_s":..}
 *   {"test":"read","file":"append","mib":256,"mb_per_s":..}
 * Exit status 0, 1 on a failure (said on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SMALL 4096u
#define CHUNK (1u << 20)
/* Not counted: the first writes pay for the first allocations. */
#define LAT_WARMUP 16u

enum file_kind { FILE_APPEND, FILE_FALLOCATE, FILE_OVERWRITE };

static const char *const kind_names[] = { "append", "fallocate", "overwrite" };

static char path[PATH_MAX];

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
fail(const char *what)
{
	fprintf(stderr, "disk: %s %s: %s\n", what, path, strerror(errno));
	if (path[0] != '\0') {
		unlink(path);
	}
	return -1;
}

static int
write_all(int fd, const unsigned char *buf, size_t len, uint64_t at)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)at);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			if (n == 0) {
				errno = EIO;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		at += (uint64_t)n;
	}
	return 0;
}

/* A fresh file of `size` bytes prepared as `kind` says; the fd, or -1. */
static int
file_open(const char *dir, enum file_kind kind, uint64_t size,
    const unsigned char *chunk)
{
	int fd;

	snprintf(path, sizeof(path), "%s/disk-bench.%ld.%s", dir,
	    (long)getpid(), kind_names[kind]);
	unlink(path);
	fd = open(
	    path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		return fail("open");
	}
	if (kind == FILE_FALLOCATE && fallocate(fd, 0, 0, (off_t)size) != 0) {
		close(fd);
		return fail("fallocate");
	}
	for (uint64_t at = 0; kind == FILE_OVERWRITE && at < size;
	     at += CHUNK) {
		uint64_t n = size - at < CHUNK ? size - at : CHUNK;

		if (write_all(fd, chunk, (size_t)n, at) != 0) {
			close(fd);
			return fail("write");
		}
	}
	/* The preparation must be on disk before the clock starts. */
	if (fsync(fd) != 0) {
		close(fd);
		return fail("fsync");
	}
	return fd;
}

static int
file_close(int fd)
{
	close(fd);
	if (unlink(path) != 0) {
		return fail("unlink");
	}
	path[0] = '\0';
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p% at or below it. */
static double
pct_us(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);

	rank = rank == 0 ? 1 : rank > n ? n : rank;
	return (double)v[rank - 1] / 1000.0;
}

static int
test_lat(const char *dir, enum file_kind kind, unsigned count,
    const unsigned char *buf)
{
	unsigned total = count + LAT_WARMUP;
	uint64_t *lat = malloc(sizeof(*lat) * count);
	uint64_t sum = 0;
	int fd;

	if (lat == NULL) {
		return fail("malloc");
	}
	fd = file_open(dir, kind, (uint64_t)total * SMALL, buf);
	if (fd < 0) {
		free(lat);
		return -1;
	}
	for (unsigned i = 0; i < total; i++) {
		uint64_t t0 = now_ns();

		if (write_all(fd, buf, SMALL, (uint64_t)i * SMALL) != 0 ||
		    fdatasync(fd) != 0) {
			free(lat);
			close(fd);
			return fail("write+fdatasync");
		}
		if (i >= LAT_WARMUP) {
			lat[i - LAT_WARMUP] = now_ns() - t0;
			sum += lat[i - LAT_WARMUP];
		}
	}
	if (file_close(fd) != 0) {
		free(lat);
		return -1;
	}
	qsort(lat, count, sizeof(*lat), cmp_u64);
	printf("{\"test\":\"lat\",\"file\":\"%s\",\"n\":%u,\"p50_us\":%.2f,"
	       "\"p99_us\":%.2f,\"mean_us\":%.2f}\n",
	    kind_names[kind], count, pct_us(lat, count, 50.0),
	    pct_us(lat, count, 99.0), (double)sum / count / 1000.0);
	fflush(stdout);
	free(lat);
	return 0;
}

/* Read the file back twice with pread; MB/s of the second pass. */
static int
read_back(int fd, uint64_t size, double *mb_per_s)
{
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	uint64_t t0 = 0;

	if (buf == NULL) {
		return -1;
	}
	for (int pass = 0; pass < 2; pass++) {
		t0 = now_ns();
		for (uint64_t at = 0; at < size;) {
			ssize_t n = pread(fd, buf, CHUNK, (off_t)at);

			if (n < 0 && errno == EINTR) {
				continue;
			}
			if (n <= 0) {
				errno = n == 0 ? EIO : errno;
				free(buf);
				return -1;
			}
			at += (uint64_t)n;
		}
	}
	free(buf);
	*mb_per_s = (double)size / ((double)(now_ns() - t0) / 1e9) / 1e6;
	return 0;
}

static int
test_bw(const char *dir, enum file_kind kind, unsigned mib,
    const unsigned char *chunk)
{
	double read_mb = 0.0;
	uint64_t size = (uint64_t)mib * CHUNK;
	uint64_t t0;
	double s;
	int fd;

	fd = file_open(dir, kind, size, chunk);
	if (fd < 0) {
		return -1;
	}
	t0 = now_ns();
	for (uint64_t at = 0; at < size; at += CHUNK) {
		if (write_all(fd, chunk, CHUNK, at) != 0 ||
		    fdatasync(fd) != 0) {
			close(fd);
			return fail("write+fdatasync");
		}
	}
	s = (double)(now_ns() - t0) / 1e9;
	if (kind == FILE_APPEND && read_back(fd, size, &read_mb) != 0) {
		close(fd);
		return fail("pread");
	}
	if (file_close(fd) != 0) {
		return -1;
	}
	printf("{\"test\":\"bw\",\"file\":\"%s\",\"mib\":%u,"
	       "\"mb_per_s\":%.1f}\n",
	    kind_names[kind], mib, (double)size / s / 1e6);
	if (kind == FILE_APPEND) {
		printf("{\"test\":\"read\",\"file\":\"%s\",\"mib\":%u,"
		       "\"mb_per_s\":%.1f}\n",
		    kind_names[kind], mib, read_mb);
	}
	fflush(stdout);
	return 0;
}

static int
parse_count(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end != '\0' || *s == '-' || errno != 0 || v == 0 ||
	    v > max) {
		fprintf(stderr, "disk: '%s' is not a count (1..%u)\n", s, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned count = 2000;
	unsigned mib = 256;
	unsigned char *chunk;
	int rc = 0;

	if (argc < 2 || argc > 4 ||
	    (argc > 2 && parse_count(argv[2], 1000000, &count) != 0) ||
	    (argc > 3 && parse_count(argv[3], 65536, &mib) != 0)) {
		fprintf(stderr, "usage: disk DIR [LAT_COUNT [BW_MIB]]\n");
		return 2;
	}
	chunk = aligned_alloc(4096, CHUNK);
	if (chunk == NULL) {
		fail("aligned_alloc");
		return 1;
	}
	/* Not zeroes, in case something on the way treats them
	 * specially. */
	for (size_t i = 0; i < CHUNK; i++) {
		chunk[i] = (unsigned char)(i * 31u + 7u);
	}
	for (int k = FILE_APPEND; k <= FILE_OVERWRITE && rc == 0; k++) {
		rc = test_lat(argv[1], (enum file_kind)k, count, chunk);
	}
	for (int k = FILE_APPEND; k <= FILE_OVERWRITE && rc == 0; k++) {
		rc = test_bw(argv[1], (enum file_kind)k, mib, chunk);
	}
	free(chunk);
	return rc == 0 ? 0 : 1;
}
