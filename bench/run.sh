#!/usr/bin/env bash
# bench/run.sh — issue 4: shmq side by side with what users would pick
# instead (pipes, POSIX message queues, UNIX and TCP sockets, nng, ZeroMQ,
# Redis Streams), one harness (qbench), the same workloads, every run
# verified.
#
# Usage: bench/run.sh [BUILD_DIR]                   (or: make bench)
#   RUNS=N    runs of everything (default 3; QUICK: 2); the table shows
#             the median and min–max over the runs of each configuration
#   QUICK=1   shorter runs, to check that it works; writes
#             bench/results/latest-quick.tsv (and -quick plots) instead
#   OUT=FILE  where the TSV goes (default bench/results/latest.tsv); the
#             raw JSON lines go next to it (.jsonl), the plots into its
#             directory
#   QBENCH=PROGRAM   run this qbench instead of BUILD_DIR/bin/bench/qbench
#
# It starts three redis-server processes on 127.0.0.1 (persistence off,
# AOF fsync everysec, AOF fsync always), one shmq instance with its
# shmq-replicator (the persistent shmq variants need it), all under one
# new directory in ${TMPDIR:-/tmp}.  Then RUNS times: the machine limits
# (memcpy, cache-line and futex round trips, fdatasync latency and
# bandwidth in the instance's home), and every configuration once, so
# that a noisy phase of the shared machine hits all of them alike:
#   stream    every transport but the pingpong-only ones, 1 producer,
#             64 B .. 16 KiB (up to the transport's largest message);
#             64 B with 2 producers for those that take several
#   pingpong  every transport, 64 B round trips
#   durable   the variants whose send returns once the message is on
#             disk (shmq-always, redis-always), 64 B, 1 and 4 producers
# qbench checks every message (count, order per producer, checksum) and
# exits non-zero otherwise: such a run is reported and not counted, and
# the script then exits 1.  Everything it starts is stopped by PID and
# everything it made is removed on exit, also on SIGINT/SIGTERM.
set -euo pipefail

t_start=$(date +%s%N)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${RUNS:-2}
	OUT=${OUT:-$ROOT/bench/results/latest-quick.tsv}
	DUR=0.15        # stream and durable: seconds the producers send
	PP_COUNT=20000  # pingpong round trips (after qbench's warm-up)
	CL_COUNT=100000 # cache-line round trips
	FUTEX_N=20000   # bench/futex_rtt round trips
	LAT_N=500 BW_MIB=64
else
	RUNS=${RUNS:-3}
	OUT=${OUT:-$ROOT/bench/results/latest.tsv}
	DUR=0.4
	PP_COUNT=50000
	CL_COUNT=1000000
	FUTEX_N=50000
	LAT_N=2000 BW_MIB=256
fi
case $RUNS in '' | *[!0-9]* | 0)
	echo "run.sh: RUNS must be a positive number" >&2
	exit 2
	;;
esac
SIZES=(64 256 1024 4096 16384)
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
JSONL=${OUT%.tsv}.jsonl
# Plots: throughput.png etc. for latest.tsv, throughput-quick.png for
# latest-quick.tsv, throughput-NAME.png for NAME.tsv.
stem=$(basename "$OUT" .tsv)
case $stem in latest*) sfx=${stem#latest} ;; *) sfx=-$stem ;; esac

"$ROOT/tools/deps.sh" --bench || exit 1
QB=${QBENCH:-$B/bin/bench/qbench}
DISK=$B/bin/bench/disk
FUTEX=$B/bin/bench/futex_rtt
CTL=$B/bin/shmqctl
REPL=$B/bin/shmq-replicator
for x in "$QB" "$DISK" "$FUTEX" "$CTL" "$REPL"; do
	if [ ! -x "$x" ]; then
		echo "run.sh: $x missing: make B=$B all $B/bin/bench/qbench" >&2
		exit 2
	fi
done
for x in redis-server redis-cli gnuplot python3; do
	if ! command -v "$x" >/dev/null; then
		echo "run.sh: $x not found: tools/deps.sh --bench" >&2
		exit 2
	fi
done

repl=
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/shmq-bench.XXXXXX")
# qbench makes its scratch directories (ipc paths) under $TMPDIR: inside
# $work, so that whatever a killed run leaves is removed with it.
mkdir "$work/tmp"
export TMPDIR=$work/tmp
raw=$work/raw.tsv
: >"$raw"

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_redis NAME ARGS...: a redis-server on 127.0.0.1, a free port and
# its own directory; sets redis_addr[NAME].  Polls until the server that
# answers on the port is the one started here (INFO's process_id): if
# another process took the port in between, ours fails to bind and exits,
# and the next free port is tried.
declare -A redis_addr=()
start_redis() {
	local name=$1 dir=$work/redis-$1 port pid try i info
	shift
	mkdir "$dir"
	for try in 1 2 3 4 5; do
		port=$(free_port)
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
			--daemonize no --logfile "$dir/log" "$@" </dev/null &
		pid=$!
		bg_pids+=("$pid")
		for ((i = 0; i < 500; i++)); do # ~10 s
			info=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null || true)
			if [[ $info == *"process_id:$pid"$'\r'* ]]; then
				redis_addr[$name]=127.0.0.1:$port
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.02
		done
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		local keep=() q
		for q in "${bg_pids[@]}"; do [ "$q" = "$pid" ] || keep+=("$q"); done
		bg_pids=("${keep[@]}")
		echo "run.sh: redis-server ($name) on port $port did not start (try $try):" >&2
		tail -3 "$dir/log" 2>/dev/null | sed 's/^/    /' >&2 || true
	done
	echo "run.sh: could not start redis-server ($name)" >&2
	exit 1
}
start_redis off --save '' --appendonly no
start_redis everysec --save '' --appendonly yes --appendfsync everysec
start_redis always --save '' --appendonly yes --appendfsync always

home=$work/home
mkdir "$home"
shm=$("$CTL" --home "$home" --json info |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["shm_dir"])')
"$REPL" --home "$home" --foreground --log-level warn \
	2>"$work/replicator.log" </dev/null &
repl=$!
bg_pids+=("$repl")
for ((i = 0; ; i++)); do
	if "$CTL" --home "$home" --json status 2>/dev/null | python3 -c 'import json, sys
j = json.load(sys.stdin)
sys.exit(0 if j.get("replicator_running") and j.get("replicator_pid") == int(sys.argv[1]) else 1)' \
		"$repl" 2>/dev/null; then
		break
	fi
	if ! kill -0 "$repl" 2>/dev/null || [ "$i" -ge 200 ]; then
		echo "run.sh: shmq-replicator did not start:" >&2
		sed 's/^/    /' "$work/replicator.log" >&2
		exit 1
	fi
	sleep 0.05
done

# The variants: NAME FLAGS MAX_SIZE per line, from qbench --list.
run "$QB" --list || {
	echo "run.sh: $QB --list failed:" >&2
	cat "$work/err" >&2
	exit 1
}
# qbench --list: NAME FLAGS,max=BYTES WHAT, one variant per line; the
# flags are multi, durable and pingpong-only ("max=N" alone: none).
mapfile -t variants < <(awk 'NF >= 2 {
	flags = ""; max = 0; n = split($2, w, ",")
	for (k = 1; k <= n; k++) {
		if (w[k] ~ /^max=[0-9]+$/) max = substr(w[k], 5) + 0
		else if (w[k] == "pingpong-only") flags = flags ",nostream"
		else if (w[k] != "-") flags = flags "," w[k]
	}
	print $1, (flags == "" ? "-" : substr(flags, 2)), max
}' "$work/out")
if [ ${#variants[@]} -eq 0 ]; then
	echo "run.sh: $QB --list named no variant" >&2
	exit 1
fi
# A transport file left out of the build is only missing from --list:
# say so, as its rows are then missing from the table.
for want in limit-spsc limit-futex shmq-spin shmq-park shmq-batch64 \
	shmq-never shmq-always pipe mq unix tcp nng-pair nng-pushpull \
	zmq-pushpull redis-off redis-everysec redis-always; do
	[[ " ${variants[*]} " == *" $want "* ]] ||
		echo "run.sh: warning: $QB has no variant $want" >&2
done

# The configurations, in the order they run and are shown:
# WORKLOAD TRANSPORT SIZE PRODUCERS.
configs=()
has() { [[ ,$2, == *,$1,* ]]; }
for s in "${SIZES[@]}"; do
	for v in "${variants[@]}"; do
		read -r name flags mx <<<"$v"
		has nostream "$flags" && continue
		[ "$mx" -ne 0 ] && [ "$s" -gt "$mx" ] && continue
		configs+=("stream $name $s 1")
	done
done
for v in "${variants[@]}"; do
	read -r name flags mx <<<"$v"
	has multi "$flags" && ! has nostream "$flags" && configs+=("stream $name 64 2")
done
for v in "${variants[@]}"; do
	read -r name flags mx <<<"$v"
	configs+=("pingpong $name 64 1")
done
for p in 1 4; do
	for v in "${variants[@]}"; do
		read -r name flags mx <<<"$v"
		has durable "$flags" && configs+=("durable $name 64 $p")
	done
done
printf '%s\n' "${configs[@]}" >"$work/configs"

# Record a successful run's JSON line(s): RUN WORKLOAD TRANSPORT SIZE
# PRODUCERS, then the lines of $work/out.
record() {
	local line
	while IFS= read -r line; do
		case $line in "{"*) printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
			"$1" "$2" "$3" "$4" "$5" "$wall" "$line" >>"$raw" ;;
		esac
	done <"$work/out"
}
failed=0
nfailed=0
failure() {
	echo "run.sh: run $1: $2 failed (not counted):" >&2
	sed 's/^/    /' "$work/err" >&2
	failed=1
	nfailed=$((nfailed + 1))
}

fs=$(findmnt -n -o FSTYPE -T "$home" 2>/dev/null || stat -f -c %T "$home")
echo "run.sh: $RUNS run(s)$([ "$QUICK" = 1 ] && echo ", QUICK") of ${#configs[@]} configurations" \
	"over ${#variants[@]} variants; $(nproc) CPUs, $(uname -r)"
echo "  instance $home ($fs), redis ${redis_addr[off]} (off)," \
	"${redis_addr[everysec]} (everysec), ${redis_addr[always]} (always)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
	# The machine's limits.
	if run "$QB" --limit memcpy --json; then
		record "$i" limit memcpy 0 1
	else failure "$i" "qbench --limit memcpy"; fi
	if run "$QB" --limit cacheline --count "$CL_COUNT" --json; then
		record "$i" limit cacheline 64 1
	else failure "$i" "qbench --limit cacheline"; fi
	if run "$FUTEX" "$FUTEX_N"; then
		printf '%s\tlimit\tfutex_rtt\t4\t1\t%s\t%s\n' "$i" "$wall" \
			"$(python3 -c 'import json, re, sys
m = re.search(r"p50 ([\d.]+)\s+p99 ([\d.]+)\s+max ([\d.]+)", sys.argv[1])
print(json.dumps({"limit": "futex_rtt", "n": int(sys.argv[2]),
    "p50_us": float(m[1]), "p99_us": float(m[2]), "max_us": float(m[3])}))' \
				"$(cat "$work/out")" "$FUTEX_N")" >>"$raw"
	else failure "$i" "bench/futex_rtt"; fi
	if run "$DISK" "$home" "$LAT_N" "$BW_MIB"; then
		record "$i" limit disk 4096 1
	else failure "$i" "bench/disk"; fi
	# Every configuration once.
	for c in "${configs[@]}"; do
		read -r wl name size p <<<"$c"
		args=(--transport "$name" --workload "$wl" --size "$size" --json)
		case $wl in
		pingpong) args+=(--count "$PP_COUNT") ;;
		*) args+=(--producers "$p" --duration "$DUR") ;;
		esac
		case $name in
		redis-*)
			a=${redis_addr[${name#redis-}]:-}
			[ -n "$a" ] && args+=(--addr "$a")
			;;
		shmq-*) args+=(--home "$home") ;;
		esac
		if run "$QB" "${args[@]}" && grep -q '"verified": *true' "$work/out"; then
			record "$i" "$wl" "$name" "$size" "$p"
		else
			[ -s "$work/err" ] || echo "exit status 0 but no verified JSON line" >"$work/err"
			failure "$i" "$wl $name ${size} B ×$p"
		fi
		# Each run starts from an empty server, whatever the last one left.
		if [ -n "${a:-}" ]; then
			redis-cli -h "${a%:*}" -p "${a#*:}" flushall >/dev/null
			a=
		fi
	done
	echo "  run $i of $RUNS done (load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

mkdir -p "$(dirname "$OUT")"
python3 - "$raw" "$work/configs" "$OUT" "$JSONL" "$work" "$RUNS" \
	"$(dirname "$OUT")" "$sfx" <<'EOF'
import json, statistics, sys

raw, cfgfile, out, jsonl, work, runs, plotdir, sfx = sys.argv[1:9]
runs = int(runs)

# vals[(workload, transport, size, producers)][run] = the JSON object
vals = {}
lines = []
for line in open(raw):
    run, wl, tr, size, p, wall, js = line.rstrip("\n").split("\t", 6)
    j = json.loads(js)
    lines.append(dict({"run": int(run), "wall_s": float(wall)}, **j))
    if tr == "disk":
        # bench/disk: the growing ("append") file is what shmq's segments
        # and Redis's AOF are.
        if j.get("file") != "append" or j.get("test") not in ("lat", "bw"):
            continue
        tr, size = (("disk-fdatasync-4k", 4096) if j["test"] == "lat"
                    else ("disk-seq-write", 1 << 20))
    elif tr == "memcpy":
        size = j.get("size", 0)
    vals.setdefault((wl, tr, int(size), int(p)), {})[int(run)] = j
with open(jsonl, "w") as f:
    for j in lines:
        f.write(json.dumps(j) + "\n")

configs = [tuple(l.split()) for l in open(cfgfile) if l.strip()]
configs = [(w, t, int(s), int(p)) for w, t, s, p in configs]
# qbench --list's order: every variant has a pingpong configuration.
order = [c[1] for c in configs if c[0] == "pingpong"]

def series(key, field):
    return {r: j[field] for r, j in vals.get(key, {}).items()
            if isinstance(j.get(field), (int, float))}

def med(s):
    return statistics.median(s.values()) if s else None

# Throughput: higher is better; latency: lower is better.
HIGHER = {"msgs_per_s", "mb_per_s"}

def ref_key(key):
    wl, tr, size, p = key
    return (wl, "shmq-always" if wl == "durable" else "shmq-park", size, p)

def ratio(key, field):
    """How many times better shmq is than this row, from the medians."""
    if key[0] not in ("stream", "pingpong", "durable"):
        return None
    a, b = med(series(key, field)), med(series(ref_key(key), field))
    if not a or not b:
        return None
    return b / a if field in HIGHER else a / b

# ---- formatting ----
def frate(v, unit_of=None):
    u = unit_of if unit_of is not None else v
    if u >= 1e6:
        return "%.2f M" % (v / 1e6)
    if u >= 1e3:
        return "%.1f k" % (v / 1e3)
    return "%.0f" % v

def fnum(v):
    if v < 10:
        return "%.2f" % v
    if v < 1000:
        return "%.1f" % v
    return "%.0f" % v

def frat(r):
    if r is None:
        return ""
    return "%.2f" % r if r < 10 else "%.1f" % r if r < 100 else "%.0f" % r

def spread(s, f):
    if not s:
        return "failed"
    v = sorted(s.values())
    m = med(s)
    if f is frate:
        return "%s (%s–%s)" % (frate(m), frate(v[0], m).split()[0],
                               frate(v[-1], m).split()[0])
    return "%s (%s–%s)" % (f(m), f(v[0]), f(v[-1]))

def cell(key, field):
    s = series(key, field)
    return fnum(med(s)) if s else ""

def nruns(key):
    return "%d/%d" % (len(vals.get(key, {})), runs)

# ---- the TSV: one row per configuration and metric ----
tsv = ["workload\ttransport\tsize\tproducers\tmetric\tunit\tmedian\tmin"
       "\tmax\truns\tratio"]
UNITS = {"msgs_per_s": "msgs/s", "mb_per_s": "MB/s", "p50_us": "us",
         "p99_us": "us", "p999_us": "us", "max_us": "us", "p50_ns": "ns",
         "p99_ns": "ns", "p999_ns": "ns"}
METRICS = {
    "stream": ["msgs_per_s", "mb_per_s"],
    "pingpong": ["p50_us", "p99_us", "p999_us", "max_us", "msgs_per_s"],
    "durable": ["msgs_per_s", "p50_us", "p99_us", "p999_us", "max_us"],
}
LIMITS = [
    (("limit", "memcpy", 64 << 20, 1), ["mb_per_s"]),
    (("limit", "cacheline", 64, 1), ["p50_ns", "p99_ns", "p999_ns"]),
    (("pingpong", "limit-futex", 64, 1), ["p50_us", "p99_us"]),
    (("limit", "futex_rtt", 4, 1), ["p50_us", "p99_us"]),
    (("limit", "disk-fdatasync-4k", 4096, 1), ["p50_us", "p99_us"]),
    (("limit", "disk-seq-write", 1 << 20, 1), ["mb_per_s"]),
]
def tsv_row(key, field):
    s = series(key, field)
    v = sorted(s.values())
    r = ratio(key, field)
    tsv.append("\t".join(str(x) for x in [
        key[0], key[1], key[2], key[3], field, UNITS.get(field, ""),
        "%.6g" % med(s) if s else "", "%.6g" % v[0] if s else "",
        "%.6g" % v[-1] if s else "", len(s), "%.4f" % r if r else ""]))
for key, fields in LIMITS:
    if key[0] == "limit":
        for f in fields:
            tsv_row(key, f)
for key in configs:
    for f in METRICS[key[0]]:
        tsv_row(key, f)
with open(out, "w") as f:
    f.write("\n".join(tsv) + "\n")

# ---- the tables ----
def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()

print("### Machine limits\n")
rows = []
def lim(what, key, field, unit, f=fnum):
    rows.append([what, unit, spread(series(key, field), f), nruns(key)])
lim("memcpy, 64 MiB buffers", LIMITS[0][0], "mb_per_s", "MB/s")
for q in ("p50", "p99", "p999"):
    lim("cache-line round trip CPU 0 ↔ CPU 1, spinning, %s" % q,
        LIMITS[1][0], q + "_ns", "ns")
for q in ("p50", "p99"):
    lim("futex round trip, 64 B (qbench limit-futex), %s" % q, LIMITS[2][0],
        q + "_us", "µs")
for q in ("p50", "p99"):
    lim("futex round trip (bench/futex_rtt), %s" % q, LIMITS[3][0],
        q + "_us", "µs")
for q in ("p50", "p99"):
    lim("4 KiB write + fdatasync, growing file, %s" % q, LIMITS[4][0],
        q + "_us", "µs")
lim("sequential write, fdatasync per MiB, growing file", LIMITS[5][0],
    "mb_per_s", "MB/s")
table(["limit", "unit", "median (min–max)", "runs"], rows)

def stream_rows(p):
    rows = []
    for key in configs:
        if key[0] != "stream" or key[3] != p:
            continue
        s = series(key, "msgs_per_s")
        rows.append([str(key[2]), key[1], spread(s, frate),
                     cell(key, "mb_per_s"), nruns(key),
                     frat(ratio(key, "msgs_per_s"))])
    return rows
print("### Stream, 1 producer → 1 consumer\n")
table(["size B", "transport", "msgs/s (median, min–max)", "MB/s", "runs",
       "shmq ×"], stream_rows(1))
print("### Stream, 2 producers → 1 consumer, 64 B\n")
table(["size B", "transport", "msgs/s (median, min–max)", "MB/s", "runs",
       "shmq ×"], stream_rows(2))

print("### Ping-pong, 64 B round trips\n")
rows = []
for key in configs:
    if key[0] != "pingpong":
        continue
    rt = med(series(key, "msgs_per_s"))
    rows.append([key[1], frate(rt) if rt else "",
                 spread(series(key, "p50_us"), fnum), cell(key, "p99_us"),
                 cell(key, "p999_us"), cell(key, "max_us"), nruns(key),
                 frat(ratio(key, "p50_us")), frat(ratio(key, "p99_us"))])
table(["transport", "round trips/s", "p50 µs (median, min–max)", "p99 µs",
       "p99.9 µs", "max µs", "runs", "shmq × (p50)", "shmq × (p99)"], rows)

print("### Durable, 64 B, each send returns once on disk\n")
rows = []
for key in configs:
    if key[0] != "durable":
        continue
    rows.append([key[1], str(key[3]), spread(series(key, "msgs_per_s"), frate),
                 cell(key, "p50_us"), cell(key, "p99_us"),
                 cell(key, "p999_us"), nruns(key),
                 frat(ratio(key, "msgs_per_s")), frat(ratio(key, "p50_us"))])
table(["transport", "producers", "msgs/s (median, min–max)", "ack p50 µs",
       "ack p99 µs", "ack p99.9 µs", "runs", "shmq × (msgs/s)",
       "shmq × (ack p50)"], rows)

# ---- data for bench/plot.gp ----
def color(t):
    fixed = {"shmq-park": "#d62728", "shmq-spin": "#ff7f0e",
             "shmq-batch64": "#8c1010", "shmq-never": "#e377c2",
             "shmq-always": "#9467bd", "limit-spsc": "#000000",
             "limit-futex": "#555555", "pipe": "#1f77b4", "mq": "#17becf",
             "unix": "#2ca02c", "tcp": "#7fbf3f", "nng-pair": "#8c564b",
             "nng-pushpull": "#c49c94", "zmq-pushpull": "#bcbd22",
             "redis-off": "#7f7f7f", "redis-everysec": "#a0a0a0",
             "redis-always": "#c7c7c7"}
    return fixed.get(t, "#%06x" % (hash(t) & 0xffffff))

def style(t):
    if t.startswith("shmq-"):
        return 2.5, 1
    if t.startswith("limit-"):
        return 1.5, 2
    return 1.5, 1

def arrays(prefix, names):
    c = ["array %s_name = [%s]" % (prefix, ", ".join('"%s"' % n for n in names)),
         "array %s_color = [%s]" % (prefix, ", ".join('"%s"' % color(n) for n in names)),
         "array %s_lw = [%s]" % (prefix, ", ".join(str(style(n)[0]) for n in names)),
         "array %s_dt = [%s]" % (prefix, ", ".join(str(style(n)[1]) for n in names))]
    return c if names else ["array %s_name[1]" % prefix]

thr = []
with open(work + "/throughput.dat", "w") as f:
    for t in order:
        pts = [(k[2], med(series(k, "msgs_per_s"))) for k in configs
               if k[0] == "stream" and k[1] == t and k[3] == 1]
        pts = [(s, v) for s, v in pts if v]
        if not pts:
            continue
        thr.append(t)
        for s, v in pts:
            f.write("%d %g\n" % (s, v))
        f.write("\n\n")

lat = []
with open(work + "/latency.dat", "w") as f:
    for t in order:
        k = ("pingpong", t, 64, 1)
        qs = {}
        for j in vals.get(k, {}).values():
            for q, us in j.get("quantiles", []):
                qs.setdefault(q, []).append(us)
        if not qs:
            continue
        lat.append(t)
        for q in sorted(qs):
            # HdrHistogram's x axis: 1/(1-q), so that 99%, 99.9% and
            # 99.99% are evenly spaced; the maximum goes one step on.
            x = 1e5 if q >= 1.0 else 1.0 / (1.0 - q)
            f.write("%g %g %g\n" % (x, statistics.median(qs[q]), q))
        f.write("\n\n")

dur = []
with open(work + "/durable.dat", "w") as f:
    for k in configs:
        if k[0] != "durable" or not vals.get(k):
            continue
        dur.append(k)
        f.write('"%s, %d producer%s" %g %g %g\n' % (
            k[1], k[3], "" if k[3] == 1 else "s", med(series(k, "p50_us")),
            med(series(k, "p99_us")), med(series(k, "p999_us"))))
disk = med(series(LIMITS[4][0], "p50_us"))

with open(work + "/vars.gp", "w") as f:
    f.write("\n".join(
        ['thr_data = "%s/throughput.dat"' % work,
         'lat_data = "%s/latency.dat"' % work,
         'dur_data = "%s/durable.dat"' % work,
         'thr_png = "%s/throughput%s.png"' % (plotdir, sfx),
         'lat_png = "%s/latency%s.png"' % (plotdir, sfx),
         'dur_png = "%s/durable%s.png"' % (plotdir, sfx),
         "thr_n = %d" % len(thr), "lat_n = %d" % len(lat),
         "dur_n = %d" % len(dur), "disk_p50 = %g" % (disk or 0),
         'subtitle = "median of %d run%s"' % (runs, "" if runs == 1 else "s")]
        + arrays("thr", thr) + arrays("lat", lat)) + "\n")
EOF
if ! gnuplot -c "$ROOT/bench/plot.gp" "$work/vars.gp" 2>"$work/err"; then
	echo "run.sh: gnuplot failed:" >&2
	sed 's/^/    /' "$work/err" >&2
	failed=1
fi
[ "$nfailed" -eq 0 ] || echo "run.sh: $nfailed run(s) failed and were not counted (see above)" >&2
echo "written: $OUT, $JSONL"
echo "plots: $(dirname "$OUT")/{throughput,latency,durable}$sfx.png"
t_end=$(date +%s%N)
echo "elapsed: $(((t_end - t_start) / 1000000000)) s"
exit "$failed"
