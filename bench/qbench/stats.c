/*
 * stats.c — percentiles over raw samples.
 *
 * Samples are kept whole and sorted: a run has at most QB_COUNT_MAX
 * round trips, and exact ranks make the tails of two transports
 * comparable without a histogram's bucket error.
 */
#include <math.h>
#include <stdlib.h>

#include "harness.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

void
qb_sort_u64(uint64_t *v, size_t n)
{
	if (n > 1) {
		qsort(v, n, sizeof *v, cmp_u64);
	}
}

/* Nearest rank: the smallest sample with at least q of all samples at
 * or below it, so p100 is the maximum and p0 the minimum. */
uint64_t
qb_pct(const uint64_t *v, size_t n, double q)
{
	double r;
	size_t i;

	if (n == 0) {
		return 0;
	}
	r = ceil(q * (double)n);
	i = r < 1.0 ? 0 : (size_t)r - 1;
	if (i >= n) {
		i = n - 1;
	}
	return v[i];
}
