/*
 * produce.c — `shmqctl produce`: one record per line of stdin.
 *
 * Lines are read with getline, so their length is bounded only by the
 * topic's record limit (a quarter of the ring).  The trailing newline
 * is not part of the record; a last line without one still is a record.
 * With --key-separator the bytes before the first separator are the
 * key and the rest the value; a line without the separator has no key
 * (kcat's -K does the same).  Each record is sent, and acknowledged at
 * the --acks level, before the next line is read, so a failure stops
 * the run with every earlier record in place and none after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "shmqctl.h"

struct produce {
	const char *topic;
	const char *sep; /* --key-separator, or NULL */
	size_t sep_len;
	int32_t partition;
	int acks;
	int report; /* --report-acks */
	const char *home; /* the instance, for hints */
	const char *idempotent; /* --idempotent NAME, or NULL */
	int retries; /* --retries N|max (-1) */
};

/* The library's message can only say HOME: name this instance's. */
static void
produce_hint_replicator(const struct produce *pr, int err)
{
	if (err == SHMQ_ENOREPLICATOR && pr->acks != SHMQ_ACKS_ALL) {
		ctl_note("hint: start it with: shmq-replicator --home %s",
		    pr->home);
	} else if (err == SHMQ_ENOREPLICATOR) {
		ctl_note("hint: --acks all needs replication, which does not "
		         "exist yet; --acks durable waits for the local disk");
	}
}

static int
produce_parse_acks(const char *s, int *acks)
{
	static const char *const names[] = { "none", "leader", "durable",
		"all" };
	static const int levels[] = { SHMQ_ACKS_NONE, SHMQ_ACKS_LEADER,
		SHMQ_ACKS_DURABLE, SHMQ_ACKS_ALL };
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*acks = levels[i];
			return 0;
		}
	}
	return -1;
}

/* -1 to go on, else an exit status (0 after --help). */
static int
produce_options(struct ctl *ctl, const struct ctl_cmd *cmd, struct produce *pr,
    int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "partition", required_argument, NULL, 'p' },
		{ "key-separator", required_argument, NULL, 'K' },
		{ "acks", required_argument, NULL, 'a' },
		{ "report-acks", no_argument, NULL, 'r' },
		{ "idempotent", required_argument, NULL, 'I' },
		{ "retries", required_argument, NULL, 'R' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	uint32_t p;
	int c, rc;

	ctl_getopt_reset();
	while ((c = getopt_long(
	            argc, argv, ":p:K:a:rI:R:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (ctl_parse_u32(optarg, &p) != 0 || p > INT32_MAX) {
				return ctl_usage_error(
				    cmd, "bad --partition '%s'", optarg);
			}
			pr->partition = (int32_t)p;
			break;
		case 'K':
			if (optarg[0] == '\0') {
				return ctl_usage_error(
				    cmd, "--key-separator must not be empty");
			}
			pr->sep = optarg;
			pr->sep_len = strlen(optarg);
			break;
		case 'a':
			if (produce_parse_acks(optarg, &pr->acks) != 0) {
				return ctl_usage_error(cmd,
				    "--acks must be none, leader, durable or "
				    "all");
			}
			break;
		case 'r':
			pr->report = 1;
			break;
		case 'I':
			if (!ctl_name_ok(optarg)) {
				return ctl_usage_error(
				    cmd, "bad --idempotent name '%s'", optarg);
			}
			pr->idempotent = optarg;
			break;
		case 'R':
			if (strcmp(optarg, "max") == 0) {
				pr->retries = -1;
			} else if (ctl_parse_u32(optarg, &p) != 0 ||
			    p > INT32_MAX) {
				return ctl_usage_error(
				    cmd, "--retries must be a count or max");
			} else {
				pr->retries = (int)p;
			}
			break;
		default:
			rc = ctl_common_option(ctl, cmd, c, argv);
			if (rc >= 0) {
				return rc;
			}
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "TOPIC", &pr->topic)) != 0) {
		return rc;
	}
	if (pr->retries != 0 && pr->idempotent == NULL) {
		/* A retry of a DURABLE send that failed after appending
		 * would append the line twice: only with idempotence. */
		return ctl_usage_error(cmd, "--retries needs --idempotent");
	}
	return -1;
}

/* Split a line into key and value. */
static void
produce_split(const struct produce *pr, char *line, size_t len, shmq_msg_t *m)
{
	char *sep = NULL;

	if (pr->sep != NULL) {
		sep = memmem(line, len, pr->sep, pr->sep_len);
	}
	if (sep == NULL) {
		m->key = NULL;
		m->key_len = 0;
		m->value = line;
		m->value_len = len;
		return;
	}
	m->key = line;
	m->key_len = (size_t)(sep - line);
	m->value = sep + pr->sep_len;
	m->value_len = len - m->key_len - pr->sep_len;
}

static void
produce_report(const struct produce *pr, const shmq_msg_t *m, int has_key)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "topic", pr->topic);
	json_kint(&j, "partition", m->partition);
	json_kuint(&j, "offset", m->offset);
	if (pr->idempotent != NULL) {
		json_kuint(&j, "sequence", m->sequence);
		json_key(&j, "duplicate");
		json_bool(&j, (m->flags & SHMQ_MSG_DUPLICATE) != 0);
	}
	json_key(&j, "key");
	json_strn(&j, has_key ? m->key : NULL, m->key_len);
	json_key(&j, "value");
	json_strn(&j, m->value, m->value_len);
	json_end_object(&j);
}

static int
produce_lines(const struct produce *pr, shmq_producer_t *p)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	shmq_msg_t m;
	int rc = CTL_EXIT_OK, err;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		size_t len = (size_t)n;

		lineno++;
		if (len > 0 && line[len - 1] == '\n') {
			len--;
		}
		memset(&m, 0, sizeof(m));
		produce_split(pr, line, len, &m);
		m.partition = pr->partition;
		err = shmq_send(p, &m);
		if (err != 0) {
			rc = ctl_fail(
			    err, "produce %s: line %zu", pr->topic, lineno);
			/* A persistent ring full of what is not on disk. */
			produce_hint_replicator(pr, err);
			break;
		}
		if (pr->report) {
			produce_report(pr, &m, m.key != NULL);
		}
	}
	if (rc == CTL_EXIT_OK && ferror(stdin)) {
		rc = ctl_fail(-errno, "produce %s: read stdin", pr->topic);
	}
	free(line);
	return rc;
}

int
produce_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct produce pr;
	shmq_producer_options_t opts;
	shmq_producer_t *p = NULL;
	int rc;

	memset(&pr, 0, sizeof(pr));
	pr.partition = SHMQ_PARTITION_ANY;
	pr.acks = SHMQ_ACKS_LEADER;
	if ((rc = produce_options(ctl, cmd, &pr, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	rc = ctl_check_partition(ctl, pr.topic,
	    pr.partition < 0 ? UINT32_MAX : (uint32_t)pr.partition, NULL);
	if (rc != 0) {
		return rc;
	}
	pr.home = shmq_home(ctl->q);
	shmq_producer_options_init(&opts);
	opts.acks = pr.acks;
	if (pr.idempotent != NULL) {
		opts.flags |= SHMQ_PRODUCER_IDEMPOTENT;
		opts.producer_name = pr.idempotent;
		opts.retries = pr.retries;
	}
	rc = shmq_producer_open(ctl->q, pr.topic, &opts, &p);
	if (rc != 0) {
		ctl_fail(rc, "produce %s", pr.topic);
		produce_hint_replicator(&pr, rc);
		if (rc == -EINVAL && opts.acks == SHMQ_ACKS_DURABLE) {
			ctl_note("hint: --acks durable needs a persistent "
			         "topic (topic create --durability "
			         "persistent)");
		}
		return CTL_EXIT_FAIL;
	}
	/* Acks are for whoever reads them as they happen: a line each. */
	if (pr.report) {
		setvbuf(stdout, NULL, _IOLBF, 0);
	}
	rc = produce_lines(&pr, p);
	shmq_producer_close(p);
	return rc;
}
