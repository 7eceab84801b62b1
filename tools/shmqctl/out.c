/*
 * out.c — human output: aligned tables and byte counts.
 *
 * Tables follow the Kafka and rpk tools (ecosystem.md §3.2): upper-case
 * headers, left-aligned columns as wide as their widest cell, two
 * spaces between columns, "-" where a value is unknown.  Cells are
 * formatted when added and kept until the table is printed, because
 * widths depend on every row.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "shmqctl.h"

struct table {
	size_t ncols;
	const char *const *headers;
	char **cells;
	size_t ncells;
	size_t cap;
	int nomem;
};

struct table *
table_new(size_t ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->ncols = ncols;
		t->headers = headers;
	}
	return t;
}

void
table_cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (t->nomem) {
		return;
	}
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		char **cells = realloc(t->cells, cap * sizeof(*cells));

		if (cells == NULL) {
			t->nomem = 1;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->nomem = 1;
		return;
	}
	t->cells[t->ncells++] = s;
}

static void
table_row(FILE *f, const size_t *width, size_t ncols, const char *const *cells)
{
	size_t i;

	for (i = 0; i < ncols; i++) {
		/* No padding after the last column: no trailing blanks. */
		if (i + 1 < ncols) {
			fprintf(f, "%-*s  ", (int)width[i], cells[i]);
		} else {
			fprintf(f, "%s\n", cells[i]);
		}
	}
}

int
table_print(const struct table *t, FILE *f)
{
	size_t *width;
	size_t i, n;

	assert(t->ncells % t->ncols == 0);
	if (t->nomem) {
		return -ENOMEM;
	}
	width = calloc(t->ncols, sizeof(*width));
	if (width == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < t->ncols; i++) {
		width[i] = strlen(t->headers[i]);
	}
	for (i = 0; i < t->ncells; i++) {
		n = strlen(t->cells[i]);
		if (n > width[i % t->ncols]) {
			width[i % t->ncols] = n;
		}
	}
	table_row(f, width, t->ncols, t->headers);
	for (i = 0; i < t->ncells; i += t->ncols) {
		table_row(
		    f, width, t->ncols, (const char *const *)t->cells + i);
	}
	free(width);
	return 0;
}

void
table_free(struct table *t)
{
	size_t i;

	if (t == NULL) {
		return;
	}
	for (i = 0; i < t->ncells; i++) {
		free(t->cells[i]);
	}
	free(t->cells);
	free(t);
}

const char *
fmt_size(char *buf, size_t cap, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	unsigned u = 0;
	uint64_t unit = 1024;

	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64, bytes);
		return buf;
	}
	while (u + 1 < sizeof(units) - 1 && bytes / unit >= 1024) {
		unit *= 1024;
		u++;
	}
	/* Ring sizes are powers of two: show them exactly ("16M"). */
	if (bytes % unit == 0) {
		snprintf(buf, cap, "%" PRIu64 "%c", bytes / unit, units[u]);
	} else {
		snprintf(buf, cap, "%.1f%c", (double)bytes / (double)unit,
		    units[u]);
	}
	return buf;
}

const char *
fmt_overflow(int overflow)
{
	switch (overflow) {
	case SHMQ_OVERFLOW_BLOCK:
		return "block";
	case SHMQ_OVERFLOW_DROP:
		return "drop";
	default:
		return "unknown";
	}
}

const char *
fmt_fsync(int fsync)
{
	switch (fsync) {
	case SHMQ_FSYNC_ALWAYS:
		return "always";
	case SHMQ_FSYNC_INTERVAL:
		return "interval";
	case SHMQ_FSYNC_NEVER:
		return "never";
	default:
		return "unknown";
	}
}
