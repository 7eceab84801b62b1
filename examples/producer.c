/*
 * producer.c — send keyed records to a topic and print where they went.
 *
 *   producer [-d HOME] [-p PARTITIONS] [-v] TOPIC [COUNT]
 *
 * HOME defaults to $SHMQ_HOME.  The topic is created with PARTITIONS
 * partitions (default 3) unless it exists already.  Records with the
 * same key always land in the same partition, in the order sent — the
 * ordering guarantee Kafka gives per key.
 *
 * The topic is persistent (the default): shmq-replicator writes it to
 * disk, and its ring reuses space only once that is done.  Without a
 * replicator the first ring's worth (16 MiB per partition) goes
 * through, then shmq_send fails with SHMQ_ENOREPLICATOR.  -v creates a
 * volatile topic instead: shared memory only, no replicator needed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <shmq.h>

/* 100 distinct keys: enough to spread over the partitions, few enough
 * that each key gets many records. */
#define KEYS 100

static int
fail(const char *what, int err)
{
	fprintf(stderr, "producer: %s: %s\n", what, shmq_strerror(err));
	return 1;
}

/* Send `count` records; count[p], first[p] and last[p] summarise each
 * partition p.  Returns 0 or the failed send's error. */
static int
send_all(shmq_producer_t *p, long count, long *sent, uint64_t *first,
    uint64_t *last)
{
	char key[32];
	char value[64];
	shmq_msg_t m = { 0 };
	long i;
	int rc;

	for (i = 0; i < count; i++) {
		m.key = key;
		m.key_len =
		    (size_t)snprintf(key, sizeof(key), "key-%ld", i % KEYS);
		m.value = value;
		m.value_len =
		    (size_t)snprintf(value, sizeof(value), "record %ld", i);
		m.partition = SHMQ_PARTITION_ANY; /* choose by key */
		m.timestamp = 0; /* now */
		rc = shmq_send(p, &m);
		if (rc != 0) {
			fail("shmq_send", rc);
			return rc;
		}
		if (sent[m.partition]++ == 0) {
			first[m.partition] = m.offset;
		}
		last[m.partition] = m.offset;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static long sent[SHMQ_PARTITIONS_MAX];
	static uint64_t first[SHMQ_PARTITIONS_MAX], last[SHMQ_PARTITIONS_MAX];
	shmq_topic_config_t cfg;
	shmq_producer_t *p = NULL;
	shmq_t *q = NULL;
	const char *home = NULL;
	long count = 1000;
	uint32_t i;
	int opt, rc;

	shmq_topic_config_init(&cfg);
	cfg.partitions = 3;
	while ((opt = getopt(argc, argv, "d:p:v")) != -1) {
		if (opt == 'd') {
			home = optarg;
		} else if (opt == 'p') {
			cfg.partitions = (uint32_t)strtoul(optarg, NULL, 10);
		} else if (opt == 'v') {
			cfg.durability = SHMQ_DURABILITY_VOLATILE;
		} else {
			goto usage;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		goto usage;
	}
	if (argc - optind == 2 && (count = atol(argv[optind + 1])) < 0) {
		goto usage;
	}

	rc = shmq_attach(home, NULL, &q); /* NULL: $SHMQ_HOME */
	if (rc != 0) {
		return fail("shmq_attach", rc);
	}
	rc = shmq_topic_create(q, argv[optind], &cfg);
	if (rc != 0 && rc != -EEXIST) { /* an existing topic is fine */
		shmq_detach(q);
		return fail("shmq_topic_create", rc);
	}
	rc = shmq_producer_open(q, argv[optind], NULL, &p);
	if (rc == 0) {
		rc = send_all(p, count, sent, first, last);
		if (rc == SHMQ_ENOREPLICATOR) {
			fprintf(stderr,
			    "producer: start it with: shmq-replicator "
			    "--home %s (or use -v for a volatile topic)\n",
			    shmq_home(q));
		}
		rc = rc != 0;
	} else {
		rc = fail("shmq_producer_open", rc);
	}
	for (i = 0; i < SHMQ_PARTITIONS_MAX && rc == 0; i++) {
		if (sent[i] > 0) {
			printf(
			    "partition %u: %ld records, offsets %llu..%llu\n",
			    i, sent[i], (unsigned long long)first[i],
			    (unsigned long long)last[i]);
		}
	}
	shmq_producer_close(p);
	shmq_detach(q); /* also closes anything left open */
	return rc;

usage:
	fprintf(stderr,
	    "usage: producer [-d HOME] [-p PARTITIONS] [-v] TOPIC "
	    "[COUNT]\n");
	return 2;
}
