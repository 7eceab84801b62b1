/*
 * main.c — shmq-perf: throughput and latency of shmq, in the manner of
 * Kafka's producer and consumer perf tools, but checking every record.
 *
 * The parent only sets up the instance and topics, forks the workers,
 * waits for them and reports; all measuring happens in the workers.
 * Exit status: 0 ok, 1 failure (including any lost, duplicated or
 * reordered record), 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "perf.h"

int
main(int argc, char **argv)
{
	struct perf_instance *in = NULL;
	struct perf_result res;
	struct perf_opts o;
	int rc;

	rc = perf_parse(argc, argv, &o);
	if (rc != 0) {
		return rc > 0 ? 0 : PERF_EXIT_USAGE;
	}
	perf_signals();
	memset(&res, 0, sizeof(res));
	hist_init(&res.lat);
	hist_init(&res.ack);
	rc = perf_instance_open(&o, &in);
	if (rc == 0) {
		rc = o.mode == PERF_MODE_PINGPONG ? perf_pingpong(&o, in, &res)
		    : o.mode == PERF_MODE_BACKLOG ? perf_backlog(&o, in, &res)
		                                  : perf_stream(&o, in, &res);
	}
	if (perf_signalled) {
		perf_err("interrupted by signal %d", (int)perf_signalled);
		rc = -1;
	}
	if (rc == 0) {
		perf_report(&o, &res);
	}
	perf_instance_close(in);
	return rc == 0 ? 0 : PERF_EXIT_FAIL;
}
