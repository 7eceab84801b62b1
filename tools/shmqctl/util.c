/*
 * util.c — diagnostics, attaching and option parsing for shmqctl.
 *
 * Every message goes to stderr in one shape, "shmqctl: <what>: <why>",
 * so scripts and people can grep for it; data alone goes to stdout.
 * Usage errors (exit 2) add a pointer to the command's --help.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "shmqctl.h"

int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmqctl: %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'shmqctl %s --help' for more information.\n",
	    cmd->name);
	return CTL_EXIT_USAGE;
}

int
ctl_fail(int err, const char *fmt, ...)
{
	va_list ap;

	/* Keep messages after the output they comment on, also when
	 * both streams go to one pipe. */
	fflush(stdout);
	fputs("shmqctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", shmq_strerror(err));
	return CTL_EXIT_FAIL;
}

void
ctl_note(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout); /* as in ctl_fail */
	fputs("shmqctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_attach(struct ctl *ctl, int create)
{
	shmq_options_t opts;
	const char *home;
	int rc;

	if (ctl->q != NULL) {
		return 0;
	}
	shmq_options_init(&opts);
	/* Only `topic create` makes a home: a mistyped --home on any
	 * other command should fail, not leave a new directory behind. */
	opts.create = create;
	rc = shmq_attach(ctl->home, &opts, &ctl->q);
	if (rc == 0) {
		return 0;
	}
	home = ctl->home;
	if (home == NULL) {
		home = getenv("SHMQ_HOME");
	}
	if (home == NULL) {
		home = "./shmq-home";
	}
	return ctl_fail(rc, "attach %s", home);
}

void
ctl_getopt_reset(void)
{
	/* glibc reinitialises getopt completely when optind is 0; each
	 * command parses a fresh argv after main has parsed its own. */
	optind = 0;
	opterr = 0;
}

int
ctl_common_option(
    struct ctl *ctl, const struct ctl_cmd *cmd, int c, char **argv)
{
	switch (c) {
	case 'h':
		fputs(cmd->usage, stdout);
		return ctl_flush_stdout();
	case CTL_OPT_JSON:
		ctl->json = 1;
		return -1;
	case CTL_OPT_HOME:
		ctl->home = optarg;
		return -1;
	case ':':
		return ctl_usage_error(
		    cmd, "option '%s' needs an argument", argv[optind - 1]);
	case '?':
		if (optopt != 0) {
			return ctl_usage_error(
			    cmd, "unknown option '-%c'", optopt);
		}
		return ctl_usage_error(
		    cmd, "unknown option '%s'", argv[optind - 1]);
	default:
		return ctl_usage_error(cmd, "unhandled option %d", c);
	}
}

int
ctl_common_only(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		rc = ctl_common_option(ctl, cmd, c, argv);
		if (rc >= 0) {
			return rc;
		}
	}
	return -1;
}

int
ctl_one_arg(const struct ctl_cmd *cmd, int argc, char **argv, const char *what,
    const char **out)
{
	if (optind >= argc) {
		return ctl_usage_error(cmd, "missing %s", what);
	}
	if (optind + 1 < argc) {
		return ctl_usage_error(
		    cmd, "unexpected argument '%s'", argv[optind + 1]);
	}
	*out = argv[optind];
	return 0;
}

int
ctl_no_args(const struct ctl_cmd *cmd, int argc, char **argv)
{
	if (optind < argc) {
		return ctl_usage_error(
		    cmd, "unexpected argument '%s'", argv[optind]);
	}
	return 0;
}

int
ctl_flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		return ctl_fail(-errno, "write to stdout");
	}
	return CTL_EXIT_OK;
}

int
ctl_parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	/* strtoull would accept "-1" as ULLONG_MAX and skip blanks. */
	if (*s < '0' || *s > '9') {
		return -1;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return -1;
	}
	*v = x;
	return 0;
}

int
ctl_parse_i64(const char *s, int64_t *v)
{
	char *end;
	long long x;

	if (*s != '-' && *s != '+' && (*s < '0' || *s > '9')) {
		return -1;
	}
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s) {
		return -1;
	}
	*v = x;
	return 0;
}

int
ctl_parse_u32(const char *s, uint32_t *v)
{
	uint64_t x;

	if (ctl_parse_u64(s, &x) != 0 || x > UINT32_MAX) {
		return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

int
ctl_parse_size(const char *s, uint64_t *v)
{
	static const char units[] = "KMGT";
	const char *u;
	char *end;
	unsigned long long x;
	unsigned shift = 0;

	if (*s < '0' || *s > '9') {
		return -1;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0) {
		return -1;
	}
	if (*end != '\0') {
		u = strchr(units, end[0] & ~0x20);
		if (u == NULL || *u == '\0') {
			return -1;
		}
		shift = 10u * (unsigned)(u - units + 1);
		end++;
		/* Accept K, KB, KiB alike: all mean 1024 here. */
		if (*end == 'i') {
			end++;
		}
		if (*end == 'B' || *end == 'b') {
			end++;
		}
		if (*end != '\0' || x > (UINT64_MAX >> shift)) {
			return -1;
		}
	}
	*v = (uint64_t)x << shift;
	return 0;
}

int
ctl_parse_timeout(const char *s, int *ms)
{
	int64_t x;

	if (ctl_parse_i64(s, &x) != 0 || x < -1 || x > INT_MAX) {
		return -1;
	}
	*ms = (int)x;
	return 0;
}

void
ctl_catch_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	/* No SA_RESTART: a wait in progress returns early, and the loop
	 * that called it sees the flag fn set. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int
ctl_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SHMQ_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		return 0;
	}
	return strspn(name,
	           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	           "0123456789._-") == n;
}

int
ctl_check_partition(struct ctl *ctl, const char *topic, uint32_t partition,
    uint32_t *partitions)
{
	shmq_topic_config_t cfg;
	int rc;

	shmq_topic_config_init(&cfg);
	rc = shmq_topic_describe(ctl->q, topic, &cfg);
	if (rc != 0) {
		return ctl_fail(rc, "topic %s", topic);
	}
	if (partition != UINT32_MAX && partition >= cfg.partitions) {
		ctl_note("topic %s: no partition %u (it has %u)", topic,
		    partition, cfg.partitions);
		return CTL_EXIT_FAIL;
	}
	if (partitions != NULL) {
		*partitions = cfg.partitions;
	}
	return 0;
}
