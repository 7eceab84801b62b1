#!/bin/sh
# demo.sh BUILD_DIR — a two-minute tour of shmq, run by `make demo`.
#
# In a throw-away instance: a topic with 3 partitions, two members of
# one consumer group sharing it, a producer sending keyed records, a
# summary of who read what, and a short shmq-perf run.  Everything it
# makes is removed on exit, also when a step fails.
set -eu

B=${1:-build}
EX=$B/bin/examples
CTL=$B/bin/shmqctl
PERF=$B/bin/shmq-perf
TOPIC=demo
GROUP=demo
RECORDS=30000
PARTITIONS=3

for f in "$EX/producer" "$EX/group_consumer" "$PERF"; do
	if [ ! -x "$f" ]; then
		echo "demo: $f is missing; run 'make' first" >&2
		exit 1
	fi
done
have_ctl=0
if [ -x "$CTL" ]; then
	have_ctl=1
fi

SHMQ_HOME=$(mktemp -d /tmp/shmq-demo.XXXXXX)
export SHMQ_HOME
out=$SHMQ_HOME/demo-output
pids=
shm_dir=

cleanup() {
	status=$?
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$have_ctl" = 1 ]; then
		"$CTL" topic delete "$TOPIC" >/dev/null 2>&1 || true
	fi
	rm -rf "$SHMQ_HOME"
	# The library has no call that removes an instance; its shm
	# directory (only a lock file once the topic is gone) goes by hand.
	case $shm_dir in
	/dev/shm/shmq-*) rm -rf "$shm_dir" ;;
	esac
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	printf '\n== %s\n' "$*"
}

step "instance $SHMQ_HOME, topic '$TOPIC' with $PARTITIONS partitions"
if [ "$have_ctl" = 1 ]; then
	"$CTL" topic create "$TOPIC" --partitions "$PARTITIONS"
	shm_dir=$("$CTL" --json info | sed -n 's/.*"shm_dir":"\([^"]*\)".*/\1/p')
else
	"$EX/producer" -p "$PARTITIONS" "$TOPIC" 0 # creates it, sends none
	# Where the library puts it by default (libshmq/instance.c).
	shm_dir=/dev/shm/shmq-$(cat "$SHMQ_HOME/instance.id")
fi

step "2 consumers of group '$GROUP' (examples/group_consumer), then the producer"
mkdir -p "$out"
for i in 1 2; do
	"$EX/group_consumer" -g "$GROUP" -i 1500 "$TOPIC" >"$out/consumer$i" &
	pids="$pids $!"
done
# Let both join before records flow, so the group does not rebalance
# under load (that would be correct, but re-deliveries blur the summary).
tries=0
while [ "$have_ctl" = 1 ] && [ "$tries" -lt 50 ]; do
	if "$CTL" group describe "$GROUP" --topic "$TOPIC" 2>/dev/null |
		grep -q '^MEMBERS *2$'; then
		break
	fi
	tries=$((tries + 1))
	sleep 0.1
done
[ "$have_ctl" = 1 ] || sleep 0.5

"$EX/producer" "$TOPIC" "$RECORDS"

failed=0
for p in $pids; do
	wait "$p" || failed=1
done
pids=
if [ "$failed" = 1 ]; then
	echo "demo: a consumer failed" >&2
	exit 1
fi

step "what happened"
cat "$out/consumer1" "$out/consumer2"
consumed=$(cat "$out/consumer1" "$out/consumer2" |
	sed -n 's/^consumer [0-9]*: \([0-9]*\) records.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
if [ "$consumed" -eq "$RECORDS" ]; then
	echo "$RECORDS records produced, each consumed once by group '$GROUP'"
elif [ "$consumed" -gt "$RECORDS" ]; then
	echo "$RECORDS records produced, $consumed consumed:" \
		"$((consumed - RECORDS)) delivered again after a rebalance" \
		"(at-least-once)"
else
	echo "demo: $RECORDS records produced but only $consumed consumed" >&2
	exit 1
fi
if [ "$have_ctl" = 1 ]; then
	"$CTL" group describe "$GROUP" --topic "$TOPIC"
fi

step "shmq-perf: 1 producer, 1 consumer, 64-byte records, 1.5 s"
json=$("$PERF" --duration 1.5 --record-size 64 --producers 1 \
	--consumers 1 --json | tail -n 1)
field() {
	printf '%s\n' "$json" | sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"
}
awk -v r="$(field msgs_per_s)" -v p50="$(field p50_us)" \
	-v p99="$(field p99_us)" 'BEGIN {
	printf "throughput: %.2f M msgs/s, p50 %.1f µs, p99 %.1f µs\n",
	    r / 1e6, p50, p99
}'
