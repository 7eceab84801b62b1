/*
 * futex_rtt.c — the machine's floor for a parked hand-off: two processes
 * bounce a counter through one shared futex word, each sleeping in
 * FUTEX_WAIT until the other wakes it.  shmq's parked round trip
 * (shmq-perf --mode pingpong --spin-us 0) is measured against this.
 *
 * usage: futex_rtt [ROUND_TRIPS]   prints p50/p99/max in microseconds
 */
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
wait_for(_Atomic uint32_t *w, uint32_t want)
{
	uint32_t v;
	while ((v = atomic_load(w)) != want) {
		syscall(
		    SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
	}
}

static void
post(_Atomic uint32_t *w, uint32_t v)
{
	atomic_store(w, v);
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pin to one CPU, as shmq-perf pins its producer and consumer. */
static void
pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof set, &set);
}

static int
cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	if (n < 1) {
		fprintf(stderr, "usage: futex_rtt [ROUND_TRIPS]\n");
		return 2;
	}
	_Atomic uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int64_t *rtt = malloc((size_t)n * sizeof *rtt);
	if (w == MAP_FAILED || rtt == NULL) {
		return 1;
	}
	atomic_store(w, 0);
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		for (uint32_t i = 0; i < (uint32_t)n; i++) {
			wait_for(w, 2 * i + 1); /* ping */
			post(w, 2 * i + 2); /* pong */
		}
		_exit(0);
	}
	pin(0);
	for (uint32_t i = 0; i < (uint32_t)n; i++) {
		int64_t t = now_ns();
		post(w, 2 * i + 1);
		wait_for(w, 2 * i + 2);
		rtt[i] = now_ns() - t;
	}
	waitpid(pid, NULL, 0);
	qsort(rtt, (size_t)n, sizeof *rtt, cmp);
	printf("futex round trip (us): p50 %.2f  p99 %.2f  max %.2f  (%ld)\n",
	    rtt[n / 2] / 1e3, rtt[n * 99 / 100] / 1e3, rtt[n - 1] / 1e3, n);
	return 0;
}
