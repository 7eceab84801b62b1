/*
 * consume.c — `shmqctl consume`: options, partitions and seeks.
 *
 * Standalone, the consumer is assigned every partition (or the one
 * given); with --group it joins the group and reads what the group
 * assigns it.  --from then seeks each partition read at the start.
 * read.c prints the records; after a SIGINT or SIGTERM the consumer
 * commits and closes, and the signal is raised again so that the exit
 * status says how the process ended.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "consume.h"

#define CONSUME_BUF_INIT (64 * 1024)
/* Without --timeout-ms, stop after a second without records, so that a
 * script that reads what is there ends. */
#define CONSUME_TIMEOUT_DEFAULT_MS 1000

static int
consume_parse_from(struct consume *cs, const char *s)
{
	if (strcmp(s, "earliest") == 0 || strcmp(s, "beginning") == 0) {
		cs->from = FROM_EARLIEST;
	} else if (strcmp(s, "latest") == 0 || strcmp(s, "end") == 0) {
		cs->from = FROM_LATEST;
	} else if (s[0] == '-' && ctl_parse_u64(s + 1, &cs->from_n) == 0) {
		cs->from = FROM_TAIL;
	} else if (ctl_parse_u64(s, &cs->from_n) == 0) {
		cs->from = FROM_OFFSET;
	} else {
		return -1;
	}
	return 0;
}

/* One option of consume: -1 to go on, -2 if it is not consume's own,
 * else an exit status. */
static int
consume_option(
    struct consume *cs, const struct ctl_cmd *cmd, int c, int *format_set)
{
	switch (c) {
	case 'g':
		cs->group = optarg;
		return -1;
	case 'p':
		if (ctl_parse_u32(optarg, &cs->partition) != 0 ||
		    cs->partition == UINT32_MAX) {
			return ctl_usage_error(
			    cmd, "bad --partition '%s'", optarg);
		}
		return -1;
	case 'o':
		if (consume_parse_from(cs, optarg) != 0) {
			return ctl_usage_error(cmd,
			    "--from must be earliest, latest, OFFSET or -N");
		}
		return -1;
	case 'c':
		if (ctl_parse_u64(optarg, &cs->count) != 0) {
			return ctl_usage_error(
			    cmd, "bad --count '%s'", optarg);
		}
		cs->has_count = 1;
		return -1;
	case 't':
		if (ctl_parse_timeout(optarg, &cs->timeout_ms) != 0) {
			return ctl_usage_error(cmd,
			    "--timeout-ms must be -1 or 0..%d", INT32_MAX);
		}
		return -1;
	case 'f':
		if (strcmp(optarg, "text") != 0 &&
		    strcmp(optarg, "json") != 0) {
			return ctl_usage_error(
			    cmd, "--format must be text or json");
		}
		cs->json = strcmp(optarg, "json") == 0;
		*format_set = 1;
		return -1;
	case 'k':
		cs->print_key = 1;
		return -1;
	default:
		return -2;
	}
}

/* -1 to go on, else an exit status (0 after --help). */
static int
consume_options(struct ctl *ctl, const struct ctl_cmd *cmd, struct consume *cs,
    int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "partition", required_argument, NULL, 'p' },
		{ "from", required_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "print-key", no_argument, NULL, 'k' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc, format_set = 0;

	ctl_getopt_reset();
	while ((c = getopt_long(
	            argc, argv, ":g:p:o:c:t:f:kh", longopts, NULL)) != -1) {
		rc = consume_option(cs, cmd, c, &format_set);
		if (rc == -2) {
			rc = ctl_common_option(ctl, cmd, c, argv);
		}
		if (rc >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "TOPIC", &cs->topic)) != 0) {
		return rc;
	}
	if (cs->group != NULL && cs->partition != UINT32_MAX) {
		return ctl_usage_error(cmd,
		    "--partition cannot be used with --group (the group "
		    "assigns partitions)");
	}
	/* The global --json picks the JSON format unless told otherwise. */
	if (!format_set && ctl->json) {
		cs->json = 1;
	}
	return -1;
}

/* Where --from puts `partition`. */
static int
consume_seek_one(struct ctl *ctl, struct consume *cs, uint32_t partition)
{
	shmq_partition_info_t info;
	uint64_t off;
	int rc;

	switch (cs->from) {
	case FROM_EARLIEST:
		return shmq_seek_to(cs->c, partition, SHMQ_SEEK_BEGINNING);
	case FROM_LATEST:
		return shmq_seek_to(cs->c, partition, SHMQ_SEEK_END);
	case FROM_OFFSET:
	case FROM_TAIL:
		break;
	default:
		return 0;
	}
	rc = shmq_partition_info(ctl->q, cs->topic, partition, &info);
	if (rc != 0) {
		return rc;
	}
	if (cs->from == FROM_TAIL) {
		off = info.end - info.log_start > cs->from_n
		    ? info.end - cs->from_n
		    : info.log_start;
	} else {
		/* Clamp, and say so: past the end the library would apply
		 * the reset policy and start over at the log start. */
		off = cs->from_n;
		if (off < info.log_start) {
			off = info.log_start;
			ctl_note("consume %s: partition %u: offset %llu is "
			         "before the log start; starting at %llu",
			    cs->topic, partition,
			    (unsigned long long)cs->from_n,
			    (unsigned long long)off);
		} else if (off > info.end) {
			off = info.end;
			ctl_note("consume %s: partition %u: offset %llu is "
			         "past the end; waiting at %llu",
			    cs->topic, partition,
			    (unsigned long long)cs->from_n,
			    (unsigned long long)off);
		}
	}
	return shmq_seek(cs->c, partition, off);
}

static int
consume_seek(struct ctl *ctl, struct consume *cs)
{
	uint32_t parts[SHMQ_PARTITIONS_MAX];
	ssize_t n, i;
	int rc;

	if (cs->from == FROM_DEFAULT) {
		return 0;
	}
	n = shmq_assignment(cs->c, parts, SHMQ_PARTITIONS_MAX);
	if (n < 0) {
		return ctl_fail((int)n, "consume %s: assignment", cs->topic);
	}
	for (i = 0; i < n && i < SHMQ_PARTITIONS_MAX; i++) {
		rc = consume_seek_one(ctl, cs, parts[i]);
		if (rc != 0) {
			return ctl_fail(rc, "consume %s: seek partition %u",
			    cs->topic, parts[i]);
		}
	}
	return 0;
}

static int
consume_open(struct ctl *ctl, struct consume *cs)
{
	shmq_consumer_options_t opts;
	uint32_t parts[SHMQ_PARTITIONS_MAX];
	uint32_t i, n;
	int rc;

	rc = ctl_check_partition(ctl, cs->topic, cs->partition, &n);
	if (rc != 0) {
		return rc;
	}
	shmq_consumer_options_init(&opts);
	opts.group = cs->group;
	opts.reset = SHMQ_RESET_EARLIEST;
	rc = shmq_consumer_open(ctl->q, cs->topic, &opts, &cs->c);
	if (rc != 0) {
		return ctl_fail(rc, "consume %s%s%s", cs->topic,
		    cs->group ? ": join group " : "",
		    cs->group ? cs->group : "");
	}
	if (cs->group == NULL) {
		if (cs->partition != UINT32_MAX) {
			parts[0] = cs->partition;
			n = 1;
		} else {
			for (i = 0; i < n && i < SHMQ_PARTITIONS_MAX; i++) {
				parts[i] = i;
			}
		}
		rc = shmq_assign(cs->c, parts, n);
		if (rc != 0) {
			return ctl_fail(rc, "consume %s: assign", cs->topic);
		}
	}
	return consume_seek(ctl, cs);
}

int
consume_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct consume cs;
	int rc, sig;

	memset(&cs, 0, sizeof(cs));
	cs.partition = UINT32_MAX;
	cs.timeout_ms = CONSUME_TIMEOUT_DEFAULT_MS;
	if ((rc = consume_options(ctl, cmd, &cs, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	cs.cap = CONSUME_BUF_INIT;
	if ((cs.buf = malloc(cs.cap)) == NULL) {
		return ctl_fail(-ENOMEM, "consume %s", cs.topic);
	}
	consume_catch_signals();
	rc = consume_open(ctl, &cs);
	if (rc == 0) {
		rc = consume_loop(&cs);
	}
	shmq_consumer_close(cs.c);
	free(cs.buf);
	if ((sig = consume_stop_signal()) != 0) {
		/* Die of the signal, as the shell expects, once the
		 * instance is let go. */
		shmq_detach(ctl->q);
		ctl->q = NULL;
		fflush(stdout);
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return rc;
}
