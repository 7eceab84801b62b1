#!/usr/bin/env bash
# tests/cli/relay.sh — `shmqctl relay`: a keyed backlog of a 2-partition
# topic relayed into a 6-partition one arrives exactly once, each key in
# the one partition murmur2 gives it and in order, keyless records in
# their source partition's order, timestamps kept; the source group's
# lag is 0 after and a second run relays nothing; --max stops and a rerun
# resumes; a relay killed with kill -9 mid-run (held up by a full
# target) and run again loses nothing, duplicates at most one batch and
# keeps per-key order of first occurrences; --follow relays new records
# until SIGINT, then commits, prints the summary and exits 0; a
# persistent target without a replicator is refused (default acks
# durable) unless --acks leader; bad arguments exit 2; the progress line
# appears on a terminal only.
#
#   bash tests/cli/relay.sh BUILD_DIR   (from the repo root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# backlog NKEYS PER_KEY NOKEY: keyed lines "kK:kK-SEQ" round-robin over
# the keys (SEQ counts per key), then NOKEY keyless lines "nokey-I".
backlog() {
	python3 -c 'import sys
nk, per, nokey = map(int, sys.argv[1:])
for s in range(per):
    for k in range(nk):
        print("k%d:k%d-%d" % (k, k, s))
for i in range(nokey):
    print("nokey-%d" % i)' "$@"
}
# committed GROUP TOPIC: the sum of the group's committed offsets
# ("none" if the group does not exist).
committed() {
	{ "$CTL" group describe "$1" --topic "$2" --sample 0 --json ||
		echo null; } 2>/dev/null | python3 -c 'import json, sys
v = json.load(sys.stdin)
print(sum(p["committed"] for p in v["partitions"]) if v else "none")'
}
committed_is() { [ "$(committed "$1" "$2")" = "$3" ]; }
committed_some() {
	local c
	c=$(committed "$1" "$2")
	[ "$c" != none ] && [ "$c" -gt 0 ]
}
# members_are GROUP TOPIC N: the group has N live members.
members_are() {
	[ "$({ "$CTL" group describe "$1" --topic "$2" --sample 0 --json ||
		echo '{"members": -1}'; } 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["members"])')" = "$3" ]
}
# ends TOPIC: the sum of the partitions' end offsets.
ends() {
	"$CTL" topic describe "$1" --json | python3 -c 'import json, sys
print(sum(p["end"] for p in json.load(sys.stdin)["partitions"]))'
}
# total_lag GROUP TOPIC
total_lag() {
	"$CTL" group describe "$1" --topic "$2" --sample 0 --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["total_lag"])'
}
# dump TOPIC FILE: every record of TOPIC as JSON lines.
dump() {
	"$CTL" consume "$1" --from earliest --format json --timeout-ms 300 >"$2"
}

cp "$(dirname "$0")/murmur2.py" "$T/murmur2.py"
cat >"$T/check.py" <<'EOF'
"""check.py SRC DST NDST MAXDUP [SUMMARY]: DST (a relay of SRC into NDST
partitions, JSON lines of `consume`) holds every record of SRC; keyed
records sit in murmur2(key) % NDST and keep their source order per key;
keyless ones sit in source partition % NDST in source order; timestamps
are the source's; at most MAXDUP records are duplicates, and those are
re-sends (the first occurrences keep the order).  SUMMARY (the relay's
--json summary) must count DST's records per partition."""
import json, sys
from collections import defaultdict

sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
from murmur2 import murmur2  # checks Kafka's vectors on load

# Kafka's own vectors (UtilsTest.testMurmur2), as unsigned.
assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF

src = [json.loads(l) for l in open(sys.argv[1])]
dst = [json.loads(l) for l in open(sys.argv[2])]
ndst, maxdup = int(sys.argv[3]), int(sys.argv[4])
src.sort(key=lambda r: (r["partition"], r["offset"]))
dst.sort(key=lambda r: (r["partition"], r["offset"]))

ident = lambda r: (r["key"], r["value"])
by_id = {ident(r): r for r in src}
assert len(by_id) == len(src), "source records are not unique"

seen, dups = {}, 0
order = defaultdict(list)  # stream -> source offsets, first occurrences
for r in dst:
    s = by_id.get(ident(r))
    assert s is not None, ("not from the source", r)
    if r["key"] is not None:
        want = murmur2(r["key"].encode()) & 0x7FFFFFFF
        want %= ndst
        stream = ("key", r["key"])
    else:
        want = s["partition"] % ndst
        stream = ("nokey", s["partition"])
    assert r["partition"] == want, ("wrong partition", r, want)
    assert r["timestamp"] == s["timestamp"], ("timestamp", r, s)
    if ident(r) in seen:
        dups += 1
        continue
    seen[ident(r)] = True
    order[stream].append(s["offset"])
missing = [i for i in by_id if i not in seen]
assert not missing, ("missing", len(missing), missing[:5])
assert dups <= maxdup, ("too many duplicates", dups, maxdup)
for stream, offs in order.items():
    assert offs == sorted(offs), ("order", stream, offs[:20])
    # one source partition per stream: keys never span two
if len(sys.argv) > 5:
    summ = json.load(open(sys.argv[5]))
    count = defaultdict(int)
    for r in dst:
        count[r["partition"]] += 1
    got = {p["partition"]: p["records"] for p in summ["partitions"]}
    assert got == {p: count[p] for p in range(ndst)}, (got, count)
    assert summ["records"] == len(dst), summ
print("ok", len(src), len(dst), dups)
EOF

# --- a keyed backlog into more partitions ---------------------------------

NK=20 PER=150 NOKEY=300 # 3000 keyed + 300 keyless records
N=$((NK * PER + NOKEY))
run "$CTL" topic create src --partitions 2 --durability volatile --ring-size 2M
expect_rc "topic create src: 2 partitions" 0
run "$CTL" topic create dst --partitions 6 --durability volatile --ring-size 2M
expect_rc "topic create dst: 6 partitions" 0
backlog "$NK" "$PER" "$NOKEY" | "$CTL" produce src --key-separator :
dump src "$T/src.json"
check "the source holds $N records in both partitions" python3 -c "
import json
recs = [json.loads(l) for l in open('$T/src.json')]
assert len(recs) == $N and {r['partition'] for r in recs} == {0, 1}"

run "$CTL" relay --from src --to dst --batch 100 --json
expect_rc "relay --from src --to dst (drain)" 0
cp "$T/out" "$T/sum.json"
check "  ... the summary: $N records, stopped drained, acks leader" \
	python3 -c "
import json
s = json.load(open('$T/sum.json'))
assert (s['records'], s['stopped'], s['acks'], s['group'], s['mode']) == \
	($N, 'drained', 'leader', 'relay.dst', 'drain'), s
assert s['bytes'] > 0 and s['lost'] == 0 and len(s['partitions']) == 6, s"
check "  ... no progress line when stderr is not a terminal" \
	test ! -s "$T/err"
dump dst "$T/dst.json"
check "  ... every record once, by key, in order, timestamps kept" \
	python3 "$T/check.py" "$T/src.json" "$T/dst.json" 6 0 "$T/sum.json"
check "  ... the source group relay.dst has lag 0" \
	test "$(total_lag relay.dst src)" = 0

run "$CTL" relay --from src --to dst
expect_rc "a second run" 0
check "  ... relays nothing" has_out "^RELAYED  0 records"
check "  ... and says it drained" has_out "^STOPPED  drained$"
check "  ... with a table per target partition" sh -c "
	grep -q '^PARTITION  RECORDS  BYTES$' '$T/out' &&
	test \$(grep -cE '^[0-5]  +0  +0$' '$T/out') = 6"

# --- --max, then a rerun resumes ------------------------------------------

run "$CTL" topic create dst2 --partitions 3 --durability volatile
run "$CTL" relay --from src --to dst2 --group g2 --max 7
expect_rc "relay --max 7 --group g2" 0
check "  ... relays 7 and stops at the max" sh -c "
	grep -q '^RELAYED  7 records' '$T/out' &&
	grep -q '^STOPPED  max$' '$T/out'"
check "  ... group g2 committed 7" test "$(committed g2 src)" = 7
run "$CTL" relay --from src --to dst2 --group g2 --batch 1
expect_rc "a rerun of group g2 (--batch 1)" 0
check "  ... relays the other $((N - 7))" has_out "^RELAYED  $((N - 7)) records"
dump dst2 "$T/dst2.json"
check "  ... together: every record once, by key, in order" \
	python3 "$T/check.py" "$T/src.json" "$T/dst2.json" 3 0

# --- kill -9 mid-run, SIGINT while waiting for room, then a rerun -------

# The target's rings are small, and a stopped member of group `hold`
# (which commits nothing) keeps them from being reused: the relay fills
# them and then waits for room, mid-run, for as long as `hold` lives.
# Group `check` reads the target throughout into kdst.json (the rings
# are reused once `hold` is gone: only it sees every record).
KN=10000
BATCH=50
run "$CTL" topic create ksrc --partitions 2 --durability volatile --ring-size 4M
run "$CTL" topic create kdst --partitions 6 --durability volatile --ring-size 64K
backlog 40 $((KN / 40)) 0 | "$CTL" produce ksrc --key-separator :
dump ksrc "$T/ksrc.json"
"$CTL" consume kdst --group check --timeout-ms -1 --format json \
	>"$T/kdst.json" 2>"$T/check.err" &
checker=$!
bg=$checker
"$CTL" consume kdst --group hold --timeout-ms -1 >/dev/null 2>&1 &
hold=$!
wait_for 10 members_are check kdst 1 || true
wait_for 10 members_are hold kdst 1 || true
kill -STOP "$hold"
"$CTL" relay --from ksrc --to kdst --batch $BATCH \
	>"$T/k1.out" 2>"$T/k1.err" &
relay=$!
wait_for 20 committed_some relay.kdst ksrc || true
check "the relay has committed a batch and is still running" \
	kill -0 "$relay"
kill -9 "$relay"
wait "$relay" 2>/dev/null || true
c1=$(committed relay.kdst ksrc)
check "  ... killed with $c1 of $KN committed" \
	test "$c1" -gt 0 -a "$c1" -lt "$KN"
check "  ... its committed offsets are batch-aligned" \
	test $((c1 % BATCH)) = 0
# Again, still held up, and stopped by SIGINT this time: it sends what
# fits of its first batch, commits no more than was acknowledged, and
# exits 0.
"$CTL" relay --from ksrc --to kdst --batch $BATCH \
	>"$T/k2.out" 2>"$T/k2.err" &
relay=$!
wait_for 20 members_are relay.kdst ksrc 1 || true
kill -INT "$relay"
set +e
wait "$relay"
krc=$?
set -e
c2=$(committed relay.kdst ksrc)
check "a relay waiting for room stops on SIGINT: exit 0 (got $krc)" \
	test "$krc" = 0
check "  ... says so in its summary" grep -q '^STOPPED  signal$' "$T/k2.out"
check "  ... and committed at most the batch it sent ($c1 -> $c2)" \
	test "$c2" -ge "$c1" -a "$c2" -le $((c1 + BATCH))
kill -9 "$hold"
wait "$hold" 2>/dev/null || true
run "$CTL" relay --from ksrc --to kdst --batch $BATCH --json
expect_rc "relay again after kill -9" 0
cp "$T/out" "$T/k2.json"
check "  ... relays the rest (from $c2)" python3 -c "
import json
s = json.load(open('$T/k2.json'))
assert s['records'] == $KN - $c2 and s['stopped'] == 'drained', s"
kend=$(ends kdst)
wait_for 20 committed_is check kdst "$kend" || true
kill -TERM "$checker"
wait "$checker" 2>/dev/null || true
bg=
# Two runs were cut short, each re-sent by the next: at most a batch
# of duplicates each.
check "  ... nothing lost, <= 2 x $BATCH duplicates, per-key order kept" \
	python3 "$T/check.py" "$T/ksrc.json" "$T/kdst.json" 6 $((2 * BATCH))
check "  ... the source group relay.kdst has lag 0" \
	test "$(total_lag relay.kdst ksrc)" = 0

# --- --follow until SIGINT ------------------------------------------------

run "$CTL" topic create fdst --partitions 4 --durability volatile
"$CTL" relay --from src --to fdst --follow --batch 10 \
	>"$T/f.out" 2>"$T/f.err" &
relay=$!
bg=$relay
wait_for 20 committed_is relay.fdst src "$N" || true
check "--follow relays the backlog" test "$(committed relay.fdst src)" = "$N"
seq 0 16 | sed 's/.*/late&:late-&/' | "$CTL" produce src --key-separator :
wait_for 20 committed_is relay.fdst src $((N + 17)) || true
check "  ... and the 17 records produced after it" \
	test "$(committed relay.fdst src)" = $((N + 17))
check "  ... and keeps running" kill -0 "$relay"
kill -INT "$relay"
set +e
wait "$relay"
frc=$?
set -e
bg=
check "  ... SIGINT: exit 0 (got $frc)" test "$frc" = 0
check "  ... summary: $((N + 17)) records, stopped by signal" sh -c "
	grep -q '^RELAYED  $((N + 17)) records' '$T/f.out' &&
	grep -q '^STOPPED  signal$' '$T/f.out'"

# --- persistent target: durable by default, needs the replicator ----------

run "$CTL" topic create pdst --partitions 2
run "$CTL" relay --from src --to pdst
expect_rc "relay into a persistent topic without a replicator" 1
check "  ... names the replicator and --acks leader" sh -c "
	grep -q 'shmq-replicator --home' '$T/err' &&
	grep -q -- '--acks leader' '$T/err'"
check "  ... and did not even join the group" \
	test "$(committed relay.pdst src)" = none
run "$CTL" relay --from src --to pdst --acks leader --json
expect_rc "relay --acks leader into it" 0
check "  ... relays everything" python3 -c "
import json
s = json.load(open('$T/out'))
assert s['records'] == $N + 17 and s['acks'] == 'leader', s"

# With a replicator the default (durable) works, and every copied record
# is on disk when the relay ends.  Skipped if io_uring is unavailable.
REPL=$(cd "$B/bin" && pwd)/shmq-replicator
ready_or_dead() { grep -q ' info: ready: ' "$1" || ! kill -0 "$2" 2>/dev/null; }
"$REPL" --home "$SHMQ_HOME" --foreground --poll-ms 20 2>"$T/repl.log" &
bg=$!
wait_for 30 ready_or_dead "$T/repl.log" "$bg" || true
if grep -q ' info: ready: ' "$T/repl.log"; then
	run "$CTL" topic create pdst2 --partitions 3
	run "$CTL" relay --from src --to pdst2 --json
	expect_rc "relay into a persistent topic with the replicator running" 0
	check "  ... acks durable by default, everything relayed" python3 -c "
import json
s = json.load(open('$T/out'))
assert s['records'] == $N + 17 and s['acks'] == 'durable', s"
	check "  ... and on disk: durable == end in every partition" \
		python3 -c "
import json, subprocess
v = json.loads(subprocess.check_output(['$CTL', 'topic', 'describe',
	'pdst2', '--json']))
assert sum(p['end'] for p in v['partitions']) == $N + 17, v
assert all(p['durable'] == p['end'] for p in v['partitions']), v"
elif grep -q io_uring "$T/repl.log"; then
	ok "skipped: io_uring unavailable: $(head -c 200 "$T/repl.log")"
else
	not_ok "the replicator starts: $(head -c 300 "$T/repl.log")"
fi
kill -TERM "$bg" 2>/dev/null || true
wait "$bg" 2>/dev/null || true
bg=

# --- bad arguments --------------------------------------------------------

bad() {
	local name=$1 msg=$2
	shift 2
	run "$CTL" relay "$@"
	if [ "$rc" -eq 2 ] && grep -q -- "$msg" "$T/err"; then
		ok "relay $name: exit 2"
	else
		not_ok "relay $name (exit $rc): $(head -c 300 "$T/err")"
	fi
}
bad "without --to" "give --from TOPIC and --to TOPIC" --from src
bad "with --from = --to" "the same topic" --from src --to src
bad "from an unknown topic" "no topic 'nope'" --from nope --to dst
bad "to an unknown topic" "no topic 'nope'" --from src --to nope
bad "--batch 0" "bad --batch '0'" --from src --to dst --batch 0
bad "--batch 65537" "bad --batch" --from src --to dst --batch 65537
bad "--batch x" "bad --batch 'x'" --from src --to dst --batch x
bad "--max -1" "bad --max '-1'" --from src --to dst --max -1
bad "--acks all" "--acks must be leader or durable" --from src --to dst \
	--acks all
bad "--acks durable into a volatile topic" "is volatile" --from src \
	--to dst --acks durable
bad "with a positional argument" "unexpected argument 'x'" --from src \
	--to dst x
bad "with a bad group name" "bad group name" --from src --to dst \
	--group 'a/b'
run "$CTL" relay --help
expect_rc "relay --help" 0
check "  ... prints the usage and the guarantee" sh -c "
	grep -q '^Usage: shmqctl relay --from TOPIC --to TOPIC2' '$T/out' &&
	grep -q 'at-least-once' '$T/out'"

# --- the progress line on a terminal (when `script` is there) -------------

if command -v script >/dev/null 2>&1; then
	run "$CTL" topic create tdst --partitions 2 --durability volatile
	run script -qec "'$CTL' relay --from src --to tdst --batch 10" /dev/null
	expect_rc "relay under script (stderr a terminal)" 0
	check "  ... draws the progress line with \\r, rate, left, ETA" \
		python3 -c "
s = open('$T/out', 'rb').read()
assert b'\rrelay [' in s and b'records/s' in s and b' left  ETA ' in s, s[:300]
assert b'RELAYED  $((N + 17)) records' in s, s[-400:]"
	run script -qec "'$CTL' relay --from src --to tdst --group t2 \
		--no-progress" /dev/null
	check "  ... but not with --no-progress" sh -c "
		! grep -q 'records/s ' '$T/out' && grep -q '^RELAYED' '$T/out'"
else
	ok "skipped: no script(1) for a terminal"
fi

finish
