#!/usr/bin/env bash
# tests/cli/replicator.sh — shmq-replicator as a daemon: usage errors,
# readiness, one replicator per instance, durable acks across a kill -9,
# every acknowledged record read back once and in order, SIGHUP reloads,
# sd_notify messages, SIGTERM, and daemonizing.
#
#   bash tests/cli/replicator.sh BUILD_DIR   (from the repo root)
#
# Skipped (with an "ok - skipped" line) only when the replicator cannot
# start because io_uring is unavailable.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

REPL=$(cd "$B/bin" && pwd)/shmq-replicator
listener= # the sd_notify listener (python3)
dpid=     # a daemonized replicator (not our child)

repl_cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	cleanup
}
trap repl_cleanup EXIT

alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }
ready_or_dead() { grep -q ' info: ready: ' "$1" || dead "$2"; }
# start LOG ARGS...: a foreground replicator in the background ($bg);
# returns once it logged "ready", or 1 if it died first.
start() {
	local log=$1
	shift
	"$REPL" --home "$SHMQ_HOME" --foreground "$@" 2>"$log" &
	bg=$!
	wait_for 30 ready_or_dead "$log" "$bg" || true
	grep -q ' info: ready: ' "$log"
}
# stop_bg SIGNAL: signal $bg and collect its status into rc.
stop_bg() {
	kill -"$1" "$bg"
	set +e
	wait "$bg"
	rc=$?
	set -e
	bg=
}
# notify_listen SOCKET OUT: collect sd_notify datagrams, one per line
# (newlines inside a datagram become spaces), until STOPPING=1.
notify_listen() {
	python3 - "$1" "$2" <<'PY' &
import socket, sys
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.settimeout(120)
with open(out, "a") as f:
    f.write("LISTENING\n")
    f.flush()
    while True:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        f.write(m.replace("\n", " ") + "\n")
        f.flush()
        if "STOPPING=1" in m:
            break
PY
	listener=$!
	wait_for 10 grep -qs LISTENING "$2"
}
# check_acks FILE FIRST COUNT: COUNT JSON acks for offsets FIRST.. of t.
check_acks() {
	python3 - "$@" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
first, n = int(sys.argv[2]), int(sys.argv[3])
assert len(recs) == n, len(recs)
for i, r in enumerate(recs):
    assert r["topic"] == "t" and r["partition"] == 0, r
    assert r["offset"] == first + i, (r, first + i)
    assert r["value"] == "v-%d" % (first + i), r
PY
}

# --- usage --------------------------------------------------------------

run "$REPL" --bogus
expect_rc "an unknown option is a usage error" 2
check "  ... named, with a pointer to --help" \
	sh -c "grep -q \"unknown option '--bogus'\" '$T/err' &&
		grep -q -- '--help' '$T/err'"
run "$REPL" --home "$SHMQ_HOME" --log-level loud
expect_rc "--log-level loud is a usage error" 2
check "  ... that lists the levels" has_err "error, warn, info or debug"
run "$REPL" --home "$SHMQ_HOME" --poll-ms 0
expect_rc "--poll-ms 0 is a usage error" 2
run "$REPL" --home "$SHMQ_HOME" extra
expect_rc "a stray argument is a usage error" 2
run env -u SHMQ_HOME "$REPL"
expect_rc "no --home and no SHMQ_HOME is a usage error" 2
printf 'log_level = info\n# comment\n\nbogus = 1\n' >"$T/bad.conf"
run "$REPL" --home "$SHMQ_HOME" --config "$T/bad.conf"
expect_rc "a config file with an unknown key is a usage error" 2
check "  ... naming file and line" has_err "bad.conf:4: unknown key 'bogus'"
run "$REPL" --help
expect_rc "--help" 0
check "  ... prints the usage" has_out "Usage: shmq-replicator --home DIR"
run "$REPL" -V
check "-V prints the version" has_out "^shmq-replicator [0-9]*\.[0-9]*\.[0-9]"

# --- start, and one replicator per instance -----------------------------

printf 'log_level = info\npoll_ms = 50\n' >"$T/repl.conf"
if ! start "$T/a.log" --config "$T/repl.conf"; then
	set +e
	wait "$bg"
	rc=$?
	set -e
	bg=
	if grep -q io_uring "$T/a.log"; then
		echo "ok - skipped: io_uring unavailable: $(head -c 300 "$T/a.log")"
		finish
		exit 0
	fi
	not_ok "the replicator starts (exit $rc): $(head -c 300 "$T/a.log")"
	finish
	exit 1
fi
ok "the replicator starts and logs ready"
a=$bg

run "$REPL" --home "$SHMQ_HOME" --foreground
expect_rc "a second replicator on the same home is refused" 1
check "  ... naming the running one's pid" has_err "another shmq-replicator (pid $a) is running"
run "$REPL" --home "$SHMQ_HOME"
expect_rc "  ... also daemonized: the parent exits with the child's status" 1
check "  ... and its message" has_err "(pid $a)"

# --- durable acks across a kill -9 --------------------------------------

# No --durability: persistent is the default, and this is its path.
run "$CTL" topic create t --partitions 1 --fsync always
expect_rc "topic create (persistent by default) --fsync always" 0

for i in $(seq 0 99); do echo "v-$i"; done >"$T/in1"
run "$CTL" produce t --acks durable --report-acks <"$T/in1"
expect_rc "produce --acks durable" 0
check "  ... acknowledges every record" check_acks "$T/out" 0 100

kill -9 "$a"
wait "$a" 2>/dev/null || true
bg=
ok "kill -9 the replicator"

notify_listen "$T/notify" "$T/notify.out"
if NOTIFY_SOCKET=$T/notify start "$T/b.log" --config "$T/repl.conf"; then
	ok "a new replicator starts after the kill"
else
	not_ok "a new replicator starts after the kill: $(head -c 300 "$T/b.log")"
fi
b=$bg
check "  ... and tells systemd READY=1" \
	wait_for 10 grep -qx "READY=1" "$T/notify.out"

for i in $(seq 100 199); do echo "v-$i"; done >"$T/in2"
run "$CTL" produce t --acks durable --report-acks <"$T/in2"
expect_rc "produce --acks durable after the restart" 0
check "  ... acknowledges every record" check_acks "$T/out" 100 100

run "$CTL" consume t --from earliest --count 200 --format json
expect_rc "consume --from earliest" 0
check "  ... returns every acknowledged record once, in order" python3 - \
	"$T/out" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["offset"] for r in recs] == list(range(200)), len(recs)
assert [r["value"] for r in recs] == ["v-%d" % i for i in range(200)]
PY
check "  ... and segment files exist under HOME/data" \
	test -n "$(find "$SHMQ_HOME/data" -type f 2>/dev/null)"

run "$CTL" status
expect_rc "status" 0
check "  ... names the running replicator and its pid" \
	has_out "^REPLICATOR  running (pid $b)"
check "  ... shows partition 0 of t durable at 200, in one segment" \
	grep -Eq "^t +0 +200 +200 +0 +1 +[0-9.]+[KM]? +-$" "$T/out"
run "$CTL" status --json
check "status --json" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert v["replicator_running"] and v["replicator_pid"] == int(sys.argv[2])
assert v["partitions"] == [{"topic": "t", "partition": 0, "end": 200,
    "durable": 200, "persist_error": 0, "log_start": 0, "segments": 1,
    "segment_bytes": int(sys.argv[3])}], v' "$T/out" "$b" \
	"$(cat "$SHMQ_HOME"/data/t/0/*.log | wc -c)"

# --- more than a ring: the replicator makes the room ---------------------

# A 64K ring holds a few hundred of these lines; 2000 need the replicator
# to write the older ones to disk so the ring can reuse their space.
"$CTL" topic create big --partitions 1 --ring-size 64K
for i in $(seq 0 1999); do printf 'v-%04d-%094d\n' "$i" 0; done >"$T/many"
run "$CTL" produce big <"$T/many"
expect_rc "produce 2000 records (several rings) to a persistent topic" 0
big_durable() {
	"$CTL" status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert [p["durable"] for p in v["partitions"] if p["topic"] == "big"] \
    == [2000], v'
}
check "  ... and all of them reach the disk" wait_for 10 big_durable
run "$CTL" consume big --from earliest --count 2000 --format json
check "  ... and read back in order, the older ones from segments" \
	python3 - "$T/out" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["offset"] for r in recs] == list(range(2000)), len(recs)
assert [r["value"][:6] for r in recs] == ["v-%04d" % i for i in range(2000)]
PY

# --- SIGHUP -------------------------------------------------------------

printf 'log_level = debug\n' >"$T/repl.conf"
kill -HUP "$b"
check "SIGHUP reloads the config and logs the new level" \
	wait_for 10 grep -q "info: reloaded $T/repl.conf: log_level debug" \
	"$T/b.log"
check "  ... between RELOADING=1 and READY=1" \
	wait_for 10 sh -c "grep -A1 '^RELOADING=1 MONOTONIC_USEC=[0-9]' \
		'$T/notify.out' | grep -qx READY=1"
printf 'log_level = info\nlog_level = chatty\n' >"$T/repl.conf"
kill -HUP "$b"
check "a bad config on SIGHUP is logged with file:line" \
	wait_for 10 grep -q "error: reload: $T/repl.conf:2: log_level" \
	"$T/b.log"
run "$CTL" produce t --acks durable <<<v-200
# Debug lines after the rejected reload: the level stayed debug.
debug_after_error() {
	awk '/error: reload:/ { e = 1 } e && / debug: / { f = 1 }
		END { exit !f }' "$T/b.log"
}
check "  ... and the old config is kept (debug lines follow)" \
	wait_for 10 debug_after_error
check "  ... and the replicator still runs" alive "$b"

# --- SIGTERM ------------------------------------------------------------

stop_bg TERM
check "SIGTERM: exit 0" test "$rc" -eq 0
run "$CTL" status
check "status: not running, and how to start it" \
	has_out "^REPLICATOR  not running (start it with: shmq-replicator"
check "  ... after logging stopped" grep -q ' info: stopped$' "$T/b.log"
check "  ... and telling systemd STOPPING=1" \
	wait_for 10 grep -qx "STOPPING=1" "$T/notify.out"
wait "$listener" 2>/dev/null || true
listener=

start_ms=$(now_ms)
run "$CTL" produce t --acks durable <<<late
elapsed=$(($(now_ms) - start_ms))
check "without a replicator, produce --acks durable fails ($rc)" \
	test "$rc" -ne 0
check "  ... within a few seconds (${elapsed} ms)" test "$elapsed" -lt 5000
check "  ... naming shmq-replicator" has_err shmq-replicator

# --- daemonized ---------------------------------------------------------

# Not through run: the child keeps writing to its stderr file.
set +e
timeout 30 "$REPL" --home "$SHMQ_HOME" --log-level debug 2>"$T/c.log"
rc=$?
set -e
expect_rc "daemonized: the parent exits 0 once the child is ready" 0
dpid=$(sed -n 's/.* info: ready: .*(pid \([0-9]*\),.*/\1/p' "$T/c.log")
check "  ... and the child (pid ${dpid:-?}) runs" alive "${dpid:-0}"
run "$CTL" consume t --from earliest --count 201 --format json
check "  ... recovered all 201 records" \
	test "$(wc -l <"$T/out")" -eq 201
if [ -n "$dpid" ]; then
	kill "$dpid"
	check "  ... and stops on SIGTERM" wait_for 10 dead "$dpid"
	check "  ... logging stopped" grep -q ' info: stopped$' "$T/c.log"
	dpid=
fi

finish
