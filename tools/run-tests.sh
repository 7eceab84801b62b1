#!/usr/bin/env bash
# Run every test: the CUnit suites, then the CLI integration scripts.
# Each runs under a timeout; the last line sums them up.
# Usage: tools/run-tests.sh BUILD_DIR
set -uo pipefail
B=${1:-build}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}
CLI_TIMEOUT=${CLI_TIMEOUT:-300}
passed=0
failed=0

# The runner itself: a failing test must make it exit non-zero, and a
# suite name that matches nothing must not pass for a green run.
if "$B/bin/shmq-tests" selfcheck >/dev/null 2>&1; then
	echo "FAIL runner: shmq-tests exits 0 although a test failed"
	failed=$((failed + 1))
elif "$B/bin/shmq-tests" no-such-suite >/dev/null 2>&1; then
	echo "FAIL runner: shmq-tests exits 0 although no test ran"
	failed=$((failed + 1))
else
	echo "PASS runner: a failing or empty run exits non-zero"
	passed=$((passed + 1))
fi

start=$(date +%s)
out=$(mktemp)
timeout --signal=KILL "$UNIT_TIMEOUT" "$B/bin/shmq-tests" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
read -r ran ok bad < <(awk '$1 == "tests" { print $3, $4, $5 }' "$out")
rm -f "$out"
if [ -z "${ran:-}" ]; then
	echo "unit: shmq-tests did not finish (exit $rc)"
	failed=$((failed + 1))
else
	passed=$((passed + ok))
	failed=$((failed + bad))
	[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && failed=$((failed + 1))
fi
echo "unit: $(($(date +%s) - start)) s"

for t in tests/cli/*.sh; do
	[ -e "$t" ] || continue
	start=$(date +%s)
	if timeout --signal=KILL "$CLI_TIMEOUT" bash "$t" "$B"; then
		passed=$((passed + 1))
		echo "PASS $t ($(($(date +%s) - start)) s)"
	else
		failed=$((failed + 1))
		echo "FAIL $t ($(($(date +%s) - start)) s)"
	fi
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
