/*
 * lag.c — a consumer group's lag in bytes and seconds, its consumption
 * rate and the time it needs to drain, over the public API only.
 *
 * Records and offsets come from shmq_group_describe.  Bytes and age need
 * the records themselves: a standalone consumer (no group, so it holds
 * no gate and moves no committed offset) seeks each partition to the
 * group's committed offset and reads forward.  The first record it gets
 * is the oldest unconsumed one, wherever it lives: in the ring or, on a
 * persistent topic, in the segment files.  Reading a whole backlog can
 * be long, so past `scan_max` records the rest of a partition's bytes is
 * estimated from the average size of those read, and marked so.
 *
 * Rates cannot come from one look: the group keeps only its last commit
 * time, not a history.  group.c looks twice, a sample window apart, and
 * lag_rates turns the two into records/s: the advance of the committed
 * offset (what drains the lag, records read from disk included) and of
 * the partition end (what fills it).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "lag.h"

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Note the first record read: the oldest unconsumed one. */
static void
note_oldest(struct lag_part *lp, int64_t ts)
{
	int64_t age = now_ns() - ts;

	lp->has_oldest = 1;
	lp->oldest_ns = ts;
	/* A timestamp in the future (set by the producer, or another
	 * clock) is no lag. */
	lp->age_s = age > 0 ? (double)age / 1e9 : 0.0;
}

/* Read partition gp->partition from gp->committed up to gp->end. */
static int
scan_part(shmq_consumer_t *c, const shmq_group_partition_t *gp,
    uint64_t scan_max, struct lag_part *lp)
{
	uint32_t part = gp->partition;
	uint64_t read = 0, tries = 0, next = gp->committed;
	shmq_record_t r;
	int rc;

	lp->bytes = 0;
	lp->bytes_exact = 1;
	lp->has_oldest = 0;
	lp->oldest_ns = 0;
	lp->age_s = 0.0;
	if (gp->lag == 0) {
		return 0;
	}
	if ((rc = shmq_assign(c, &part, 1)) != 0 ||
	    (rc = shmq_seek(c, part, gp->committed)) != 0) {
		return rc;
	}
	/* `tries` bounds the loop also when every read is an overrun. */
	while (read < scan_max && tries++ < 2 * scan_max + 16) {
		rc = shmq_peek(c, &r, 0);
		if (rc == -EAGAIN) {
			break; /* nothing more is visible: the end */
		}
		if (rc == SHMQ_ELAPPED) {
			/* Overwritten before we got there (a volatile
			 * topic): those records are gone, so they hold
			 * no bytes; the next read is the oldest left. */
			continue;
		}
		if (rc == SHMQ_ECORRUPT && r.offset < gp->end) {
			/* A damaged record on disk: its size is unknown. */
			lp->bytes_exact = 0;
			if ((rc = shmq_seek(c, part, r.offset + 1)) != 0) {
				return rc;
			}
			continue;
		}
		if (rc != 0) {
			return rc;
		}
		uint64_t off = r.offset;
		uint64_t kv = (uint64_t)r.key_len + r.value_len;
		int64_t ts = r.timestamp;
		/* Only after release is what was read known to be good:
		 * a record overwritten meanwhile is read again (from
		 * disk) or counted as lost. */
		rc = shmq_release(c, &r);
		if (rc == SHMQ_ESTALE) {
			continue;
		}
		if (rc != 0) {
			return rc;
		}
		if (off >= gp->end) {
			break; /* produced after the look at the group */
		}
		if (!lp->has_oldest) {
			note_oldest(lp, ts);
		}
		lp->bytes += kv;
		read++;
		next = off + 1;
	}
	if (read > 0 && next < gp->end && read >= scan_max) {
		/* Stopped by scan_max: the offsets left, at the average
		 * size so far (offsets, not records: a gap left by an
		 * aborted reservation counts as a record here). */
		double avg = (double)lp->bytes / (double)read;

		lp->bytes += (uint64_t)llround(avg * (double)(gp->end - next));
		lp->bytes_exact = 0;
	}
	return 0;
}

int
lag_scan(shmq_t *q, const char *topic, const shmq_group_partition_t *parts,
    size_t n, uint64_t scan_max, struct lag_part *out)
{
	shmq_consumer_options_t co;
	shmq_consumer_t *c;
	size_t i;
	int rc = 0;

	shmq_consumer_options_init(&co);
	/* An offset below the log start (deleted by retention, or
	 * overrun) reads from the oldest record left. */
	co.reset = SHMQ_RESET_EARLIEST;
	if ((rc = shmq_consumer_open(q, topic, &co, &c)) != 0) {
		return rc;
	}
	for (i = 0; i < n && rc == 0; i++) {
		rc = scan_part(c, &parts[i], scan_max, &out[i]);
	}
	shmq_consumer_close(c);
	return rc;
}

/* Records/s between two readings of a counter; a counter that went
 * back (offsets reset, a topic made anew) measures nothing: 0. */
static double
rate(uint64_t from, uint64_t to, double dt_s)
{
	return to > from ? (double)(to - from) / dt_s : 0.0;
}

void
lag_rates(const shmq_group_partition_t *before, size_t n0,
    const shmq_group_partition_t *after, size_t n, double dt_s,
    struct lag_part *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const shmq_group_partition_t *a = &after[i];
		struct lag_part *lp = &out[i];

		/* A partition added during the window has no first
		 * look. */
		lp->sampled =
		    dt_s > 0 && i < n0 && before[i].partition == a->partition;
		lp->consume_rate = 0.0;
		lp->produce_rate = 0.0;
		lp->eta_s = 0.0;
		if (lp->sampled) {
			lp->consume_rate =
			    rate(before[i].committed, a->committed, dt_s);
			lp->produce_rate = rate(before[i].end, a->end, dt_s);
		}
		if (a->lag == 0) {
			lp->drain = LAG_DRAINED;
		} else if (!lp->sampled) {
			lp->drain = LAG_UNMEASURED;
		} else if (lp->consume_rate > lp->produce_rate) {
			lp->drain = LAG_DRAINING;
			lp->eta_s = (double)a->lag /
			    (lp->consume_rate - lp->produce_rate);
		} else {
			lp->drain = LAG_NEVER;
		}
	}
}

void
lag_totals(const shmq_group_partition_t *parts, const struct lag_part *lp,
    size_t n, struct lag_total *t)
{
	size_t i;

	t->records = 0;
	t->bytes = 0;
	t->bytes_exact = 1;
	t->has_oldest = 0;
	t->oldest_ns = 0;
	t->age_s = 0.0;
	t->sampled = n > 0;
	t->consume_rate = 0.0;
	t->produce_rate = 0.0;
	t->eta_s = 0.0;
	for (i = 0; i < n; i++) {
		t->records += parts[i].lag;
		t->bytes += lp[i].bytes;
		t->bytes_exact = t->bytes_exact && lp[i].bytes_exact;
		if (lp[i].has_oldest &&
		    (!t->has_oldest || lp[i].oldest_ns < t->oldest_ns)) {
			t->has_oldest = 1;
			t->oldest_ns = lp[i].oldest_ns;
		}
		if (lp[i].age_s > t->age_s) {
			t->age_s = lp[i].age_s;
		}
		t->sampled = t->sampled && lp[i].sampled;
		t->consume_rate += lp[i].consume_rate;
		t->produce_rate += lp[i].produce_rate;
	}
	/* The group's members share its partitions, and one member may
	 * serve several in turn (one idle in the window, drained later):
	 * so the group's estimate is its total lag at its total rates,
	 * not the slowest partition's, which the table shows. */
	if (t->records == 0) {
		t->drain = LAG_DRAINED;
	} else if (!t->sampled) {
		t->drain = LAG_UNMEASURED;
	} else if (t->consume_rate > t->produce_rate) {
		t->drain = LAG_DRAINING;
		t->eta_s =
		    (double)t->records / (t->consume_rate - t->produce_rate);
	} else {
		t->drain = LAG_NEVER;
	}
}

const char *
lag_drain_name(enum lag_drain d)
{
	switch (d) {
	case LAG_DRAINED:
		return "drained";
	case LAG_DRAINING:
		return "draining";
	case LAG_NEVER:
		return "never";
	default:
		return "unmeasured";
	}
}

const char *
fmt_duration(char *buf, size_t cap, double s)
{
	unsigned long long whole;

	if (!(s >= 0.0)) {
		s = 0.0;
	} else if (s > 1e12) {
		s = 1e12; /* 31,000 years: keeps the cast below defined */
	}
	if (s < 60.0) {
		/* Tenths, but never "60.0s" from rounding up. */
		snprintf(buf, cap, "%.1fs", floor(s * 10.0) / 10.0);
		return buf;
	}
	whole = (unsigned long long)s;
	if (whole < 3600) {
		snprintf(buf, cap, "%llum%02llus", whole / 60, whole % 60);
	} else if (whole < 86400) {
		snprintf(
		    buf, cap, "%lluh%02llum", whole / 3600, whole / 60 % 60);
	} else {
		snprintf(buf, cap, "%llud%02lluh", whole / 86400,
		    whole / 3600 % 24);
	}
	return buf;
}
