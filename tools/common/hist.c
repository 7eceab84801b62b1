/*
 * hist.c — log-linear latency histogram; see hist.h for the layout.
 *
 * Bucket i < HIST_SUB holds exactly the value i.  Above that, a value v
 * with its top bit at position m (2^m <= v < 2^(m+1)) keeps its top
 * HIST_SUB_BITS + 1 bits: the sub-bucket is the next HIST_SUB_BITS bits
 * below the top one.  Magnitude HIST_SUB_BITS (32..63) thus also has
 * unit-wide buckets, so the whole range 0..63 is exact and the index is
 * continuous.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->h_min = UINT64_MAX;
}

unsigned
hist_index(uint64_t ns)
{
	unsigned mag;
	unsigned shift;

	if (ns < HIST_SUB) {
		return (unsigned)ns;
	}
	mag = 63u - (unsigned)__builtin_clzll(ns);
	if (mag >= HIST_MAG_BITS) {
		return HIST_BUCKETS - 1;
	}
	shift = mag - HIST_SUB_BITS;
	return HIST_SUB + shift * HIST_SUB +
	    (unsigned)((ns >> shift) - HIST_SUB);
}

uint64_t
hist_bucket_low(unsigned idx)
{
	unsigned shift;
	unsigned sub;

	if (idx < HIST_SUB) {
		return idx;
	}
	shift = (idx - HIST_SUB) / HIST_SUB;
	sub = (idx - HIST_SUB) % HIST_SUB;
	return (uint64_t)(HIST_SUB + sub) << shift;
}

uint64_t
hist_bucket_high(unsigned idx)
{
	unsigned shift;

	if (idx < HIST_SUB) {
		return idx;
	}
	shift = (idx - HIST_SUB) / HIST_SUB;
	return hist_bucket_low(idx) + ((uint64_t)1 << shift) - 1;
}

void
hist_record(struct hist *h, uint64_t ns)
{
	h->h_buckets[hist_index(ns)]++;
	h->h_count++;
	h->h_sum = (h->h_sum > UINT64_MAX - ns) ? UINT64_MAX : h->h_sum + ns;
	if (ns < h->h_min) {
		h->h_min = ns;
	}
	if (ns > h->h_max) {
		h->h_max = ns;
	}
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++) {
		dst->h_buckets[i] += src->h_buckets[i];
	}
	dst->h_count += src->h_count;
	dst->h_sum = (dst->h_sum > UINT64_MAX - src->h_sum)
	    ? UINT64_MAX
	    : dst->h_sum + src->h_sum;
	if (src->h_min < dst->h_min) {
		dst->h_min = src->h_min;
	}
	if (src->h_max > dst->h_max) {
		dst->h_max = src->h_max;
	}
}

uint64_t
hist_percentile(const struct hist *h, double p)
{
	uint64_t rank;
	uint64_t seen = 0;
	uint64_t v;
	unsigned i;

	if (h->h_count == 0) {
		return 0;
	}
	if (!(p > 0.0)) {
		return h->h_min;
	}
	if (p >= 100.0) {
		return h->h_max;
	}
	/* Nearest rank: the smallest value with at least p% at or below
	 * it.  The product is exact enough below 2^53 records. */
	rank = (uint64_t)ceil(p / 100.0 * (double)h->h_count);
	if (rank == 0) {
		rank = 1;
	}
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->h_buckets[i];
		if (seen >= rank) {
			break;
		}
	}
	if (i == HIST_BUCKETS) {
		return h->h_max;
	}
	v = hist_bucket_high(i);
	if (v > h->h_max) {
		v = h->h_max;
	}
	if (v < h->h_min) {
		v = h->h_min;
	}
	return v;
}

uint64_t
hist_count(const struct hist *h)
{
	return h->h_count;
}

uint64_t
hist_max(const struct hist *h)
{
	return h->h_max;
}

uint64_t
hist_min(const struct hist *h)
{
	return h->h_count == 0 ? 0 : h->h_min;
}

double
hist_mean(const struct hist *h)
{
	if (h->h_count == 0) {
		return 0.0;
	}
	return (double)h->h_sum / (double)h->h_count;
}
