/*
 * log.c — the replicator's logger.
 *
 * Every message is one line on stderr, written with a single write(2)
 * so that lines from the daemon and a parent sharing the stream never
 * interleave mid-line.  When stderr is the journal (systemd.exec(5):
 * $JOURNAL_STREAM names the device and inode of the stream), a line
 * starts with the sd-daemon priority, "<3>" for errors, and carries
 * neither time nor level name, which the journal keeps itself;
 * otherwise it starts with an RFC 3339 UTC time and the level.
 * errno is preserved, so callers may log between a failing call and
 * reading errno.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A longer message is cut; the line still ends with a newline. */
#define LOG_LINE_MAX 1024

static int log_level = SHMQ_LOG_INFO;
static int log_journal;

static const char *const log_names[] = { "error", "warn", "info", "debug" };
/* sd-daemon.h: SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG. */
static const int log_sd_prio[] = { 3, 4, 6, 7 };

#define LOG_NLEVELS ((int)(sizeof(log_names) / sizeof(log_names[0])))

void
log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	log_journal = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s, int *level)
{
	int i;

	for (i = 0; i < LOG_NLEVELS; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < 0 || level >= LOG_NLEVELS) {
		return "?";
	}
	return log_names[level];
}

/* "2025-11-21T10:00:00.123Z " */
static size_t
log_stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(
	    buf + n, cap - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	return n < cap ? n : cap - 1;
}

static void
log_write(int level, int fail, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = 0, cap = sizeof(line) - 1; /* room for the newline */
	int saved = errno, w;
	ssize_t r;

	if (log_journal) {
		n = (size_t)snprintf(line, cap, "<%d>", log_sd_prio[level]);
	} else if (!fail) {
		n = log_stamp(line, cap);
	}
	if (fail) {
		w = snprintf(line + n, cap - n, "shmq-replicator: ");
		n += (size_t)w;
	} else if (!log_journal) {
		w = snprintf(line + n, cap - n, "%s: ", log_names[level]);
		n += (size_t)w;
	}
	w = vsnprintf(line + n, cap - n, fmt, ap);
	n = w < 0 ? n : (n + (size_t)w < cap ? n + (size_t)w : cap - 1);
	line[n++] = '\n';
	do {
		r = write(STDERR_FILENO, line, n);
	} while (r < 0 && errno == EINTR);
	errno = saved;
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level < 0) {
		level = SHMQ_LOG_ERROR;
	}
	if (level >= LOG_NLEVELS) {
		level = SHMQ_LOG_DEBUG;
	}
	if (level > log_level) {
		return;
	}
	va_start(ap, fmt);
	log_write(level, 0, fmt, ap);
	va_end(ap);
}

void
log_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(SHMQ_LOG_ERROR, 1, fmt, ap);
	va_end(ap);
}

void
log_from_lib(int level, const char *msg, void *arg)
{
	(void)arg;
	log_msg(level, "%s", msg);
}
