"""murmur2.py — Kafka's default partitioner for the CLI tests, checked
against Kafka's own test vectors when loaded.  Used by exec() of this
file (produce_consume.sh) or as a module (relay.sh)."""
import sys

def murmur2(data):
    """Kafka's Utils.murmur2 (seed 0x9747b28c), as an unsigned 32-bit int."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    n = len(data)
    h = (0x9747B28C ^ n) & mask
    for i in range(0, n - n % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = n % 4
    if tail >= 3:
        h ^= data[n - n % 4 + 2] << 16
    if tail >= 2:
        h ^= data[n - n % 4 + 1] << 8
    if tail >= 1:
        h ^= data[n - n % 4]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h

def signed(x):
    return x - (1 << 32) if x & 0x80000000 else x

# Kafka's own vectors (UtilsTest.testMurmur2): the reference is right.
for key, want in [(b"21", -973932308), (b"foobar", -790332482),
                  (b"a-little-bit-long-string", -985981536),
                  (b"a-little-bit-longer-string", -1486304829),
                  (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                   -58897971), (b"abc", 479470107)]:
    assert signed(murmur2(key)) == want, key

def partition_for(key, n):
    return (murmur2(key) & 0x7FFFFFFF) % n
