/*
 * opts.c — shmq-perf's command line.
 *
 * Every number is checked completely (no trailing junk, no overflow, in
 * range) and a bad one is a usage error with exit code 2, so a typo can
 * never silently turn into a default and a misleading benchmark.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmq.h>

#include "perf.h"

/* Defaults when neither --count nor --duration is given: long enough to
 * get past start-up effects, short enough for a laptop. */
#define PERF_COUNT_STREAM 1000000u
#define PERF_COUNT_PINGPONG 100000u
#define PERF_RECORD_SIZE_DEFAULT 64u
/* A value larger than this cannot fit the largest ring anyway. */
#define PERF_RECORD_SIZE_MAX (SHMQ_RING_SIZE_MAX / SHMQ_RECORD_FRACTION)
/* Much larger batches only grow latency; the library caps a reservation
 * at a quarter ring anyway. */
#define PERF_BATCH_MAX 65536u

enum {
	OPT_HOME = 256,
	OPT_TOPIC,
	OPT_PARTITIONS,
	OPT_RING_SIZE,
	OPT_PRODUCERS,
	OPT_CONSUMERS,
	OPT_RECORD_SIZE,
	OPT_COUNT,
	OPT_DURATION,
	OPT_BATCH,
	OPT_ACKS,
	OPT_IDLE,
	OPT_SPIN_US,
	OPT_DURABILITY,
	OPT_FSYNC,
	OPT_MODE,
	OPT_EXCLUSIVE,
	OPT_ZERO_COPY,
	OPT_JSON,
	OPT_NO_PIN,
	OPT_VERSION,
};

static const struct option perf_longopts[] = {
	{ "home", required_argument, NULL, OPT_HOME },
	{ "topic", required_argument, NULL, OPT_TOPIC },
	{ "partitions", required_argument, NULL, OPT_PARTITIONS },
	{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
	{ "producers", required_argument, NULL, OPT_PRODUCERS },
	{ "consumers", required_argument, NULL, OPT_CONSUMERS },
	{ "record-size", required_argument, NULL, OPT_RECORD_SIZE },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "acks", required_argument, NULL, OPT_ACKS },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "spin-us", required_argument, NULL, OPT_SPIN_US },
	{ "durability", required_argument, NULL, OPT_DURABILITY },
	{ "fsync", required_argument, NULL, OPT_FSYNC },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "exclusive", no_argument, NULL, OPT_EXCLUSIVE },
	{ "zero-copy", no_argument, NULL, OPT_ZERO_COPY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-pin", no_argument, NULL, OPT_NO_PIN },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char perf_usage_text[] =
    "usage: shmq-perf [options]\n"
    "  --mode stream|pingpong|backlog  throughput+latency, round trips,\n"
    "                        or reading a persistent backlog (stream)\n"
    "  --home DIR              instance (default: a temporary one)\n"
    "  --topic NAME            topic (default: a temporary one)\n"
    "  --partitions N          partitions of a new topic (1)\n"
    "  --ring-size BYTES       ring per partition, k/m/g suffix (16m)\n"
    "  --producers N           producer processes (1)\n"
    "  --consumers N           consumer processes, group \"perf\" (1)\n"
    "  --record-size BYTES     value size, >= 16 (64)\n"
    "  --count N               records per producer, or round trips\n"
    "  --duration SEC          run for SEC seconds instead\n"
    "  --batch N               records per shmq_send_batch (1)\n"
    "  --acks none|leader|durable|all   (leader)\n"
    "  --idle park|spin        consumer idle strategy (park)\n"
    "  --spin-us US            with park: spin this long first (50)\n"
    "  --durability volatile|persistent   of the topic perf creates,\n"
    "                        whatever the library's default; a persistent\n"
    "                        one gets a persister (volatile)\n"
    "  --fsync always|never|interval=MS   persistent topics (always)\n"
    "  --exclusive             single-writer producer fast path\n"
    "  --zero-copy             reserve/commit and peek/release\n"
    "  --no-pin                do not pin processes to CPUs\n"
    "  --json                  end with one JSON line\n"
    "  --version, -h/--help\n";

static int
usage_error(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "shmq-perf: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\nTry 'shmq-perf --help'.\n");
	return -PERF_EXIT_USAGE;
}

/* Binary suffixes, as ring sizes are powers of two. */
static int
parse_u64(const char *name, const char *s, uint64_t min, uint64_t max,
    int suffix, uint64_t *out)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *s == '-' || errno != 0) {
		return usage_error("%s: '%s' is not a number", name, s);
	}
	if (suffix && *end != '\0' && end[1] == '\0') {
		const char *p = strchr("kKmMgG", *end);

		if (p != NULL) {
			shift = 10u * (unsigned)(1 + (p - "kKmMgG") / 2);
			end++;
		}
	}
	if (*end != '\0') {
		return usage_error("%s: '%s' is not a number", name, s);
	}
	if (shift != 0 && v > (UINT64_MAX >> shift)) {
		return usage_error("%s: '%s' is out of range", name, s);
	}
	v <<= shift;
	if (v < min || v > max) {
		return usage_error("%s: '%s' is out of range", name, s);
	}
	*out = v;
	return 0;
}

static int
parse_uint(
    const char *name, const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;
	int rc;

	rc = parse_u64(name, s, min, max, 0, &v);
	if (rc == 0) {
		*out = (unsigned)v;
	}
	return rc;
}

static int
parse_word(const char *name, const char *s, const char *const *words, int *out)
{
	int i;

	for (i = 0; words[i] != NULL; i++) {
		if (strcmp(s, words[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return usage_error("%s: unknown value '%s'", name, s);
}

static int
parse_duration(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v <= 0.0 || v > 86400.0) {
		return usage_error("%s: '%s' is not a number of seconds "
		                   "(0 < SEC <= 86400)",
		    "--duration", s);
	}
	*out = v;
	return 0;
}

static void
perf_defaults(struct perf_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->partitions = 1;
	o->producers = 1;
	o->consumers = 1;
	o->record_size = PERF_RECORD_SIZE_DEFAULT;
	o->batch = 1;
	o->acks = SHMQ_ACKS_LEADER;
	o->idle = SHMQ_IDLE_SPIN_PARK;
	o->spin_us = PERF_SPIN_US_DEFAULT;
	o->mode = PERF_MODE_STREAM;
	o->pin = 1;
	/* Explicit, not the library's default (which may change): a run
	 * measures the same thing until --durability says otherwise. */
	o->durability = SHMQ_DURABILITY_VOLATILE;
	o->fsync = SHMQ_FSYNC_ALWAYS;
}

/* The words of --durability and --fsync, and the values they stand
 * for; the others below are in enum order, so the index is the value. */
static const char *const durability_words[] = { "volatile", "persistent",
	NULL };
static const int durability_values[] = { SHMQ_DURABILITY_VOLATILE,
	SHMQ_DURABILITY_PERSISTENT };
static const char *const fsync_words[] = { "always", "never", NULL };
static const int fsync_values[] = { SHMQ_FSYNC_ALWAYS, SHMQ_FSYNC_NEVER };
static const char *const acks_words[] = { "none", "leader", "durable", "all",
	NULL };
static const char *const idle_words[] = { "park", "spin", NULL };
static const char *const mode_words[] = { "stream", "pingpong", "backlog",
	NULL };

static int
perf_option(int c, const char *arg, struct perf_opts *o)
{
	unsigned u;
	int rc;
	int i;

	switch (c) {
	case OPT_HOME:
		o->home = arg;
		return 0;
	case OPT_TOPIC:
		o->topic = arg;
		return 0;
	case OPT_PARTITIONS:
		rc = parse_uint(
		    "--partitions", arg, 1, SHMQ_PARTITIONS_MAX, &u);
		if (rc == 0) {
			o->partitions = u;
		}
		return rc;
	case OPT_RING_SIZE:
		return parse_u64("--ring-size", arg, SHMQ_RING_SIZE_MIN,
		    SHMQ_RING_SIZE_MAX, 1, &o->ring_size);
	case OPT_PRODUCERS:
		return parse_uint(
		    "--producers", arg, 1, PERF_PRODUCERS_MAX, &o->producers);
	case OPT_CONSUMERS:
		return parse_uint(
		    "--consumers", arg, 0, PERF_CONSUMERS_MAX, &o->consumers);
	case OPT_RECORD_SIZE:
		return parse_u64("--record-size", arg, PERF_HDR_BYTES,
		    PERF_RECORD_SIZE_MAX, 1, &o->record_size);
	case OPT_COUNT:
		return parse_u64(
		    "--count", arg, 1, PERF_SEQ_MASK, 0, &o->count);
	case OPT_DURATION:
		return parse_duration(arg, &o->duration);
	case OPT_BATCH:
		return parse_uint(
		    "--batch", arg, 1, PERF_BATCH_MAX, &o->batch);
	case OPT_ACKS:
		return parse_word("--acks", arg, acks_words, &o->acks);
	case OPT_IDLE:
		rc = parse_word("--idle", arg, idle_words, &o->idle);
		o->idle =
		    o->idle == 1 ? SHMQ_IDLE_BUSY_SPIN : SHMQ_IDLE_SPIN_PARK;
		return rc;
	case OPT_SPIN_US:
		return parse_uint(
		    "--spin-us", arg, 0, PERF_SPIN_US_MAX, &o->spin_us);
	case OPT_DURABILITY:
		rc = parse_word("--durability", arg, durability_words, &i);
		if (rc == 0) {
			o->durability = durability_values[i];
		}
		return rc;
	case OPT_FSYNC:
		if (strncmp(arg, "interval=", 9) == 0) {
			o->fsync = SHMQ_FSYNC_INTERVAL;
			return parse_uint("--fsync interval", arg + 9, 1,
			    60000, &o->fsync_interval_ms);
		}
		rc = parse_word("--fsync", arg, fsync_words, &i);
		if (rc == 0) {
			o->fsync = fsync_values[i];
		}
		return rc;
	case OPT_MODE:
		return parse_word("--mode", arg, mode_words, &o->mode);
	case OPT_EXCLUSIVE:
		o->exclusive = 1;
		return 0;
	case OPT_ZERO_COPY:
		o->zero_copy = 1;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_NO_PIN:
		o->pin = 0;
		return 0;
	default:
		return -PERF_EXIT_USAGE;
	}
}

/* Combinations that would measure something other than what was
 * asked for are refused rather than quietly adjusted. */
static int
perf_check(struct perf_opts *o)
{
	if (o->ring_size != 0 && (o->ring_size & (o->ring_size - 1)) != 0) {
		return usage_error(
		    "%s: %s", "--ring-size", "must be a power of two");
	}
	if (o->exclusive && o->producers > 1) {
		return usage_error(
		    "%s: %s", "--exclusive", "needs exactly one producer");
	}
	if (o->zero_copy && o->batch > 1) {
		return usage_error("%s: %s", "--zero-copy",
		    "reserves one record at a time; use --batch 1");
	}
	if (o->mode == PERF_MODE_PINGPONG &&
	    (o->producers != 1 || o->consumers != 1 || o->batch != 1)) {
		return usage_error("%s: %s", "--mode pingpong",
		    "uses one record in flight: no --producers, --consumers "
		    "or --batch");
	}
	if (o->mode == PERF_MODE_BACKLOG && o->consumers == 0) {
		return usage_error("%s: %s", "--mode backlog",
		    "measures reading: needs at least one consumer");
	}
	if (o->count == 0 && o->duration == 0.0) {
		o->count = o->mode == PERF_MODE_PINGPONG ? PERF_COUNT_PINGPONG
		                                         : PERF_COUNT_STREAM;
	}
	return 0;
}

/*
 * Fill *o from argv.  Returns 0 to run, 1 when --help or --version was
 * printed (exit 0), or -PERF_EXIT_USAGE after printing why.
 */
int
perf_parse(int argc, char **argv, struct perf_opts *o)
{
	int c;
	int rc;

	perf_defaults(o);
	opterr = 0;
	while (
	    (c = getopt_long(argc, argv, ":h", perf_longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(perf_usage_text, stdout);
			return 1;
		}
		if (c == OPT_VERSION) {
			printf("shmq-perf %s\n", shmq_version());
			return 1;
		}
		if (c == '?' || c == ':') {
			return usage_error(c == '?' ? "unknown option '%s'%s"
			                            : "option '%s' needs a "
			                              "value%s",
			    argv[optind - 1], "");
		}
		rc = perf_option(c, optarg, o);
		if (rc != 0) {
			return rc;
		}
	}
	if (optind < argc) {
		return usage_error(
		    "unexpected argument '%s'%s", argv[optind], "");
	}
	return perf_check(o);
}
