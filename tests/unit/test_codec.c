/*
 * test_codec.c — the checksum and the partitioner are part of the format:
 * pin them to their reference values.
 */
#include <string.h>

#include "helpers.h"
#include "internal.h"

static void
test_crc32c_matches_the_standard_check_value(void)
{
	/* CRC-32C("123456789") = 0xE3069283 (RFC 3720 / iSCSI). */
	CU_ASSERT_EQUAL(shmqi_crc32c(0, "123456789", 9), 0xE3069283u);
	/* Chaining equals one pass. */
	uint32_t a = shmqi_crc32c(0, "12345", 5);
	CU_ASSERT_EQUAL(shmqi_crc32c(a, "6789", 4), 0xE3069283u);
	CU_ASSERT_EQUAL(shmqi_crc32c(0, "", 0), 0u);
}

static void
test_murmur2_matches_kafka_test_vectors(void)
{
	/* apache/kafka clients UtilsTest.testMurmur2 */
	static const struct {
		const char *key;
		int32_t want;
	} v[] = {
		{ "21", -973932308 },
		{ "foobar", -790332482 },
		{ "a-little-bit-long-string", -985981536 },
		{ "a-little-bit-longer-string", -1486304829 },
		{ "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
		    -58897971 },
		{ "abc", 479470107 },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		int32_t got =
		    (int32_t)shmqi_murmur2(v[i].key, strlen(v[i].key));
		CU_ASSERT_EQUAL(got, v[i].want);
	}
}

static void
test_partition_for_key_is_kafka_default_partitioner(void)
{
	/* toPositive(murmur2(key)) % n, as Kafka's BuiltInPartitioner. */
	const char *k = "foobar";
	uint32_t h = (uint32_t)-790332482 & 0x7fffffffu;
	for (uint32_t n = 1; n <= 64; n++) {
		CU_ASSERT_EQUAL(
		    shmq_partition_for_key(k, 6, n), (int32_t)(h % n));
	}
	CU_ASSERT_EQUAL(shmq_partition_for_key(k, 6, 0), -EINVAL);
	CU_ASSERT_EQUAL(shmq_partition_for_key(NULL, 3, 4), -EINVAL);
	CU_ASSERT(shmq_partition_for_key(NULL, 0, 4) >= 0);
}

static void
test_record_crc_covers_payload_and_skips_commit_word(void)
{
	unsigned char buf[sizeof(struct rec_hdr) + 8];
	struct rec_hdr *h = (struct rec_hdr *)buf;
	memset(buf, 0, sizeof buf);
	h->rec_key_len = 3;
	h->rec_value_len = 5;
	h->rec_offset = 42;
	memcpy(h + 1, "keyvalue", 8);
	uint32_t c = shmqi_rec_crc(h, h + 1);
	atomic_store(&h->rec_len, 99); /* commit word: outside */
	h->rec_leader_epoch = 7; /* rewritable: outside */
	CU_ASSERT_EQUAL(shmqi_rec_crc(h, h + 1), c);
	buf[sizeof(struct rec_hdr) + 7] ^= 1; /* payload: inside */
	CU_ASSERT_NOT_EQUAL(shmqi_rec_crc(h, h + 1), c);
	buf[sizeof(struct rec_hdr) + 7] ^= 1;
	h->rec_offset = 43; /* offset: inside */
	CU_ASSERT_NOT_EQUAL(shmqi_rec_crc(h, h + 1), c);
}

static CU_TestInfo tests[] = {
	{ "test_crc32c_matches_the_standard_check_value",
	    test_crc32c_matches_the_standard_check_value },
	{ "test_murmur2_matches_kafka_test_vectors",
	    test_murmur2_matches_kafka_test_vectors },
	{ "test_partition_for_key_is_kafka_default_partitioner",
	    test_partition_for_key_is_kafka_default_partitioner },
	{ "test_record_crc_covers_payload_and_skips_commit_word",
	    test_record_crc_covers_payload_and_skips_commit_word },
	CU_TEST_INFO_NULL,
};

const struct th_suite suite_codec = { "codec", tests };
