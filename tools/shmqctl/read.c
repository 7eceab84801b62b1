/*
 * read.c — the read-and-print loop of `shmqctl consume`.
 *
 * Records are copied out with shmq_recv into a buffer that grows when a
 * record does not fit (the record stays queued on -EMSGSIZE).  Output
 * is buffered while records keep coming; whenever the partitions run
 * dry, and every CONSUME_CHECKPOINT records, stdout is flushed and then
 * a group commits: the committed offset never passes a record that was
 * not yet written out (at-least-once, as Kafka's console consumer).
 *
 * The loop ends after --count records, after --timeout-ms without a
 * record, or on SIGINT/SIGTERM.  Waiting happens in short slices so a
 * signal is noticed even if the library's wait restarts after it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/json.h"
#include "consume.h"

/* Flush and commit at least this often while records keep coming. */
#define CONSUME_CHECKPOINT 4096
/* Longest single wait, so that a signal is seen within this long. */
#define CONSUME_SLICE_MS 100

static volatile sig_atomic_t consume_signal;

static void
consume_on_signal(int sig)
{
	consume_signal = sig;
}

void
consume_catch_signals(void)
{
	ctl_catch_signals(consume_on_signal);
}

int
consume_stop_signal(void)
{
	return consume_signal;
}

/* shmq_recv, growing the buffer for large records and reporting (then
 * skipping past) overruns. */
static int
consume_recv(struct consume *cs, shmq_record_t *r, int timeout_ms)
{
	size_t need;
	void *buf;
	int rc;

	for (;;) {
		rc = shmq_recv(cs->c, cs->buf, cs->cap, r, timeout_ms);
		if (rc == SHMQ_ELAPPED) {
			ctl_note("consume %s: partition %u: %llu records lost "
			         "(overrun by producers)",
			    cs->topic, r->partition,
			    (unsigned long long)r->lost);
			continue;
		}
		if (rc != -EMSGSIZE) {
			return rc;
		}
		need = r->key_len + r->value_len;
		if (need <= cs->cap) {
			return rc;
		}
		if (need < 2 * cs->cap) {
			need = 2 * cs->cap;
		}
		if ((buf = realloc(cs->buf, need)) == NULL) {
			return -ENOMEM;
		}
		cs->buf = buf;
		cs->cap = need;
		timeout_ms = 0;
	}
}

static int64_t
consume_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for a record: 0 with one in *r, 1 to stop (idle timeout or
 * signal), or a negative error. */
static int
consume_wait(struct consume *cs, shmq_record_t *r)
{
	int64_t deadline = consume_now_ms() + cs->timeout_ms;
	int64_t left;
	int rc, slice;

	for (;;) {
		if (consume_signal) {
			return 1;
		}
		slice = CONSUME_SLICE_MS;
		if (cs->timeout_ms >= 0) {
			left = deadline - consume_now_ms();
			if (left <= 0) {
				return 1;
			}
			if (left < slice) {
				slice = (int)left;
			}
		}
		rc = consume_recv(cs, r, slice);
		if (rc != -EAGAIN && rc != -EINTR) {
			return rc;
		}
	}
}

/* Write out what was printed, then (in a group) commit it. */
static int
consume_checkpoint(struct consume *cs)
{
	int rc;

	if (cs->unsaved == 0) {
		return 0;
	}
	cs->unsaved = 0;
	if ((rc = ctl_flush_stdout()) != 0) {
		return rc;
	}
	if (cs->group != NULL && (rc = shmq_consumer_commit(cs->c)) != 0) {
		return ctl_fail(
		    rc, "consume %s: commit group %s", cs->topic, cs->group);
	}
	return 0;
}

static void
consume_print(const struct consume *cs, const shmq_record_t *r)
{
	struct json j;

	if (!cs->json) {
		/* fwrite's pointer must not be NULL, even for 0 bytes. */
		if (cs->print_key) {
			if (r->key_len > 0) {
				fwrite(r->key, 1, r->key_len, stdout);
			}
			putchar('\t');
		}
		if (r->value_len > 0) {
			fwrite(r->value, 1, r->value_len, stdout);
		}
		putchar('\n');
		return;
	}
	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "topic", cs->topic);
	json_kuint(&j, "partition", r->partition);
	json_kuint(&j, "offset", r->offset);
	json_key(&j, "key");
	/* The library does not tell an empty key from none: both are
	 * null here, as for keyless records in `produce --report-acks`. */
	json_strn(&j, r->key_len > 0 ? r->key : NULL, r->key_len);
	json_key(&j, "value");
	json_strn(&j, r->value_len > 0 ? r->value : "", r->value_len);
	json_kint(&j, "timestamp", r->timestamp);
	if (r->producer_id != 0) {
		/* An idempotent producer's record: its unique id. */
		json_kuint(&j, "producer_id", r->producer_id);
		json_kuint(&j, "producer_epoch", r->producer_epoch);
		json_kuint(&j, "sequence", r->sequence);
	}
	json_end_object(&j);
}

int
consume_loop(struct consume *cs)
{
	shmq_record_t r;
	uint64_t printed = 0;
	int rc;

	while (!cs->has_count || printed < cs->count) {
		if (consume_signal) {
			break;
		}
		rc = consume_recv(cs, &r, 0);
		if (rc == -EAGAIN) {
			/* Dry: save progress before waiting for more. */
			if ((rc = consume_checkpoint(cs)) != 0) {
				return rc;
			}
			rc = consume_wait(cs, &r);
			if (rc == 1) {
				break;
			}
		}
		if (rc != 0) {
			return ctl_fail(rc, "consume %s", cs->topic);
		}
		consume_print(cs, &r);
		printed++;
		if (++cs->unsaved >= CONSUME_CHECKPOINT &&
		    (rc = consume_checkpoint(cs)) != 0) {
			return rc;
		}
	}
	return consume_checkpoint(cs);
}
