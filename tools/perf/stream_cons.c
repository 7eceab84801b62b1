/*
 * stream_cons.c — a stream-mode consumer process: the checker.
 *
 * Within a partition, each producer's records must arrive with
 * sequences 0, 1, 2, ... exactly; anything else is a lost, duplicated
 * or reordered record and fails the run.  Since every stream starts at
 * 0 and is checked gap-free, "consumed == produced" at the end also
 * proves that nothing went missing at the tail.
 *
 * Consumers publish their counts only when idle (and every
 * PERF_FLUSH_EVERY records), so the hot loop writes no shared line of
 * its own; they commit every perf_commit_every() records and when idle
 * (group.c says why).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "perf.h"

#define PERF_FLUSH_EVERY 4096u
/* cons_next: a failure that was already reported.  Positive, so it
 * cannot be mistaken for a library code. */
#define CONS_REPORTED 1

struct cons {
	const struct perf_opts *o;
	struct perf_shared *sh;
	struct perf_cons_result *res;
	shmq_consumer_t *c;
	uint32_t partitions;
	uint64_t *expect; /* [producer * partitions + partition] */
	unsigned char *buf;
	uint64_t unflushed;
	uint64_t uncommitted;
	uint64_t seen; /* records received, for latency sampling */
	uint64_t commit_every;
	uint64_t seen_total; /* sh_consumed when it last moved */
	uint64_t seen_at;
};

int
perf_check_record(const struct perf_opts *o, const struct perf_shared *sh,
    uint32_t partitions, uint64_t *expect, const shmq_record_t *r)
{
	uint64_t stamp;
	uint64_t seq;
	uint64_t id;
	uint64_t *want;

	/* After an abort a failed peer may have left the group, and its
	 * partitions come here from the committed offset: what arrives
	 * then proves nothing, so stop quietly.  (Workers abort before
	 * they close, so this load sees it.) */
	if (perf_aborted(&sh->sh_barrier)) {
		return -1;
	}
	if (r->value_len != o->record_size || r->partition >= partitions) {
		perf_err("VERIFY FAILED: partition %u offset %" PRIu64
		         ": not a record of this run (%zu value bytes)",
		    r->partition, r->offset, r->value_len);
		return -1;
	}
	perf_record_read(r->value, &stamp, &seq);
	id = seq >> PERF_SEQ_ID_SHIFT;
	if (id >= o->producers) {
		perf_err("VERIFY FAILED: partition %u offset %" PRIu64
		         ": bad producer id %" PRIu64,
		    r->partition, r->offset, id);
		return -1;
	}
	want = &expect[id * partitions + r->partition];
	if ((seq & PERF_SEQ_MASK) != *want) {
		perf_err("VERIFY FAILED: partition %u offset %" PRIu64
		         ": producer %" PRIu64 " sequence %" PRIu64
		         ", expected %" PRIu64 " (%s)",
		    r->partition, r->offset, id, seq & PERF_SEQ_MASK, *want,
		    (seq & PERF_SEQ_MASK) > *want ? "records lost"
		                                  : "duplicate or reordered");
		return -1;
	}
	(*want)++;
	return 0;
}

static int
cons_check(struct cons *cs, const shmq_record_t *r, uint64_t now)
{
	uint64_t stamp;
	uint64_t seq;

	if (perf_check_record(cs->o, cs->sh, cs->partitions, cs->expect, r) !=
	    0) {
		return -1;
	}
	cs->res->cr_records++;
	if (now != 0) {
		perf_record_read(r->value, &stamp, &seq);
		hist_record(&cs->res->cr_lat, now > stamp ? now - stamp : 0);
		cs->res->cr_t_last = now;
	}
	return 0;
}

static int
cons_next(struct cons *cs)
{
	shmq_record_t r;
	int rc;

	if (cs->o->zero_copy) {
		rc = shmq_peek(cs->c, &r, PERF_POLL_MS);
	} else {
		rc = shmq_recv(
		    cs->c, cs->buf, cs->o->record_size, &r, PERF_POLL_MS);
	}
	if (rc == SHMQ_ELAPPED && !perf_aborted(&cs->sh->sh_barrier)) {
		perf_err("VERIFY FAILED: partition %u: %" PRIu64
		         " records lost (overwritten on a drop topic)",
		    r.partition, r.lost);
		return CONS_REPORTED;
	}
	if (rc != 0) {
		return rc;
	}
	/* Latency of one record in PERF_LAT_SAMPLE: a clock reading costs
	 * as much as receiving a record, and would measure itself.  Order
	 * and completeness are still checked for every record. */
	uint64_t now = (cs->seen++ % PERF_LAT_SAMPLE) == 0 ? perf_now_ns() : 0;
	rc = cons_check(cs, &r, now) != 0 ? CONS_REPORTED : 0;
	if (cs->o->zero_copy) {
		int rel = shmq_release(cs->c, &r);

		if (rel != 0 && rc == 0) {
			perf_fail("shmq_release", rel);
			rc = CONS_REPORTED;
		}
	}
	return rc;
}

static int
cons_commit(struct cons *cs)
{
	int rc;

	cs->uncommitted = 0;
	rc = shmq_consumer_commit(cs->c);
	return rc == 0 ? 0 : perf_fail("shmq_consumer_commit", rc);
}

static void
cons_flush(struct cons *cs)
{
	atomic_fetch_add(&cs->sh->sh_consumed, cs->unflushed);
	cs->unflushed = 0;
}

/* Idle: 1 when the run is complete, 0 to keep polling, -1 on failure. */
static int
cons_idle(struct cons *cs)
{
	uint64_t produced;
	uint64_t consumed;
	uint64_t now;

	cons_flush(cs);
	if (perf_aborted(&cs->sh->sh_barrier)) {
		return -1;
	}
	if (cs->uncommitted > 0 && cons_commit(cs) != 0) {
		return -1;
	}
	if (atomic_load(&cs->sh->sh_producers_done) < cs->o->producers) {
		return 0;
	}
	produced = atomic_load(&cs->sh->sh_produced);
	consumed = atomic_load(&cs->sh->sh_consumed);
	if (consumed == produced) {
		return 1;
	}
	now = perf_now_ns();
	if (consumed != cs->seen_total || cs->seen_at == 0) {
		cs->seen_total = consumed;
		cs->seen_at = now;
	} else if (now - cs->seen_at > PERF_LOST_MS * UINT64_C(1000000)) {
		perf_err("VERIFY FAILED: %" PRIu64
		         " records produced, %" PRIu64
		         " consumed, none for %u ms",
		    produced, consumed, PERF_LOST_MS);
		return -1;
	}
	return 0;
}

static int
cons_run(struct cons *cs)
{
	int rc;

	for (;;) {
		rc = cons_next(cs);
		if (rc == 0) {
			if (++cs->unflushed >= PERF_FLUSH_EVERY) {
				cons_flush(cs);
			}
			if (++cs->uncommitted >= cs->commit_every &&
			    cons_commit(cs) != 0) {
				return -1;
			}
			continue;
		}
		if (rc == CONS_REPORTED) {
			return -1;
		}
		if (rc != -EAGAIN) {
			return perf_fail(
			    cs->o->zero_copy ? "shmq_peek" : "shmq_recv", rc);
		}
		rc = cons_idle(cs);
		if (rc != 0) {
			return rc > 0 ? 0 : -1;
		}
	}
}

int
perf_stream_consumer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t)
{
	struct cons cs = { .o = o,
		.sh = sh,
		.res = &sh->sh_cons[idx],
		.partitions = t->partitions,
		.commit_every = perf_commit_every(o, t) };
	uint64_t zero = 0;
	shmq_t *q = NULL;
	int rc;

	cs.expect =
	    calloc((size_t)o->producers * t->partitions, sizeof(*cs.expect));
	cs.buf = malloc(o->record_size);
	rc = (cs.expect == NULL || cs.buf == NULL)
	    ? perf_fail("consumer buffers", -ENOMEM)
	    : perf_attach(t, &q);
	if (rc == 0) {
		rc = perf_consumer_open(o, q, t->topic, &cs.c);
	}
	if (rc != 0 || perf_barrier_wait(&sh->sh_barrier) != 0 ||
	    perf_group_settle(sh, q, t->topic, cs.c, idx, 0, o->consumers,
	        t->partitions) != 0 ||
	    perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
		goto out;
	}
	atomic_compare_exchange_strong(&sh->sh_t_start, &zero, perf_now_ns());
	rc = cons_run(&cs);
	/* Nobody leaves the group before everyone is done: a member's
	 * partitions would move to one still polling, which would re-read
	 * them from the group's committed offset. */
	if (rc == 0 && perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
	}
out:
	if (rc != 0) {
		perf_abort(sh);
	}
	shmq_consumer_close(cs.c);
	shmq_detach(q);
	free(cs.expect);
	free(cs.buf);
	return rc;
}
