#!/usr/bin/env bash
# tests/cli/skipped.sh — the audit log of reset-offsets and replays of
# what a reset skipped: `reset-offsets --execute` records per partition
# the exact range, record count and time range (a dry run writes
# nothing; a move backwards is a replay); `group skipped` lists it (text
# and --json); `group replay-skipped` copies a range into a topic (by
# key, in order) and/or points a group at it; records a volatile ring
# overwrote since are counted and refused (--partial replays the rest);
# a persistent topic replays from its segments; a bad line of the log is
# named and the rest still lists; bad arguments give clear errors.
# Every entry names its topic's id: after the topic is deleted (and made
# again under the name) its entries are marked and refused for replay;
# lines from before the id was logged still read.  A replay is logged
# too ("replayed": the entry's id, where to, how many records).
#
#   bash tests/cli/skipped.sh BUILD_DIR   (from the repo root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

LOG=$SHMQ_HOME/audit/skipped.log

# py SCRIPT ARGS...: run a python check with the helpers below loaded.
py() {
	local script=$1
	shift
	python3 - "$@" <<EOF
import json, sys
def murmur2(data):
    # Kafka's murmur2 (Utils.murmur2), to check partition by key.
    m, h = 0x5bd1e995, (0x9747b28c ^ len(data)) & 0xffffffff
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest = data[4 * n4:]
    if len(rest) >= 3: h ^= rest[2] << 16
    if len(rest) >= 2: h ^= rest[1] << 8
    if len(rest) >= 1:
        h ^= rest[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    return h ^ (h >> 15)
def part_for(key, n):
    return (murmur2(key.encode()) & 0x7fffffff) % n
def recs(path):
    return [json.loads(l) for l in open(path) if l.strip()]
def log():
    # The entries that parse: the test adds bad lines on purpose.
    es = []
    for l in open("$LOG"):
        try:
            es.append(json.loads(l))
        except ValueError:
            pass
    return es
$script
EOF
}
# topic_id TOPIC: the topic's id, from its metadata file.
topic_id() { sed -n 's/^id=//p' "$SHMQ_HOME/topics/$1.topic"; }
# committed GROUP TOPIC: "c0 c1 ..." of the group.
committed() {
	"$CTL" group describe "$1" --topic "$2" --json --sample 0 |
		python3 -c 'import json, sys
print(" ".join(str(p["committed"]) for p in json.load(sys.stdin)["partitions"]))'
}

# --- a backlog, skipped -----------------------------------------------------

"$CTL" topic create s --partitions 2 --ring-size 1M --durability volatile
for i in $(seq 0 39); do echo "k$((i % 7)):v$i"; done |
	"$CTL" produce s --key-separator :
"$CTL" consume s --group app --timeout-ms 100 >/dev/null
before=$(committed app s)
for i in $(seq 40 99); do echo "k$((i % 7)):v$i"; done |
	"$CTL" produce s --key-separator :
# Every record of s, as a standalone consumer sees it.
"$CTL" consume s --from earliest --format json --timeout-ms 100 >"$T/all"
check "the keyed records went to partition murmur2(key) % 2 (checker ok)" \
	py 'assert all(part_for(r["key"], 2) == r["partition"]
           for r in recs(sys.argv[1]))' "$T/all"

run "$CTL" group reset-offsets app --topic s --to-latest
expect_rc "reset-offsets --to-latest (dry run)" 0
check "  ... shows what it would skip" has_out "^0  *skip  "
check "  ... and writes no audit log" test ! -e "$LOG"
run "$CTL" group reset-offsets app --topic s --to-latest --json
check "  ... --json: ranges and counts, audit_id null" py '
v = json.load(open(sys.argv[1]))
assert v["executed"] is False and v["audit_id"] is None, v
for p in v["partitions"]:
    assert p["change"] == "skip" and p["records"] == p["to"] - p["from"], p' \
	"$T/out"
check "  ... and the group did not move" test "$(committed app s)" = "$before"

run "$CTL" group reset-offsets app --topic s --to-latest --execute
expect_rc "reset-offsets --to-latest --execute" 0
check "  ... names the audit entry" has_out "^AUDIT  entry 1 in $LOG$"
check "  ... and says nothing on stderr" test ! -s "$T/err"
check "the audit log is a 0600 file" test "$(stat -c %a "$LOG")" = 600
check "  ... with one entry per partition: the exact range, count and times" \
	py '
all_recs, before = recs(sys.argv[1]), [int(x) for x in sys.argv[2].split()]
uid = int(sys.argv[3])
es = log()
assert [e["partition"] for e in es] == [0, 1], es
for e in es:
    p = e["partition"]
    mine = [r for r in all_recs if r["partition"] == p]
    skipped = [r for r in mine if r["offset"] >= before[p]]
    assert skipped, p
    want = dict(id=1, kind="skip", group="app", topic="s", partition=p,
                **{"from": before[p]}, to=mine[-1]["offset"] + 1,
                records=len(skipped), lost=0, pending=0,
                first_timestamp=skipped[0]["timestamp"],
                last_timestamp=skipped[-1]["timestamp"],
                uid=uid, spec="to-latest")
    got = {k: e[k] for k in want}
    assert got == want, (got, want)
    assert e["pid"] > 0 and e["time"] > e["last_timestamp"], e
    assert e["topic_id"] == sys.argv[4] and len(sys.argv[4]) == 16, e
' "$T/all" "$before" "$(id -u)" "$(topic_id s)"
check "  ... and the group moved to the end" \
	test "$(committed app s)" = "$(py 'print(" ".join(str(max(r["offset"]
	for r in recs(sys.argv[1]) if r["partition"] == p) + 1)
	for p in (0, 1)))' "$T/all")"

cp "$LOG" "$T/log.1"
run "$CTL" group reset-offsets app --topic s --to-earliest
check "a dry run leaves an existing log as it was" cmp -s "$LOG" "$T/log.1"

# --- group skipped --------------------------------------------------------

run "$CTL" group skipped app
expect_rc "group skipped app" 0
check "  ... has a header and a row per partition of entry 1" sh -c "
	grep -q '^ID  *TIME  *TOPIC  *PARTITION  *KIND  *FROM  *TO  *RECORDS  *LOST  *FIRST-RECORD  *LAST-RECORD  *UID  *PID  *DESTINATION$' '$T/out' &&
	test \$(grep -c '^1  .*  s  *[01]  *skip  ' '$T/out') -eq 2"
run "$CTL" group skipped app --json
check "group skipped --json gives the log's entries, applied" py '
got, want = json.load(open(sys.argv[1])), log()
assert len(got) == 2, got
for g, w in zip(got, want):
    assert g["applied"] is True, g
    assert {k: g[k] for k in w} == w, (g, w)' "$T/out"
run "$CTL" group skipped app --topic other --json
check "group skipped --topic other lists nothing" \
	test "$(cat "$T/out")" = "[]"
run "$CTL" group skipped nobody
check "group skipped of another group: only the header" \
	test "$(wc -l <"$T/out")" -eq 1

# A move backwards is logged as a replay, not a skip.
end0=$(committed app s | cut -d' ' -f1)
run "$CTL" group reset-offsets app --topic s --to-offset 0 --partition 0 \
	--execute --json
expect_rc "reset-offsets --to-offset 0 --partition 0 --execute" 0
check "  ... is logged as a replay of [0, $end0), entry 2" py '
e = log()[-1]
assert (e["id"], e["kind"], e["partition"], e["from"], e["to"],
        e["records"]) == (2, "replay", 0, 0, int(sys.argv[1]),
                          int(sys.argv[1])), e
assert len(log()) == 3' "$end0"
run "$CTL" group replay-skipped 2 --to-group x
expect_rc "replay-skipped of a replay entry is refused" 1
check "  ... saying it skipped nothing" has_err "skipped nothing"
"$CTL" group reset-offsets app --topic s --to-latest --execute >/dev/null

# --- replay into a topic --------------------------------------------------

"$CTL" topic create s2 --partitions 2 --durability volatile
run "$CTL" group replay-skipped 1 --to-topic s2
expect_rc "replay-skipped 1 --to-topic s2" 0
"$CTL" consume s2 --from earliest --format json --timeout-ms 100 >"$T/s2"
check "  ... s2 holds exactly the skipped records, in order per partition" \
	py '
all_recs, before = recs(sys.argv[1]), [int(x) for x in sys.argv[2].split()]
got = recs(sys.argv[3])
for p in (0, 1):
    want = [(r["key"], r["value"], r["timestamp"]) for r in all_recs
            if r["partition"] == p and r["offset"] >= before[p]]
    mine = [r for r in got if r["partition"] == p]
    assert [r["offset"] for r in mine] == list(range(len(want))), mine
    assert [(r["key"], r["value"], r["timestamp"]) for r in mine] == want
' "$T/all" "$before" "$T/s2"
check "  ... and is logged: a replayed line per partition, id 1, to s2" py '
before = [int(x) for x in sys.argv[1].split()]
skips = {e["partition"]: e for e in log() if e["id"] == 1
         and e["kind"] == "skip"}
es = [e for e in log() if e["kind"] == "replayed"]
assert [e["partition"] for e in es] == [0, 1], es
for e in es:
    s = skips[e["partition"]]
    want = dict(id=1, group="app", topic="s", topic_id=s["topic_id"],
                to_topic="s2", to_group=None, records=s["records"], lost=0,
                **{"from": s["from"]}, to=s["to"])
    assert {k: e[k] for k in want} == want, (e, want)
    assert e["time"] >= s["time"] and e["pid"] > 0, e
' "$before"
run "$CTL" group skipped app
check "  ... group skipped shows the replays, with where they went" sh -c "
	test \$(grep -c '^1  .*  s  *[01]  *replayed  .*  topic=s2\$' '$T/out') -eq 2 &&
	test \$(grep -c '^1  .*  s  *[01]  *skip  .*  -\$' '$T/out') -eq 2"

"$CTL" topic create s3 --partitions 3 --durability volatile
run "$CTL" group replay-skipped 1 --to-topic s3 --to-group r3 --json
expect_rc "replay-skipped 1 --to-topic s3 --to-group r3 (3 partitions)" 0
check "  ... --json: per partition records and replayed, r3 at 0" py '
v = json.load(open(sys.argv[1]))
assert (v["id"], v["to_topic"], v["to_group"]) == (1, "s3", "r3"), v
assert all(p["replayed"] == p["records"] and p["lost"] == 0
           for p in v["partitions"]), v
assert v["group_offsets"] == {"topic": "s3", "partitions": [
    {"partition": p, "committed": 0} for p in range(3)]}, v' "$T/out"
run "$CTL" consume s3 --group r3 --format json --timeout-ms 200
check "  ... r3 reads exactly the skipped records: by key, per-key order" \
	py '
all_recs, before = recs(sys.argv[1]), [int(x) for x in sys.argv[2].split()]
skipped = [r for r in all_recs if r["offset"] >= before[r["partition"]]]
got = recs(sys.argv[3])
assert sorted(r["value"] for r in got) == sorted(r["value"] for r in skipped)
assert len(got) == len(skipped), (len(got), len(skipped))
for r in got:
    assert r["partition"] == part_for(r["key"], 3), r
for k in set(r["key"] for r in skipped):
    src = [r["value"] for r in skipped if r["key"] == k]  # one partition
    assert [r["value"] for r in got if r["key"] == k] == src, k
' "$T/all" "$before" "$T/out"

# --- replay into a group on the source topic ------------------------------

run "$CTL" group replay-skipped 1 --to-group r1 --partition 1
expect_rc "replay-skipped 1 --to-group r1 --partition 1" 0
check "  ... says r1 reads on past the range's end" has_err "past their ends"
want1=$(committed app s | cut -d' ' -f1)
check "  ... is logged: partition 1 to group r1" py '
e = log()[-1]
assert (e["id"], e["kind"], e["partition"], e["to_topic"], e["to_group"]) \
    == (1, "replayed", 1, None, "r1"), e'
check "  ... r1 starts partition 1 at the range, partition 0 at its end" \
	test "$(committed r1 s)" = "$want1 $(echo "$before" | cut -d' ' -f2)"
n1=$(py 'print(len([r for r in recs(sys.argv[1]) if r["partition"] == 1
	and r["offset"] >= int(sys.argv[2].split()[1])]))' "$T/all" "$before")
run "$CTL" consume s --group r1 --format json --timeout-ms 200
check "  ... and reads exactly the $n1 skipped records of partition 1" py '
all_recs, before = recs(sys.argv[1]), [int(x) for x in sys.argv[2].split()]
want = [(1, r["offset"]) for r in all_recs
        if r["partition"] == 1 and r["offset"] >= before[1]]
got = [(r["partition"], r["offset"]) for r in recs(sys.argv[3])]
assert got == want, (got, want)' "$T/all" "$before" "$T/out"

# --- a range that left a volatile ring -------------------------------------

"$CTL" topic create v --partitions 1 --ring-size 64K --durability volatile
values() {
	python3 -c 'import sys
for i in range(int(sys.argv[1]), int(sys.argv[2])):
    print(("v-%d-" % i).ljust(100, "x"))' "$1" "$2"
}
values 0 200 | "$CTL" produce v
"$CTL" consume v --group vg --count 50 >/dev/null
run "$CTL" group reset-offsets vg --topic v --to-latest --execute --json
vid=$(py 'print(json.load(open(sys.argv[1]))["audit_id"])' "$T/out")
check "a skip of [50, 200) on a volatile topic: entry $vid, 150 records" py '
e = log()[-1]
assert (e["id"], e["from"], e["to"], e["records"], e["lost"]) == \
    (int(sys.argv[1]), 50, 200, 150, 0), e' "$vid"
# About 400 records fit in the ring: the oldest ~130 are overwritten.
values 200 530 | "$CTL" produce v
start=$("$CTL" topic describe v --json | python3 -c 'import json, sys
print(json.load(sys.stdin)["partitions"][0]["log_start"])')
check "  ... the ring has since overwritten offsets below $start" \
	test "$start" -gt 50 -a "$start" -lt 200
"$CTL" topic create v2 --partitions 1 --durability volatile
run "$CTL" group replay-skipped "$vid" --to-topic v2
expect_rc "replay-skipped $vid: some records are gone: refused" 1
check "  ... naming how many are gone ($((start - 50)) of 150)" \
	has_err "$((start - 50)) of the 150 skipped records can no longer be replayed"
check "  ... and why" has_err "volatile and its ring has overwritten them"
run "$CTL" consume v2 --from earliest --timeout-ms 100
check "  ... and copies nothing" test ! -s "$T/out"
run "$CTL" group replay-skipped "$vid" --to-topic v2 --partial --json
expect_rc "replay-skipped $vid --partial" 0
check "  ... says what was replayed and what is lost" py '
p = json.load(open(sys.argv[1]))["partitions"][0]
s = int(sys.argv[2])
assert (p["records"], p["replayed"], p["lost"]) == (150, 200 - s, s - 50), p
' "$T/out" "$start"
run "$CTL" consume v2 --from earliest --format json --timeout-ms 100
check "  ... v2 holds exactly the records still in the ring ($start..199)" \
	py '
got = [r["value"] for r in recs(sys.argv[1])]
want = [("v-%d-" % i).ljust(100, "x") for i in range(int(sys.argv[2]), 200)]
assert got == want, (len(got), len(want))' "$T/out" "$start"

# --- a topic deleted and made again under its name -------------------------

"$CTL" topic create z --partitions 1 --durability volatile
values 0 30 | "$CTL" produce z
"$CTL" consume z --group zg --count 10 >/dev/null
run "$CTL" group reset-offsets zg --topic z --to-latest --execute --json
zid=$(py 'print(json.load(open(sys.argv[1]))["audit_id"])' "$T/out")
zold=$(topic_id z)
check "entry $zid names topic z's id" py '
e = log()[-1]
assert (e["id"], e["topic_id"]) == (int(sys.argv[1]), sys.argv[2]), e
' "$zid" "$zold"
run "$CTL" group skipped zg
check "  ... group skipped does not mark it while z is that topic" \
	grep -q "^$zid  .*  z  *0  *skip  " "$T/out"
"$CTL" topic delete z
run "$CTL" group skipped zg
expect_rc "group skipped after z is deleted" 0
check "  ... marks the entry's topic deleted" \
	grep -q "^$zid  .*  z(deleted)  *0  *skip  " "$T/out"
run "$CTL" group replay-skipped "$zid" --to-topic s2
expect_rc "replay-skipped $zid of the deleted z is refused" 1
check "  ... saying why" has_err "is of topic z (id $zold), which has been deleted"
"$CTL" topic create z --partitions 1 --durability volatile
values 100 140 | "$CTL" produce z
znew=$(topic_id z)
check "the new z has another id" test -n "$znew" -a "$znew" != "$zold"
run "$CTL" group skipped zg
check "  ... group skipped marks the entry as of the old z" \
	grep -q "^$zid  .*  z(old)  *0  *skip  " "$T/out"
run "$CTL" group skipped zg --json
check "  ... --json: topic_id and topic_current false" py '
es = json.load(open(sys.argv[1]))
assert [(e["id"], e["topic_id"], e["topic_current"]) for e in es] == \
    [(int(sys.argv[2]), sys.argv[3], False)], es' "$T/out" "$zid" "$zold"
cp "$LOG" "$T/log.z"
"$CTL" consume s2 --from earliest --timeout-ms 100 >"$T/s2.before"
run "$CTL" group replay-skipped "$zid" --to-topic s2 --to-group zr
expect_rc "replay-skipped $zid into s2: the entry is of the old z: refused" 1
check "  ... saying so, with both ids" \
	has_err "audit entry $zid is of an earlier topic z (id $zold), deleted since: topic z now is another topic (id $znew): nothing replayed"
"$CTL" consume s2 --from earliest --timeout-ms 100 >"$T/s2.after"
check "  ... copies nothing" cmp -s "$T/s2.before" "$T/s2.after"
check "  ... and logs nothing" cmp -s "$LOG" "$T/log.z"
run "$CTL" group replay-skipped "$zid" --to-group zr
expect_rc "replay-skipped $zid --to-group alone is refused too" 1
"$CTL" consume z --group zg --count 5 >/dev/null
run "$CTL" group reset-offsets zg --topic z --to-latest --execute --json
zid2=$(py 'print(json.load(open(sys.argv[1]))["audit_id"])' "$T/out")
run "$CTL" group skipped zg --json
check "a reset of the new z: entry $zid2, current; the old one still not" py '
es = json.load(open(sys.argv[1]))
assert [(e["id"], e["topic_id"], e["topic_current"]) for e in es] == [
    (int(sys.argv[2]), sys.argv[3], False),
    (int(sys.argv[4]), sys.argv[5], True)], es
' "$T/out" "$zid" "$zold" "$zid2" "$znew"

# A line written before entries named their topic's id: it reads, is not
# marked, and still replays (against the topic of that name now).
printf '%s\n' '{"id":90,"kind":"skip","group":"old","topic":"z","partition":0,"from":0,"to":5,"records":5,"lost":0,"pending":0,"first_timestamp":null,"last_timestamp":null,"time":1,"uid":0,"pid":1,"spec":"to-latest"}' >>"$LOG"
run "$CTL" group skipped old
expect_rc "group skipped reads a line without topic_id" 0
check "  ... unmarked" grep -q '^90  .*  z  *0  *skip  ' "$T/out"
run "$CTL" group skipped old --json
check "  ... --json: topic_id and topic_current null" py '
es = json.load(open(sys.argv[1]))
assert [(e["id"], e["topic_id"], e["topic_current"]) for e in es] == \
    [(90, None, None)], es' "$T/out"
"$CTL" topic create z2 --partitions 1 --durability volatile
run "$CTL" group replay-skipped 90 --to-topic z2
expect_rc "replay-skipped of a line without topic_id" 0
"$CTL" consume z2 --from earliest --timeout-ms 100 >"$T/z2"
check "  ... copies z's offsets 0..4 now" \
	test "$(cat "$T/z2")" = "$(values 100 105)"
check "  ... and its replayed line has no topic_id either" py '
e = log()[-1]
assert e["kind"] == "replayed" and e["id"] == 90 and "topic_id" not in e, e'

# --- a bad line in the log --------------------------------------------------

printf '{"id":77,"kind":"skip","group":"app"\nnot json\n' >>"$LOG"
good=$(grep -c . "$T/log.1")
total=$(grep -c . "$LOG")
run "$CTL" group skipped app
expect_rc "group skipped with two bad lines exits 1" 1
check "  ... naming each bad line by number" sh -c "
	grep -q 'skipped.log:$((total - 1)): bad entry (' '$T/err' &&
	grep -q 'skipped.log:$total: bad entry (not a JSON object)' '$T/err'"
check "  ... and still lists the good entries" \
	test "$(grep -c '^[0-9]' "$T/out")" -ge "$good"
# A torn last line (no newline): the next entry must not be glued to it.
printf '{"id":78,"kind":"sk' >>"$LOG"
"$CTL" consume s --group app2 --count 1 >/dev/null
run "$CTL" group reset-offsets app2 --topic s --to-latest --execute --json
expect_rc "reset-offsets after a torn line" 0
nid=$(py 'print(json.load(open(sys.argv[1]))["audit_id"])' "$T/out")
run "$CTL" group skipped app2 --json
check "  ... its entry $nid reads back whole" py '
es = json.load(open(sys.argv[1]))
assert [e["id"] for e in es] == [int(sys.argv[2])] * len(es) and es, es
' "$T/out" "$nid"
check "  ... and the torn line is reported on its own" \
	has_err "skipped.log:$((total + 1)): bad entry (unterminated string)"

# --- bad arguments ----------------------------------------------------------

run "$CTL" group skipped
expect_rc "group skipped without GROUP is a usage error" 2
run "$CTL" group replay-skipped 1
expect_rc "replay-skipped without --to-topic/--to-group is a usage error" 2
check "  ... saying what to give" has_err "give --to-topic TOPIC, --to-group GROUP, or both"
run "$CTL" group replay-skipped one --to-group x
expect_rc "replay-skipped with a non-number ID is a usage error" 2
run "$CTL" group replay-skipped 0 --to-group x
expect_rc "replay-skipped 0 is a usage error" 2
run "$CTL" group replay-skipped 1 --to-group 'bad/name'
expect_rc "replay-skipped --to-group with a bad name is a usage error" 2
run "$CTL" group replay-skipped 999 --to-group x
expect_rc "replay-skipped of an unknown ID fails" 1
check "  ... saying there is no such entry" has_err "no audit entry 999"
run "$CTL" group replay-skipped 1 --to-topic nosuch
expect_rc "replay-skipped into a missing topic fails" 1
check "  ... naming it" has_err "topic nosuch"
run "$CTL" group replay-skipped 1 --partition 7 --to-group x
expect_rc "replay-skipped --partition 7 (not in the entry) fails" 1
check "  ... saying so" has_err "has no partition 7"

# --- a persistent topic replays from its segments --------------------------

REPL=$(cd "$B/bin" && pwd)/shmq-replicator
"$REPL" --home "$SHMQ_HOME" --foreground --poll-ms 20 2>"$T/repl.log" &
bg=$!
for _ in $(seq 600); do
	grep -q ' info: ready: ' "$T/repl.log" && break
	kill -0 "$bg" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q ' info: ready: ' "$T/repl.log"; then
	if grep -q io_uring "$T/repl.log"; then
		echo "ok - skipped (persistent part): io_uring unavailable"
		finish
		exit
	fi
	not_ok "the replicator starts: $(head -c 300 "$T/repl.log")"
	finish
	exit 1
fi
"$CTL" topic create d --partitions 1 --ring-size 64K --durability persistent \
	--fsync never --segment-bytes 64K
values 0 20 | "$CTL" produce d --acks durable
"$CTL" consume d --group dg --timeout-ms 100 >/dev/null
values 20 2000 | "$CTL" produce d --acks durable
run "$CTL" group reset-offsets dg --topic d --to-latest --execute --json
did=$(py 'print(json.load(open(sys.argv[1]))["audit_id"])' "$T/out")
check "a persistent backlog that left the ring: entry $did, [20, 2000)" py '
e = log()[-1]
assert (e["from"], e["to"], e["records"], e["lost"]) == (20, 2000, 1980, 0), e'
"$CTL" topic create d2 --partitions 1 --ring-size 1M --durability volatile
run "$CTL" group replay-skipped "$did" --to-topic d2 --to-group dg2
expect_rc "replay-skipped $did --to-topic d2 --to-group dg2" 0
run "$CTL" consume d2 --group dg2 --format json --timeout-ms 200
check "  ... dg2 reads all 1980 records, read back from the segments" py '
got = [r["value"] for r in recs(sys.argv[1])]
assert got == [("v-%d-" % i).ljust(100, "x") for i in range(20, 2000)], \
    len(got)' "$T/out"

finish
