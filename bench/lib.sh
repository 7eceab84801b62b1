# bench/lib.sh — sourced by bench/run.sh and bench/durable.sh (after
# `set -euo pipefail`): everything they start is stopped by PID, and
# everything they make removed, on exit, also on SIGINT/SIGTERM/SIGHUP.
#
# The script sets `work` (its scratch directory) and `shm` (an instance's
# shared-memory directory) once made, appends the PIDs of servers it
# starts to `bg_pids`, and runs each measured command with run().
# shellcheck shell=bash

work=
shm=
child=
bg_pids=()
# shellcheck disable=SC2317 # called by the traps
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM HUP
	# The command run() waits for first: qbench's children die with it
	# (PR_SET_PDEATHSIG); shmq-perf stops its workers and persister on
	# SIGTERM.  Then the servers, in the order they were started.
	for p in $child ${bg_pids[@]+"${bg_pids[@]}"}; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -n "$shm" ] && rm -rf -- "$shm"
	[ -n "$work" ] && rm -rf -- "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run a command in the background so that a signal reaches the trap at
# once; stdout to $work/out, stderr to $work/err, wall time (s) in $wall.
# shellcheck disable=SC2034 # read by the sourcing script
wall=0
run() {
	local rc=0 t0
	t0=$(date +%s%N)
	"$@" >"$work/out" 2>"$work/err" &
	child=$!
	wait "$child" || rc=$?
	child=
	# shellcheck disable=SC2034
	wall=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	return "$rc"
}
