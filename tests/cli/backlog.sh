#!/usr/bin/env bash
# tests/cli/backlog.sh — reading a persistent topic's backlog from disk:
# `consume --from OFFSET` for offsets that left the ring (the first, one
# in a middle segment, the last), past the end (waits for new records),
# and before the log start once retention deleted segments (starts at
# the log start and says so); `topic describe` and `status` show the
# log start, the durable offset, the segments and their bytes, and the
# fsync, segment and retention settings.
#
#   bash tests/cli/backlog.sh BUILD_DIR   (from the repo root)
#
# Skipped (with an "ok - skipped" line) only when the replicator cannot
# start because io_uring is unavailable.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

REPL=$(cd "$B/bin" && pwd)/shmq-replicator
N=2000 # records per topic: 160 bytes each in the ring, five 64K rings

ready_or_dead() { grep -q ' info: ready: ' "$1" || ! kill -0 "$2" 2>/dev/null; }
# values FIRST COUNT: the values of records FIRST.. (one per line), each
# padded to 100 bytes so that a few hundred fill the 64K ring.
values() {
	python3 -c 'import sys
f, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(f, f + n):
    print(("v-%d-" % i).ljust(100, "x"))' "$1" "$2"
}
# check_recs FILE FIRST COUNT: FILE holds COUNT JSON records of
# partition 0, offsets FIRST.. in order, each with its own value.
check_recs() {
	python3 - "$@" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
first, n = int(sys.argv[2]), int(sys.argv[3])
offs = [r["offset"] for r in recs]
assert offs == list(range(first, first + n)), (offs[:5], len(offs))
for r in recs:
    assert r["partition"] == 0, r
    assert r["value"] == ("v-%d-" % r["offset"]).ljust(100, "x"), r
PY
}
# jq_part TOPIC EXPR: EXPR of partition 0 of `topic describe --json`
# (p: the partition object, c: the config, v: the whole).
jq_part() {
	"$CTL" topic describe "$1" --json | python3 -c 'import json, sys
v = json.load(sys.stdin)
c, p = v["config"], v["partitions"][0]
print(eval(sys.argv[1]))' "$2"
}
# disk TOPIC: "COUNT BYTES FIRST" of the partition-0 segment files.
disk() {
	python3 - "$SHMQ_HOME/data/$1/0" <<'PY'
import os, sys
d = sys.argv[1]
logs = sorted(f for f in os.listdir(d) if f.endswith(".log")
              and len(f) == 24)
print(len(logs), sum(os.stat(os.path.join(d, f)).st_size for f in logs),
      int(logs[0][:20]) if logs else -1)
PY
}

"$REPL" --home "$SHMQ_HOME" --foreground --poll-ms 20 2>"$T/repl.log" &
bg=$!
wait_for 30 ready_or_dead "$T/repl.log" "$bg" || true
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
ok "the replicator starts"

# --- a backlog that left the ring: every offset is readable ---------------

run "$CTL" topic create a --partitions 1 --durability persistent \
	--fsync never --ring-size 64K --segment-bytes 64K
expect_rc "topic create a: persistent, 64K ring, 64K segments" 0
values 0 "$N" >"$T/in"
run "$CTL" produce a --acks durable <"$T/in"
expect_rc "produce $N records with --acks durable" 0

run "$CTL" topic describe a --json
expect_rc "topic describe --json" 0
read -r nseg nbytes first < <(disk a)
check "  ... the ring holds only the last records (ring_used <= 64K)" \
	test "$(jq_part a 'p["ring_used"] <= 65536 < 160 * p["end"]')" = True
check "  ... log_start 0 (on disk), end and durable $N" \
	test "$(jq_part a '(p["log_start"], p["end"], p["durable"])')" = \
	"(0, $N, $N)"
check "  ... segments and segment_bytes as on disk ($nseg, $nbytes)" \
	test "$(jq_part a '(p["segments"], p["segment_bytes"])')" = \
	"($nseg, $nbytes)"
check "  ... at least 4 segments of at most 64K" \
	test "$nseg" -ge 4 -a "$nbytes" -le $((nseg * 65536))
check "  ... config: fsync, segment and retention settings" \
	test "$(jq_part a '(c["fsync"], c["segment_bytes"],
		c["retention_bytes"], c["retention_ms"], v["replicator_running"],
		"fsync_interval_ms" in c)')" = "('never', 65536, 0, 0, True, False)"

run "$CTL" topic describe a
check "topic describe shows FSYNC never" has_out "^FSYNC  *never$"
check "  ... SEGMENT-SIZE and RETENTION" sh -c "
	grep -q '^SEGMENT-SIZE  *64K (65536 bytes)$' '$T/out' &&
	grep -q '^RETENTION  *none' '$T/out'"
check "  ... the disk table header" \
	has_out "^PARTITION  *DURABLE  *BEHIND  *SEGMENTS  *SEGMENT-BYTES  *STICKY-ERROR$"
check "  ... and partition 0 durable at $N with $nseg segments, no error" \
	grep -Eq "^0 +$N +0 +$nseg +[0-9.]+K +-$" "$T/out"

run "$CTL" consume a --partition 0 --from 0 --count "$N" --format json
expect_rc "consume --from 0" 0
check "  ... returns all $N records from the segments and the ring" \
	check_recs "$T/out" 0 "$N"

mid=$((N / 2 + 17))
run "$CTL" consume a --from "$mid" --count 5 --format json
check "consume --from $mid (a middle segment) starts there" \
	check_recs "$T/out" "$mid" 5

run "$CTL" consume a --from $((N - 1)) --timeout-ms 200 --format json
expect_rc "consume --from $((N - 1)) (the last offset)" 0
check "  ... returns exactly the last record" check_recs "$T/out" $((N - 1)) 1

run "$CTL" consume a --from 99999 --timeout-ms 200 --format json
expect_rc "consume --from 99999 (past the end) ends at its timeout" 0
check "  ... with nothing printed" test ! -s "$T/out"
check "  ... and a note that it waits at the end" \
	has_err "offset 99999 is past the end; waiting at $N"

# Past the end waits for the next record: it is printed once produced.
"$CTL" consume a --from 99999 --count 1 --timeout-ms 20000 --format json \
	>"$T/late.out" 2>"$T/late.err" &
bg2=$!
wait_for 10 grep -q "waiting at $N" "$T/late.err" || true
values "$N" 1 | "$CTL" produce a --acks durable
set +e
wait "$bg2"
rc=$?
set -e
expect_rc "consume --from 99999 --count 1 waits for a new record" 0
check "  ... and prints it (offset $N)" check_recs "$T/late.out" "$N" 1

# --- retention deleted the oldest segments --------------------------------

run "$CTL" topic create r --partitions 1 --durability persistent \
	--fsync interval=50 --ring-size 64K --segment-bytes 64K \
	--retention-bytes 128K
expect_rc "topic create r: --retention-bytes 128K, --fsync interval=50" 0
# --acks leader: a producer that waits for each DURABLE ack would wait
# for each interval flush.
run "$CTL" produce r <"$T/in"
expect_rc "produce $N records" 0
# Settled: all on disk, and retention brought the segments to 128K
# (deleting stops there, so the figures below stay put).
retained() { [ "$(jq_part r '(p["log_start"] > 0 and
	p["durable"] == p["end"] and p["segment_bytes"] <= 131072)')" = True ]; }
check "retention deletes old segments and moves the log start (10 s)" \
	wait_for 10 retained
read -r nseg nbytes first < <(disk r)
start=$(jq_part r 'p["log_start"]')
check "  ... to the first offset of the oldest segment left ($first)" \
	test "$start" = "$first"
check "  ... describe counts the segments left ($nseg, $nbytes bytes)" \
	test "$(jq_part r '(p["segments"], p["segment_bytes"])')" = \
	"($nseg, $nbytes)"
check "  ... which hold at most 128K, in at least 2 segments" \
	test "$nbytes" -le 131072 -a "$nseg" -ge 2
check "  ... config: fsync interval=50 and retention_bytes" \
	test "$(jq_part r '(c["fsync"], c["fsync_interval_ms"],
		c["retention_bytes"])')" = "('interval', 50, 131072)"

run "$CTL" topic describe r
check "topic describe shows FSYNC interval=50 and the retention" sh -c "
	grep -q '^FSYNC  *interval=50$' '$T/out' &&
	grep -q '^RETENTION  *128K (131072 bytes)$' '$T/out'"
check "  ... and LOG-START $start in the partition table" \
	grep -Eq "^0 +$start +$N +$N " "$T/out"

run "$CTL" consume r --from 0 --count 3 --format json
expect_rc "consume --from 0 (deleted by retention)" 0
check "  ... starts at the log start $start" check_recs "$T/out" "$start" 3
check "  ... and says so" \
	has_err "offset 0 is before the log start; starting at $start"
run "$CTL" consume r --from $((start - 1)) --count 1 --format json
check "consume --from the offset before the log start: the log start" \
	check_recs "$T/out" "$start" 1
run "$CTL" consume r --from "$start" --count 2 --format json
check "consume --from the log start starts there" \
	check_recs "$T/out" "$start" 2
check "  ... without a note" test ! -s "$T/err"
run "$CTL" consume r --from earliest --count 1 --format json
check "consume --from earliest: the log start" check_recs "$T/out" "$start" 1
mid=$(((start + N) / 2))
run "$CTL" consume r --from "$mid" --count "$((N - mid))" --format json
check "consume --from $mid: to the end, in order" \
	check_recs "$T/out" "$mid" "$((N - mid))"

run "$CTL" status --json
check "status --json: log_start, segments and segment_bytes of r" \
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
r = [p for p in v["partitions"] if p["topic"] == "r"]
assert len(r) == 1, v
r = r[0]
assert (r["log_start"], r["segments"], r["segment_bytes"]) == \
    tuple(int(x) for x in sys.argv[2:]), r' "$T/out" "$start" "$nseg" "$nbytes"

# --- a volatile topic has nothing on disk ---------------------------------

run "$CTL" topic create v --partitions 1 --durability volatile
values 0 10 | "$CTL" produce v
check "a volatile topic: no segments, no disk config" \
	test "$(jq_part v '(p["segments"], p["segment_bytes"], p["end"],
		"fsync" in c, "replicator_running" in v)')" = \
	"(0, 0, 10, False, False)"
run "$CTL" topic describe v
check "  ... and describe prints no FSYNC line and no disk table" sh -c "
	! grep -q '^FSYNC' '$T/out' && ! grep -q 'SEGMENTS' '$T/out'"

kill "$bg"
wait "$bg" 2>/dev/null || true
bg=

finish
