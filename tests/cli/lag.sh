#!/usr/bin/env bash
# tests/cli/lag.sh — `group describe` measures a group's backlog: lag in
# records, bytes (keys + values, exact, or estimated past --scan) and
# seconds (the age of the record at the committed offset), the
# consumption and production rates over --sample MS, and the time to
# drain; per partition and in total, as text and --json; from the ring
# and, on a persistent topic, from the segment files.  Bad options are
# refused with a clear message.
#
#   bash tests/cli/lag.sh BUILD_DIR   (from the repo root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

REPL=$(cd "$B/bin" && pwd)/shmq-replicator
reader=    # the slow reader of the draining test
REPL_PID= # the replicator
# Stop what lib.bash's cleanup does not know of, then clean up.
lag_cleanup() {
	local p
	for p in $reader $REPL_PID; do
		kill -9 "$p" 2>/dev/null || true
	done
	cleanup
}
trap lag_cleanup EXIT

now_ns() { date +%s%N; }
# lines FIRST COUNT: "k<i>:<value>" lines whose values differ in size
# (1..13 bytes), so that a wrong range gives a wrong byte count.
lines() {
	python3 -c 'import sys
f, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(f, f + n):
    print("k%d:%s" % (i, "v" * (i % 13 + 1)))' "$1" "$2"
}
# expect_bytes FILE FIRST...: key + value bytes of the lines of FILE
# (as `lines` writes them, "key:value") from line FIRST on; one FIRST
# per FILE pair: expect_bytes F0 C0 F1 C1 ...
expect_bytes() {
	python3 -c 'import sys
a, total = sys.argv[1:], 0
for f, first in zip(a[0::2], a[1::2]):
    for l in open(f).read().splitlines()[int(first):]:
        total += len(l) - 1
print(total)' "$@"
}
# jget FILE EXPR: EXPR over the JSON in FILE (v: the whole, p: the
# partitions).
jget() {
	python3 -c 'import json, math, sys
v = json.load(open(sys.argv[1]))
p = v["partitions"]
print(eval(sys.argv[2]))' "$1" "$2"
}
# ts_at TOPIC PARTITION OFFSET: the timestamp of that record.
ts_at() {
	"$CTL" consume "$1" --partition "$2" --from "$3" --count 1 \
		--format json | python3 -c 'import json, sys
print(json.load(sys.stdin)["timestamp"])'
}

# --- an idle group: exact lag in records, bytes and seconds ---------------

"$CTL" topic create t --partitions 2 --durability volatile
lines 0 100 >"$T/p0"
lines 1000 60 >"$T/p1"
"$CTL" produce t --partition 0 --key-separator : <"$T/p0"
"$CTL" produce t --partition 1 --key-separator : <"$T/p1"
run "$CTL" consume t --group g --count 70
expect_rc "consume --group g --count 70 (160 records in 2 partitions)" 0

d0=$(now_ns)
run "$CTL" group describe g --topic t --sample 200 --json
d1=$(now_ns)
expect_rc "group describe --sample 200 --json" 0
cp "$T/out" "$T/idle.json"
check "  ... parses as JSON" python3 -c 'import json, sys
json.load(open(sys.argv[1]))' "$T/idle.json"
c0=$(jget "$T/idle.json" 'p[0]["committed"]')
c1=$(jget "$T/idle.json" 'p[1]["committed"]')
check "  ... committed offsets add up to 70 ($c0 + $c1)" \
	test $((c0 + c1)) -eq 70
check "  ... lag in records: 90 in total, end - committed each" \
	test "$(jget "$T/idle.json" '(v["total_lag"],
		[x["lag"] for x in p] == [100 - '"$c0"', 60 - '"$c1"'])')" = \
	"(90, True)"
want0=$(expect_bytes "$T/p0" "$c0")
want1=$(expect_bytes "$T/p1" "$c1")
check "  ... lag in bytes: exactly the keys and values left ($want0, $want1)" \
	test "$(jget "$T/idle.json" '([x["lag_bytes"] for x in p],
		v["lag_bytes"], v["lag_bytes_exact"])')" = \
	"([$want0, $want1], $((want0 + want1)), True)"
ts0=$(ts_at t 0 "$c0")
ts1=$(ts_at t 1 "$c1")
check "  ... oldest_timestamp: the record at each committed offset" \
	test "$(jget "$T/idle.json" '[x["oldest_timestamp"] for x in p]')" = \
	"[$ts0, $ts1]"
# The age is now - timestamp, "now" being within the describe's run.
check "  ... lag_age_s: now minus that timestamp, per partition and max" \
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
d0, d1 = int(sys.argv[2]), int(sys.argv[3])
ages = []
for x, ts in zip(v["partitions"], map(int, sys.argv[4:])):
    a = x["lag_age_s"]
    assert (d0 - ts) / 1e9 - 1e-6 <= a <= (d1 - ts) / 1e9 + 1e-6, (a, d0, d1, ts)
    ages.append(a)
assert v["lag_age_s"] == max(ages), v
assert v["oldest_timestamp"] == min(map(int, sys.argv[4:])), v' \
	"$T/idle.json" "$d0" "$d1" "$ts0" "$ts1"
check "  ... an idle group: rates 0, drain never, no eta" \
	test "$(jget "$T/idle.json" '[(x["consume_rate"], x["produce_rate"],
		x["drain"], x["eta_s"]) for x in p + [v]]')" = \
	"$(python3 -c 'print([(0, 0, "never", None)] * 3)')"
check "  ... sample_ms 200" test "$(jget "$T/idle.json" 'v["sample_ms"]')" = 200

run "$CTL" group describe g --topic t --sample 0 --json
check "group describe again: the same oldest record, now older" \
	python3 -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for x, y in zip(a["partitions"] + [a], b["partitions"] + [b]):
    assert x["oldest_timestamp"] == y["oldest_timestamp"], (x, y)
    assert y["lag_age_s"] > x["lag_age_s"], (x, y)' "$T/idle.json" "$T/out"
check "  ... --sample 0: no rates, drain unmeasured" \
	test "$(jget "$T/out" '[(x["consume_rate"], x["produce_rate"],
		x["drain"], x["eta_s"]) for x in p + [v]]')" = \
	"$(python3 -c 'print([(None, None, "unmeasured", None)] * 3)')"

run "$CTL" group describe g --topic t --sample 100
expect_rc "group describe (text)" 0
check "  ... TOTAL-LAG 90" has_out "^TOTAL-LAG  *90$"
check "  ... LAG-BYTES $((want0 + want1))" has_out \
	"^LAG-BYTES  *[0-9.K]* ($((want0 + want1)) bytes of keys and values)$"
check "  ... LAG-AGE as a duration" has_out "^LAG-AGE  *[0-9]*\.[0-9]s$"
check "  ... RATES sampled over 100 ms" has_out \
	"^RATES  *consume 0\.0/s, produce 0\.0/s (sampled over 100 ms)$"
check "  ... DRAIN-ETA never" has_out "^DRAIN-ETA  *never$"
check "  ... the table's header" has_out \
	"^PARTITION  *COMMITTED  *END  *LAG  *LAG-BYTES  *LAG-AGE  *CONSUME/S  *PRODUCE/S  *ETA  *OWNER-PID  *RECORDS-OUT  *LOST$"
check "  ... and partition 0's row" grep -Eq \
	"^0 +$c0 +100 +$((100 - c0)) +[0-9.K]+ +[0-9]+\.[0-9]s +0\.0 +0\.0 +never +- " \
	"$T/out"
run "$CTL" group describe g --topic t --sample 0
check "--sample 0 (text): RATES and ETA say not measured" sh -c "
	grep -q '^RATES  *- (not measured: --sample 0)$' '$T/out' &&
	grep -q '^DRAIN-ETA  *-$' '$T/out' &&
	grep -Eq '^1 +$c1 +60 +$((60 - c1)) +[0-9.K]+ +[0-9]+\.[0-9]s +- +- +- ' '$T/out'"

# --- --scan N: past N records per partition, bytes are estimated ---------

"$CTL" topic create u --partitions 1 --durability volatile
for i in $(seq 1000 1099); do echo "$i:vvvvvvvv"; done >"$T/u"
"$CTL" produce u --key-separator : <"$T/u"
"$CTL" consume u --group g --count 10 >/dev/null
run "$CTL" group describe g --topic u --sample 0 --scan 5 --json
check "--scan 5: records of one size: the estimate is exact (90 * 12)" \
	test "$(jget "$T/out" '(p[0]["lag_bytes"], p[0]["lag_bytes_exact"],
		v["lag_bytes"], v["lag_bytes_exact"])')" = \
	"(1080, False, 1080, False)"
run "$CTL" group describe g --topic u --sample 0 --scan 5
check "  ... and the text marks it estimated" has_out \
	"^LAG-BYTES  *~1.1K (estimated: 1080 bytes of keys and values)$"
run "$CTL" group describe g --topic u --sample 0 --scan 90 --json
check "--scan 90 (the whole lag): exact" \
	test "$(jget "$T/out" '(v["lag_bytes"], v["lag_bytes_exact"])')" = \
	"(1080, True)"

# --- no lag: drained, ETA 0 -----------------------------------------------

"$CTL" consume u --group g >/dev/null
run "$CTL" group describe g --topic u --sample 100 --json
check "a group at the end: lag 0 bytes, no oldest record, drained, eta 0" \
	test "$(jget "$T/out" '(v["total_lag"], v["lag_bytes"],
		v["lag_age_s"], v["oldest_timestamp"], v["drain"], v["eta_s"],
		p[0]["drain"])')" = "(0, 0, 0, None, 'drained', 0, 'drained')"

# --- a consumer draining during the window: rate > 0, finite ETA ----------

# drain_check TOPIC GROUP WHAT: TOPIC holds 300,000 records that GROUP
# has not read.  A consumer of GROUP writes them to a reader that takes
# 4K every 10 ms (about 50,000 of these 7-byte lines a second), so it
# drains them in seconds, committing every 4096 records all along; a
# describe meanwhile sees it consume.
drain_check() {
	local topic=$1 group=$2 what=$3
	rm -f "$T/fifo"
	mkfifo "$T/fifo"
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
while os.read(fd, 4096):
    time.sleep(0.01)' "$T/fifo" &
	reader=$!
	"$CTL" consume "$topic" --group "$group" --timeout-ms -1 >"$T/fifo" &
	bg=$!
	committed_some() {
		"$CTL" group describe "$group" --topic "$topic" --sample 0 \
			--json 2>/dev/null | python3 -c 'import json, sys
try:
    v = json.load(sys.stdin)
except ValueError:
    sys.exit(1) # no group yet
sys.exit(0 if v["partitions"][0]["committed"] > 0 else 1)'
	}
	check "$what: a paced consumer starts committing (10 s)" \
		wait_for 10 committed_some
	run "$CTL" group describe "$group" --topic "$topic" --sample 1500 --json
	expect_rc "  ... group describe --sample 1500 while it drains" 0
	cp "$T/out" "$T/drain.json"
	check "  ... consume_rate > 0, produce_rate 0, still lagging" \
		test "$(jget "$T/drain.json" '(p[0]["consume_rate"] > 0,
			p[0]["produce_rate"], p[0]["lag"] > 0)')" = "(True, 0, True)"
	check "  ... draining, eta_s = lag / rate, the same in total" \
		python3 -c 'import json, math, sys
v = json.load(open(sys.argv[1]))
x = v["partitions"][0]
assert x["drain"] == v["drain"] == "draining", v
eta = x["lag"] / x["consume_rate"]
assert math.isfinite(x["eta_s"]) and x["eta_s"] > 0, x
assert abs(x["eta_s"] - eta) <= 1e-6 * eta, (x, eta)
assert v["eta_s"] == x["eta_s"] and v["consume_rate"] == x["consume_rate"], v' \
		"$T/drain.json"
	run "$CTL" group describe "$group" --topic "$topic" --sample 1500
	check "  ... the text shows a finite DRAIN-ETA and the rates" sh -c "
		grep -Eq '^DRAIN-ETA  *([0-9]+\.[0-9]s|[0-9]+m[0-9]{2}s)$' '$T/out' &&
		grep -Eq '^RATES  *consume [1-9][0-9]*\.[0-9]/s, produce 0\.0/s ' '$T/out'"
	kill -9 "$bg" "$reader" 2>/dev/null || true
	wait "$bg" "$reader" 2>/dev/null || true
	bg=
	reader=
}

"$CTL" topic create d --partitions 1 --durability volatile --ring-size 32M
seq 100000 399999 | "$CTL" produce d
drain_check d dg "a volatile topic"

# --- a producer during the window, nobody consuming: never ----------------

python3 -c 'import sys, time
for i in range(20000):
    print("late-%d" % i, flush=True)
    time.sleep(0.002)' 2>/dev/null | "$CTL" produce u &
bg=$!
produced_some() {
	[ "$("$CTL" group describe g --topic u --sample 0 --json |
		python3 -c 'import json, sys
print(json.load(sys.stdin)["total_lag"] > 0)')" = True ]
}
check "a paced producer starts (10 s)" wait_for 10 produced_some
run "$CTL" group describe g --topic u --sample 500 --json
check "  ... produce_rate > 0, consume_rate 0: drain never, eta null" \
	test "$(jget "$T/out" '(v["produce_rate"] > 0, v["consume_rate"],
		v["drain"], v["eta_s"], p[0]["drain"])')" = \
	"(True, 0, 'never', None, 'never')"
kill "$bg" 2>/dev/null || true
wait "$bg" 2>/dev/null || true
bg=

# --- the age again, seconds later: now - timestamp, not less --------------

# t's records are seconds old by now, far more than a describe takes,
# so a wrong scale or origin of the age cannot hide in the margin.
d0=$(now_ns)
run "$CTL" group describe g --topic t --sample 0 --json
d1=$(now_ns)
check "t's lag, seconds later: the same oldest records" \
	test "$(jget "$T/out" '[x["oldest_timestamp"] for x in p]')" = \
	"[$ts0, $ts1]"
check "  ... lag_age_s >= the age they had when describe started (> 1 s)" \
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
d0, d1 = int(sys.argv[2]), int(sys.argv[3])
for x, ts in zip(v["partitions"], map(int, sys.argv[4:])):
    a = x["lag_age_s"]
    assert 1 < (d0 - ts) / 1e9 - 1e-6 <= a <= (d1 - ts) / 1e9 + 1e-6, (a, d0, d1, ts)' \
	"$T/out" "$d0" "$d1" "$ts0" "$ts1"

# --- bad arguments --------------------------------------------------------

bad() {
	local want=$1
	shift
	run "$CTL" group describe "$@"
	if [ "$rc" -eq 2 ] && grep -qF -- "$want" "$T/err"; then
		ok "group describe $* is refused: $want"
	else
		not_ok "group describe $* (exit $rc): $(head -c 300 "$T/err")"
	fi
}
bad "--sample must be 0..3600000 ms (0: no rates), not 'x'" \
	g --topic t --sample x
bad "--sample must be 0..3600000 ms (0: no rates), not '-1'" \
	g --topic t --sample -1
bad "not '3600001'" g --topic t --sample 3600001
bad "--scan must be a record count of at least 1, not '0'" \
	g --topic t --scan 0
bad "not '1k'" g --topic t --scan 1k
bad "option '--sample' needs an argument" g --topic t --sample
bad "missing --topic TOPIC" g --sample 0
run "$CTL" group describe --help
check "group describe --help: exit 0, documents --sample and --scan" sh -c "
	[ $rc -eq 0 ] && grep -q -- '--sample MS' '$T/out' &&
	grep -q -- '--scan N' '$T/out' && [ ! -s '$T/err' ]"
run "$CTL" group describe nobody --topic t --sample 0
check "a group that never read the topic: exit 1 and a hint" sh -c "
	[ $rc -eq 1 ] && grep -q 'it never consumed it' '$T/err'"

# --- a persistent topic: the backlog is read from the segment files -------

"$REPL" --home "$SHMQ_HOME" --foreground --poll-ms 20 2>"$T/repl.log" &
REPL_PID=$!
ready_or_dead() { grep -q ' info: ready: ' "$1" || ! kill -0 "$2" 2>/dev/null; }
wait_for 30 ready_or_dead "$T/repl.log" "$REPL_PID" || true
if ! grep -q ' info: ready: ' "$T/repl.log"; then
	if grep -q io_uring "$T/repl.log"; then
		echo "ok - skipped: io_uring unavailable: $(head -c 300 "$T/repl.log")"
		finish
		exit 0
	fi
	not_ok "the replicator starts: $(head -c 300 "$T/repl.log")"
	finish
	exit 1
fi
"$CTL" topic create p --partitions 1 --durability persistent \
	--fsync never --ring-size 64K --segment-bytes 64K
# 2000 records of 90..102 bytes: the 64K ring holds the last ~400.
python3 -c 'for i in range(2000):
    print("k%d:%s" % (i, "v" * (i % 13 + 90)))' >"$T/pp"
"$CTL" produce p --key-separator : --acks durable <"$T/pp"
run "$CTL" consume p --group pg --count 100
expect_rc "a persistent topic: the group reads 100 of 2000 records" 0
run "$CTL" group describe pg --topic p --sample 0 --json
cp "$T/out" "$T/disk.json"
check "  ... lag 1900 records" test "$(jget "$T/disk.json" 'v["total_lag"]')" = 1900
run "$CTL" topic describe p --json
check "  ... offset 100 is no longer in the ring (only on disk)" \
	test "$(python3 -c 'import json, sys
x = json.load(open(sys.argv[1]))["partitions"][0]
print(x["ring_used"] < 65536 < 95 * 1900)' "$T/out")" = True
want=$(expect_bytes "$T/pp" 100)
check "  ... lag_bytes read from the segments, exact ($want)" \
	test "$(jget "$T/disk.json" '(v["lag_bytes"], v["lag_bytes_exact"])')" = \
	"($want, True)"
check "  ... oldest_timestamp: the record at offset 100, from disk" \
	test "$(jget "$T/disk.json" 'v["oldest_timestamp"]')" = "$(ts_at p 0 100)"

"$CTL" topic create pd --partitions 1 --durability persistent \
	--fsync never --ring-size 64K --segment-bytes 1M
seq 100000 399999 | "$CTL" produce pd
run "$CTL" topic describe pd --json
check "a persistent topic of 300,000 records: almost all only on disk" \
	test "$(python3 -c 'import json, sys
x = json.load(open(sys.argv[1]))["partitions"][0]
print(x["ring_used"] <= 65536 and x["durable"] == 300000)' "$T/out")" = True
drain_check pd pdg "a persistent topic, read from disk"

kill "$REPL_PID"
wait "$REPL_PID" 2>/dev/null || true

finish
