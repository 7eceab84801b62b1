/*
 * hist.h — a fixed-size log-linear latency histogram (HdrHistogram's
 * layout, without its pointers).
 *
 * Values are nanoseconds.  Values below HIST_SUB are counted exactly;
 * above, each power-of-two magnitude [2^m, 2^(m+1)) is split into
 * HIST_SUB equal sub-buckets, so a bucket is at most 1/HIST_SUB (3.1%)
 * of the values it holds.  The top magnitude ends at 2^HIST_MAG_BITS ns
 * (68.7 s); larger values land in the last bucket, and max stays exact.
 *
 * struct hist holds only fixed-width integers and no pointers, so it may
 * live in MAP_SHARED memory and be filled by one process and read by
 * another.  It is not atomic: one writer at a time, and a reader must
 * synchronise with the writer (waitpid, a barrier) before reading.
 */
#ifndef SHMQ_TOOLS_HIST_H
#define SHMQ_TOOLS_HIST_H

#include <stdint.h>

/* 32 linear sub-buckets per magnitude bounds the relative error at
 * 1/32 (~3%); 2^36 ns covers the ~60 s the tools need to measure. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAG_BITS 36
#define HIST_BUCKETS (HIST_SUB + (HIST_MAG_BITS - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t h_count;
	uint64_t h_sum; /* saturates instead of wrapping */
	uint64_t h_min; /* UINT64_MAX while empty */
	uint64_t h_max;
	uint64_t h_buckets[HIST_BUCKETS];
};

/* Make h empty. */
void hist_init(struct hist *h);

/* Count one value. */
void hist_record(struct hist *h, uint64_t ns);

/* Add every count of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at or below which p percent (0..100) of the values lie,
 * reported as the top of its bucket and never above the exact max; 0
 * when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

uint64_t hist_count(const struct hist *h);
uint64_t hist_max(const struct hist *h);
uint64_t hist_min(const struct hist *h);
double hist_mean(const struct hist *h);

/* Internal mapping, exposed for tests: bucket index of a value, and the
 * smallest and largest value a bucket holds. */
unsigned hist_index(uint64_t ns);
uint64_t hist_bucket_low(unsigned idx);
uint64_t hist_bucket_high(unsigned idx);

#endif /* SHMQ_TOOLS_HIST_H */
