/*
 * disk.c — segment files read back by the tests (disk.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "helpers.h"
#include "internal.h"

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
disk_add(struct th_disk *d, uint64_t id, uint64_t off)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->ids = realloc(d->ids, d->cap * sizeof *d->ids);
		d->offs = realloc(d->offs, d->cap * sizeof *d->offs);
		CU_ASSERT_FATAL(d->ids != NULL && d->offs != NULL);
	}
	d->offs[d->n] = off;
	d->ids[d->n++] = id;
}

/* Walk one segment file; *next is the offset its first record must
 * have, then the offset after its last.  Returns the bytes after the
 * last valid record. */
static uint64_t
read_segment(
    struct th_disk *d, const uint8_t *buf, uint64_t len, uint64_t *next)
{
	for (uint64_t p = 0; p < len;) {
		const struct rec_hdr *h = (const struct rec_hdr *)(buf + p);
		uint32_t l = len - p >= 8 ? atomic_load(&h->rec_len) : 0;
		if (l != 0 && h->rec_type == REC_PAD && l % REC_ALIGN == 0 &&
		    l <= len - p) {
			p += l;
			continue;
		}
		uint64_t total = l & REC_LEN_MASK;
		if (l == 0 || h->rec_type != REC_DATA || len - p < sizeof *h ||
		    shmqi_align8(total) > len - p ||
		    total !=
		        sizeof *h + (uint64_t)h->rec_key_len +
		            h->rec_value_len ||
		    h->rec_offset != *next ||
		    ((l & REC_ABORTED) == 0 &&
		        shmqi_rec_crc(h, h + 1) != h->rec_crc)) {
			return len - p;
		}
		if ((l & REC_ABORTED) == 0 && h->rec_value_len == 8) {
			uint64_t id;
			memcpy(
			    &id, (const uint8_t *)(h + 1) + h->rec_key_len, 8);
			disk_add(d, id, h->rec_offset);
		}
		(*next)++;
		p += shmqi_align8(total);
	}
	return 0;
}

void
th_disk_read(shmq_t *q, const char *topic, struct th_disk *d)
{
	char dir[SHMQ_PATH_MAX], path[SHMQ_PATH_MAX + 32];
	char *names[512];
	size_t nn = 0;
	memset(d, 0, sizeof *d);
	snprintf(dir, sizeof dir, "%s/data/%s/0", shmq_home(q), topic);
	DIR *dp = opendir(dir);
	CU_ASSERT_FATAL(dp != NULL);
	struct dirent *e;
	while ((e = readdir(dp)) != NULL && nn < 512) {
		if (strlen(e->d_name) == 24 &&
		    strcmp(e->d_name + 20, ".log") == 0) {
			names[nn++] = strdup(e->d_name);
		}
	}
	closedir(dp);
	qsort(names, nn, sizeof *names, cmp_name);
	uint64_t next = UINT64_MAX;
	for (size_t k = 0; k < nn; k++) {
		uint64_t base = strtoull(names[k], NULL, 10);
		snprintf(path, sizeof path, "%s/%s", dir, names[k]);
		free(names[k]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
		uint8_t *buf = malloc((size_t)st.st_size + 1);
		CU_ASSERT_FATAL(buf != NULL);
		CU_ASSERT_FATAL(
		    pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
		close(fd);
		if (next == UINT64_MAX) {
			next = base; /* retention may have taken older ones */
		}
		d->bad = d->bad || base != next;
		uint64_t rest =
		    read_segment(d, buf, (uint64_t)st.st_size, &next);
		if (k + 1 < nn) {
			d->bad = d->bad || rest != 0;
		} else {
			d->torn = rest;
		}
		d->files++;
		d->bytes += (uint64_t)st.st_size;
		free(buf);
	}
}

void
th_disk_free(struct th_disk *d)
{
	free(d->ids);
	free(d->offs);
	memset(d, 0, sizeof *d);
}
