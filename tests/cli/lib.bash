# tests/cli/lib.bash — sourced by the CLI test scripts: the instance,
# cleanup, and check helpers.  Each check prints "ok - ..." or
# "not ok - ..."; finish prints "N passed, M failed" and sets the status.
set -euo pipefail

B=${1:-build}
CTL=$(cd "$B/bin" && pwd)/shmqctl
T=$(mktemp -d "${TMPDIR:-/tmp}/shmqctl-cli.XXXXXX")
export SHMQ_HOME=$T/home
pass=0
fail=0
bg=

# Stop a background consumer left by a failed check, then remove the
# instance's shm directory (asked of shmqctl: its name comes from an id
# in the home) and the temp dir.
cleanup() {
	local shm
	if [ -n "$bg" ]; then
		kill "$bg" 2>/dev/null || true
		wait "$bg" 2>/dev/null || true
	fi
	if [ -d "$SHMQ_HOME" ]; then
		shm=$("$CTL" info 2>/dev/null |
			awk '$1 == "SHM-DIR" { print $2 }') || true
		case $shm in
		*/shmq-*) rm -rf -- "$shm" ;;
		esac
	fi
	rm -rf -- "$T"
}
trap cleanup EXIT

ok() {
	pass=$((pass + 1))
	echo "ok - $*"
}
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
}
# run CMD...: run it under a timeout; keep stdout, stderr and status.
run() {
	set +e
	timeout 30 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
}
# expect_rc NAME STATUS: the last run exited with STATUS.
expect_rc() {
	if [ "$rc" -eq "$2" ]; then
		ok "$1"
	else
		not_ok "$1 (exit $rc, want $2): $(head -c 300 "$T/err")"
	fi
}
# check NAME CMD...: CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		not_ok "$name"
	fi
}
has_out() { grep -q -- "$1" "$T/out"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds; fail
# when the deadline passes (waiting for a condition, never a sleep
# standing in for one).
wait_for() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.02
	done
}
has_err() { grep -q -- "$1" "$T/err"; }
# finish: the summary line and the exit status.
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
