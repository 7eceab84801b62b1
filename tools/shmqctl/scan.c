/*
 * scan.c — read one partition's records in an offset range [from, to):
 * what a reset skips (count, first and last timestamp) and what a
 * replay copies.
 *
 * A standalone consumer with reset policy ERROR reads the partition
 * from `from`.  Offsets below the log start (a volatile ring overwrote
 * them, or retention deleted their segments) are counted as lost, and
 * so are offsets a lap skips while reading.  Offsets with no record
 * (aborted reservations) are neither: they never held one.  The scan
 * ends at the first record at or past `to`, or when the consumer runs
 * dry after the partition's committed offset reached `to`; records
 * reserved below `to` but not yet committed are waited for, up to
 * SCAN_IDLE_MS without progress, and then counted as pending.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"

/* A reservation is committed or reclaimed within the instance's
 * stall_ms (10 s by default); an admin command should not hang that
 * long on one, so it reports what is still pending instead. */
#define SCAN_IDLE_MS 2000
#define SCAN_SLICE_MS 50
#define SCAN_BUF_MIN 4096

static int64_t
scan_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct scan {
	shmq_t *q;
	const char *topic;
	uint32_t partition;
	uint64_t to;
	uint64_t next; /* lowest offset not yet accounted for */
	shmq_consumer_t *c;
	void *buf;
	size_t cap;
	struct scan_result *res;
	unsigned resets; /* out-of-range reads since the last record */
};

/* Out-of-range reads in a row before giving up: each one moves to the
 * log start, so more mean the log start outruns the scan. */
#define SCAN_RESETS_MAX 8

/* The consumer's offset fell below the log start: count what is gone
 * and go on from the start.  Returns 0, 1 (nothing of the range is
 * left) or a negative error. */
static int
scan_below_start(struct scan *s)
{
	shmq_partition_info_t info;
	uint64_t start;
	int rc;

	if (++s->resets > SCAN_RESETS_MAX) {
		return SHMQ_EOUTOFRANGE;
	}
	rc = shmq_partition_info(s->q, s->topic, s->partition, &info);
	if (rc != 0) {
		return rc;
	}
	start = info.log_start < s->to ? info.log_start : s->to;
	if (start > s->next) {
		s->res->lost += start - s->next;
		s->next = start;
	}
	if (s->next >= s->to) {
		return 1;
	}
	return shmq_seek(s->c, s->partition, s->next);
}

/* Nothing to read now.  Returns 0 to read on (with *final set when
 * one more empty read means done), 1 when the scan is complete, or a
 * negative error. */
static int
scan_dry(struct scan *s, int64_t deadline, int *final)
{
	shmq_partition_info_t info;
	uint64_t from;
	int rc;

	if (*final) {
		return 1; /* read dry after the range was complete */
	}
	rc = shmq_partition_info(s->q, s->topic, s->partition, &info);
	if (rc != 0) {
		return rc;
	}
	if (info.committed >= s->to) {
		/* Every record below `to` is complete, but it may have
		 * become so after the read that came back empty: read
		 * once more before calling the rest gaps. */
		*final = 1;
		return 0;
	}
	if (scan_now_ms() < deadline) {
		return 0;
	}
	from = s->next > info.committed ? s->next : info.committed;
	s->res->pending = s->to - from;
	return 1;
}

static int
scan_grow(struct scan *s, const shmq_record_t *r)
{
	size_t need = r->key_len + r->value_len;
	void *buf;

	if (need < 2 * s->cap) {
		need = 2 * s->cap;
	}
	if ((buf = realloc(s->buf, need)) == NULL) {
		return -ENOMEM;
	}
	s->buf = buf;
	s->cap = need;
	return 0;
}

static void
scan_count(struct scan *s, const shmq_record_t *r)
{
	struct scan_result *res = s->res;

	if (!res->has_times) {
		res->has_times = 1;
		res->first_ts = r->timestamp;
	}
	res->last_ts = r->timestamp;
	res->records++;
	s->next = r->offset + 1;
}

static int
scan_loop(struct scan *s, scan_fn *fn, void *arg)
{
	int64_t deadline = scan_now_ms() + SCAN_IDLE_MS;
	shmq_record_t r;
	int final = 0, rc;

	for (;;) {
		rc = shmq_recv(
		    s->c, s->buf, s->cap, &r, final ? 0 : SCAN_SLICE_MS);
		if (rc == SHMQ_ELAPPED) {
			/* Lapped while reading: r.lost offsets are gone. */
			uint64_t left = s->to - s->next;
			uint64_t n = r.lost < left ? r.lost : left;

			s->res->lost += n;
			s->next += n;
			continue;
		}
		if (rc == SHMQ_EOUTOFRANGE) {
			rc = scan_below_start(s);
		} else if (rc == -EMSGSIZE) {
			rc = scan_grow(s, &r);
		} else if (rc == -EAGAIN || rc == -EINTR) {
			rc = scan_dry(s, deadline, &final);
		} else if (rc == 0) {
			if (r.offset >= s->to) {
				return 0;
			}
			scan_count(s, &r);
			s->resets = 0;
			deadline = scan_now_ms() + SCAN_IDLE_MS;
			final = 0;
			rc = fn != NULL ? fn(&r, arg) : 0;
		}
		if (rc != 0) {
			return rc == 1 ? 0 : rc;
		}
	}
}

int
scan_range(shmq_t *q, const char *topic, uint32_t partition, uint64_t from,
    uint64_t to, scan_fn *fn, void *arg, struct scan_result *res)
{
	shmq_consumer_options_t co;
	struct scan s;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	if (from >= to) {
		return 0;
	}
	s.q = q;
	s.topic = topic;
	s.partition = partition;
	s.to = to;
	s.next = from;
	s.res = res;
	s.cap = SCAN_BUF_MIN;
	if ((s.buf = malloc(s.cap)) == NULL) {
		return -ENOMEM;
	}
	shmq_consumer_options_init(&co);
	/* ERROR, not EARLIEST: a jump to the log start must be seen, so
	 * that what it passes over is counted as lost. */
	co.reset = SHMQ_RESET_ERROR;
	rc = shmq_consumer_open(q, topic, &co, &s.c);
	if (rc == 0) {
		rc = shmq_assign(s.c, &partition, 1);
	}
	if (rc == 0) {
		rc = shmq_seek(s.c, partition, from);
	}
	if (rc == 0) {
		rc = scan_loop(&s, fn, arg);
	}
	shmq_consumer_close(s.c);
	free(s.buf);
	return rc;
}
