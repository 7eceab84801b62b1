#!/usr/bin/env bash
# tests/cli/relay_groups.sh — `shmqctl relay` in a source group that
# other members share:
#  - a rebalance that takes a partition away between the read of a
#    batch and its commit (SHMQ_ENOTOWNER on the commit) is not a
#    failure: the relay goes on, exits 0 and, once it has the partition
#    back, nothing is lost (the batch is sent again: at-least-once);
#  - a draining relay that joins a group whose live member still holds
#    the partitions does not stop at once as "drained": it relays the
#    backlog once it gets its partitions.
# The first needs gdb (to hold the relay between two reads of one batch
# while a member joins); it is skipped without it.
#
#   bash tests/cli/relay_groups.sh BUILD_DIR   (from the repo root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
hold=''
member=''
# Also stop the helper processes a failed check may leave (kill -9: the
# hold member is stopped, and would not act on SIGTERM).
kill_helpers() {
	local p
	for p in $hold $member; do
		kill -9 "$p" 2>/dev/null || true
	done
}
trap 'kill_helpers; cleanup' EXIT

# members_are GROUP TOPIC N: the group has N live members.
members_are() {
	[ "$({ "$CTL" group describe "$1" --topic "$2" --sample 0 --json ||
		echo '{"members": -1}'; } 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["members"])')" = "$3" ]
}
# values TOPIC: the values of every record of TOPIC, sorted, one a line.
values() {
	"$CTL" consume "$1" --from earliest --format json --timeout-ms 300 |
		python3 -c 'import json, sys
for l in sys.stdin:
    print(json.loads(l)["value"])' | sort
}
# dead_or PID CMD...: PID has exited, or CMD succeeds.
dead_or() {
	local pid=$1
	shift
	! kill -0 "$pid" 2>/dev/null || "$@"
}
stop() {
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Topic full: a small ring that a stopped member of group hold keeps
# from being reused.  A relay into it whose batch does not fit waits for
# room: it holds its source partitions, commits nothing, and does not
# look at its group meanwhile (a member that keeps partitions from a
# newcomer without committing them).
run "$CTL" topic create full --partitions 1 --durability volatile \
	--ring-size 64K
expect_rc "topic create full (64K)" 0
# A stopped member of group hold keeps full's ring from being reused.
"$CTL" consume full --group hold --timeout-ms -1 >/dev/null 2>&1 &
hold=$!
wait_for 20 members_are hold full 1 || true
kill -STOP "$hold"

# --- a partition taken away between a batch's read and its commit ------

N=50
run "$CTL" topic create s1 --partitions 2 --durability volatile
expect_rc "topic create s1" 0
run "$CTL" topic create d1 --partitions 3 --durability volatile
expect_rc "topic create d1" 0
# All in partition 1: the partition the relay gives up when a second
# member joins (a member gives up its highest-numbered extras).
# 2000-byte values: the 50 records do not fit into full.
python3 -c 'for i in range(1, 51): print("k%d:v%d-%s" % (i, i, "x" * 2000))' \
	>"$T/in1"
"$CTL" produce s1 --partition 1 --key-separator : <"$T/in1"
cut -d: -f2 "$T/in1" | sort >"$T/want1"

if command -v gdb >/dev/null 2>&1; then
	# Stop the relay at its second shmq_recv of the first batch (one
	# record of partition 1 read), let member B join, then go on: that
	# read gives partition 1 up, and the commit of the batch meets
	# SHMQ_ENOTOWNER.
	# LeakSanitizer cannot run under ptrace (an ASan build would exit
	# 1 at the end): leaks are checked by the other runs.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		gdb -q -batch -return-child-result -nx \
		-ex 'set pagination off' \
		-ex 'set breakpoint pending on' \
		-ex 'break shmq_recv' -ex 'ignore 1 1' \
		-ex "run relay --from s1 --to d1 --batch 100 --json >'$T/r.out' 2>'$T/r.err'" \
		-ex "shell touch '$T/paused'" \
		-ex "shell i=0; until [ -e '$T/go' ] || [ \$i -ge 1500 ]; do sleep 0.02; i=\$((i+1)); done" \
		-ex 'delete' -ex 'continue' \
		--args "$CTL" >"$T/gdb.out" 2>&1 &
	relay=$!
	bg=$relay
	wait_for 30 dead_or "$relay" test -e "$T/paused" || true
	# gdb goes on with its commands after a run that ended: paused
	# counts only with the breakpoint hit.
	if [ -e "$T/paused" ] && grep -q '^Breakpoint 1, shmq_recv' "$T/gdb.out"; then
		# B: a relay of the same group into full, which takes
		# partition 1 and then waits for room, committing nothing.
		"$CTL" relay --from s1 --to full --group relay.d1 --follow \
			--no-progress >/dev/null 2>&1 &
		member=$!
		wait_for 20 members_are relay.d1 s1 2 || true
		touch "$T/go"
		# The relay has met the rebalance: it said so (fixed), or
		# ended (it failed).
		wait_for 30 dead_or "$relay" grep -q 'moved to another member' \
			"$T/r.err" || true
		stop "$member" # it committed nothing: the relay gets it back
		set +e
		wait_for 30 dead_or "$relay" false
		wait "$relay"
		rrc=$?
		set -e
		bg=
		check "relay survives a rebalance between read and commit: exit 0 (got $rrc)" \
			test "$rrc" = 0
		check "  ... no 'not owned' failure" \
			sh -c "! grep -q 'not owned' '$T/r.err'"
		check "  ... it says the partition moved" \
			grep -q 'partition 1 moved to another member' "$T/r.err"
		values d1 >"$T/got1"
		check "  ... and once it has it back, every record is in d1" \
			sh -c "sort -u '$T/got1' | cmp -s - '$T/want1'"
		check "  ... with at most one batch sent twice" \
			test "$(wc -l <"$T/got1")" -le $((N + 100))
	elif grep -qi 'ptrace\|not permitted' "$T/gdb.out"; then
		stop "$relay"
		bg=
		ok "skipped: gdb cannot trace here: $(head -c 200 "$T/gdb.out")"
	else
		stop "$relay"
		bg=
		not_ok "gdb stops the relay: $(head -c 300 "$T/gdb.out")"
	fi
else
	ok "skipped: no gdb"
fi

# --- a draining relay joins a group whose live member holds it all -------

# Member X of group relay.d2 is a relay into full whose first batch does
# not fit: it holds both partitions of s2 and commits nothing.
M=5000
run "$CTL" topic create s2 --partitions 2 --durability volatile
expect_rc "topic create s2" 0
run "$CTL" topic create d2 --partitions 4 --durability volatile
expect_rc "topic create d2" 0
seq 1 $M | sed 's/.*/k&:w&/' | "$CTL" produce s2 --key-separator :
seq 1 $M | sed 's/.*/w&/' | sort >"$T/want2"
"$CTL" relay --from s2 --to full --group relay.d2 --follow --batch $M \
	--no-progress >/dev/null 2>&1 &
member=$!
bg=$member
# full_some: X has read its batch and is sending it.
full_some() {
	[ "$("$CTL" topic describe full --json | python3 -c 'import json, sys
print(sum(p["end"] for p in json.load(sys.stdin)["partitions"]))')" -gt 0 ]
}
wait_for 20 full_some || true
check "X holds the group and is stuck sending" kill -0 "$member"
"$CTL" relay --from s2 --to d2 --json >"$T/r2.out" 2>"$T/r2.err" &
relay=$!
# The relay waits for the partitions X holds (fixed: it says so), or
# has ended.
wait_for 30 dead_or "$relay" grep -q 'waiting for partition' "$T/r2.err" ||
	true
stop "$member"
bg=$relay
set +e
wait_for 30 dead_or "$relay" false
wait "$relay"
rrc=$?
set -e
bg=
check "a draining relay joining a busy member's group: exit 0 (got $rrc)" \
	test "$rrc" = 0
check "  ... relays the whole backlog once X is gone, not nothing" \
	python3 -c "
import json
s = json.load(open('$T/r2.out'))
assert s['records'] == $M and s['stopped'] == 'drained', s"
values d2 >"$T/got2"
check "  ... every record in d2, once" cmp -s "$T/got2" "$T/want2"
stop "$hold"

finish
