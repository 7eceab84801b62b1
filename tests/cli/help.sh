#!/usr/bin/env bash
# tests/cli/help.sh — every shmqctl command's --help (and -h) prints its
# usage on stdout and exits 0, without doing anything else.
#
#   bash tests/cli/help.sh BUILD_DIR      (from the repository root)
#
# The commands are taken from 'shmqctl --help', so a new command is
# covered without editing this file.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# An instance with a topic, so that a command that wrongly carries on
# after its usage would attach and act rather than fail early.
run "$CTL" topic create t --partitions 1 --durability volatile
expect_rc "topic create t" 0

# The command words of each "Commands:" line: the lower-case words
# before the first argument or option ("group reset-offsets GROUP ..."
# gives "group reset-offsets").
run "$CTL" --help
expect_rc "shmqctl --help" 0
mapfile -t cmds < <(awk '
	/^Commands:/ { on = 1; next }
	on && /^$/ { exit }
	on && /^  [a-z]/ {
		s = ""
		for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++)
			s = s (s == "" ? "" : " ") $i
		print s
	}' "$T/out")
check "shmqctl --help lists at least 14 commands (found ${#cmds[@]})" \
	test "${#cmds[@]}" -ge 14

for c in "${cmds[@]}"; do
	for h in --help -h; do
		# shellcheck disable=SC2086 # split "group skipped" into words
		run "$CTL" $c $h </dev/null
		expect_rc "shmqctl $c $h exits 0" 0
		check "  ... prints Usage: on stdout" grep -q "^Usage: shmqctl $c" "$T/out"
		check "  ... and nothing on stderr" test ! -s "$T/err"
	done
done

# --help wins over a complete command line: nothing is produced.
set +e
echo line | timeout 30 "$CTL" produce t --help >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc "produce t --help with input exits 0" 0
run "$CTL" consume t --from earliest --timeout-ms 0
check "  ... and appended nothing" test ! -s "$T/out"

finish
