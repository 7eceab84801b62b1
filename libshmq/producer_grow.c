/*
 * producer_grow.c — an open producer takes in partitions added to its
 * topic (shmq_topic_add_partitions) without being reopened.
 *
 * The topic's partition count is announced in every ring's header
 * (hdr_partitions): rings made after the change carry it from their
 * creation, and the admin raises it in the rings that existed, after the
 * new metadata file is durable.  A send compares ring 0's word with its
 * own count (shmqi_producer_grown, one relaxed load); only when it is
 * larger does it come here, off the fast path, to read the metadata and
 * open the new rings.  Keyed records hash over the new count from the
 * next pick on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
shmqi_producer_grow(
    shmq_producer_t *p, int (*join)(shmq_producer_t *p, struct ring *r))
{
	struct topic_meta m;
	/* Acquire pairs with the release store in announce_ring
	 * (topic.c), made after the new metadata was renamed into place:
	 * the read below finds the grown file. */
	uint32_t want = atomic_load_explicit(
	    &p->rings[0].hdr->hdr_partitions, memory_order_acquire);
	uint32_t old = p->nrings;
	if (want <= old) {
		return 0;
	}
	int rc = shmqi_topic_load(p->q, p->topic, &m);
	if (rc != 0 || m.id != p->meta.id) {
		/* Deleted (or re-created) meanwhile: the rings say so at
		 * the reservation; go on with what we have. */
		return rc == -ENOENT || rc == 0 ? 0 : rc;
	}
	if (m.partitions <= old) {
		return 0; /* not announced by this file: nothing to take */
	}
	/* The fork handler walks p->rings[0, nrings): the array must not
	 * move under a fork from another thread. */
	shmqi_fork_guard_enter();
	struct ring *rings = realloc(p->rings, m.partitions * sizeof *rings);
	if (rings == NULL) {
		shmqi_fork_guard_exit();
		return -ENOMEM;
	}
	/* Pointers into the array (struct ring *r = &p->rings[part]) are
	 * kept within one send, and the pick that brings us here comes
	 * before any of them is taken. */
	p->rings = rings;
	uint32_t n = old;
	for (; n < m.partitions; n++) {
		rc = shmqi_ring_open(p->q, p->topic, &m, n, &rings[n]);
		if (rc != 0) {
			break;
		}
		if ((rc = join(p, &rings[n])) != 0) {
			n++; /* opened: close it below */
			break;
		}
	}
	if (rc != 0) {
		/* All or nothing: keyed records must not hash over a count
		 * some of whose partitions we cannot write. */
		for (uint32_t i = old; i < n; i++) {
			shmqi_ring_close(&rings[i]);
		}
	} else {
		p->nrings = m.partitions;
		p->meta.partitions = m.partitions;
	}
	shmqi_fork_guard_exit();
	return rc;
}
