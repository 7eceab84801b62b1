/*
 * group_consumer.c — a member of a consumer group, committing by hand.
 *
 *   group_consumer [-d HOME] [-g GROUP] [-n MAX] [-i IDLE_MS] TOPIC
 *
 * Run several: the group spreads the topic's partitions over them and
 * moves partitions when members come and go.  Each record is processed
 * first and its offset committed after, so a crash between the two
 * delivers the record again to whoever takes the partition over — at
 * least once, never lost.  Stops after MAX records (default: no limit)
 * or IDLE_MS without a record (default 2000), then prints a summary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <shmq.h>

/* Commit every so many records: a commit per record would be exact but
 * slow; a crash re-delivers at most this many per partition. */
#define COMMIT_EVERY 100

static int
fail(const char *what, int err)
{
	fprintf(stderr, "group_consumer: %s: %s\n", what, shmq_strerror(err));
	return 1;
}

static int
consume(shmq_consumer_t *c, long max, int idle_ms, long *per_partition,
    long *total)
{
	char buf[4096]; /* key + value of one record */
	shmq_record_t r;
	long pending = 0;
	int rc;

	while (max <= 0 || *total < max) {
		rc = shmq_recv(c, buf, sizeof(buf), &r, idle_ms);
		if (rc == -EAGAIN) {
			break; /* idle: the producers are done */
		}
		if (rc != 0) {
			return fail("shmq_recv", rc);
		}
		per_partition[r.partition]++; /* "process" the record */
		(*total)++;
		if (++pending == COMMIT_EVERY) {
			rc = shmq_consumer_commit(c);
			if (rc != 0) {
				return fail("shmq_consumer_commit", rc);
			}
			pending = 0;
		}
	}
	/* What was processed since the last commit. */
	rc = pending > 0 ? shmq_consumer_commit(c) : 0;
	return rc == 0 ? 0 : fail("shmq_consumer_commit", rc);
}

/* One line: the records read from each partition. */
static void
summary(const long *per_partition, long total)
{
	const char *sep = " from partition";
	int i;

	printf("consumer %ld: %ld records", (long)getpid(), total);
	for (i = 0; i < SHMQ_PARTITIONS_MAX; i++) {
		if (per_partition[i] > 0) {
			printf("%s %d (%ld)", sep, i, per_partition[i]);
			sep = ",";
		}
	}
	printf("\n");
}

int
main(int argc, char **argv)
{
	static long per_partition[SHMQ_PARTITIONS_MAX];
	shmq_consumer_options_t co;
	shmq_consumer_t *c = NULL;
	shmq_t *q = NULL;
	const char *home = NULL;
	long max = 0, total = 0;
	int idle_ms = 2000;
	int opt, rc;

	shmq_consumer_options_init(&co);
	co.group = "example";
	co.reset = SHMQ_RESET_EARLIEST; /* a new group reads from the start */
	while ((opt = getopt(argc, argv, "d:g:n:i:")) != -1) {
		if (opt == 'd') {
			home = optarg;
		} else if (opt == 'g') {
			co.group = optarg;
		} else if (opt == 'n') {
			max = atol(optarg);
		} else if (opt == 'i') {
			idle_ms = atoi(optarg);
		} else {
			goto usage;
		}
	}
	if (optind != argc - 1) {
		goto usage;
	}

	rc = shmq_attach(home, NULL, &q);
	if (rc != 0) {
		return fail("shmq_attach", rc);
	}
	rc = shmq_consumer_open(q, argv[optind], &co, &c);
	if (rc == 0) {
		rc = consume(c, max, idle_ms, per_partition, &total);
		summary(per_partition, total);
	} else {
		rc = fail("shmq_consumer_open", rc);
	}
	shmq_consumer_close(c); /* leaves the group: partitions move on */
	shmq_detach(q);
	return rc;

usage:
	fprintf(stderr,
	    "usage: group_consumer [-d HOME] [-g GROUP] [-n MAX] "
	    "[-i IDLE_MS] TOPIC\n");
	return 2;
}
