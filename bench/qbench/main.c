/*
 * main.c — qbench's command line.
 *
 * Everything a run could trip over later is checked here first, so that
 * a bad command line is exit 2 with one clear line and never a half-run:
 * the variant exists, it carries messages of this size, it takes this
 * many producers, it supports this workload.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MEMCPY_DEFAULT (64u << 20)
#define MEMCPY_MAX (1ull << 30)

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: qbench --transport NAME --workload "
	    "stream|pingpong|durable\n"
	    "              [--size BYTES] [--duration SEC] [--count N]\n"
	    "              [--producers P] [--addr HOST:PORT] [--home DIR] "
	    "[--json]\n"
	    "       qbench --list\n"
	    "       qbench --limit memcpy [--size BYTES] [--duration SEC] "
	    "[--json]\n"
	    "       qbench --limit cacheline [--count N] [--json]\n"
	    "\n"
	    "  --size       message size, header included (%u..%u; "
	    "default 64;\n"
	    "               K and M suffixes are 1024 and 1048576)\n"
	    "  --duration   stream/durable: seconds the producers send "
	    "(default 0.5)\n"
	    "  --count      pingpong: round trips after %u warm-up ones "
	    "(default 100000)\n"
	    "  --producers  stream/durable: producer processes (default "
	    "1)\n"
	    "  --addr       redis variants: the server, HOST:PORT\n"
	    "  --home       shmq variants: the instance's home directory\n"
	    "  --json       one JSON line instead of a readable one\n"
	    "\n"
	    "Exit 0: verified run; 1: failed or unverified run (reason on "
	    "stderr);\n"
	    "2: bad command line.  QBENCH_CORRUPT=N makes the receiving "
	    "side flip a\n"
	    "byte of its N-th message: a self-check that such a run fails.\n",
	    QB_MIN_SIZE, QB_MAX_SIZE, QB_WARMUP);
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...);

static int
bad(const char *fmt, ...)
{
	va_list ap;

	fputs("qbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (qbench --help for usage)\n", stderr);
	return QB_EXIT_USAGE;
}

/* A whole decimal number with an optional K/M/G suffix (powers of
 * 1024); anything else is rejected, not read up to the first junk. */
static int
parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (s[0] < '0' || s[0] > '9') {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0) {
		return -1;
	}
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	}
	if (*end != '\0' || (v != 0 && mul > ~0ull / v)) {
		return -1;
	}
	*out = v * mul;
	return 0;
}

static int
parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(*out)) {
		return -1;
	}
	return 0;
}

static void
list(void)
{
	size_t n = qb_nvariants();

	for (size_t i = 0; i < n; i++) {
		const struct qb_transport *t = qb_transports[i];
		char flags[48], col[80];

		if (t == NULL) {
			continue;
		}
		qb_flags_str(t->flags, flags, sizeof flags);
		/* max=N rides in the flags column, one word, so that the
		 * columns stay: name, flags, what. */
		if (strcmp(flags, "-") == 0) {
			snprintf(col, sizeof col, "max=%zu", qb_max_size(t));
		} else {
			snprintf(col, sizeof col, "%s,max=%zu", flags,
			    qb_max_size(t));
		}
		printf("%-15s %-30s %s\n", t->name, col, t->what);
	}
}

int
main(int argc, char **argv)
{
	enum {
		O_ADDR = 256,
		O_HOME,
		O_JSON,
		O_LIST,
		O_LIMIT,
	};
	static const struct option opts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "workload", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "producers", required_argument, NULL, 'p' },
		{ "addr", required_argument, NULL, O_ADDR },
		{ "home", required_argument, NULL, O_HOME },
		{ "json", no_argument, NULL, O_JSON },
		{ "list", no_argument, NULL, O_LIST },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct qb_cfg cfg;
	const struct qb_transport *t;
	const char *workload = NULL, *limit = NULL;
	unsigned long long size = 0, count = 100000, producers = 1;
	int have_size = 0, json = 0, o;
	double duration = 0.5;

	memset(&cfg, 0, sizeof cfg);
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":t:w:s:d:n:p:h", opts, NULL)) !=
	    -1) {
		switch (o) {
		case 't':
			cfg.transport = optarg;
			break;
		case 'w':
			workload = optarg;
			break;
		case 's':
			if (parse_size(optarg, &size) != 0) {
				return bad(
				    "--size %s: not a size in bytes", optarg);
			}
			have_size = 1;
			break;
		case 'd':
			if (parse_double(optarg, &duration) != 0 ||
			    duration <= 0 || duration > QB_DURATION_MAX) {
				return bad("--duration %s: want seconds, more "
				           "than 0 and at most %.0f",
				    optarg, QB_DURATION_MAX);
			}
			break;
		case 'n':
			if (parse_size(optarg, &count) != 0 || count < 1 ||
			    count > QB_COUNT_MAX) {
				return bad("--count %s: want 1..%llu", optarg,
				    QB_COUNT_MAX);
			}
			break;
		case 'p':
			if (parse_size(optarg, &producers) != 0 ||
			    producers < 1 || producers > QB_PRODUCERS_MAX) {
				return bad("--producers %s: want 1..%u",
				    optarg, QB_PRODUCERS_MAX);
			}
			break;
		case O_ADDR:
			cfg.addr = optarg;
			break;
		case O_HOME:
			cfg.home = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case O_LIST:
			list();
			return QB_EXIT_OK;
		case O_LIMIT:
			limit = optarg;
			break;
		case 'h':
			usage(stdout);
			return QB_EXIT_OK;
		case ':':
			return bad("%s needs a value", argv[optind - 1]);
		default:
			if (optopt != 0) {
				return bad("unknown option -%c", optopt);
			}
			return bad("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return bad("unexpected argument %s", argv[optind]);
	}

	if (limit != NULL) {
		if (cfg.transport != NULL || workload != NULL) {
			return bad("--limit takes no --transport or "
			           "--workload");
		}
		if (strcmp(limit, "memcpy") == 0) {
			if (!have_size) {
				size = MEMCPY_DEFAULT;
			}
			if (size < 1 || size > MEMCPY_MAX) {
				return bad("--size %llu: memcpy wants "
				           "1..%llu",
				    size, MEMCPY_MAX);
			}
			return qb_limit_memcpy((size_t)size, duration, json);
		}
		if (strcmp(limit, "cacheline") == 0) {
			return qb_limit_cacheline(count, json);
		}
		return bad("--limit %s: want memcpy or cacheline", limit);
	}

	if (cfg.transport == NULL) {
		return bad("--transport is required (qbench --list shows "
		           "the variants)");
	}
	t = qb_transport_find(cfg.transport);
	if (t == NULL) {
		return bad("unknown transport %s (qbench --list shows the "
		           "variants built in)",
		    cfg.transport);
	}
	if (workload == NULL) {
		return bad("--workload is required: stream, pingpong or "
		           "durable");
	} else if (strcmp(workload, "stream") == 0) {
		cfg.workload = QB_STREAM;
	} else if (strcmp(workload, "pingpong") == 0) {
		cfg.workload = QB_PINGPONG;
	} else if (strcmp(workload, "durable") == 0) {
		cfg.workload = QB_DURABLE;
	} else {
		return bad("--workload %s: want stream, pingpong or durable",
		    workload);
	}
	if (!have_size) {
		size = 64;
	}
	if (size < QB_MIN_SIZE || size > qb_max_size(t)) {
		return bad("--size %llu: %s carries %u..%zu bytes", size,
		    t->name, QB_MIN_SIZE, qb_max_size(t));
	}
	if ((t->flags & QB_F_NO_STREAM) && cfg.workload != QB_PINGPONG) {
		return bad("%s runs pingpong only", t->name);
	}
	if (cfg.workload == QB_DURABLE && !(t->flags & QB_F_DURABLE)) {
		return bad("%s has no durable mode (sends are not acked on "
		           "disk)",
		    t->name);
	}
	if (producers > 1 && cfg.workload == QB_PINGPONG) {
		return bad("pingpong has one pinger: --producers must be 1");
	}
	if (producers > 1 && !(t->flags & QB_F_MULTI)) {
		return bad(
		    "%s takes one producer, not %llu", t->name, producers);
	}
	cfg.size = (size_t)size;
	cfg.duration_s = duration;
	cfg.count = count;
	cfg.producers = (unsigned)producers;
	return qb_run(&cfg, t, json);
}
