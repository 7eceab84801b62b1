/*
 * json.c — the streaming JSON emitter described in json.h.
 *
 * The writer keeps, per nesting level, whether the level is an object
 * and whether it already holds an item; that is all it takes to place
 * commas.  Strings are scanned once: runs of bytes that need no escape
 * are written with one fwrite, and a byte that is neither printable
 * ASCII nor part of a well-formed UTF-8 sequence is escaped, so that
 * arbitrary record bytes still give valid JSON.
 */
#include "json.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void
json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/* Place the comma (or consume the pending key) before a value. */
static void
json_before_value(struct json *j)
{
	unsigned d;

	if (j->depth == 0) {
		return;
	}
	d = j->depth - 1;
	if (j->in_object[d]) {
		assert(j->want_value);
		j->want_value = 0;
		return;
	}
	if (j->has_items[d]) {
		putc(',', j->f);
	}
	j->has_items[d] = 1;
}

/* A complete top-level value ends its line (NDJSON). */
static void
json_after_value(struct json *j)
{
	if (j->depth == 0) {
		putc('\n', j->f);
	}
}

/*
 * Length of the well-formed UTF-8 sequence that starts at s (n bytes
 * available), or 0 if there is none.  The ranges are those of Unicode
 * Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80) {
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0) {
			lo = 0xa0;
		} else if (s[0] == 0xed) {
			hi = 0x9f;
		}
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0) {
			lo = 0x90;
		} else if (s[0] == 0xf4) {
			hi = 0x8f;
		}
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf) {
			return 0;
		}
	}
	return len;
}

static void
json_escape(FILE *f, const unsigned char *s, size_t n)
{
	size_t i = 0, start = 0, len;

	putc('"', f);
	while (i < n) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80 && (len = json_utf8_len(s + i, n - i)) > 0) {
			i += len;
			continue;
		}
		fwrite(s + start, 1, i - start, f);
		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
		} else {
			fprintf(f, "\\u%04x", c);
		}
		start = ++i;
	}
	fwrite(s + start, 1, n - start, f);
	putc('"', f);
}

static void
json_begin(struct json *j, int object)
{
	json_before_value(j);
	assert(j->depth < JSON_DEPTH_MAX);
	putc(object ? '{' : '[', j->f);
	j->in_object[j->depth] = (unsigned char)object;
	j->has_items[j->depth] = 0;
	j->depth++;
}

static void
json_end(struct json *j, int object)
{
	assert(j->depth > 0 && j->in_object[j->depth - 1] == object);
	assert(!j->want_value);
	putc(object ? '}' : ']', j->f);
	j->depth--;
	json_after_value(j);
}

void
json_begin_object(struct json *j)
{
	json_begin(j, 1);
}

void
json_end_object(struct json *j)
{
	json_end(j, 1);
}

void
json_begin_array(struct json *j)
{
	json_begin(j, 0);
}

void
json_end_array(struct json *j)
{
	json_end(j, 0);
}

void
json_key(struct json *j, const char *key)
{
	unsigned d;

	assert(j->depth > 0 && !j->want_value);
	d = j->depth - 1;
	assert(j->in_object[d]);
	if (j->has_items[d]) {
		putc(',', j->f);
	}
	j->has_items[d] = 1;
	json_escape(j->f, (const unsigned char *)key, strlen(key));
	putc(':', j->f);
	j->want_value = 1;
}

void
json_strn(struct json *j, const void *s, size_t n)
{
	if (s == NULL) {
		json_null(j);
		return;
	}
	json_before_value(j);
	json_escape(j->f, s, n);
	json_after_value(j);
}

void
json_str(struct json *j, const char *s)
{
	json_strn(j, s, s != NULL ? strlen(s) : 0);
}

void
json_int(struct json *j, int64_t v)
{
	json_before_value(j);
	fprintf(j->f, "%" PRId64, v);
	json_after_value(j);
}

void
json_uint(struct json *j, uint64_t v)
{
	json_before_value(j);
	fprintf(j->f, "%" PRIu64, v);
	json_after_value(j);
}

void
json_double(struct json *j, double v)
{
	char buf[40];

	/* JSON has no NaN or infinity. */
	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	/* %.17g always reads back exactly, but %.15g is shorter and
	 * usually does too (0.1 instead of 0.10000000000000001). */
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v) {
		snprintf(buf, sizeof(buf), "%.17g", v);
	}
	json_before_value(j);
	fputs(buf, j->f);
	json_after_value(j);
}

void
json_bool(struct json *j, int v)
{
	json_before_value(j);
	fputs(v ? "true" : "false", j->f);
	json_after_value(j);
}

void
json_null(struct json *j)
{
	json_before_value(j);
	fputs("null", j->f);
	json_after_value(j);
}

void
json_kstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void
json_kint(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void
json_kuint(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_uint(j, v);
}

void
json_kdouble(struct json *j, const char *key, double v)
{
	json_key(j, key);
	json_double(j, v);
}
