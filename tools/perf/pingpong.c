/*
 * pingpong.c — round-trip latency: one process sends a record on the
 * ping topic and waits for its echo on the pong topic; the other echoes
 * every ping back.  One record is in flight at a time, so this measures
 * the library's hand-off (and, with --idle park, the futex wake-up) and
 * not queueing.  The first PERF_WARMUP round trips are not recorded:
 * they pay for page faults on fresh ring pages.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perf.h"

#define PERF_WARMUP 1000u

/* One direction of the pair: send on one topic, read the other. */
struct pp {
	const struct perf_opts *o;
	struct perf_shared *sh;
	shmq_producer_t *p;
	shmq_consumer_t *c;
	unsigned char *buf; /* record_size bytes */
	uint64_t uncommitted;
	uint64_t commit_every; /* see group.c */
};

static int
pp_send(struct pp *pp, const void *value)
{
	shmq_slice_t s;
	shmq_msg_t m;
	int rc;

	if (pp->o->zero_copy) {
		rc = shmq_reserve(pp->p, 0, 0, pp->o->record_size, &s);
		if (rc != 0) {
			return perf_fail("shmq_reserve", rc);
		}
		memcpy(s.value, value, pp->o->record_size);
		rc = shmq_commit(pp->p, &s);
		return rc == 0 ? 0 : perf_fail("shmq_commit", rc);
	}
	memset(&m, 0, sizeof(m));
	m.value = value;
	m.value_len = pp->o->record_size;
	m.partition = 0;
	rc = shmq_send(pp->p, &m);
	return rc == 0 ? 0 : perf_fail("shmq_send", rc);
}

/*
 * Wait for the next record and hand its value to fn (which may send),
 * then release it: the echo is written straight from the borrowed view.
 */
static int
pp_recv(struct pp *pp, int (*fn)(struct pp *, const void *, void *), void *arg)
{
	shmq_record_t r;
	int rc;

	do {
		if (perf_aborted(&pp->sh->sh_barrier)) {
			return -1;
		}
		rc = pp->o->zero_copy
		    ? shmq_peek(pp->c, &r, PERF_POLL_MS)
		    : shmq_recv(pp->c, pp->buf, pp->o->record_size, &r,
		          PERF_POLL_MS);
	} while (rc == -EAGAIN);
	if (rc != 0) {
		return perf_fail(
		    pp->o->zero_copy ? "shmq_peek" : "shmq_recv", rc);
	}
	if (r.value_len != pp->o->record_size) {
		perf_err("offset %" PRIu64 ": unexpected record (%zu bytes)",
		    r.offset, r.value_len);
		rc = -1;
	} else {
		rc = fn(pp, r.value, arg);
	}
	if (pp->o->zero_copy) {
		int rel = shmq_release(pp->c, &r);

		if (rel != 0 && rc == 0) {
			rc = perf_fail("shmq_release", rel);
		}
	}
	/* After the echo or the clock read: off the measured path. */
	if (rc == 0 && ++pp->uncommitted >= pp->commit_every) {
		pp->uncommitted = 0;
		rc = shmq_consumer_commit(pp->c);
		rc = rc == 0 ? 0 : perf_fail("shmq_consumer_commit", rc);
	}
	return rc;
}

static int
pp_echo(struct pp *pp, const void *value, void *arg)
{
	uint64_t stamp;
	uint64_t seq;

	perf_record_read(value, &stamp, &seq);
	if (seq == PERF_SEQ_STOP) {
		*(int *)arg = 1;
		return 0;
	}
	return pp_send(pp, value);
}

struct pp_wait {
	uint64_t seq;
	uint64_t now;
	uint64_t stamp;
};

static int
pp_check(struct pp *pp, const void *value, void *arg)
{
	struct pp_wait *w = arg;
	uint64_t seq;

	(void)pp;
	w->now = perf_now_ns();
	perf_record_read(value, &w->stamp, &seq);
	if (seq != w->seq) {
		perf_err("VERIFY FAILED: echo of ping %" PRIu64
		         " carries sequence %" PRIu64,
		    w->seq, seq);
		return -1;
	}
	return 0;
}

static int
pp_ping_loop(struct pp *pp, struct perf_cons_result *res)
{
	const struct perf_opts *o = pp->o;
	struct pp_wait w = { 0, 0, 0 };
	uint64_t deadline = 0;
	uint64_t n;

	for (n = 0;; n++) {
		if (n == PERF_WARMUP) {
			atomic_store(&pp->sh->sh_t_start, w.now);
			if (o->duration > 0.0) {
				deadline =
				    w.now + (uint64_t)(o->duration * 1e9);
			}
		}
		if (n >= PERF_WARMUP &&
		    ((o->count != 0 && n - PERF_WARMUP >= o->count) ||
		        (deadline != 0 && w.now >= deadline))) {
			break;
		}
		w.seq = n;
		perf_record_fill(pp->buf, perf_now_ns(), n);
		if (pp_send(pp, pp->buf) != 0 ||
		    pp_recv(pp, pp_check, &w) != 0) {
			return -1;
		}
		if (n >= PERF_WARMUP) {
			hist_record(&res->cr_lat, w.now - w.stamp);
			res->cr_records++;
			res->cr_t_last = w.now;
		}
	}
	perf_record_fill(pp->buf, perf_now_ns(), PERF_SEQ_STOP);
	return pp_send(pp, pp->buf);
}

/*
 * Worker idx 0 pings (produces on topic, consumes topic2); worker 1
 * echoes (the other way round).  Each is the only member of group
 * "perf" on the topic it reads.
 */
static int
perf_pingpong_worker(const struct perf_opts *o, struct perf_shared *sh,
    unsigned idx, const struct perf_target *t)
{
	struct pp pp = {
		.o = o, .sh = sh, .commit_every = perf_commit_every(o, t)
	};
	shmq_producer_options_t po;
	shmq_t *q = NULL;
	int stop = 0;
	int rc;

	shmq_producer_options_init(&po);
	po.acks = o->acks;
	po.flags = o->exclusive ? SHMQ_PRODUCER_EXCLUSIVE : 0;
	pp.buf = malloc(o->record_size);
	rc =
	    pp.buf == NULL ? perf_fail("buffer", -ENOMEM) : perf_attach(t, &q);
	if (rc == 0) {
		perf_record_payload(pp.buf, o->record_size);
		rc = shmq_producer_open(
		    q, idx == 0 ? t->topic : t->topic2, &po, &pp.p);
		rc = rc == 0 ? 0 : perf_fail("shmq_producer_open", rc);
	}
	if (rc == 0) {
		rc = perf_consumer_open(
		    o, q, idx == 0 ? t->topic2 : t->topic, &pp.c);
	}
	if (rc != 0 || perf_barrier_wait(&sh->sh_barrier) != 0 ||
	    perf_group_settle(sh, q, idx == 0 ? t->topic2 : t->topic, pp.c,
	        idx, idx, 1, idx == 0 ? t->partitions2 : t->partitions) != 0 ||
	    perf_barrier_wait(&sh->sh_barrier) != 0) {
		rc = -1;
		goto out;
	}
	if (idx == 0) {
		rc = pp_ping_loop(&pp, &sh->sh_cons[0]);
	}
	while (idx == 1 && rc == 0 && !stop) {
		rc = pp_recv(&pp, pp_echo, &stop);
	}
out:
	if (rc != 0) {
		perf_abort(sh);
	}
	shmq_producer_close(pp.p);
	shmq_consumer_close(pp.c);
	shmq_detach(q);
	free(pp.buf);
	return rc;
}

int
perf_pingpong(const struct perf_opts *o, struct perf_instance *in,
    struct perf_result *res)
{
	struct perf_opts one = *o;
	struct perf_target t;
	struct perf_shared *sh;
	const char *base = o->topic;
	char name[SHMQ_NAME_MAX + 1];
	unsigned spawned = 0;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	t.home = perf_instance_home(in);
	if (base == NULL) {
		snprintf(name, sizeof(name), "perf-%ld", (long)getpid());
		base = name;
	}
	snprintf(t.topic, sizeof(t.topic), "%.90s-ping", base);
	snprintf(t.topic2, sizeof(t.topic2), "%.90s-pong", base);
	/* Partition 0 of each is all a single round trip uses. */
	one.partitions = 1;
	if (perf_instance_topic(in, t.topic, &one, &t, &t.partitions, NULL) !=
	        0 ||
	    perf_instance_topic(
	        in, t.topic2, &one, &t, &t.partitions2, NULL) != 0) {
		return -1;
	}
	sh = perf_shared_map();
	if (sh == NULL) {
		return -1;
	}
	perf_barrier_init(&sh->sh_barrier, 2);
	for (; spawned < 2 && rc == 0; spawned++) {
		rc = perf_spawn(
		    o, sh, spawned, spawned, perf_pingpong_worker, &t);
	}
	if (rc != 0) {
		spawned--;
		perf_abort(sh);
	}
	if (perf_wait_all(sh, spawned) != 0) {
		rc = -1;
	}
	if (rc == 0) {
		res->records = sh->sh_cons[0].cr_records;
		res->lat = sh->sh_cons[0].cr_lat;
		res->seconds = (double)(sh->sh_cons[0].cr_t_last -
		                   atomic_load(&sh->sh_t_start)) /
		    1e9;
	}
	perf_shared_unmap(sh);
	return rc;
}
