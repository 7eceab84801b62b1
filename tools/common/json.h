/*
 * json.h — a tiny streaming JSON emitter for the shmq tools.
 *
 * The tools print machine output (`shmqctl --json`, the last line of
 * `shmq-perf --json`) without a JSON library.  A writer tracks nesting
 * and commas; the caller says what comes next:
 *
 *	struct json j;
 *
 *	json_init(&j, stdout);
 *	json_begin_object(&j);
 *	json_kstr(&j, "topic", "orders");
 *	json_kuint(&j, "offset", 42);
 *	json_key(&j, "tags");
 *	json_begin_array(&j);
 *	json_str(&j, "a");
 *	json_end_array(&j);
 *	json_end_object(&j);
 *
 * prints {"topic":"orders","offset":42,"tags":["a"]} and a newline.
 *
 * Rules:
 *  - Output is compact (no spaces).  Each complete top-level value is
 *    followed by "\n", so a sequence of values is NDJSON.
 *  - Strings are byte strings.  `"` and `\` are escaped as \" and \\,
 *    bytes below 0x20 and every byte that is not part of well-formed
 *    UTF-8 as \u00XX (an invalid byte 0xXX thus reads back as U+00XX).
 *    The output is therefore always valid JSON, whatever the input.
 *  - Numbers are written exactly: int64 and uint64 in decimal, doubles
 *    with the shortest of %.15g/%.17g that reads back to the same
 *    value; NaN and infinities become null.
 *  - Misuse (a value where a key is due, unbalanced ends, nesting deeper
 *    than JSON_DEPTH_MAX) is a bug in the caller and trips an assert.
 *  - Write errors are not reported per call: stdio keeps them, so check
 *    ferror(f) (or the result of fflush) once at the end.
 *  - A writer is plain memory: no cleanup, not thread-safe.
 */
#ifndef SHMQ_TOOLS_JSON_H
#define SHMQ_TOOLS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Deep enough for any output of the tools. */
#define JSON_DEPTH_MAX 16

struct json {
	FILE *f;
	unsigned depth;
	int want_value; /* a key was written: a value is due */
	unsigned char in_object[JSON_DEPTH_MAX];
	unsigned char has_items[JSON_DEPTH_MAX];
};

/* Start a writer on f; nothing is written yet. */
void json_init(struct json *j, FILE *f);

void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);

/* Inside an object: write the key of the next member (escaped like a
 * string); exactly one value or begin_* must follow. */
void json_key(struct json *j, const char *key);

/* A NUL-terminated string, or null when s is NULL. */
void json_str(struct json *j, const char *s);
/* n bytes from s (NUL bytes included, as \u0000), or null when s is
 * NULL. */
void json_strn(struct json *j, const void *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Shorthands for json_key followed by a value. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_kint(struct json *j, const char *key, int64_t v);
void json_kuint(struct json *j, const char *key, uint64_t v);
void json_kdouble(struct json *j, const char *key, double v);

#endif /* SHMQ_TOOLS_JSON_H */
