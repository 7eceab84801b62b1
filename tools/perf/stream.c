/*
 * stream.c — stream mode: N producer processes into a topic, M consumer
 * processes of group "perf" out of it, all started together.
 *
 * Throughput is end to end: records consumed over the time from the
 * start barrier to the last record consumed (the producers' finish when
 * there are no consumers).  Latency is per record, from the producer's
 * timestamp to the consumer's clock read after the record arrived.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "perf.h"

static int
stream_spawn(const struct perf_opts *o, struct perf_shared *sh,
    const struct perf_target *t, unsigned *spawned)
{
	unsigned i;

	/* Producers take the first CPUs, consumers the next, so one
	 * producer and one consumer never share a core on 2+ CPUs. */
	for (i = 0; i < o->producers; i++, (*spawned)++) {
		if (perf_spawn(o, sh, i, i, perf_stream_producer, t) != 0) {
			return -1;
		}
	}
	for (i = 0; i < o->consumers; i++, (*spawned)++) {
		if (perf_spawn(o, sh, o->producers + i, i,
		        perf_stream_consumer, t) != 0) {
			return -1;
		}
	}
	return 0;
}

static int
stream_collect(const struct perf_opts *o, const struct perf_shared *sh,
    struct perf_result *res)
{
	uint64_t produced = 0;
	uint64_t t_end = 0;
	uint64_t t_start = atomic_load(&sh->sh_t_start);
	unsigned i;

	hist_init(&res->lat);
	hist_init(&res->ack);
	for (i = 0; i < o->producers; i++) {
		produced += sh->sh_prod[i].pr_records;
		hist_merge(&res->ack, &sh->sh_prod[i].pr_ack);
		if (sh->sh_prod[i].pr_t_end > t_end) {
			t_end = sh->sh_prod[i].pr_t_end;
		}
	}
	res->records = produced;
	if (o->consumers > 0) {
		res->records = 0;
		t_end = 0;
	}
	for (i = 0; i < o->consumers; i++) {
		const struct perf_cons_result *cr = &sh->sh_cons[i];

		res->records += cr->cr_records;
		hist_merge(&res->lat, &cr->cr_lat);
		if (cr->cr_t_last > t_end) {
			t_end = cr->cr_t_last;
		}
	}
	if (res->records != produced) {
		perf_err("VERIFY FAILED: %" PRIu64
		         " records produced, %" PRIu64 " consumed",
		    produced, res->records);
		return -1;
	}
	res->seconds = t_end > t_start ? (double)(t_end - t_start) / 1e9 : 0.0;
	return 0;
}

int
perf_stream(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res)
{
	struct perf_target t;
	struct perf_shared *sh;
	unsigned spawned = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	t.home = perf_instance_home(in);
	if (o->topic != NULL) {
		snprintf(t.topic, sizeof(t.topic), "%s", o->topic);
	} else {
		snprintf(t.topic, sizeof(t.topic), "perf-%ld", (long)getpid());
	}
	if (perf_instance_topic(in, t.topic, o, &t, &t.partitions, NULL) !=
	    0) {
		return -1;
	}
	sh = perf_shared_map();
	if (sh == NULL) {
		return -1;
	}
	perf_barrier_init(&sh->sh_barrier, o->producers + o->consumers);
	perf_barrier_init(&sh->sh_group, o->consumers);
	rc = stream_spawn(o, sh, &t, &spawned);
	if (rc != 0) {
		perf_abort(sh);
	}
	if (perf_wait_all(sh, spawned) != 0) {
		rc = -1;
	}
	if (rc == 0) {
		rc = stream_collect(o, sh, res);
	}
	perf_shared_unmap(sh);
	return rc;
}
