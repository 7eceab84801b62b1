/*
 * stream_prod.c — a stream-mode producer process.
 *
 * Producer `idx` writes runs of --batch records to one partition, then
 * moves to the next, starting at partition idx so that several
 * producers spread out.  Each record carries the time it was written and
 * its sequence number among this producer's records to that partition;
 * the consumers check those sequences for gaps and reordering.
 * Sequences advance only for records the library accepted, so a retry
 * after a timeout stays gap-free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

/* A send to a full ring gives up after this long, so that the producer
 * notices an aborted run; it then simply retries, for PERF_LOST_MS in
 * all: consumers that free no space for that long are stuck. */
#define PERF_SEND_TIMEOUT_MS 1000
/* prod_send/prod_reserve: failed, and the failure was reported (or the
 * run was aborted by someone who reported it). */
#define PROD_FAILED (-1)

struct prod {
	const struct perf_opts *o;
	struct perf_shared *sh;
	shmq_producer_t *p;
	uint32_t partitions;
	unsigned idx;
	uint64_t *seq; /* next sequence per partition */
	unsigned char *buf; /* batch * record_size value bytes */
	shmq_msg_t *msgs;
	uint64_t deadline; /* 0: run by count */
	uint64_t sent;
	uint64_t full_since; /* when the current send met a full ring */
	/* acks DURABLE or ALL: the time of every send call, from the
	 * clock reading the records carry to the call's return (zero-copy:
	 * from before the reservation to the commit's return); NULL
	 * otherwise, where a send is too short to time without changing
	 * what is measured. */
	struct hist *ack;
};

static int
prod_open(struct prod *pr, shmq_t *q, const char *topic)
{
	shmq_producer_options_t po;
	size_t i;
	int rc;

	shmq_producer_options_init(&po);
	po.acks = pr->o->acks;
	po.flags = pr->o->exclusive ? SHMQ_PRODUCER_EXCLUSIVE : 0;
	po.timeout_ms = PERF_SEND_TIMEOUT_MS;
	rc = shmq_producer_open(q, topic, &po, &pr->p);
	if (rc != 0) {
		return perf_fail("shmq_producer_open", rc);
	}
	pr->seq = calloc(pr->partitions, sizeof(*pr->seq));
	pr->buf = malloc(pr->o->batch * pr->o->record_size);
	pr->msgs = calloc(pr->o->batch, sizeof(*pr->msgs));
	if (pr->seq == NULL || pr->buf == NULL || pr->msgs == NULL) {
		return perf_fail("producer buffers", -ENOMEM);
	}
	for (i = 0; i < pr->o->batch; i++) {
		perf_record_payload(
		    pr->buf + i * pr->o->record_size, pr->o->record_size);
	}
	return 0;
}

static uint64_t
prod_seq(const struct prod *pr, uint32_t part, uint64_t k)
{
	return ((uint64_t)pr->idx << PERF_SEQ_ID_SHIFT) | (pr->seq[part] + k);
}

/* A timeout on a full ring is back-pressure, not an error, unless it
 * lasts: then the consumers are stuck and the run must fail, not hang. */
static int
prod_retry(struct prod *pr, int rc)
{
	uint64_t now;

	if (rc != -EAGAIN || perf_aborted(&pr->sh->sh_barrier)) {
		pr->full_since = 0;
		return 0;
	}
	now = perf_now_ns();
	if (pr->full_since == 0) {
		pr->full_since = now;
	}
	if (now - pr->full_since < PERF_LOST_MS * UINT64_C(1000000)) {
		return 1;
	}
	perf_err("producer %u: ring full for %u ms, consumers stuck", pr->idx,
	    PERF_LOST_MS);
	pr->full_since = 0;
	return 0;
}

static int
prod_failed(const struct prod *pr, const char *what, int rc)
{
	/* After an abort the failure is someone else's: stay quiet. */
	if (perf_aborted(&pr->sh->sh_barrier)) {
		return PROD_FAILED;
	}
	perf_fail(what, rc);
	return PROD_FAILED;
}

static int
prod_send(struct prod *pr, uint32_t part, size_t n, uint64_t *now)
{
	ssize_t done;
	size_t k;
	int rc;

	/* One clock reading per send call, as an application sending a
	 * batch would take: the records of a batch leave together. */
	*now = perf_now_ns();
	for (k = 0; k < n; k++) {
		unsigned char *v = pr->buf + k * pr->o->record_size;

		perf_record_fill(v, *now, prod_seq(pr, part, k));
		memset(&pr->msgs[k], 0, sizeof(pr->msgs[k]));
		pr->msgs[k].value = v;
		pr->msgs[k].value_len = pr->o->record_size;
		pr->msgs[k].partition = (int32_t)part;
	}
	if (pr->o->batch == 1) {
		do {
			rc = shmq_send(pr->p, &pr->msgs[0]);
		} while (prod_retry(pr, rc));
		done = rc == 0 ? 1 : rc;
	} else {
		do {
			done = shmq_send_batch(pr->p, pr->msgs, n);
		} while (done < 0 && prod_retry(pr, (int)done));
	}
	if (done < 0) {
		return prod_failed(pr, "shmq_send", (int)done);
	}
	if (pr->ack != NULL) {
		hist_record(pr->ack, perf_now_ns() - *now);
	}
	pr->seq[part] += (uint64_t)done;
	pr->sent += (uint64_t)done;
	return 0;
}

static int
prod_reserve(struct prod *pr, uint32_t part, uint64_t *now)
{
	shmq_slice_t s;
	int rc;

	uint64_t t0 = pr->ack != NULL ? perf_now_ns() : 0;

	do {
		rc = shmq_reserve(
		    pr->p, (int32_t)part, 0, pr->o->record_size, &s);
	} while (prod_retry(pr, rc));
	if (rc != 0) {
		return prod_failed(pr, "shmq_reserve", rc);
	}
	/* Write the whole value in place, as a real zero-copy producer
	 * would, so the comparison with the copy path is fair. */
	memcpy(s.value, pr->buf, pr->o->record_size);
	*now = perf_now_ns();
	perf_record_fill(s.value, *now, prod_seq(pr, part, 0));
	rc = shmq_commit(pr->p, &s);
	if (rc != 0) {
		return perf_fail("shmq_commit", rc);
	}
	if (pr->ack != NULL) {
		hist_record(pr->ack, perf_now_ns() - t0);
	}
	pr->seq[part]++;
	pr->sent++;
	return 0;
}

static int
prod_run(struct prod *pr)
{
	uint64_t count = pr->o->count;
	uint64_t now = 0;
	uint64_t left;
	uint32_t part;
	int rc;

	while (count == 0 || pr->sent < count) {
		if (pr->deadline != 0 && now >= pr->deadline) {
			break;
		}
		if (perf_aborted(&pr->sh->sh_barrier)) {
			return -1;
		}
		part = (uint32_t)((pr->idx + pr->sent / pr->o->batch) %
		    pr->partitions);
		left = count == 0 ? pr->o->batch : count - pr->sent;
		if (pr->o->zero_copy) {
			rc = prod_reserve(pr, part, &now);
		} else {
			rc = prod_send(pr, part,
			    left < pr->o->batch ? left : pr->o->batch, &now);
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static void
prod_close(struct prod *pr)
{
	shmq_producer_close(pr->p);
	free(pr->seq);
	free(pr->buf);
	free(pr->msgs);
}

int
perf_stream_producer(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t)
{
	struct prod pr = {
		.o = o, .sh = sh, .idx = idx, .partitions = t->partitions
	};
	uint64_t zero = 0;
	uint64_t start;
	shmq_t *q = NULL;
	int rc;

	hist_init(&sh->sh_prod[idx].pr_ack);
	if (o->acks >= SHMQ_ACKS_DURABLE) {
		pr.ack = &sh->sh_prod[idx].pr_ack;
	}
	rc = perf_attach(t, &q);
	if (rc == 0) {
		rc = prod_open(&pr, q, t->topic);
	}
	/* A worker that failed does not arrive: perf_spawn aborts the
	 * barrier on its way out, which releases the others. */
	if (rc != 0 || perf_barrier_wait(&sh->sh_barrier) != 0 ||
	    perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
		goto out;
	}
	start = perf_now_ns();
	atomic_compare_exchange_strong(&sh->sh_t_start, &zero, start);
	if (o->duration > 0.0) {
		pr.deadline = start + (uint64_t)(o->duration * 1e9);
	}
	rc = prod_run(&pr);
	sh->sh_prod[idx].pr_records = pr.sent;
	sh->sh_prod[idx].pr_t_end = perf_now_ns();
	/* The total goes in before the done count: a consumer that sees
	 * every producer done must see every total. */
	atomic_fetch_add(&sh->sh_produced, pr.sent);
	atomic_fetch_add(&sh->sh_producers_done, 1);
	/* The end barrier: see stream_cons.c. */
	if (rc == 0 && perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
	}
out:
	/* Abort before closing: see stream_cons.c. */
	if (rc != 0) {
		perf_abort(sh);
	}
	prod_close(&pr);
	shmq_detach(q);
	return rc != 0 ? -1 : 0;
}
