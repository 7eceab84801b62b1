#!/usr/bin/env bash
# tests/cli/sqlite.sh — idempotent consumers (issue 5): the examples
# sqlite_offsets (offsets stored in the database, in the transaction of
# the effects) and sqlite_dedupe (a unique payment id; group commit after
# the transaction) are killed with kill -9 at random moments while
# records stream in, one to three members at a time (so partitions move
# between them), and restarted.  Then the database is checked row by row
# against the log: every payment applied exactly once, balances right,
# bad records rejected once.  For sqlite_offsets also: a replay from a
# wrong group offset applies nothing, and a database restored from a
# backup catches up exactly.  For sqlite_dedupe: duplicates produced on
# purpose (retries next to the original, a replayed chunk, a replay of
# the whole topic by reset-offsets) are applied once.
#
#   bash tests/cli/sqlite.sh BUILD_DIR      (from the repository root)
#
# SHMQ_SOAK=K runs K times the crash rounds; SHMQ_SEED=S replays a run.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

EX=$(cd "$B/bin/examples" && pwd)
ROUNDS=$((20 * ${SHMQ_SOAK:-1}))
SEED=${SHMQ_SEED:-$(($(date +%s) ^ $$))}
RANDOM=$SEED
echo "# SHMQ_SEED=$SEED rounds=$ROUNDS"
SEP=$'\t'
# Rings that hold every record of the run (at most half of a round's
# records, about 100 bytes each, in one partition): between rounds no
# member is alive to hold the ring, and the checks read the whole log.
RING=$((16 << 20))
while [ "$RING" -lt $((ROUNDS * 6000 * 100 / 2)) ]; do
	RING=$((RING * 2))
done
pids=()
# Members a failed check left running die with the script.
trap 'kill -9 "${pids[@]}" 2>/dev/null || true; cleanup' EXIT

# payments DIR SEED ROUNDS PER DUPS: DIR/chunk.I for each round, lines
# "ACCOUNT<TAB>TXN AMOUNT", with a few bad values; with DUPS, about one
# payment in ten is sent again at once (a producer's retry).
payments() {
	python3 - "$@" <<'PY'
import random, sys
d, seed, rounds, per, dups = sys.argv[1], *map(int, sys.argv[2:])
rnd = random.Random(seed)
n = 0
for i in range(rounds):
    with open("%s/chunk.%d" % (d, i), "w") as f:
        for _ in range(per):
            if rnd.random() < 0.001:
                print("acct-%d\tbad value %d" % (rnd.randrange(50), n), file=f)
            else:
                line = "acct-%d\tt%07d %d" % (rnd.randrange(50), n,
                                                rnd.randrange(-999, 1000))
                print(line, file=f)
                if dups and rnd.random() < 0.1:
                    print(line, file=f)
            n += 1
PY
}

# crash_rounds EXAMPLE DB TOPIC GROUP: one to three members run at a time,
# with batches of 1 to 1024 records (a large batch is a long time for a
# partition to move while a member holds records of it).  Each round
# produces the next chunk, starts members up to a random count (joining
# members take partitions from busy ones: rebalances mid-batch), waits
# 0-29 ms and kills one member, or two, with kill -9.  The last round
# kills all.  Each member must die by the kill (exit status 137): one
# that fails on its own fails the check.  $mid_run counts the kills that
# left records to do.
crash_rounds() {
	local ex=$1 db=$2 topic=$3 group=$4 i k bad=0
	mid_run=0
	pids=()
	for ((i = 0; i < ROUNDS; i++)); do
		"$CTL" produce "$topic" --key-separator "$SEP" <"$T/chunk.$i"
		# bash reports each killed job: to the log, not the output.
		{
			for ((k = 1 + RANDOM % 3; ${#pids[@]} < k;)); do
				"$EX/$ex" -b $((1 << RANDOM % 11)) -i 10000 \
					-g "$group" "$db" "$topic" >/dev/null &
				pids+=($!)
			done
			sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
			reap 1
			if [ $((RANDOM % 3)) -eq 0 ]; then reap 1; fi
			if [ "$i" -eq $((ROUNDS - 1)) ]; then reap "${#pids[@]}"; fi
		} 2>>"$T/$ex.err"
		if [ "$(behind "$ex" "$db" "$topic" "$i")" -gt 0 ]; then
			mid_run=$((mid_run + 1))
		fi
		if [ "$i" -eq "${backup_at:--1}" ]; then
			backup "$db" "$db.bak"
		fi
	done
	[ "$bad" -eq 0 ] || cat "$T/$ex.err" >&2
	return "$bad"
}

# reap N: kill -9 N random members of pids (and wait for them); count in
# bad those that had not died by the kill.
reap() {
	local n=$1 j st
	for ((; n > 0 && ${#pids[@]} > 0; n--)); do
		j=$((RANDOM % ${#pids[@]}))
		kill -9 "${pids[j]}" 2>/dev/null || true
		st=0
		wait "${pids[j]}" || st=$?
		[ "$st" -eq 137 ] || bad=$((bad + 1))
		pids=("${pids[@]:0:j}" "${pids[@]:j+1}")
	done
}

# behind EXAMPLE DB TOPIC ROUND: records produced but not yet processed,
# from the database (sqlite_offsets: the stored offsets against the
# partition ends; sqlite_dedupe: the payments against the distinct ids of
# chunks 0..ROUND).
behind() {
	"$CTL" topic describe "$3" --json | python3 -c 'import json, sqlite3, sys
ex, db, last, d = sys.argv[1:]
v = json.load(sys.stdin)
c = sqlite3.connect(db)
c.execute("PRAGMA busy_timeout = 10000")
tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
if "accounts" not in tables:
    print(1)  # killed before it made the schema
elif ex == "sqlite_offsets":
    ends = sum(p["end"] for p in v["partitions"])
    done = c.execute("SELECT total(next) FROM consumer_offsets").fetchone()[0]
    print(ends - int(done))
else:
    ids = set()
    for i in range(int(last) + 1):
        ids |= {l.split("\t")[1] for l in open("%s/chunk.%d" % (d, i))}
    n = c.execute("SELECT count(*) FROM payments").fetchone()[0] + \
        c.execute("SELECT count(*) FROM rejected").fetchone()[0]
    print(len(ids) - n)' "$1" "$2" "$4" "$T"
}

# backup SRC DST: an online copy with SQLite's backup API.
backup() {
	python3 -c 'import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()' "$@"
}

# log TOPIC FILE: every record of TOPIC, one JSON object per line.
log() {
	"$CTL" consume "$1" --from earliest --format json --timeout-ms 300 >"$2"
}

# check_db KIND DB LOG GROUP TOPIC: the database against the log, row by
# row (the checks are in the comments).
check_db() {
	# --sample 0: no rates, no wait (where shmqctl has it).
	"$CTL" group describe "$4" --topic "$5" --json --sample 0 \
		>"$T/describe.json" 2>/dev/null ||
		"$CTL" group describe "$4" --topic "$5" --json >"$T/describe.json"
	python3 - "$@" "$T/describe.json" <<'PY'
import collections, json, sqlite3, sys
kind, db, logf, group, topic, desc = sys.argv[1:]
recs = [json.loads(l) for l in open(logf)]
# The reference is the whole log, from offset 0 on, without gaps.
parts = collections.defaultdict(list)
for r in recs:
    parts[r["partition"]].append(r["offset"])
for p, offs in parts.items():
    assert offs == list(range(len(offs))), ("log not whole", p, offs[:3])
d = sqlite3.connect(db)
good, bad = [], []
for r in recs:
    txn, _, amount = r["value"].partition(" ")
    if txn.startswith("t") and amount.lstrip("-").isdigit():
        good.append((r["partition"], r["offset"], txn, r["key"], int(amount)))
    else:
        bad.append((r["partition"], r["offset"], r["value"].encode()))
if kind == "offsets":
    # One ledger row per good record of the log, with its place: a
    # record applied twice is a second row, one lost is a missing row.
    rows = d.execute("SELECT partition, offset, txn, account, amount"
                     " FROM ledger WHERE topic = ? ORDER BY seq", (topic,))
    rows = list(rows)
    dup = [k for k, n in collections.Counter(rows).items() if n > 1]
    assert not dup, ("applied twice", len(dup), dup[:3])
    assert sorted(rows) == sorted(good), \
        ("ledger", len(rows), len(good), sorted(set(good) - set(rows))[:3])
    # Each partition applied in log order.
    for p in {r[0] for r in rows}:
        offs = [r[1] for r in rows if r[0] == p]
        assert offs == sorted(offs), ("order", p)
    # The stored offsets are the ends of the partitions.
    ends = {}
    for r in recs:
        ends[r["partition"]] = r["offset"] + 1
    got = dict(d.execute("SELECT partition, next FROM consumer_offsets"
                         " WHERE topic = ?", (topic,)))
    assert got == ends, ("consumer_offsets", got, ends)
    applied = good
else:
    # One payment row per id, whatever the copies; its place is one of
    # the records that carry it.
    first = {}
    places = collections.defaultdict(set)
    for p, o, txn, acct, amount in good:
        first.setdefault(txn, (txn, acct, amount))
        places[txn].add((p, o))
    assert len(first) < len(good), "the log holds no duplicates"
    rows = list(d.execute("SELECT txn, account, amount, partition, offset"
                          " FROM payments"))
    assert sorted(r[:3] for r in rows) == sorted(first.values()), \
        ("payments", len(rows), len(first))
    assert all((r[3], r[4]) in places[r[0]] for r in rows), "places"
    applied = [(0, 0, t, a, m) for t, a, m in first.values()]
# Each bad record rejected once, with its place in the log.
rej = sorted(d.execute("SELECT partition, offset, value FROM rejected"))
assert rej == sorted(bad), ("rejected", len(rej), len(bad))
# Balances: the sum of each account's payments, each once.
want = collections.Counter()
for _, _, _, acct, amount in applied:
    want[acct] += amount
got = dict(d.execute("SELECT id, balance FROM accounts"))
assert got == dict(want), "balances"
# The group's offset (a hint for sqlite_offsets) reached the end.
v = json.load(open(desc))
assert v["total_lag"] == 0, ("group lag", v["total_lag"])
print("%d records, %d payments, %d rejected" % (len(recs), len(applied),
                                                len(rej)))
PY
}

# finish_run EXAMPLE DB TOPIC GROUP: one member to the end (idle 300 ms).
finish_run() {
	run "$EX/$1" -i 300 -g "$4" "$2" "$3"
}

# --- bad input -------------------------------------------------------------

"$CTL" topic create pay --partitions 3 --durability volatile \
	--ring-size "$RING"
for ex in sqlite_offsets sqlite_dedupe; do
	run "$EX/$ex" "$T/x.db"
	expect_rc "$ex without a topic is a usage error" 2
	run "$EX/$ex" -b 0 "$T/x.db" pay
	expect_rc "$ex -b 0 is a usage error" 2
	run "$EX/$ex" "$T/x.db" no-such-topic
	expect_rc "$ex on a missing topic fails" 1
	check "  ... saying so" has_err "no-such-topic"
	run "$EX/$ex" "$T/no/such/dir/x.db" pay
	expect_rc "$ex with a database it cannot create fails" 1
	check "  ... naming it" has_err "no/such/dir/x.db"
done

# --- sqlite_offsets: offsets in the database ----------------------------------

# Records per round: sqlite_offsets (no flush per commit) is the faster.
payments "$T" "$SEED" "$ROUNDS" 6000 0
DB=$T/offsets.db
backup_at=$((ROUNDS / 2))
if crash_rounds sqlite_offsets "$DB" pay offs; then
	ok "sqlite_offsets: $ROUNDS rounds of kill -9, every member died by it"
else
	not_ok "sqlite_offsets: a member failed on its own (see above)"
fi
check "  ... and kills landed with work to do ($mid_run of $ROUNDS)" \
	test "$mid_run" -ge $((ROUNDS / 4))
finish_run sqlite_offsets "$DB" pay offs
expect_rc "sqlite_offsets finishes the rest" 0
log pay "$T/pay.log"
check "  ... every record applied exactly once, in order" \
	check_db offsets "$DB" "$T/pay.log" offs pay

"$CTL" group reset-offsets offs --topic pay --to-earliest --execute >/dev/null
finish_run sqlite_offsets "$DB" pay offs
expect_rc "a replay from the group's offset 0" 0
check "  ... applies nothing: the database's offsets win" \
	has_out " 0 applied, 0 rejected, "
check "  ... and the database is unchanged" \
	check_db offsets "$DB" "$T/pay.log" offs pay

backup "$DB.bak" "$DB" # restore: the group's offsets are now ahead
finish_run sqlite_offsets "$DB" pay offs
expect_rc "after restoring a backup from round $backup_at" 0
check "  ... it applies what the backup lacks" \
	python3 -c 'import re, sys
assert int(re.search(r" (\d+) applied", sys.stdin.read())[1]) > 0' <"$T/out"
check "  ... exactly once" check_db offsets "$DB" "$T/pay.log" offs pay

# A topic made again starts at offset 0: the stored offsets are past its
# end, and every record would look applied.
"$CTL" topic delete pay
"$CTL" topic create pay --partitions 3 --durability volatile \
	--ring-size "$RING"
head -5 "$T/chunk.0" | "$CTL" produce pay --key-separator "$SEP"
run "$EX/sqlite_offsets" -i 300 -g offs "$DB" pay
expect_rc "sqlite_offsets on a topic made again refuses" 1
check "  ... saying why" has_err "past the log's end"

# --- sqlite_dedupe: a unique id -----------------------------------------------

"$CTL" topic create dup --partitions 3 --durability volatile \
	--ring-size "$RING"
payments "$T" "$((SEED + 1))" "$ROUNDS" 3000 1
# A replay: the first chunk again, half-way.
cp "$T/chunk.0" "$T/chunk.$((ROUNDS / 2))"
DB=$T/dedupe.db
backup_at=
if crash_rounds sqlite_dedupe "$DB" dup dedupe; then
	ok "sqlite_dedupe: $ROUNDS rounds of kill -9, every member died by it"
else
	not_ok "sqlite_dedupe: a member failed on its own (see above)"
fi
check "  ... and kills landed with work to do ($mid_run of $ROUNDS)" \
	test "$mid_run" -ge $((ROUNDS / 4))
finish_run sqlite_dedupe "$DB" dup dedupe
expect_rc "sqlite_dedupe finishes the rest" 0
log dup "$T/dup.log"
check "  ... every payment applied once, duplicates skipped" \
	check_db dedupe "$DB" "$T/dup.log" dedupe dup

"$CTL" group reset-offsets dedupe --topic dup --to-earliest --execute \
	>/dev/null
finish_run sqlite_dedupe "$DB" dup dedupe
expect_rc "a replay of the whole topic" 0
check "  ... applies nothing" has_out " 0 applied, [1-9][0-9]* duplicates"
check "  ... and the database is unchanged" \
	check_db dedupe "$DB" "$T/dup.log" dedupe dup

finish
