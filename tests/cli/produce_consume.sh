#!/usr/bin/env bash
# tests/cli/produce_consume.sh — shmqctl produce and standalone consume:
# values and offsets round-trip, key placement matches Kafka's murmur2,
# --report-acks, --acks durable, --from, JSON escaping, and a full
# persistent ring without a replicator.
#
#   bash tests/cli/produce_consume.sh BUILD_DIR   (from the repo root)
#
# Each check prints "ok - ..." or "not ok - ..."; the last line is
# "N passed, M failed" and the exit status is 1 if any check failed.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# Rings only: volatile, so no replicator is needed (the persistent
# default is exercised at the end, and with a replicator in
# replicator.sh).
"$CTL" topic create t --partitions 1 --durability volatile
"$CTL" topic create k --partitions 3 --durability volatile
"$CTL" topic create esc --partitions 1 --durability volatile

# --- 100 lines in, 100 records out ---------------------------------------

for i in $(seq 0 99); do
	echo "value-$i"
done >"$T/in100"
run "$CTL" produce t <"$T/in100"
expect_rc "produce 100 lines" 0
check "  ... quietly" test ! -s "$T/out"

run "$CTL" consume t --format json
expect_rc "consume --format json" 0
check "  ... returns every value at its offset, in order" \
	python3 - "$T/out" <<'EOF'
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "output must end with a newline"
recs = [json.loads(l) for l in lines[:-1]]
assert len(recs) == 100, len(recs)
last_ts = 0
for i, r in enumerate(recs):
    assert set(r) == {"topic", "partition", "offset", "key", "value",
                      "timestamp"}, r
    assert r["topic"] == "t" and r["partition"] == 0, r
    assert r["offset"] == i and r["value"] == "value-%d" % i, r
    assert r["key"] is None, r
    assert isinstance(r["timestamp"], int) and r["timestamp"] >= last_ts
    last_ts = r["timestamp"]
assert last_ts > 1600000000 * 10**9, "timestamps are ns since the epoch"
EOF

run "$CTL" consume t
expect_rc "consume (text)" 0
check "  ... prints exactly the lines produced" cmp -s "$T/out" "$T/in100"

run "$CTL" consume t --count 10
check "consume --count 10 prints 10 records" \
	test "$(cat "$T/out")" = "$(head -n 10 "$T/in100")"

run "$CTL" consume t --from 95
check "consume --from 95 starts at offset 95" \
	test "$(cat "$T/out")" = "$(tail -n 5 "$T/in100")"

run "$CTL" consume t --from -3 --format json
check "consume --from -3 prints the last 3 records" \
	test "$(python3 -c 'import json,sys
print(",".join(str(json.loads(l)["offset"]) for l in sys.stdin))' \
		<"$T/out")" = "97,98,99"

run "$CTL" consume t --from earliest --count 1
check "consume --from earliest starts at the log start" \
	test "$(cat "$T/out")" = value-0

run "$CTL" consume t --from latest --timeout-ms 100
expect_rc "consume --from latest" 0
check "  ... prints nothing when nothing new comes" test ! -s "$T/out"

start=$(date +%s%N)
run "$CTL" consume t --from latest --timeout-ms 300
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "consume --timeout-ms 300 stops after about 300 ms ($elapsed_ms)" \
	test "$elapsed_ms" -ge 250 -a "$elapsed_ms" -lt 5000

run "$CTL" consume t --partition 7
expect_rc "consume --partition 7 of a 1-partition topic fails" 1
run "$CTL" consume nosuch
expect_rc "consume of a missing topic fails" 1
run "$CTL" consume t --from sometime
expect_rc "consume --from sometime is a usage error" 2
run "$CTL" consume t --format xml
expect_rc "consume --format xml is a usage error" 2

printf 'a\n\nlast-without-newline' | "$CTL" produce esc
run "$CTL" consume esc --format json
check "empty lines are empty records; a last line needs no newline" \
	python3 - "$T/out" <<'EOF'
import json, sys
vals = [json.loads(l)["value"] for l in open(sys.argv[1])]
assert vals == ["a", "", "last-without-newline"], vals
EOF

# --- keys: murmur2 placement as Kafka's default partitioner --------------

cp "$(dirname "$0")/murmur2.py" "$T/murmur2.py"

keys="21 foobar abc user-1 user-2 user-3 a-little-bit-long-string x"
for round in 1 2 3; do
	for key in $keys; do
		echo "$key=v$round-$key"
	done
done >"$T/keyed"
run "$CTL" produce k --key-separator = <"$T/keyed"
expect_rc "produce --key-separator" 0
run "$CTL" consume k --format json
check "keyed records land where Kafka's murmur2 puts them (3 partitions)" \
	python3 - "$T/out" "$T/murmur2.py" <<'EOF'
import json, sys
exec(open(sys.argv[2]).read())
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 24, len(recs)
where = {}
for r in recs:
    key = r["key"]
    assert r["value"].startswith("v") and r["value"].endswith("-" + key), r
    assert r["partition"] == partition_for(key.encode(), 3), r
    where.setdefault(key, set()).add(r["partition"])
assert all(len(p) == 1 for p in where.values()), where
# The keys must not all hash alike, or the check proves little.
assert len({p for s in where.values() for p in s}) > 1, where
EOF

run "$CTL" consume k --print-key --partition "$(python3 -c "
exec(open('$T/murmur2.py').read()); print(partition_for(b'21', 3))")"
check "consume --print-key prints key TAB value" \
	grep -q "^21"$'\t'"v1-21\$" "$T/out"

echo "x:y:z" | "$CTL" produce k --key-separator :: --partition 2
run "$CTL" consume k --partition 2 --from -1 --format json
check "a line without the separator has no key; --partition is obeyed" \
	python3 -c 'import json,sys; r=json.loads(sys.stdin.read())
assert r["key"] is None and r["value"] == "x:y:z" and r["partition"] == 2' \
	<"$T/out"

# --- --report-acks --------------------------------------------------------

printf 'one\ntwo\nk3:three\n' >"$T/acks"
run "$CTL" produce t --report-acks --key-separator : <"$T/acks"
expect_rc "produce --report-acks" 0
check "  ... prints one valid JSON ack per record, offsets increasing" \
	python3 - "$T/out" <<'EOF'
import json, sys
acks = [json.loads(l) for l in open(sys.argv[1])]
assert [a["value"] for a in acks] == ["one", "two", "three"], acks
assert [a["key"] for a in acks] == [None, None, "k3"], acks
assert all(a["topic"] == "t" and a["partition"] == 0 for a in acks), acks
offs = [a["offset"] for a in acks]
assert offs == [100, 101, 102], offs
EOF

# --- --acks durable needs a persistent topic; all needs replication ------

run "$CTL" topic describe t --json
end_before=$(python3 -c 'import json,sys
print(json.load(sys.stdin)["partitions"][0]["end"])' <"$T/out")
run "$CTL" produce t --acks durable <<<lost
expect_rc "produce --acks durable on a volatile topic fails" 1
check "  ... and the message says it needs a persistent topic" \
	has_err "persistent"
run "$CTL" produce t --acks all <<<lost
expect_rc "produce --acks all fails too" 1
run "$CTL" topic describe t --json
check "  ... and nothing was appended" test "$(python3 -c 'import json,sys
print(json.load(sys.stdin)["partitions"][0]["end"])' <"$T/out")" = "$end_before"
run "$CTL" produce t --acks none <<<fine
expect_rc "produce --acks none works" 0
run "$CTL" produce t --acks maybe </dev/null
expect_rc "produce --acks maybe is a usage error" 2
run "$CTL" produce t --partition 3 </dev/null
expect_rc "produce --partition 3 of a 1-partition topic fails" 1
run "$CTL" produce nosuch </dev/null
expect_rc "produce to a missing topic fails" 1

# --- JSON escaping --------------------------------------------------------

# quote, backslash, tab, 0x01, a UTF-8 letter and an invalid byte (0xff)
printf 'q"b\\t\tc\001é\377end\n' >"$T/weird"
"$CTL" produce esc <"$T/weird"
run "$CTL" consume esc --from -1 --format json
check "JSON escapes quotes, backslash, tab and 0x01; output is UTF-8" \
	python3 - "$T/out" <<'EOF'
import json, sys
raw = open(sys.argv[1], "rb").read()
text = raw.decode("utf-8")          # strict: the output is valid UTF-8
r = json.loads(text)
assert r["value"] == 'q"b\\t\tc\x01\u00e9\u00ffend', repr(r["value"])
assert '\\"' in text and '\\\\' in text, text
assert '\\u0001' in text and '\\u0009' in text and '\\u00ff' in text, text
EOF

# --- records larger than the first receive buffer -------------------------

python3 -c 'import sys; sys.stdout.write("L" * 300000 + "\n")' >"$T/long"
"$CTL" produce esc <"$T/long"
run "$CTL" consume esc --from -1
check "a 300 KB line comes back whole" cmp -s "$T/out" "$T/long"

for topic in t k esc; do
	"$CTL" topic delete "$topic"
done

# --- the default, persistent, with no replicator --------------------------

# A 64K ring takes a few hundred of these 100-byte lines: the first
# ring's worth is acknowledged, then produce stops with an error that
# names this instance's replicator command, instead of waiting forever.
"$CTL" topic create p --partitions 1 --ring-size 64K
for i in $(seq 0 1999); do printf 'v-%04d-%094d\n' "$i" 0; done >"$T/many"
start_ms=$(($(date +%s%N) / 1000000))
run "$CTL" produce p --report-acks <"$T/many"
elapsed=$(($(date +%s%N) / 1000000 - start_ms))
expect_rc "produce past a full persistent ring without a replicator fails" 1
check "  ... at once (${elapsed} ms)" test "$elapsed" -lt 5000
check "  ... saying no replicator runs" \
	has_err "no shmq-replicator is running"
home=$(cd "$SHMQ_HOME" && pwd -P)
check "  ... and how to start this instance's" \
	has_err "hint: start it with: shmq-replicator --home $home\$"
acked=$(wc -l <"$T/out")
check "  ... after acknowledging one ring's worth ($acked records)" \
	test "$acked" -gt 100 -a "$acked" -lt 2000
run "$CTL" consume p --from earliest --format json
check "  ... which consumers read back without a replicator" python3 - \
	"$T/out" "$acked" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
assert [r["offset"] for r in recs] == list(range(n)), len(recs)
assert recs[-1]["value"].startswith("v-%04d-" % (n - 1)), recs[-1]
EOF

finish
