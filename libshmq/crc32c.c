/*
 * crc32c.c — CRC-32C (Castagnoli), the checksum every record carries.
 *
 * ISA-L's crc32_iscsi() picks SSE4.2/PCLMUL/AVX-512 code at run time.
 * It neither pre- nor post-inverts, so the standard CRC-32C (check value
 * 0xE3069283 for "123456789") is crc32_iscsi(buf, len, ~crc) ^ ~0: this
 * wrapper keeps the standard, chainable convention.  Its length is an
 * int, so long buffers go in chunks.
 */
#include <isa-l/crc.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

#define CRC_CHUNK (1u << 30)
/* Below this, ISA-L's folding set-up costs more than it saves: one
 * crc32 instruction per 8 bytes is faster (measured: ~30 ns vs ~12 ns
 * for a 64-byte record on this VM).  Same polynomial, same result. */
#define CRC_SMALL 256u

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_small_sse42(uint32_t raw, const unsigned char *p, size_t len)
{
	uint64_t c = raw;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len-- > 0) {
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	}
	return c32;
}
#endif

uint32_t
shmqi_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t raw = ~crc;
#if defined(__x86_64__)
	static int have_sse42 = -1;
	if (have_sse42 < 0) {
		have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	}
	if (len < CRC_SMALL && have_sse42) {
		return ~crc_small_sse42(raw, p, len);
	}
#endif
	while (len > 0) {
		size_t n = len > CRC_CHUNK ? CRC_CHUNK : len;
		raw = crc32_iscsi((unsigned char *)p, (int)n, raw);
		p += n;
		len -= n;
	}
	return ~raw;
}

/* The record CRC: header bytes from rec_offset on, then key and value.
 * When they adjoin (always, in ring, segment and frame) it is one pass:
 * the per-call set-up dominates for small records. */
uint32_t
shmqi_rec_crc(const struct rec_hdr *h, const void *payload)
{
	const unsigned char *b = (const unsigned char *)h;
	size_t n = (size_t)h->rec_key_len + h->rec_value_len;
	if (payload == (const void *)(h + 1)) {
		return shmqi_crc32c(
		    0, b + REC_CRC_START, sizeof(*h) - REC_CRC_START + n);
	}
	uint32_t c =
	    shmqi_crc32c(0, b + REC_CRC_START, sizeof(*h) - REC_CRC_START);
	return shmqi_crc32c(c, payload, n);
}
