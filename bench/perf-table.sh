#!/usr/bin/env bash
# Run shmq-perf over the standard configurations RUNS times each and print
# a Markdown table of medians (with min–max of msgs/s), plus the machine's
# futex round trip for the parked ping-pong to be compared with.
# Usage: bench/perf-table.sh [BUILD_DIR] [RUNS]
set -euo pipefail
B=${1:-build}
RUNS=${2:-5}
P=$B/bin/shmq-perf
configs=(
	"stream, batch 1, park|--count 3000000"
	"stream, batch 1, spin|--count 3000000 --idle spin"
	"stream, batch 1, spin, exclusive|--count 3000000 --idle spin --exclusive"
	"stream, batch 64, park|--count 10000000 --batch 64"
	"stream, batch 64, spin, exclusive|--count 10000000 --batch 64 --idle spin --exclusive"
	"2 producers → 1 partition, batch 1|--count 2000000 --producers 2"
	"2 producers → 1 partition, batch 64|--count 5000000 --producers 2 --batch 64"
	"zero-copy, batch 1, spin|--count 3000000 --idle spin --zero-copy"
	"ping-pong, spin|--mode pingpong --count 100000 --idle spin"
	"ping-pong, park (spin 50 µs)|--mode pingpong --count 100000"
	"ping-pong, parked (spin 0)|--mode pingpong --count 50000 --spin-us 0"
)
echo "| workload (64-byte values) | msgs/s (median, min–max) | p50 µs | p99 µs | p99.9 µs |"
echo "| --- | --- | --- | --- | --- |"
for c in "${configs[@]}"; do
	name=${c%%|*}
	args=${c#*|}
	for _ in $(seq "$RUNS"); do
		# shellcheck disable=SC2086
		"$P" $args --json 2>/dev/null | tail -1
	done | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
if not rows:
    print("| %s | failed | | | |" % sys.argv[1]); sys.exit()
m = lambda k: statistics.median(r[k] for r in rows)
r = sorted(x["msgs_per_s"] for x in rows)
print("| %s | %.2f M (%.2f–%.2f) | %.2f | %.2f | %.2f |" % (sys.argv[1],
      m("msgs_per_s") / 1e6, r[0] / 1e6, r[-1] / 1e6, m("p50_us"),
      m("p99_us"), m("p999_us")))' "$name"
done
for _ in $(seq "$RUNS"); do "$B/bin/bench/futex_rtt" 50000; done |
	awk '{ print $6 }' | sort -n | awk '{ v[NR] = $1 } END {
		printf "\nbare futex round trip, pinned (bench/futex_rtt): p50 %.2f µs (median of %d runs)\n", v[int((NR + 1) / 2)], NR }'
