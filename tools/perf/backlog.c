/*
 * backlog.c — backlog mode: how fast consumers read a persistent topic's
 * log back, from its segment files.
 *
 * First the producers fill the topic: stream mode's producers, with no
 * consumer, so that no group holds ring space.  A persistent topic
 * reuses ring space once the persister has written it, so with a small
 * --ring-size almost all of the backlog is then only in the segments.
 * The parent waits until the persister has made every record durable.
 * Then the consumers, standalone (no group), each read their partitions
 * (idx, idx + consumers, ...) from where the fill began to where it
 * ended, twice: once untimed, which also warms the page cache, and once
 * timed.  Both reads check every record as stream mode does: within a
 * partition each producer's sequences arrive as 0, 1, 2, ..., and each
 * read returns as many records as were produced.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf.h"

/* How often the parent looks at the durable watermarks. */
#define PERF_DURABLE_POLL_NS 1000000L
/* Bytes a record takes in the log: header, value, 8-byte alignment. */
#define PERF_REC_ALIGN 8

struct bl_reader {
	const struct perf_opts *o;
	struct perf_shared *sh;
	shmq_consumer_t *c;
	uint32_t partitions;
	uint32_t *parts; /* this consumer's */
	size_t nparts;
	uint64_t *expect; /* [producer * partitions + partition] */
	unsigned char *buf;
};

static int
bl_recv(struct bl_reader *rd, shmq_record_t *r)
{
	if (rd->o->zero_copy) {
		return shmq_peek(rd->c, r, PERF_POLL_MS);
	}
	return shmq_recv(rd->c, rd->buf, rd->o->record_size, r, PERF_POLL_MS);
}

/* Read every owned partition from sh_from to sh_to once.  *records
 * receives the count, *t_last the time the last one arrived. */
static int
bl_pass(struct bl_reader *rd, uint64_t *records, uint64_t *t_last)
{
	const struct perf_shared *sh = rd->sh;
	size_t open = 0;
	uint64_t n = 0;
	uint64_t idle_since = 0;
	shmq_record_t r;
	int rc;

	memset(rd->expect, 0,
	    sizeof(*rd->expect) * rd->o->producers * rd->partitions);
	for (size_t i = 0; i < rd->nparts; i++) {
		uint32_t p = rd->parts[i];

		if (sh->sh_to[p] == sh->sh_from[p]) {
			continue;
		}
		open++;
		rc = shmq_seek(rd->c, p, sh->sh_from[p]);
		if (rc != 0) {
			return perf_fail("shmq_seek", rc);
		}
	}
	while (open > 0) {
		rc = bl_recv(rd, &r);
		if (rc == -EAGAIN) {
			uint64_t now = perf_now_ns();

			if (perf_aborted(&sh->sh_barrier)) {
				return -1;
			}
			if (idle_since == 0) {
				idle_since = now;
			} else if (now - idle_since >
			    PERF_LOST_MS * UINT64_C(1000000)) {
				perf_err("VERIFY FAILED: %" PRIu64
				         " records read, then none for %u ms "
				         "with %zu partitions unfinished",
				    n, PERF_LOST_MS, open);
				return -1;
			}
			continue;
		}
		if (rc != 0) {
			return perf_fail(
			    rd->o->zero_copy ? "shmq_peek" : "shmq_recv", rc);
		}
		idle_since = 0;
		rc = perf_check_record(
		    rd->o, rd->sh, rd->partitions, rd->expect, &r);
		if (rc == 0 && r.offset >= sh->sh_to[r.partition]) {
			perf_err("VERIFY FAILED: partition %u offset %" PRIu64
			         ": beyond the backlog's end %" PRIu64,
			    r.partition, r.offset, sh->sh_to[r.partition]);
			rc = -1;
		}
		if (rd->o->zero_copy) {
			int rel = shmq_release(rd->c, &r);

			if (rel != 0 && rc == 0) {
				rc = perf_fail("shmq_release", rel);
			}
		}
		if (rc != 0) {
			return -1;
		}
		n++;
		if (r.offset + 1 == sh->sh_to[r.partition]) {
			open--;
		}
	}
	*records = n;
	*t_last = perf_now_ns();
	return 0;
}

static int
bl_open(
    struct bl_reader *rd, shmq_t *q, const struct perf_target *t, unsigned idx)
{
	shmq_consumer_options_t co;
	int rc;

	rd->expect = calloc(
	    (size_t)rd->o->producers * t->partitions, sizeof(*rd->expect));
	rd->parts = calloc(t->partitions, sizeof(*rd->parts));
	rd->buf = malloc(rd->o->record_size);
	if (rd->expect == NULL || rd->parts == NULL || rd->buf == NULL) {
		return perf_fail("consumer buffers", -ENOMEM);
	}
	for (uint32_t p = idx; p < t->partitions; p += rd->o->consumers) {
		rd->parts[rd->nparts++] = p;
	}
	shmq_consumer_options_init(&co);
	co.idle = rd->o->idle;
	co.spin_us = rd->o->spin_us;
	/* An offset that is gone (retention) must fail the run, not be
	 * skipped. */
	co.reset = SHMQ_RESET_ERROR;
	rc = shmq_consumer_open(q, t->topic, &co, &rd->c);
	if (rc != 0) {
		return perf_fail("shmq_consumer_open", rc);
	}
	if (rd->nparts > 0) {
		rc = shmq_assign(rd->c, rd->parts, rd->nparts);
		if (rc != 0) {
			return perf_fail("shmq_assign", rc);
		}
	}
	return 0;
}

int
perf_backlog_consumer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t)
{
	struct perf_cons_result *res = &sh->sh_cons[idx];
	struct bl_reader rd = {
		.o = o, .sh = sh, .partitions = t->partitions
	};
	uint64_t zero = 0;
	shmq_t *q = NULL;
	int rc;

	rc = perf_attach(t, &q);
	if (rc == 0) {
		rc = bl_open(&rd, q, t, idx);
	}
	if (rc != 0 || perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
		goto out;
	}
	atomic_compare_exchange_strong(&sh->sh_t_start, &zero, perf_now_ns());
	rc = bl_pass(&rd, &res->cr_warm_records, &res->cr_warm_t_last);
	if (rc != 0 || perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
		goto out;
	}
	zero = 0;
	atomic_compare_exchange_strong(&sh->sh_t_timed, &zero, perf_now_ns());
	rc = bl_pass(&rd, &res->cr_records, &res->cr_t_last);
out:
	if (rc != 0) {
		perf_abort(sh);
	}
	shmq_consumer_close(rd.c);
	shmq_detach(q);
	free(rd.expect);
	free(rd.parts);
	free(rd.buf);
	return rc;
}

/* Where each partition ends now (sh_to), or begins (sh_from). */
static int
bl_ends(shmq_t *q, const struct perf_target *t, uint64_t *ends)
{
	shmq_partition_info_t info;
	int rc;

	for (uint32_t p = 0; p < t->partitions; p++) {
		rc = shmq_partition_info(q, t->topic, p, &info);
		if (rc != 0) {
			return perf_fail("shmq_partition_info", rc);
		}
		ends[p] = info.end;
	}
	return 0;
}

/*
 * Wait until the persister has made everything up to sh_to durable, and
 * measure what is on disk only.  A partition whose durable watermark
 * does not move for PERF_LOST_MS fails the run, as does a persister
 * error.
 */
static int
bl_wait_durable(shmq_t *q, const struct perf_target *t,
    const struct perf_shared *sh, struct perf_result *res)
{
	const struct timespec pause = { 0, PERF_DURABLE_POLL_NS };
	shmq_partition_info_t info;
	uint64_t moved_at = perf_now_ns();
	uint64_t behind_was = UINT64_MAX;
	uint64_t behind;
	int rc;

	for (;;) {
		behind = 0;
		res->ring_bytes = 0;
		for (uint32_t p = 0; p < t->partitions; p++) {
			rc = shmq_partition_info(q, t->topic, p, &info);
			if (rc != 0) {
				return perf_fail("shmq_partition_info", rc);
			}
			if (info.persist_err != 0) {
				perf_err(
				    "partition %u: the persister failed", p);
				return perf_fail(
				    "persister", info.persist_err);
			}
			if (info.durable < sh->sh_to[p]) {
				behind += sh->sh_to[p] - info.durable;
			}
			res->ring_bytes += info.ring_used;
		}
		if (behind == 0) {
			return 0;
		}
		if (behind != behind_was) {
			behind_was = behind;
			moved_at = perf_now_ns();
		} else if (perf_now_ns() - moved_at >
		    PERF_LOST_MS * UINT64_C(1000000)) {
			perf_err("%" PRIu64 " records not durable after %u ms",
			    behind, PERF_LOST_MS);
			return -1;
		}
		if (perf_signalled) {
			return -1;
		}
		nanosleep(&pause, NULL);
	}
}

/* Fork n workers running fn; reap them.  0 when all succeeded. */
static int
bl_run(const struct perf_opts *o, struct perf_shared *sh, unsigned n,
    perf_child_fn fn, const struct perf_target *t)
{
	unsigned spawned = 0;
	int rc = 0;

	atomic_store(&sh->sh_t_start, 0);
	perf_barrier_init(&sh->sh_barrier, n);
	for (; spawned < n && rc == 0; spawned++) {
		rc = perf_spawn(o, sh, spawned, spawned, fn, t);
	}
	if (rc != 0) {
		spawned--;
		perf_abort(sh);
	}
	if (perf_wait_all(sh, spawned) != 0) {
		rc = -1;
	}
	return rc;
}

static int
bl_collect(const struct perf_opts *o, const struct perf_shared *sh,
    struct perf_result *res)
{
	uint64_t warm = 0;
	uint64_t warm_end = 0;
	uint64_t t_end = 0;
	uint64_t rec =
	    (SHMQ_RECORD_OVERHEAD + o->record_size + PERF_REC_ALIGN - 1) &
	    ~(uint64_t)(PERF_REC_ALIGN - 1);

	res->records = 0;
	for (unsigned i = 0; i < o->consumers; i++) {
		const struct perf_cons_result *cr = &sh->sh_cons[i];

		res->records += cr->cr_records;
		warm += cr->cr_warm_records;
		t_end = cr->cr_t_last > t_end ? cr->cr_t_last : t_end;
		warm_end = cr->cr_warm_t_last > warm_end ? cr->cr_warm_t_last
		                                         : warm_end;
	}
	if (res->records != res->fill_records || warm != res->fill_records) {
		perf_err("VERIFY FAILED: %" PRIu64
		         " records produced, %" PRIu64
		         " read by the first read, %" PRIu64 " by the second",
		    res->fill_records, warm, res->records);
		return -1;
	}
	res->backlog_bytes = res->fill_records * rec;
	res->seconds = (double)(t_end - atomic_load(&sh->sh_t_timed)) / 1e9;
	res->warm_seconds =
	    (double)(warm_end - atomic_load(&sh->sh_t_start)) / 1e9;
	return 0;
}

int
perf_backlog(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res)
{
	struct perf_opts fill = *o;
	struct perf_target t;
	struct perf_shared *sh;
	shmq_t *q = perf_instance_q(in);
	uint64_t t_fill_end = 0;
	int durability = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	t.home = perf_instance_home(in);
	if (o->topic != NULL) {
		snprintf(t.topic, sizeof(t.topic), "%s", o->topic);
	} else {
		snprintf(t.topic, sizeof(t.topic), "perf-%ld", (long)getpid());
	}
	if (perf_instance_topic(
	        in, t.topic, o, &t, &t.partitions, &durability) != 0) {
		return -1;
	}
	if (durability != SHMQ_DURABILITY_PERSISTENT) {
		perf_err("--mode backlog: topic \"%s\" is not persistent "
		         "(--durability persistent)",
		    t.topic);
		return -1;
	}
	sh = perf_shared_map();
	if (sh == NULL) {
		return -1;
	}
	/* The fill: producers alone. */
	fill.consumers = 0;
	rc = bl_ends(q, &t, sh->sh_from);
	if (rc == 0) {
		rc = bl_run(&fill, sh, o->producers, perf_stream_producer, &t);
	}
	for (unsigned i = 0; rc == 0 && i < o->producers; i++) {
		res->fill_records += sh->sh_prod[i].pr_records;
		hist_merge(&res->ack, &sh->sh_prod[i].pr_ack);
		if (sh->sh_prod[i].pr_t_end > t_fill_end) {
			t_fill_end = sh->sh_prod[i].pr_t_end;
		}
	}
	if (rc == 0) {
		res->fill_seconds =
		    (double)(t_fill_end - atomic_load(&sh->sh_t_start)) / 1e9;
		rc = bl_ends(q, &t, sh->sh_to);
	}
	if (rc == 0) {
		rc = bl_wait_durable(q, &t, sh, res);
		res->durable_wait = (double)(perf_now_ns() - t_fill_end) / 1e9;
	}
	/* The reads. */
	if (rc == 0) {
		rc = bl_run(o, sh, o->consumers, perf_backlog_consumer, &t);
	}
	if (rc == 0) {
		rc = bl_collect(o, sh, res);
	}
	perf_shared_unmap(sh);
	return rc;
}
