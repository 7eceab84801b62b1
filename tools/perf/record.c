/*
 * record.c — the value layout of a benchmark record.
 *
 *   bytes 0..7   CLOCK_MONOTONIC ns when the producer wrote the record
 *   bytes 8..15  sequence: producer id << PERF_SEQ_ID_SHIFT | n, where n
 *                counts that producer's records to that partition
 *   bytes 16..   filler, written once into the template buffer
 *
 * memcpy, not a cast: the value is only byte-aligned in general.
 */
#include <string.h>

#include "perf.h"

void
perf_record_payload(void *value, size_t len)
{
	unsigned char *b = value;
	size_t i;

	/* Not all zeroes, so that nothing on the way can get away with
	 * not copying it. */
	for (i = PERF_HDR_BYTES; i < len; i++) {
		b[i] = (unsigned char)(i * 31u + 7u);
	}
}

void
perf_record_fill(void *value, uint64_t stamp, uint64_t seq)
{
	memcpy(value, &stamp, sizeof(stamp));
	memcpy((unsigned char *)value + sizeof(stamp), &seq, sizeof(seq));
}

void
perf_record_read(const void *value, uint64_t *stamp, uint64_t *seq)
{
	memcpy(stamp, value, sizeof(*stamp));
	memcpy(
	    seq, (const unsigned char *)value + sizeof(*stamp), sizeof(*seq));
}
