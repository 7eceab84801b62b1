/*
 * murmur2.c — key → partition, bit-for-bit as Kafka's Java client
 * (Utils.murmur2 with seed 0x9747b28c, then toPositive(h) % partitions),
 * so a key lands on the same partition number as it would in Kafka.
 * Hand-written: no Debian library provides Kafka's variant (ecosystem.md
 * §2.2); the unit test holds Kafka's own test vectors.
 */
#include <errno.h>

#include "internal.h"

#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M 0x5bd1e995u
#define MURMUR2_R 24

uint32_t
shmqi_murmur2(const void *key, size_t len)
{
	const unsigned char *d = key;
	/* Java's int length: keys beyond 2 GiB cannot occur (REC_KEY_MAX). */
	uint32_t h = MURMUR2_SEED ^ (uint32_t)len;
	size_t n4 = len / 4;

	for (size_t i = 0; i < n4; i++) {
		const unsigned char *p = d + i * 4;
		uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		k *= MURMUR2_M;
		k ^= k >> MURMUR2_R;
		k *= MURMUR2_M;
		h *= MURMUR2_M;
		h ^= k;
	}
	const unsigned char *t = d + (len & ~(size_t)3);
	switch (len % 4) {
	case 3:
		h ^= (uint32_t)t[2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)t[1] << 8;
		/* fall through */
	case 1:
		h ^= t[0];
		h *= MURMUR2_M;
		break;
	default:
		break;
	}
	h ^= h >> 13;
	h *= MURMUR2_M;
	h ^= h >> 15;
	return h;
}

int32_t
shmq_partition_for_key(const void *key, size_t key_len, uint32_t partitions)
{
	if (partitions == 0 || (key == NULL && key_len != 0)) {
		return -EINVAL;
	}
	return (
	    int32_t)((shmqi_murmur2(key, key_len) & 0x7fffffffu) % partitions);
}
