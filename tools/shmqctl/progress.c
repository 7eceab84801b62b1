/*
 * progress.c — the one-line progress display (see progress.h).
 *
 * The line is redrawn with "\r" and padded with blanks over whatever
 * the previous, longer line left, instead of a terminal escape, so it
 * also reads right in a log of the terminal (`script`).  A line wider
 * than the terminal would wrap, and "\r" would then redraw only its
 * last row: it is cut to the width first.
 */
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lag.h"
#include "progress.h"

#define PROGRESS_NS_PER_S 1000000000LL
#define PROGRESS_LINE_MAX 256
/* Characters of the bar between the brackets. */
#define PROGRESS_BAR 16

int64_t
progress_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PROGRESS_NS_PER_S + ts.tv_nsec;
}

void
progress_init(struct progress *pg, FILE *f, int on)
{
	memset(pg, 0, sizeof(*pg));
	pg->f = f;
	pg->on = on < 0 ? isatty(fileno(f)) : on > 0;
	pg->start_ns = progress_now_ns();
}

int
progress_due(const struct progress *pg)
{
	return pg->on &&
	    (pg->last_ns == 0 ||
	        progress_now_ns() - pg->last_ns >=
	            PROGRESS_NS_PER_S / PROGRESS_HZ);
}

/* Records per second over the window, with this draw's sample added. */
static double
progress_rate(struct progress *pg, int64_t now, uint64_t done)
{
	unsigned oldest;
	double s;

	if (pg->n == 0) {
		/* The first draw: measure from the start. */
		pg->t[0] = pg->start_ns;
		pg->d[0] = 0;
		pg->head = 1 % PROGRESS_WINDOW;
		pg->n = 1;
	}
	oldest = (pg->head + PROGRESS_WINDOW - pg->n) % PROGRESS_WINDOW;
	s = (double)(now - pg->t[oldest]) / (double)PROGRESS_NS_PER_S;
	pg->t[pg->head] = now;
	pg->d[pg->head] = done;
	pg->head = (pg->head + 1) % PROGRESS_WINDOW;
	if (pg->n < PROGRESS_WINDOW) {
		pg->n++;
	}
	return s > 0.0 && done >= pg->d[oldest]
	    ? (double)(done - pg->d[oldest]) / s
	    : 0.0;
}

/* "950", "12.3K", "4.5M": a count for a line that must stay short. */
static const char *
progress_fmt_count(char *buf, size_t cap, double v)
{
	if (v < 10000.0) {
		snprintf(buf, cap, "%.0f", v);
	} else if (v < 1e6) {
		snprintf(buf, cap, "%.1fK", v / 1e3);
	} else if (v < 1e9) {
		snprintf(buf, cap, "%.1fM", v / 1e6);
	} else {
		snprintf(buf, cap, "%.1fG", v / 1e9);
	}
	return buf;
}

/* Append to line[*len..cap), keeping it terminated when cut. */
static void progress_add(char *line, size_t cap, size_t *len, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
progress_add(char *line, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len + 1 >= cap) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(line + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0) {
		*len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
	}
}

static size_t
progress_width(FILE *f)
{
	struct winsize ws;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) {
		return ws.ws_col;
	}
	return 80;
}

void
progress_draw(struct progress *pg, const char *label, uint64_t done,
    int has_total, uint64_t remaining)
{
	char line[PROGRESS_LINE_MAX], b1[24], b2[24], b3[24];
	size_t len = 0, width, fill, i;
	int64_t now;
	double rate, frac;

	if (!pg->on) {
		return;
	}
	now = progress_now_ns();
	pg->last_ns = now;
	rate = progress_rate(pg, now, done);
	progress_add(line, sizeof(line), &len, "%s ", label);
	if (has_total) {
		frac = done + remaining > 0
		    ? (double)done / (double)(done + remaining)
		    : 1.0;
		fill = (size_t)(frac * PROGRESS_BAR);
		progress_add(line, sizeof(line), &len, "[");
		for (i = 0; i < PROGRESS_BAR; i++) {
			progress_add(
			    line, sizeof(line), &len, i < fill ? "#" : "-");
		}
		progress_add(line, sizeof(line), &len, "] %3.0f%% ",
		    frac * 100.0 >= 100.0 && remaining > 0 ? 99.0
		                                           : frac * 100.0);
	}
	progress_add(line, sizeof(line), &len, " %s done  %s records/s",
	    progress_fmt_count(b1, sizeof(b1), (double)done),
	    progress_fmt_count(b2, sizeof(b2), rate));
	if (has_total) {
		progress_add(line, sizeof(line), &len, "  %s left  ETA %s",
		    progress_fmt_count(b3, sizeof(b3), (double)remaining),
		    remaining == 0   ? fmt_duration(b1, sizeof(b1), 0.0)
		        : rate > 0.0 ? fmt_duration(b1, sizeof(b1),
		                           (double)remaining / rate)
		                     : "-");
	} else {
		progress_add(line, sizeof(line), &len, "  lag %s",
		    progress_fmt_count(b3, sizeof(b3), (double)remaining));
	}
	/* The last column stays free: writing it makes some terminals
	 * wrap at once. */
	width = progress_width(pg->f) - 1;
	if (len > width) {
		len = width;
		line[len] = '\0';
	}
	fprintf(pg->f, "\r%s", line);
	for (i = len; i < pg->drawn; i++) {
		fputc(' ', pg->f);
	}
	pg->drawn = len;
	fflush(pg->f);
}

void
progress_end(struct progress *pg)
{
	size_t i;

	if (!pg->on || pg->drawn == 0) {
		return;
	}
	fputc('\r', pg->f);
	for (i = 0; i < pg->drawn; i++) {
		fputc(' ', pg->f);
	}
	fputc('\r', pg->f);
	fflush(pg->f);
	pg->drawn = 0;
}
