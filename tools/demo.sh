#!/bin/sh
# demo.sh BUILD_DIR — a two-minute tour of shmq, run by `make demo`.
#
# In a throw-away instance: a (persistent) topic with 3 partitions, the
# instance's shmq-replicator writing it to disk, two members of one
# consumer group sharing it, a producer sending keyed records, a summary
# of who read what and of what is on disk, and a short shmq-perf run.
# Everything it makes is removed on exit (the replicator stopped by its
# pid), also when a step fails.
set -eu

B=${1:-build}
EX=$B/bin/examples
CTL=$B/bin/shmqctl
PERF=$B/bin/shmq-perf
REPL=$B/bin/shmq-replicator
TOPIC=demo
GROUP=demo
RECORDS=30000
PARTITIONS=3

for f in "$EX/producer" "$EX/group_consumer" "$PERF" "$REPL"; do
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
repl_pid=
shm_dir=

cleanup() {
	status=$?
	for p in $pids $repl_pid; do
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
mkdir -p "$out"

# Topics are persistent by default: their rings reuse space only once
# the replicator has written it to disk.  In the foreground, so that
# its pid is ours to stop; the log line "ready" says it runs.
step "shmq-replicator: writes the topic to $SHMQ_HOME/data"
"$REPL" --home "$SHMQ_HOME" --foreground 2>"$out/replicator.log" &
repl_pid=$!
tries=0
until grep -q ' info: ready: ' "$out/replicator.log"; do
	if ! kill -0 "$repl_pid" 2>/dev/null || [ "$tries" -ge 100 ]; then
		break
	fi
	tries=$((tries + 1))
	sleep 0.05
done
if grep -q ' info: ready: ' "$out/replicator.log"; then
	echo "replicator running (pid $repl_pid)"
else
	# Without io_uring it cannot run.  30000 small records fit in one
	# ring, so the demo goes on, in shared memory only.
	echo "demo: shmq-replicator did not start; records stay in memory:" >&2
	cat "$out/replicator.log" >&2
	kill "$repl_pid" 2>/dev/null || true
	wait "$repl_pid" 2>/dev/null || true
	repl_pid=
fi

step "2 consumers of group '$GROUP' (examples/group_consumer), then the producer"
for i in 1 2; do
	"$EX/group_consumer" -g "$GROUP" -i 1500 "$TOPIC" >"$out/consumer$i" &
	pids="$pids $!"
done
# Let both join before records flow, so the group does not rebalance
# under load (that would be correct, but re-deliveries blur the summary).
tries=0
while [ "$have_ctl" = 1 ] && [ "$tries" -lt 50 ]; do
	if "$CTL" group describe "$GROUP" --topic "$TOPIC" --sample 0 2>/dev/null |
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

if [ -n "$repl_pid" ] && [ "$have_ctl" = 1 ]; then
	step "on disk: every record, per partition (shmqctl status)"
	# sum COLUMN: the topic's total in that column of `shmqctl status`
	# (found by its header).  BEHIND is what is not on disk yet; the
	# replicator writes it within its 50 ms poll.
	sum() {
		"$CTL" status | awk -v t="$TOPIC" -v col="$1" '
			$1 == "TOPIC" { for (i = 1; i <= NF; i++) if ($i == col) c = i }
			$1 == t && c { s += $c }
			END { print s + 0 }'
	}
	tries=0
	while [ "$(sum BEHIND)" != 0 ] && [ "$tries" -lt 100 ]; do
		tries=$((tries + 1))
		sleep 0.05
	done
	"$CTL" status
	durable=$(sum DURABLE)
	if [ "$durable" -ne "$RECORDS" ]; then
		echo "demo: only $durable of $RECORDS records are on disk" >&2
		exit 1
	fi
	echo "$RECORDS records on disk under $SHMQ_HOME/data/$TOPIC"
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
