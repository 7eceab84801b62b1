/*
 * auditfmt.c — one audit entry as one line of JSON, and back.
 *
 *   {"id":3,"kind":"skip","group":"billing","topic":"orders",
 *    "topic_id":"21513508c0fec571","partition":0,"from":100,"to":250,
 *    "records":150,"lost":0,"pending":0,"first_timestamp":...,
 *    "last_timestamp":...,"time":...,"uid":1000,"pid":4242,
 *    "spec":"to-latest"}
 *
 * (on one line).  Timestamps and "time" are ns since the epoch; the
 * record timestamps are null when the range held no record.  A "void"
 * line carries id, kind, group, topic, topic_id and partition only.  A
 * "replayed" line has no spec but "to_topic" and "to_group" (a name or
 * null); its records are those replayed.  topic_id is the topic file's
 * id, 16 hex digits as a string (a JSON number would not survive
 * readers that use doubles); lines written before it lack it.
 *
 * The reader takes exactly this shape back: one flat object of strings,
 * integers, null and booleans; it ignores keys it does not know (a
 * later version may add some) and refuses anything else, naming what
 * is wrong, because the file may have been edited or torn by a crash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "audit.h"

void
audit_json_name(struct json *j, const char *key, const char *name)
{
	json_key(j, key);
	if (name[0] != '\0') {
		json_str(j, name);
	} else {
		json_null(j);
	}
}

int
audit_format(const struct audit_entry *e, char **line, size_t *len)
{
	struct json j;
	FILE *f;

	/* A memory stream: the line must reach the log in one write. */
	if ((f = open_memstream(line, len)) == NULL) {
		return -errno;
	}
	json_init(&j, f);
	json_begin_object(&j);
	json_kuint(&j, "id", e->id);
	json_kstr(&j, "kind", audit_kind_name(e->kind));
	json_kstr(&j, "group", e->group);
	json_kstr(&j, "topic", e->topic);
	if (e->topic_id != 0) {
		char hex[17];

		snprintf(hex, sizeof(hex), "%016llx",
		    (unsigned long long)e->topic_id);
		json_kstr(&j, "topic_id", hex);
	}
	json_kuint(&j, "partition", e->partition);
	if (e->kind != AUDIT_VOID) {
		json_kuint(&j, "from", e->from);
		json_kuint(&j, "to", e->to);
		json_kuint(&j, "records", e->sr.records);
		json_kuint(&j, "lost", e->sr.lost);
		json_kuint(&j, "pending", e->sr.pending);
		json_key(&j, "first_timestamp");
		if (e->sr.has_times) {
			json_int(&j, e->sr.first_ts);
		} else {
			json_null(&j);
		}
		json_key(&j, "last_timestamp");
		if (e->sr.has_times) {
			json_int(&j, e->sr.last_ts);
		} else {
			json_null(&j);
		}
	}
	json_kint(&j, "time", e->time_ns);
	json_kuint(&j, "uid", e->uid);
	json_kint(&j, "pid", e->pid);
	if (e->kind == AUDIT_REPLAYED) {
		audit_json_name(&j, "to_topic", e->to_topic);
		audit_json_name(&j, "to_group", e->to_group);
	} else if (e->kind != AUDIT_VOID) {
		json_kstr(&j, "spec", e->spec);
	}
	json_end_object(&j);
	if (fclose(f) != 0) {
		free(*line);
		*line = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Longest string value kept; names are at most SHMQ_NAME_MAX. */
#define JV_STR_MAX 255

enum { JV_STR, JV_NUM, JV_NULL, JV_BOOL };

struct jv {
	int type;
	char str[JV_STR_MAX + 1];
	int neg; /* JV_NUM: sign and magnitude */
	uint64_t mag;
};

struct jp {
	const char *s, *end;
	const char *why; /* set on failure */
};

static void
jp_ws(struct jp *p)
{
	while (p->s < p->end &&
	    (*p->s == ' ' || *p->s == '\t' || *p->s == '\r')) {
		p->s++;
	}
}

static int
jp_fail(struct jp *p, const char *why)
{
	p->why = why;
	return -1;
}

static int
jp_hex4(struct jp *p, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++, p->s++) {
		char c = p->s < p->end ? *p->s : '\0';

		*v <<= 4;
		if (c >= '0' && c <= '9') {
			*v |= (unsigned)(c - '0');
		} else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
			*v |= (unsigned)((c | 0x20) - 'a' + 10);
		} else {
			return jp_fail(p, "bad \\u escape");
		}
	}
	return 0;
}

/* One escape after the backslash; *c is the byte it stands for. */
static int
jp_escape(struct jp *p, char *c)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned v;

	if (p->s >= p->end) {
		return jp_fail(p, "unterminated string");
	}
	if (*p->s == 'u') {
		p->s++;
		if (jp_hex4(p, &v) != 0) {
			return -1;
		}
		/* The writer escapes single bytes only (json.h). */
		if (v > 0xff) {
			return jp_fail(p, "\\u escape above \\u00ff");
		}
		*c = (char)v;
		return 0;
	}
	if ((k = strchr(from, *p->s)) == NULL || *p->s == '\0') {
		return jp_fail(p, "bad escape in a string");
	}
	*c = to[k - from];
	p->s++;
	return 0;
}

static int
jp_string(struct jp *p, char *out, size_t cap)
{
	size_t n = 0;
	char c;

	if (p->s >= p->end || *p->s != '"') {
		return jp_fail(p, "expected a string");
	}
	p->s++;
	for (;;) {
		if (p->s >= p->end) {
			return jp_fail(p, "unterminated string");
		}
		c = *p->s++;
		if (c == '"') {
			break;
		}
		if (c == '\\' && jp_escape(p, &c) != 0) {
			return -1;
		}
		if (c == '\0' || n + 1 >= cap) {
			return jp_fail(p,
			    c == '\0' ? "NUL in a string" : "string too long");
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

static int
jp_number(struct jp *p, struct jv *v)
{
	int digits = 0;

	v->type = JV_NUM;
	v->neg = 0;
	v->mag = 0;
	if (p->s < p->end && *p->s == '-') {
		v->neg = 1;
		p->s++;
	}
	while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
		unsigned d = (unsigned)(*p->s++ - '0');

		if (v->mag > (UINT64_MAX - d) / 10) {
			return jp_fail(p, "number out of range");
		}
		v->mag = v->mag * 10 + d;
		digits++;
	}
	if (digits == 0) {
		return jp_fail(p, "bad value");
	}
	if (p->s < p->end && (*p->s == '.' || (*p->s | 0x20) == 'e')) {
		return jp_fail(p, "not an integer");
	}
	return 0;
}

static int
jp_word(struct jp *p, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0) {
		return 0;
	}
	p->s += n;
	return 1;
}

static int
jp_value(struct jp *p, struct jv *v)
{
	if (p->s < p->end && *p->s == '"') {
		v->type = JV_STR;
		return jp_string(p, v->str, sizeof(v->str));
	}
	if (jp_word(p, "null")) {
		v->type = JV_NULL;
		return 0;
	}
	if (jp_word(p, "true") || jp_word(p, "false")) {
		v->type = JV_BOOL;
		return 0;
	}
	if (p->s < p->end && (*p->s == '{' || *p->s == '[')) {
		return jp_fail(p, "nested value");
	}
	return jp_number(p, v);
}

/* ---- fields ------------------------------------------------------------- */

enum {
	F_ID = 1u << 0,
	F_KIND = 1u << 1,
	F_GROUP = 1u << 2,
	F_TOPIC = 1u << 3,
	F_PARTITION = 1u << 4,
	F_FROM = 1u << 5,
	F_TO = 1u << 6,
};

static int
jv_u64(const struct jv *v, uint64_t max, uint64_t *out)
{
	if (v->type != JV_NUM || v->neg || v->mag > max) {
		return -1;
	}
	*out = v->mag;
	return 0;
}

static int
jv_i64(const struct jv *v, int64_t *out)
{
	if (v->type != JV_NUM || v->mag > (uint64_t)INT64_MAX + v->neg) {
		return -1;
	}
	/* -(mag - 1) - 1 reaches INT64_MIN without overflow. */
	*out = v->neg ? -(int64_t)(v->mag - 1) - 1 : (int64_t)v->mag;
	return 0;
}

static int
jv_name(const struct jv *v, char *out, size_t cap)
{
	if (v->type != JV_STR || !ctl_name_ok(v->str) ||
	    strlen(v->str) >= cap) {
		return -1;
	}
	strcpy(out, v->str);
	return 0;
}

static int
jv_kind(const struct jv *v, int *kind)
{
	int k;

	for (k = AUDIT_SKIP; v->type == JV_STR && k <= AUDIT_REPLAYED; k++) {
		if (strcmp(v->str, audit_kind_name(k)) == 0) {
			*kind = k;
			return 0;
		}
	}
	return -1;
}

/* A name, or null for none (""). */
static int
jv_opt_name(const struct jv *v, char *out, size_t cap)
{
	if (v->type == JV_NULL) {
		out[0] = '\0';
		return 0;
	}
	return jv_name(v, out, cap);
}

/* 16 hex digits, not all zero. */
static int
jv_topic_id(const struct jv *v, uint64_t *out)
{
	char *end;

	if (v->type != JV_STR || strlen(v->str) != 16 ||
	    strspn(v->str, "0123456789abcdef") != 16) {
		return -1;
	}
	*out = strtoull(v->str, &end, 16);
	return *out != 0 ? 0 : -1;
}

/* A nullable timestamp: sets *has to 0 for null. */
static int
jv_ts(const struct jv *v, int *has, int64_t *ts)
{
	if (v->type == JV_NULL) {
		*has = 0;
		return 0;
	}
	*has = 1;
	return jv_i64(v, ts);
}

/* Store one member; *seen collects the required ones.  -1: bad value. */
static int
audit_field(struct audit_entry *e, const char *k, const struct jv *v,
    unsigned *seen, int *has_first, int *has_last)
{
	uint64_t u = 0;
	int64_t i = 0;
	int rc = 0;

	if (strcmp(k, "id") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->id);
		*seen |= F_ID;
	} else if (strcmp(k, "kind") == 0) {
		rc = jv_kind(v, &e->kind);
		*seen |= F_KIND;
	} else if (strcmp(k, "group") == 0) {
		rc = jv_name(v, e->group, sizeof(e->group));
		*seen |= F_GROUP;
	} else if (strcmp(k, "topic") == 0) {
		rc = jv_name(v, e->topic, sizeof(e->topic));
		*seen |= F_TOPIC;
	} else if (strcmp(k, "topic_id") == 0) {
		rc = jv_topic_id(v, &e->topic_id);
	} else if (strcmp(k, "to_topic") == 0) {
		rc = jv_opt_name(v, e->to_topic, sizeof(e->to_topic));
	} else if (strcmp(k, "to_group") == 0) {
		rc = jv_opt_name(v, e->to_group, sizeof(e->to_group));
	} else if (strcmp(k, "partition") == 0) {
		rc = jv_u64(v, SHMQ_PARTITIONS_MAX - 1, &u);
		e->partition = (uint32_t)u;
		*seen |= F_PARTITION;
	} else if (strcmp(k, "from") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->from);
		*seen |= F_FROM;
	} else if (strcmp(k, "to") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->to);
		*seen |= F_TO;
	} else if (strcmp(k, "records") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->sr.records);
	} else if (strcmp(k, "lost") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->sr.lost);
	} else if (strcmp(k, "pending") == 0) {
		rc = jv_u64(v, UINT64_MAX, &e->sr.pending);
	} else if (strcmp(k, "first_timestamp") == 0) {
		rc = jv_ts(v, has_first, &e->sr.first_ts);
	} else if (strcmp(k, "last_timestamp") == 0) {
		rc = jv_ts(v, has_last, &e->sr.last_ts);
	} else if (strcmp(k, "time") == 0) {
		rc = jv_i64(v, &e->time_ns);
	} else if (strcmp(k, "uid") == 0) {
		rc = jv_u64(v, UINT32_MAX, &u);
		e->uid = (uint32_t)u;
	} else if (strcmp(k, "pid") == 0) {
		rc = jv_i64(v, &i);
		rc = rc == 0 && i >= INT32_MIN && i <= INT32_MAX ? 0 : -1;
		e->pid = (int32_t)i;
	} else if (strcmp(k, "spec") == 0) {
		rc = v->type == JV_STR && strlen(v->str) < sizeof(e->spec)
		    ? 0
		    : -1;
		if (rc == 0) {
			strcpy(e->spec, v->str);
		}
	}
	return rc;
}

/* Members until the closing brace; 0 or -1 with p->why set. */
static int
audit_members(struct jp *p, struct audit_entry *e, unsigned *seen,
    int *has_first, int *has_last)
{
	static char bad[64 + SHMQ_NAME_MAX];
	char key[64];
	struct jv v;

	for (;;) {
		jp_ws(p);
		if (jp_string(p, key, sizeof(key)) != 0) {
			return -1;
		}
		jp_ws(p);
		if (p->s >= p->end || *p->s++ != ':') {
			return jp_fail(p, "expected ':'");
		}
		jp_ws(p);
		if (jp_value(p, &v) != 0) {
			return -1;
		}
		if (audit_field(e, key, &v, seen, has_first, has_last) != 0) {
			snprintf(bad, sizeof(bad), "bad value of \"%s\"", key);
			return jp_fail(p, bad);
		}
		jp_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == '}') {
			p->s++;
			return 0;
		}
		return jp_fail(p, "expected ',' or '}'");
	}
}

int
audit_parse(
    const char *line, size_t len, struct audit_entry *e, const char **why)
{
	static char missing[48];
	static const char *const names[] = { "id", "kind", "group", "topic",
		"partition", "from", "to" };
	struct jp p = { line, line + len, NULL };
	unsigned seen = 0, need, i;
	int has_first = 0, has_last = 0;

	memset(e, 0, sizeof(*e));
	jp_ws(&p);
	if (p.s >= p.end || *p.s++ != '{') {
		*why = "not a JSON object";
		return -1;
	}
	if (audit_members(&p, e, &seen, &has_first, &has_last) != 0) {
		*why = p.why;
		return -1;
	}
	jp_ws(&p);
	if (p.s != p.end) {
		*why = "text after the object";
		return -1;
	}
	need = F_ID | F_KIND | F_GROUP | F_TOPIC | F_PARTITION;
	if ((seen & F_KIND) && e->kind != AUDIT_VOID) {
		need |= F_FROM | F_TO;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((need & (1u << i)) && !(seen & (1u << i))) {
			snprintf(
			    missing, sizeof(missing), "no \"%s\"", names[i]);
			*why = missing;
			return -1;
		}
	}
	if (e->kind != AUDIT_VOID && e->from > e->to) {
		*why = "\"from\" is above \"to\"";
		return -1;
	}
	e->sr.has_times = has_first && has_last;
	return 0;
}
