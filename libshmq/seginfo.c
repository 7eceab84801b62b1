/*
 * seginfo.c — what a partition holds on disk, for shmq_partition_info:
 * the number of segment files, their total size (the figure that
 * retention_bytes is compared with), and the first offset on disk.
 *
 * One walk over the segment names (shmqi_seg_list).  A partition
 * without a data directory (a volatile topic, or a persistent one that
 * nothing was written to yet) has no segments: that is not an error.
 * The walk takes no lock: retention may delete a segment meanwhile, and
 * the figures are then those of an instant during the walk.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

int
shmqi_seg_usage(
    const shmq_t *q, const char *topic, uint32_t part, struct seg_usage *u)
{
	struct seg_ent *v = NULL;
	size_t n = 0;

	u->segments = 0;
	u->bytes = 0;
	u->first = UINT64_MAX;
	int dirfd = shmqi_seg_dir_open(q, topic, part);
	if (dirfd < 0) {
		return dirfd == -ENOENT ? 0 : dirfd;
	}
	int rc = shmqi_seg_list(dirfd, &v, &n);
	close(dirfd);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		u->bytes += v[i].size;
	}
	u->segments = n;
	if (n > 0) {
		u->first = v[0].base; /* sorted by first offset */
	}
	free(v);
	return 0;
}
