/*
 * t_redis.c — Redis Streams through hiredis (0.14 API), the usual
 * "durable queue without a broker of its own" choice.
 *
 * Channel `id` is the stream "qbench:<tag>:<id>" on the server --addr
 * names (bench/run.sh starts one per persistence mode).  Producers XADD
 * the whole message as one field; the consumer reads with XREAD BLOCK 0
 * COUNT n from the last ID it saw, keeps the reply, and hands out one
 * entry per recv().  Every producer and the consumer have a connection
 * of their own.
 *
 *   STREAM    XADDs are pipelined: up to 64 wait for their replies, as
 *             a client that cares about throughput would run them.
 *   DURABLE   one XADD at a time: send() returns with its reply, which
 *             under appendfsync always comes after the fsync.
 *   PINGPONG  one at a time too: a ping must leave at once.
 *
 * The variants differ only in the server they need: each checks with
 * CONFIG GET that appendonly/appendfsync match its name, so a table
 * row cannot silently come from the wrong server.  Streams are not
 * trimmed during a run (a run is short); cleanup() deletes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "qbench.h"

/* STREAM: XADDs in flight per producer. */
#define RD_WINDOW 64u
/* XREAD COUNT, and a bound on the bytes one reply may carry (1000
 * messages of 1 MiB would be a 1 GB reply, buffered twice). */
#define RD_COUNT 1000u
#define RD_READ_BYTES (64u << 20)
#define RD_CONNECT_S 5
#define RD_ID_MAX 64

/* qb_transport.variant of each variant. */
struct rd_variant {
	const char *appendonly; /* what CONFIG GET must say */
	const char *appendfsync; /* NULL: any */
};

struct rd_state {
	char host[256];
	int port;
	char key[128];
};

struct qb_chan {
	redisContext *rc;
	char key[128];
	/* Sender. */
	unsigned window;
	unsigned outstanding;
	/* Receiver: the last XREAD reply and the next entry in it. */
	unsigned count;
	redisReply *reply;
	redisReply *entries; /* the stream's entry array inside reply */
	size_t next;
	char last_id[RD_ID_MAX];
};

static int
rd_parse_addr(const char *addr, struct rd_state *st)
{
	const char *colon;
	char *end;
	long port;

	if (addr == NULL) {
		fprintf(stderr,
		    "qbench: the redis variants need --addr HOST:PORT of a "
		    "running redis-server\n");
		return -EINVAL;
	}
	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr ||
	    (size_t)(colon - addr) >= sizeof(st->host)) {
		fprintf(
		    stderr, "qbench: --addr %s: expected HOST:PORT\n", addr);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 ||
	    port > 65535) {
		fprintf(stderr, "qbench: --addr %s: bad port\n", addr);
		return -EINVAL;
	}
	memcpy(st->host, addr, (size_t)(colon - addr));
	st->host[colon - addr] = '\0';
	st->port = (int)port;
	return 0;
}

static int
rd_connect(const struct rd_state *st, redisContext **out)
{
	struct timeval tv = { RD_CONNECT_S, 0 };
	redisContext *rc;

	*out = NULL;
	rc = redisConnectWithTimeout(st->host, st->port, tv);
	if (rc == NULL) {
		return qb_fail("redis connect", -ENOMEM);
	}
	if (rc->err != 0) {
		fprintf(stderr, "qbench: redis %s:%d: %s\n", st->host,
		    st->port, rc->errstr);
		redisFree(rc);
		return -ECONNREFUSED;
	}
	/* The connect timeout would also apply to every read, and a
	 * consumer's XREAD BLOCK 0 may rightly wait longer. */
	tv.tv_sec = 0;
	if (redisSetTimeout(rc, tv) != REDIS_OK) {
		redisFree(rc);
		return qb_fail("redis timeout", -EIO);
	}
	*out = rc;
	return 0;
}

/* A reply that is NULL (the connection failed) or an error reply. */
static int
rd_reply_err(redisContext *rc, redisReply *r, const char *what)
{
	if (r == NULL) {
		fprintf(stderr, "qbench: redis %s: %s\n", what,
		    rc->err != 0 ? rc->errstr : "no reply");
		return -EIO;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "qbench: redis %s: %.*s\n", what, (int)r->len,
		    r->str);
		return -EIO;
	}
	return 0;
}

/* CONFIG GET name into val; "" if the server has no such setting. */
static int
rd_config_get(redisContext *rc, const char *name, char *val, size_t cap)
{
	redisReply *r = redisCommand(rc, "CONFIG GET %s", name);
	int err = rd_reply_err(rc, r, "CONFIG GET");

	val[0] = '\0';
	if (err == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		snprintf(val, cap, "%.*s", (int)r->element[1]->len,
		    r->element[1]->str);
	}
	if (r != NULL) {
		freeReplyObject(r);
	}
	return err;
}

static int
rd_check_server(
    const struct rd_variant *v, const struct qb_cfg *c, redisContext *rc)
{
	char ao[32];
	char fs[32];
	int err;

	err = rd_config_get(rc, "appendonly", ao, sizeof(ao));
	if (err == 0) {
		err = rd_config_get(rc, "appendfsync", fs, sizeof(fs));
	}
	if (err != 0) {
		return err;
	}
	if (strcmp(ao, v->appendonly) != 0 ||
	    (v->appendfsync != NULL && strcmp(fs, v->appendfsync) != 0)) {
		fprintf(stderr,
		    "qbench: %s needs a server with appendonly %s%s%s, but "
		    "the one at %s has appendonly %s, appendfsync %s\n",
		    c->transport, v->appendonly,
		    v->appendfsync != NULL ? " and appendfsync " : "",
		    v->appendfsync != NULL ? v->appendfsync : "", c->addr,
		    ao[0] != '\0' ? ao : "?", fs[0] != '\0' ? fs : "?");
		return -EINVAL;
	}
	return 0;
}

static int
rd_del(const struct rd_state *st, redisContext *rc)
{
	redisReply *r = redisCommand(rc, "DEL %s", st->key);
	int err = rd_reply_err(rc, r, "DEL");

	if (r != NULL) {
		freeReplyObject(r);
	}
	return err;
}

static int
rd_prepare(const struct qb_cfg *c, int id, void **state)
{
	const struct rd_variant *v = c->variant;
	struct rd_state *st;
	redisContext *rc = NULL;
	int err;

	*state = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		return qb_fail("redis state", -ENOMEM);
	}
	snprintf(st->key, sizeof(st->key), "qbench:%s:%d", c->tag, id);
	err = rd_parse_addr(c->addr, st);
	if (err == 0) {
		err = rd_connect(st, &rc);
	}
	if (err == 0) {
		err = rd_check_server(v, c, rc);
	}
	/* A stream of the same name would be read from its start. */
	if (err == 0) {
		err = rd_del(st, rc);
	}
	if (rc != NULL) {
		redisFree(rc);
	}
	if (err != 0) {
		free(st);
		return err;
	}
	*state = st;
	return 0;
}

static void
rd_cleanup(const struct qb_cfg *c, int id, void *state)
{
	struct rd_state *st = state;
	redisContext *rc = NULL;

	(void)c;
	(void)id;
	if (st == NULL) {
		return;
	}
	if (rd_connect(st, &rc) == 0) {
		rd_del(st, rc);
		redisFree(rc);
	}
	free(st);
}

static void
rd_close(struct qb_chan *ch)
{
	if (ch == NULL) {
		return;
	}
	if (ch->reply != NULL) {
		freeReplyObject(ch->reply);
	}
	if (ch->rc != NULL) {
		redisFree(ch->rc);
	}
	free(ch);
}

static int
rd_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	const struct rd_state *st = state;
	struct qb_chan *ch;
	size_t count;
	int err;

	(void)id;
	(void)who;
	*out = NULL;
	if (st == NULL) {
		return -EINVAL;
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return qb_fail("redis channel", -ENOMEM);
	}
	snprintf(ch->key, sizeof(ch->key), "%s", st->key);
	ch->window =
	    role == QB_SEND && c->workload == QB_STREAM ? RD_WINDOW : 1;
	count = RD_READ_BYTES / (c->size > 0 ? c->size : 1);
	ch->count = count == 0 ? 1
	    : count > RD_COUNT ? RD_COUNT
	                       : (unsigned)count;
	snprintf(ch->last_id, sizeof(ch->last_id), "0-0");
	err = rd_connect(st, &ch->rc);
	if (err != 0) {
		rd_close(ch);
		return err;
	}
	*out = ch;
	return 0;
}

/* Read the oldest outstanding XADD reply. */
static int
rd_ack_one(struct qb_chan *ch)
{
	redisReply *r = NULL;
	int err;

	if (redisGetReply(ch->rc, (void **)&r) != REDIS_OK) {
		r = NULL;
	}
	ch->outstanding--;
	err = rd_reply_err(ch->rc, r, "XADD");
	if (err == 0 && r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "qbench: redis XADD: unexpected reply\n");
		err = -EPROTO;
	}
	if (r != NULL) {
		freeReplyObject(r);
	}
	return err;
}

static int
rd_send(struct qb_chan *ch, const void *msg, size_t len)
{
	const char *argv[5] = { "XADD", ch->key, "*", "m", msg };
	size_t lens[5] = { 4, strlen(ch->key), 1, 1, len };
	int err;

	/* Appended to hiredis's output buffer; written by the next
	 * redisGetReply, which a full window calls. */
	if (redisAppendCommandArgv(ch->rc, 5, argv, lens) != REDIS_OK) {
		return qb_fail("redis XADD", -ENOMEM);
	}
	ch->outstanding++;
	while (ch->outstanding >= ch->window) {
		if ((err = rd_ack_one(ch)) != 0) {
			return err;
		}
	}
	return 0;
}

static int
rd_flush(struct qb_chan *ch)
{
	int err;

	while (ch->outstanding > 0) {
		if ((err = rd_ack_one(ch)) != 0) {
			return err;
		}
	}
	return 0;
}

/* The entries of an XREAD reply for one stream:
 * [[key, [[id, [field, value]], ...]]]. */
static redisReply *
rd_entries(const redisReply *r)
{
	const redisReply *s;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
		return NULL;
	}
	s = r->element[0];
	if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
	    s->element[1]->type != REDIS_REPLY_ARRAY) {
		return NULL;
	}
	return s->element[1];
}

static int
rd_fetch(struct qb_chan *ch)
{
	char count[16];
	redisReply *r;
	int err;

	if (ch->reply != NULL) {
		freeReplyObject(ch->reply);
		ch->reply = NULL;
		ch->entries = NULL;
	}
	snprintf(count, sizeof(count), "%u", ch->count);
	/* BLOCK 0: wait as long as it takes (the watchdog bounds a run).
	 * A reply is never nil then. */
	r = redisCommand(ch->rc, "XREAD COUNT %s BLOCK 0 STREAMS %s %s", count,
	    ch->key, ch->last_id);
	err = rd_reply_err(ch->rc, r, "XREAD");
	if (err != 0) {
		if (r != NULL) {
			freeReplyObject(r);
		}
		return err;
	}
	ch->entries = rd_entries(r);
	if (ch->entries == NULL || ch->entries->elements == 0) {
		fprintf(stderr, "qbench: redis XREAD: unexpected reply\n");
		freeReplyObject(r);
		return -EPROTO;
	}
	ch->reply = r;
	ch->next = 0;
	return 0;
}

static ssize_t
rd_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	const redisReply *e;
	const redisReply *id;
	const redisReply *val;
	int err;

	if (ch->entries == NULL || ch->next == ch->entries->elements) {
		if ((err = rd_fetch(ch)) != 0) {
			return err;
		}
	}
	e = ch->entries->element[ch->next++];
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[1]->type != REDIS_REPLY_ARRAY ||
	    e->element[1]->elements != 2 ||
	    e->element[1]->element[1]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "qbench: redis XREAD: unexpected entry\n");
		return -EPROTO;
	}
	id = e->element[0];
	val = e->element[1]->element[1];
	if (id->len >= sizeof(ch->last_id)) {
		return -EPROTO;
	}
	memcpy(ch->last_id, id->str, id->len);
	ch->last_id[id->len] = '\0';
	if (val->len > cap) {
		return -EMSGSIZE;
	}
	memcpy(buf, val->str, val->len);
	return (ssize_t)val->len;
}

/* The variants share every function: prepare() reads what sets them
 * apart from cfg->variant. */
#define RD_FUNCS                                                 \
	.prepare = rd_prepare, .open = rd_open, .send = rd_send, \
	.flush = rd_flush, .recv = rd_recv, .close = rd_close,   \
	.cleanup = rd_cleanup

const struct qb_transport qb_t_redis_off = {
	.name = "redis-off",
	.what = "Redis Streams (XADD/XREAD), server with appendonly no",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct rd_variant) { "no", NULL },
	RD_FUNCS,
};

const struct qb_transport qb_t_redis_everysec = {
	.name = "redis-everysec",
	.what = "Redis Streams, server with appendonly yes, appendfsync "
	        "everysec",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct rd_variant) { "yes", "everysec" },
	RD_FUNCS,
};

const struct qb_transport qb_t_redis_always = {
	.name = "redis-always",
	.what = "Redis Streams, server with appendfsync always (reply after "
	        "fsync)",
	.flags = QB_F_MULTI | QB_F_DURABLE,
	.max_size = 0,
	.variant = &(const struct rd_variant) { "yes", "always" },
	RD_FUNCS,
};
