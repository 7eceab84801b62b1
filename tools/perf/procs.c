/*
 * procs.c — the worker processes of a run and the memory they share.
 *
 * Every producer and consumer is its own process, as real clients of a
 * shared-memory queue are, so the benchmark pays the same cross-process
 * cache traffic.  A worker that fails aborts the shared barrier; the
 * parent does the same for a worker that dies, so nobody is left
 * waiting for a peer that will never come.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perf.h"

volatile sig_atomic_t perf_signalled;

static void
perf_on_signal(int sig)
{
	perf_signalled = sig;
}

/*
 * The parent survives SIGINT and SIGTERM long enough to stop the
 * workers and remove its temporary instance.  No SA_RESTART: waitpid()
 * must return EINTR so that the parent notices.
 */
void
perf_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = perf_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

struct perf_shared *
perf_shared_map(void)
{
	struct perf_shared *sh;
	unsigned i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perf_err("mmap: %s", strerror(errno));
		return NULL;
	}
	/* Fresh anonymous pages are zero; only non-zero state needs
	 * setting. */
	for (i = 0; i < PERF_CONSUMERS_MAX; i++) {
		hist_init(&sh->sh_cons[i].cr_lat);
	}
	return sh;
}

void
perf_shared_unmap(struct perf_shared *sh)
{
	if (sh != NULL) {
		munmap(sh, sizeof(*sh));
	}
}

/*
 * Pin to the slot-th CPU this process may use, wrapping around.  On one
 * CPU pinning would only forbid the scheduler from helping, so skip it.
 */
static void
perf_pin(unsigned slot)
{
	cpu_set_t allowed;
	cpu_set_t one;
	int n;
	int cpu;
	unsigned k = 0;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		return;
	}
	n = CPU_COUNT(&allowed);
	if (n < 2) {
		return;
	}
	slot %= (unsigned)n;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed)) {
			continue;
		}
		if (k++ == slot) {
			break;
		}
	}
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0) {
		perf_err("sched_setaffinity(cpu %d): %s (running unpinned)",
		    cpu, strerror(errno));
	}
}

int
perf_spawn(const struct perf_opts *o, struct perf_shared *sh,
    unsigned cpu_slot, unsigned idx, perf_child_fn fn,
    const struct perf_target *t)
{
	pid_t pid;
	int rc;

	/* Anything still buffered would be printed once per child. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perf_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		return 0;
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (o->pin) {
		perf_pin(cpu_slot);
	}
	rc = fn(o, sh, idx, t);
	if (rc != 0) {
		perf_abort(sh);
	}
	/* _exit: the parent's atexit handlers and stdio buffers are not
	 * this process's to run. */
	_exit(rc == 0 ? 0 : PERF_EXIT_FAIL);
}

void
perf_abort(struct perf_shared *sh)
{
	perf_barrier_abort(&sh->sh_group);
	perf_barrier_abort(&sh->sh_barrier);
}

/* Reap n workers.  Returns 0 when every one exited with status 0. */
int
perf_wait_all(struct perf_shared *sh, unsigned n)
{
	int status;
	int failed = 0;
	pid_t pid;

	while (n > 0) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR) {
				/* Workers see the abort within PERF_POLL_MS or
				 * a send timeout and exit. */
				if (perf_signalled) {
					perf_abort(sh);
				}
				continue;
			}
			perf_err("waitpid: %s", strerror(errno));
			return -1;
		}
		n--;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			continue;
		}
		if (WIFSIGNALED(status)) {
			perf_err("worker %d killed by signal %d", (int)pid,
			    WTERMSIG(status));
		}
		failed = 1;
		perf_abort(sh);
	}
	return failed ? -1 : 0;
}
