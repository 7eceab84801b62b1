#!/usr/bin/env bash
# tests/cli/addparts.sh — shmqctl topic add-partitions: usage errors and
# exit statuses, the warning about keyed records, describe after the
# growth, and records produced to and consumed from a new partition (by
# number, and by key over the new count).
#
#   bash tests/cli/addparts.sh BUILD_DIR      (from the repository root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

run "$CTL" topic create t --partitions 2 --durability volatile
expect_rc "topic create t (2 partitions)" 0

# --- usage errors: exit 2, nothing changed --------------------------------

run "$CTL" topic add-partitions t
expect_rc "add-partitions without --total is a usage error" 2
check "  ... saying what is missing" has_err "missing --total N"

run "$CTL" topic add-partitions t --total 2
expect_rc "--total equal to the current count is a usage error" 2
check "  ... saying the topic has 2 and only grows" \
	has_err "topic t has 2 partitions; --total must be more"

run "$CTL" topic add-partitions t --total 1
expect_rc "--total below the current count is a usage error" 2

run "$CTL" topic add-partitions t --total 1025
expect_rc "--total above 1024 is a usage error" 2
check "  ... naming the range" has_err "bad --total '1025' (1..1024)"

run "$CTL" topic add-partitions t --total many
expect_rc "a --total that is no number is a usage error" 2

run "$CTL" topic add-partitions --total 4
expect_rc "add-partitions without NAME is a usage error" 2

run "$CTL" topic add-partitions nope --total 4
expect_rc "add-partitions of an unknown topic fails" 1
check "  ... saying there is no such topic" \
	has_err "topic add-partitions nope: no such topic"

run "$CTL" topic describe t
check "after the refusals t still has 2 partitions" has_out "^PARTITIONS  *2$"

run "$CTL" topic add-partitions --help
expect_rc "add-partitions --help" 0
check "  ... prints the usage on stdout" \
	has_out "Usage: shmqctl topic add-partitions NAME --total N"

run "$CTL" --help
check "shmqctl --help lists topic add-partitions" \
	has_out "topic add-partitions NAME --total N"

# --- growth --------------------------------------------------------------

echo "old-0" | "$CTL" produce t --partition 0

run "$CTL" topic add-partitions t --total 5
expect_rc "add-partitions t --total 5" 0
check "  ... prints nothing on stdout" test ! -s "$T/out"
check "  ... warns on stderr that the key mapping changes" \
	has_err "WARNING: keyed records hash over 5 partitions from now on"
check "  ... that per-key order holds only after the change" \
	has_err "per-key order holds only among records written after this change"
check "  ... and names shmqctl relay for a backlog" has_err "shmqctl relay"
check "  ... and gives the old and new counts" \
	has_err "WARNING: topic t now has 5 partitions (was 2)."

run "$CTL" topic describe t
check "topic describe shows 5 partitions" has_out "^PARTITIONS  *5$"
check "  ... and one row per partition" \
	test "$(grep -c '^[0-9]' "$T/out")" -eq 5
run "$CTL" topic describe t --json
check "topic describe --json shows 5 partitions" \
	python3 -c 'import json,sys; v=json.load(sys.stdin)
assert v["config"]["partitions"] == 5 and len(v["partitions"]) == 5, v' \
	<"$T/out"
run "$CTL" topic list --json
check "topic list --json shows 5 partitions" \
	python3 -c 'import json,sys; v=json.load(sys.stdin)
assert v[0]["partitions"] == 5, v' <"$T/out"

run "$CTL" consume t --partition 0 --format json
check "the old partition keeps its record" \
	python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]
assert len(r) == 1 and r[0]["value"] == "old-0" and r[0]["offset"] == 0, r' \
	<"$T/out"

# --- produce and consume on a new partition -------------------------------

printf 'n-0\nn-1\nn-2\n' | "$CTL" produce t --partition 4
run "$CTL" consume t --partition 4 --format json
check "records produced to new partition 4 are consumed from it" \
	python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]
assert [(x["partition"], x["offset"], x["value"]) for x in r] == \
    [(4, 0, "n-0"), (4, 1, "n-1"), (4, 2, "n-2")], r' <"$T/out"

# Keyed: placed over 5 partitions (Kafka's murmur2, as in
# produce_consume.sh), some of them on the new ones.
cat >"$T/murmur2.py" <<'PY'
def murmur2(data):
    m, r = 0x5bd1e995, 24
    h = (0x9747b28c ^ len(data)) & 0xffffffff
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    rest = data[4 * n:]
    if len(rest) >= 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if len(rest) >= 1:
        h ^= rest[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h

def partition_for(key, parts):
    return (murmur2(key) & 0x7fffffff) % parts
PY
for i in $(seq 0 39); do
	echo "key-$i=v-$i"
done >"$T/keyed"
run "$CTL" produce t --key-separator = <"$T/keyed"
expect_rc "produce keyed records after the growth" 0
run "$CTL" consume t --group g --format json --timeout-ms 500
check "a group reads every record of all 5 partitions, keyed ones where murmur2 over 5 puts them" \
	python3 - "$T/out" "$T/murmur2.py" <<'PY'
import json, sys
exec(open(sys.argv[2]).read())
recs = [json.loads(l) for l in open(sys.argv[1])]
keyed = [r for r in recs if r["key"] is not None]
assert len(recs) == 1 + 3 + 40, len(recs)
assert len(keyed) == 40, len(keyed)
for r in keyed:
    assert r["partition"] == partition_for(r["key"].encode(), 5), r
assert any(r["partition"] >= 2 for r in keyed), keyed
PY

finish
