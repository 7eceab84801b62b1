/*
 * clock.c — the one clock shmq-perf uses.
 *
 * CLOCK_MONOTONIC is system-wide, so a timestamp taken by a producer
 * process can be subtracted from one taken by a consumer process, and
 * clock_gettime() reads it through the vDSO without a system call.
 */
#include <time.h>

#include "perf.h"

uint64_t
perf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
	    (uint64_t)ts.tv_nsec;
}
