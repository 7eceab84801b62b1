/*
 * msg.c — the messages qbench sends and the checksum that verifies them.
 *
 * A message is a struct qb_hdr and a payload cut from one of QB_PATTERNS
 * pseudo-random patterns, picked by seq.  Producers keep one whole
 * message per pattern and only rewrite its header before each send, so
 * building a message costs 16 bytes, not a copy of the payload.
 *
 * The checksum must be cheap for the producer and exact for the
 * consumer.  The consumer sums what arrived; the producer adds, per
 * message, the pattern's payload sum computed once, mixed with the
 * header.  The payload sum xors every 64-bit word with a constant that
 * depends on its position before adding: a single changed byte always
 * changes it (a word maps to a different word, so the sum moves), and
 * unlike a plain sum it also catches words moved within a message.
 * Four accumulators keep the loop at memory speed at 1 MiB.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

/* splitmix64's finaliser: a bijection that spreads every input bit. */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static uint64_t
load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

uint64_t
qb_payload_sum(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t words = len / 8;
	size_t i = 0;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint64_t k = 0;

	for (; i + 4 <= words; i += 4) {
		s0 += load64(p + 8 * i) ^ k;
		s1 += load64(p + 8 * i + 8) ^ (k + GOLDEN);
		s2 += load64(p + 8 * i + 16) ^ (k + 2 * GOLDEN);
		s3 += load64(p + 8 * i + 24) ^ (k + 3 * GOLDEN);
		k += 4 * GOLDEN;
	}
	for (; i < words; i++) {
		s0 += load64(p + 8 * i) ^ k;
		k += GOLDEN;
	}
	if (len % 8 != 0) {
		/* The tail as one zero-padded word; the length is checked
		 * on its own, so the padding cannot hide a short read. */
		uint64_t w = 0;
		memcpy(&w, p + 8 * words, len % 8);
		s1 += w ^ k;
	}
	return s0 + mix64(s1) + mix64(s2 + GOLDEN) + mix64(s3 ^ len);
}

void
qb_hdr_get(const void *msg, struct qb_hdr *h)
{
	memcpy(h, msg, sizeof *h);
}

uint64_t
qb_msg_csum_parts(const struct qb_hdr *h, uint64_t payload_sum)
{
	uint64_t w0 = (uint64_t)h->len | (uint64_t)h->producer << 32 |
	    (uint64_t)h->flags << 48;
	return mix64(mix64(w0 ^ payload_sum) + h->seq);
}

uint64_t
qb_msg_csum(const void *msg, size_t len)
{
	struct qb_hdr h;
	const unsigned char *p = msg;

	if (len < QB_HDR_SIZE) {
		/* Never a valid message: the consumer rejects it first; a
		 * distinct value keeps the function total anyway. */
		return mix64(len ^ UINT64_C(0xdead));
	}
	qb_hdr_get(msg, &h);
	return qb_msg_csum_parts(
	    &h, qb_payload_sum(p + QB_HDR_SIZE, len - QB_HDR_SIZE));
}

int
qb_patterns_init(struct qb_patterns *p, size_t size)
{
	memset(p, 0, sizeof *p);
	p->size = size;
	for (unsigned i = 0; i < QB_PATTERNS; i++) {
		/* 64-byte aligned, as a real producer's buffers would be;
		 * rounded up because aligned_alloc wants a multiple. */
		size_t alloc = (size + 63) & ~(size_t)63;
		unsigned char *m = aligned_alloc(64, alloc);
		uint64_t x = GOLDEN * (i + 1);

		if (m == NULL) {
			qb_patterns_free(p);
			return -ENOMEM;
		}
		memset(m, 0, alloc);
		for (size_t off = QB_HDR_SIZE; off < size; off += 8) {
			uint64_t v = mix64(x += GOLDEN);
			size_t n = size - off < 8 ? size - off : 8;
			memcpy(m + off, &v, n);
		}
		p->msg[i] = m;
		p->sum[i] =
		    qb_payload_sum(m + QB_HDR_SIZE, size - QB_HDR_SIZE);
	}
	return 0;
}

void
qb_patterns_free(struct qb_patterns *p)
{
	for (unsigned i = 0; i < QB_PATTERNS; i++) {
		free(p->msg[i]);
		p->msg[i] = NULL;
	}
}

unsigned char *
qb_msg_build(
    struct qb_patterns *p, unsigned producer, uint64_t seq, unsigned flags)
{
	unsigned char *m = p->msg[seq % QB_PATTERNS];
	struct qb_hdr h;

	h.len = (uint32_t)p->size;
	h.producer = (uint16_t)producer;
	h.flags = (uint16_t)flags;
	h.seq = seq;
	memcpy(m, &h, sizeof h);
	return m;
}
