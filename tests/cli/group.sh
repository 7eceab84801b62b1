#!/usr/bin/env bash
# tests/cli/group.sh — shmqctl consumer groups: consume --group commits
# what it printed, group list/describe/delete, and reset-offsets (dry
# run, --execute, every spec, refusal while members are live).
#
#   bash tests/cli/group.sh BUILD_DIR      (from the repository root)
#
# Each check prints "ok - ..." or "not ok - ..."; the last line is
# "N passed, M failed" and the exit status is 1 if any check failed.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
# committed GROUP TOPIC: the group's committed offsets, "p0 p1 ...".
committed() {
	"$CTL" group describe "$1" --topic "$2" --json --sample 0 |
		python3 -c 'import json, sys
print(" ".join(str(p["committed"]) for p in json.load(sys.stdin)["partitions"]))'
}

# Rings only: volatile, no replicator needed.
"$CTL" topic create g --partitions 2 --durability volatile
for i in $(seq 0 24); do echo "p0-$i"; done | "$CTL" produce g --partition 0
for i in $(seq 0 24); do echo "p1-$i"; done | "$CTL" produce g --partition 1

# --- consume --group commits what it printed ------------------------------

run "$CTL" consume g --group app --count 20 --format json
expect_rc "consume --group app --count 20" 0
cp "$T/out" "$T/first"
check "  ... prints 20 records" test "$(wc -l <"$T/first")" -eq 20

run "$CTL" group describe app --topic g --sample 0
expect_rc "group describe" 0
check "group describe shows the total lag (30)" has_out "^TOTAL-LAG  *30$"
check "  ... and no live members" has_out "^MEMBERS  *0$"
check "  ... and a row per partition with - for no owner" \
	test "$(grep -c '^[01]  .*  -  ' "$T/out")" -eq 2

run "$CTL" group describe app --topic g --json --sample 0
check "group describe --json: lag per partition adds up" \
	python3 - "$T/out" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["group"] == "app" and v["topic"] == "g" and v["members"] == 0, v
ps = v["partitions"]
assert [p["partition"] for p in ps] == [0, 1], ps
assert all(p["end"] == 25 and p["owner_pid"] is None for p in ps), ps
assert all(p["lag"] == p["end"] - p["committed"] for p in ps), ps
assert sum(p["committed"] for p in ps) == 20, ps
assert v["total_lag"] == 30 == sum(p["lag"] for p in ps), v
EOF

run "$CTL" consume g --group app --format json
expect_rc "a second consume in the group" 0
cp "$T/out" "$T/second"
check "  ... continues where the first stopped: all 50, none twice" \
	python3 - "$T/first" "$T/second" <<'EOF'
import json, sys
seen = []
for f in sys.argv[1:]:
    seen += [(r["partition"], r["offset"], r["value"])
             for r in map(json.loads, open(f))]
assert len(seen) == len(set(seen)) == 50, len(seen)
assert sorted(seen) == sorted([(p, o, "p%d-%d" % (p, o))
                               for p in (0, 1) for o in range(25)])
EOF
check "the group has no lag left" test "$(committed app g)" = "25 25"

run "$CTL" consume g --group app --partition 0
expect_rc "consume --group with --partition is a usage error" 2
check "  ... saying why" has_err "partition"

run "$CTL" group list
expect_rc "group list" 0
check "  ... prints group TAB topic" \
	test "$(cat "$T/out")" = "$(printf 'app\tg')"
run "$CTL" group list --json
check "group list --json" python3 -c 'import json, sys
assert json.load(sys.stdin) == [{"group": "app", "topic": "g"}]' <"$T/out"

# --- reset-offsets --------------------------------------------------------

run "$CTL" group reset-offsets app --topic g --to-earliest
expect_rc "reset-offsets --to-earliest (dry run)" 0
check "  ... prints the plan" has_out "^1  *25  *0$"
check "  ... says it was a dry run" has_err "dry run"
check "  ... and changes nothing" test "$(committed app g)" = "25 25"

run "$CTL" group reset-offsets app --topic g --to-earliest --execute
expect_rc "reset-offsets --to-earliest --execute" 0
check "  ... moves the committed offsets" test "$(committed app g)" = "0 0"
check "  ... without a dry-run note" test ! -s "$T/err"

run "$CTL" group reset-offsets app --topic g --to-offset 10 --partition 1 \
	--execute
expect_rc "reset-offsets --to-offset 10 --partition 1 --execute" 0
check "  ... moves only partition 1" test "$(committed app g)" = "0 10"

run "$CTL" group reset-offsets app --topic g --shift-by -4 --json
expect_rc "reset-offsets --shift-by -4 --json" 0
check "  ... plans committed-4, clamped at the log start" \
	python3 - "$T/out" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["executed"] is False, v
got = [(p["partition"], p["committed"], p["new_offset"])
       for p in v["partitions"]]
assert got == [(0, 0, 0), (1, 10, 6)], got
EOF

run "$CTL" group reset-offsets app --topic g --to-offset 999 --execute
expect_rc "reset-offsets --to-offset 999 --execute" 0
check "  ... clamps to the log end" test "$(committed app g)" = "25 25"

run "$CTL" group reset-offsets app --topic g --to-latest --partition 5
expect_rc "reset-offsets --partition 5 of a 2-partition topic fails" 1
run "$CTL" group reset-offsets app --topic g
expect_rc "reset-offsets without a spec is a usage error" 2
run "$CTL" group reset-offsets app --topic g --to-earliest --to-latest
expect_rc "reset-offsets with two specs is a usage error" 2
run "$CTL" group reset-offsets app --to-earliest
expect_rc "reset-offsets without --topic is a usage error" 2
run "$CTL" group reset-offsets app --topic g --to-datetime yesterday
expect_rc "reset-offsets --to-datetime yesterday is a usage error" 2
run "$CTL" group reset-offsets app --topic g --to-datetime \
	2026-02-30T00:00:00Z
expect_rc "reset-offsets --to-datetime of February 30th is refused" 2

# --- --to-datetime ---------------------------------------------------------

"$CTL" topic create tm --partitions 1 --durability volatile
seq 1 5 | "$CTL" produce tm
sleep 0.05
# The cut as UTC with nanoseconds, and the same instant two hours east
# with milliseconds (truncated: still after records 1-5).
read -r cut cut_east < <(python3 -c '
import datetime as d, time
ns = time.time_ns()
s, f = divmod(ns, 10**9)
t = d.datetime.fromtimestamp(s, d.timezone.utc)
east = t.astimezone(d.timezone(d.timedelta(hours=2)))
print(t.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % f,
      east.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d+02:00" % (f // 10**6))')
sleep 0.05
seq 6 8 | "$CTL" produce tm
"$CTL" consume tm --group app --count 1 >/dev/null

run "$CTL" group reset-offsets app --topic tm --to-datetime "$cut" --execute
expect_rc "reset-offsets --to-datetime $cut --execute" 0
check "  ... points at the first record after that time" \
	test "$(committed app tm)" = 5
run "$CTL" consume tm --group app
check "  ... and the group reads from there" \
	test "$(cat "$T/out")" = "$(seq 6 8)"

run "$CTL" group reset-offsets app --topic tm --to-datetime "$cut_east" \
	--json
check "a fractional +02:00 time names the same instant ($cut_east)" \
	python3 -c 'import json, sys
assert json.load(sys.stdin)["partitions"][0]["new_offset"] == 5' <"$T/out"

run "$CTL" group reset-offsets app --topic tm \
	--to-datetime 2000-01-01T00:00:00Z --json
check "a time before every record gives the log start" \
	python3 -c 'import json, sys
assert json.load(sys.stdin)["partitions"][0]["new_offset"] == 0' <"$T/out"
run "$CTL" group reset-offsets app --topic tm \
	--to-datetime 2200-01-01T00:00:00Z --json
check "a time after every record gives the log end" \
	python3 -c 'import json, sys
assert json.load(sys.stdin)["partitions"][0]["new_offset"] == 8' <"$T/out"

# --- live members block changes -------------------------------------------

"$CTL" consume g --group app --timeout-ms 20000 >/dev/null 2>&1 &
bg=$!
live=0
for _ in $(seq 100); do
	if "$CTL" group describe app --topic g --sample 0 | grep -q '^MEMBERS  *1$'; then
		live=1
		break
	fi
	sleep 0.05
done
check "a running consumer shows as a member" test "$live" -eq 1

run "$CTL" group describe app --topic g --sample 0
check "  ... and as the owner of its partitions" \
	test "$(grep -c "^[01]  .*  $bg  " "$T/out")" -eq 2

run "$CTL" group reset-offsets app --topic g --to-earliest --execute
expect_rc "reset-offsets --execute with a live member fails" 1
check "  ... saying the group has live members" has_err "live members"
check "  ... and changes nothing" test "$(committed app g)" = "25 25"

run "$CTL" group delete app --topic g
expect_rc "group delete with a live member fails" 1

kill -TERM "$bg"
set +e
wait "$bg"
bg_rc=$?
set -e
bg=
check "SIGTERM stops consume, which dies of the signal ($bg_rc)" \
	test "$bg_rc" -eq 143
run "$CTL" group describe app --topic g --sample 0
check "  ... and leaves the group" has_out "^MEMBERS  *0$"

# --- delete ---------------------------------------------------------------

run "$CTL" group delete app --topic g
expect_rc "group delete" 0
run "$CTL" group list
check "  ... removes it from the list" \
	test "$(cat "$T/out")" = "$(printf 'app\ttm')"
run "$CTL" group describe app --topic g --sample 0
expect_rc "group describe of a deleted group fails" 1
run "$CTL" group describe app
expect_rc "group describe without --topic is a usage error" 2

"$CTL" topic delete g
"$CTL" topic delete tm

finish
