/*
 * disk.h — a partition's segment files read straight from disk by the
 * tests, record by record (length, type, contiguous offsets, CRC-32C),
 * with no library reader in between: what is really on disk.
 */
#ifndef SHMQ_TEST_DISK_H
#define SHMQ_TEST_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmq.h"

struct th_disk {
	uint64_t *ids; /* 8-byte values of live records, in file order */
	uint64_t *offs; /* and their offsets */
	size_t n, cap;
	size_t files;
	uint64_t bytes;
	bool bad; /* a byte before the last file's end that is not part of
	           * a valid record, or a gap between files */
	uint64_t torn; /* bytes of the last file after its last valid
	                * record (a write cut by kill -9: never acked) */
};

/* Partition 0 of `topic`. */
void th_disk_read(shmq_t *q, const char *topic, struct th_disk *d);
void th_disk_free(struct th_disk *d);

#endif
