/*
 * lag.h — how far behind a consumer group is, and how fast it catches
 * up: the figures `shmqctl group describe` adds to the committed
 * offsets (see lag.c).
 */
#ifndef SHMQCTL_LAG_H
#define SHMQCTL_LAG_H

#include <stdint.h>

#include "shmqctl.h"

/* Default --scan: records read per partition to count the lag's
 * bytes before the rest is estimated. */
#define LAG_SCAN_DEFAULT 1000000u
/* Default --sample, in ms, and the longest one accepted. */
#define LAG_SAMPLE_DEFAULT 1000u
#define LAG_SAMPLE_MAX 3600000u

/* Whether and when a partition (or the group) catches up. */
enum lag_drain {
	LAG_DRAINED, /* no lag */
	LAG_DRAINING, /* eta_s is finite */
	LAG_NEVER, /* consumed no faster than produced */
	LAG_UNMEASURED, /* no rates: --sample 0 */
};

struct lag_part {
	/* Key + value bytes of the records in [committed, end). */
	uint64_t bytes;
	int bytes_exact; /* 0: part of `bytes` was estimated */
	/* The oldest unconsumed record: its timestamp (ns since the
	 * epoch) and age in seconds, when there is one. */
	int has_oldest;
	int64_t oldest_ns;
	double age_s;
	/* Records/s over the sample window; meaningful when sampled. */
	int sampled;
	double consume_rate; /* committed offset's advance */
	double produce_rate; /* end's advance */
	enum lag_drain drain;
	double eta_s; /* with LAG_DRAINING (0 with LAG_DRAINED) */
};

struct lag_total {
	uint64_t records;
	uint64_t bytes;
	int bytes_exact;
	int has_oldest;
	int64_t oldest_ns; /* the oldest over the partitions */
	double age_s;
	int sampled;
	double consume_rate; /* sums */
	double produce_rate;
	/* Of records, consume_rate and produce_rate, as a partition's. */
	enum lag_drain drain;
	double eta_s;
};

/* Read the unconsumed records of each partition parts[i] (from its
 * committed offset to its end) through a standalone consumer, up to
 * scan_max (>= 1) per partition, to fill out[i]'s bytes and oldest
 * record.  Returns 0 or a negative shmq error. */
int lag_scan(shmq_t *q, const char *topic, const shmq_group_partition_t *parts,
    size_t n, uint64_t scan_max, struct lag_part *out);

/* Rates and drain estimate of out[i] from two looks at the group taken
 * dt_s seconds apart: before[0..n0) and after[0..n).  A partition not
 * in `before`, or dt_s <= 0, is unmeasured. */
void lag_rates(const shmq_group_partition_t *before, size_t n0,
    const shmq_group_partition_t *after, size_t n, double dt_s,
    struct lag_part *out);

/* Sum the partitions up. */
void lag_totals(const shmq_group_partition_t *parts, const struct lag_part *lp,
    size_t n, struct lag_total *t);

/* "drained", "draining", "never", "unmeasured" (JSON's drain). */
const char *lag_drain_name(enum lag_drain d);

/* A duration for humans: "0.4s", "59.9s", "12m05s", "3h07m", "2d04h"
 * (buf >= 24 bytes). */
const char *fmt_duration(char *buf, size_t cap, double s);

#endif /* SHMQCTL_LAG_H */
