#!/usr/bin/env bash
# bench/durable.sh — the durability targets of issue 3, measured in one run,
# each against a baseline taken in the same run on the same filesystem.
#
# Usage: bench/durable.sh [BUILD_DIR]          (or: make bench-durable)
#   RUNS=N    runs of everything (default 5); the table shows medians,
#             min–max, and ratios paired run by run with the baseline
#   QUICK=1   small sizes (128 MiB backlog), to check that it works;
#             writes bench/results/durable-quick.tsv instead
#   OUT=FILE  where the TSV goes (default bench/results/durable.tsv)
#
# One instance, in a new directory under ${TMPDIR:-/tmp}, serves every run:
# bench/disk (the machine baselines) writes its files in the instance's
# home, where the persister writes its segments.  Each iteration runs the
# disk baselines, then every shmq-perf configuration once, so that slow
# phases of the shared machine hit all of them alike.  shmq-perf checks
# every record (order, completeness) and exits non-zero otherwise: a run
# that fails is reported and left out, never counted.  The exit status is
# 1 when any run failed.  Everything this script starts (processes, the
# instance, its shared-memory directory) is removed on exit, also on
# SIGINT/SIGTERM.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
RUNS=${RUNS:-5}
QUICK=${QUICK:-0}
case $RUNS in '' | *[!0-9]* | 0)
	echo "durable.sh: RUNS must be a positive number" >&2
	exit 2
	;;
esac
if [ "$QUICK" = 1 ]; then
	OUT=${OUT:-$ROOT/bench/results/durable-quick.tsv}
	LAT_N=500 BW_MIB=64 # bench/disk
	C_4K=16384          # per producer, 2 producers: 128 MiB
	C_64=200000         # per producer
	C_ACK=1000
	C_LEADER=500000
	C_BACKLOG=32768 # 4 KiB records: 128 MiB
else
	OUT=${OUT:-$ROOT/bench/results/durable.tsv}
	LAT_N=2000 BW_MIB=256
	C_4K=65536 # 512 MiB
	C_64=500000
	C_ACK=3000
	C_LEADER=3000000
	C_BACKLOG=262144 # 1 GiB
fi
PERF=$B/bin/shmq-perf
DISK=$B/bin/bench/disk
CTL=$B/bin/shmqctl
for x in "$PERF" "$DISK" "$CTL"; do
	if [ ! -x "$x" ]; then
		echo "durable.sh: $x missing: make B=$B all" >&2
		exit 2
	fi
done

# key|shmq-perf options (each also gets --home and --json)
DUR="--durability persistent --fsync always --acks durable"
configs=(
	"durable_4k|$DUR --record-size 4k --producers 2 --batch 256 --count $C_4K"
	"durable_64_1p|$DUR --producers 1 --batch 256 --count $C_64"
	"durable_64_4p|$DUR --producers 4 --batch 256 --count $C_64"
	"durable_ack|$DUR --batch 1 --count $C_ACK"
	"leader_volatile|--durability volatile --acks leader --count $C_LEADER"
	"leader_never|--durability persistent --fsync never --acks leader --count $C_LEADER"
	"backlog|--mode backlog --durability persistent --fsync always --ring-size 1m --record-size 4k --batch 16 --count $C_BACKLOG"
)

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/shmq-durable.XXXXXX")
home=$work/home
mkdir "$home"
shm=$("$CTL" --home "$home" --json info |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["shm_dir"])')
raw=$work/raw.tsv
: >"$raw"

fs=$(findmnt -n -o FSTYPE -T "$home" || stat -f -c %T "$home")
dev=$(df --output=source "$home" | tail -1)
echo "durable.sh: $RUNS run(s)$([ "$QUICK" = 1 ] && echo ", QUICK"), instance $home ($fs on $dev), shm $shm"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0
for i in $(seq "$RUNS"); do
	if run "$DISK" "$home" "$LAT_N" "$BW_MIB"; then
		while read -r line; do
			printf '%s\t%s\t%s\n' "$i" disk "$line" >>"$raw"
		done <"$work/out"
	else
		echo "durable.sh: run $i: bench/disk failed: $(cat "$work/err")" >&2
		failed=1
	fi
	for c in "${configs[@]}"; do
		key=${c%%|*}
		read -r -a args <<<"${c#*|}"
		if run "$PERF" "${args[@]}" --home "$home" --json; then
			printf '%s\t%s\t%s\n' "$i" "$key" "$(tail -1 "$work/out")" >>"$raw"
		else
			echo "durable.sh: run $i: $key failed (not counted):" >&2
			sed 's/^/    /' "$work/err" >&2
			failed=1
		fi
	done
	echo "  run $i of $RUNS done (load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

mkdir -p "$(dirname "$OUT")"
python3 - "$raw" "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys

raw, out, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
# values[name][run] = number
values = {}
def put(name, run, v):
    values.setdefault(name, {})[run] = v
for line in open(raw):
    run, key, js = line.rstrip("\n").split("\t", 2)
    run = int(run)
    j = json.loads(js)
    if key == "disk":
        put("disk_%s_%s" % (j["test"], j["file"]), run, j)
        continue
    put(key, run, j)

def series(name, field):
    return {r: j[field] for r, j in values.get(name, {}).items()}

def med(d):
    return statistics.median(d.values()) if d else None

def paired(a, b, f):
    return {r: f(a[r], b[r]) for r in a if r in b and b[r]}

rows = []
# check: (per-run values, predicate): the verdict is the predicate on
# their median, followed by how many single runs pass it.
def row(target, what, unit, s, base=None, base_what="", ratio=None,
        goal="", check=None, scale=1.0, fmt="%.1f"):
    rows.append(dict(target=target, what=what, unit=unit, s=s, base=base,
                     base_what=base_what, ratio=ratio, goal=goal,
                     check=check, scale=scale, fmt=fmt))

lat_a = series("disk_lat_append", "p50_us")
lat_a99 = series("disk_lat_append", "p99_us")
lat_o = series("disk_lat_overwrite", "p50_us")
lat_o99 = series("disk_lat_overwrite", "p99_us")
bw_a = series("disk_bw_append", "mb_per_s")
bw_f = series("disk_bw_fallocate", "mb_per_s")
bw_o = series("disk_bw_overwrite", "mb_per_s")
rd = series("disk_read_append", "mb_per_s")
row("1", "4 KiB write + fdatasync p50, growing file", "µs", lat_a)
row("1", "4 KiB write + fdatasync p99, growing file", "µs", lat_a99)
row("1", "4 KiB write + fdatasync p50, pre-written file", "µs", lat_o)
row("1", "4 KiB write + fdatasync p99, pre-written file", "µs", lat_o99)
row("1", "sequential write, fdatasync per MiB, growing file", "MB/s", bw_a,
    fmt="%.0f")
row("1", "sequential write, fdatasync per MiB, fallocated file", "MB/s",
    bw_f, fmt="%.0f")
row("1", "sequential write, fdatasync per MiB, pre-written file", "MB/s",
    bw_o, fmt="%.0f")
row("1", "page-cache read, 1 MiB preads", "MB/s", rd, fmt="%.0f")

d4 = series("durable_4k", "mb_per_s")
r = paired(d4, bw_a, lambda x, y: x / y)
row("2", "durable 4 KiB records, 2 producers × batch 256", "MB/s", d4,
    bw_a, "seq. write, growing file", r, "≥ 0.80 ×",
    (r, lambda x: x >= 0.80), fmt="%.0f")

g1 = series("durable_64_1p", "msgs_per_s")
g4 = series("durable_64_4p", "msgs_per_s")
row("3", "durable 64 B records, 1 producer × batch 256", "M/s", g1,
    scale=1e-6, fmt="%.2f")
r = paired(g4, g1, lambda x, y: x / y)
row("3", "durable 64 B records, 4 producers × batch 256", "M/s", g4, g1,
    "1 producer", r, "≥ 1 M/s",
    (g4, lambda x: x >= 1e6), scale=1e-6, fmt="%.2f")

ack = series("durable_ack", "ack_p50_us")
r = paired(ack, lat_a, lambda x, y: x / y)
row("4", "DURABLE ack p50, 1 record per send", "µs", ack, lat_a,
    "write + fdatasync p50", r, "≤ 1.50 ×", (r, lambda x: x <= 1.5))
row("4", "DURABLE ack p99, 1 record per send", "µs",
    series("durable_ack", "ack_p99_us"))

lv = series("leader_volatile", "msgs_per_s")
ln = series("leader_never", "msgs_per_s")
row("5", "acks LEADER, volatile topic, batch 1", "M/s", lv, scale=1e-6,
    fmt="%.2f")
r = paired(ln, lv, lambda x, y: x / y)
row("5", "acks LEADER, persistent, fsync never, batch 1", "M/s", ln, lv,
    "volatile", r, "≥ 0.90 ×", (r, lambda x: x >= 0.90), scale=1e-6,
    fmt="%.2f")

bl = series("backlog", "mb_per_s")
row("6", "backlog fill, 4 KiB, fsync always, 1 MiB ring", "MB/s",
    {k: j["fill_records"] * j["record_size"] / j["fill_s"] / 1e6
     for k, j in values.get("backlog", {}).items()}, fmt="%.0f")
share = {k: 100.0 * (j["backlog_bytes"] - j["ring_bytes"]) / j["backlog_bytes"]
         for k, j in values.get("backlog", {}).items()}
r = paired(bl, rd, lambda x, y: x / y)
row("6", "backlog read from offset 0, page cache warm "
    "(%.1f%% only in segments)" % (med(share) or 0), "MB/s", bl, rd,
    "page-cache read", r, "≥ 1000 MB/s",
    (bl, lambda x: x >= 1000), fmt="%.0f")

def show(s, r):
    f, k = r["fmt"], r["scale"]
    if not s:
        return "failed", ""
    v = sorted(s.values())
    return f % (med(s) * k), (f + "–" + f) % (v[0] * k, v[-1] * k)

print("| # | measure | unit | median | min–max | runs | baseline (median) "
      "| ratio (median, min–max) | goal | verdict |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
tsv = ["target\tmeasure\tunit\truns_ok\truns\tmedian\tmin\tmax\tbaseline"
       "\tbaseline_median\tratio_median\tratio_min\tratio_max\tgoal\tverdict"
       "\tvalues"]
for r in rows:
    s = r["s"]
    m, mm = show(s, r)
    base = ""
    if r["base"] is not None:
        bm, _ = show(r["base"], r)
        base = "%s: %s" % (r["base_what"], bm)
    ratio = ""
    rr = r["ratio"]
    if rr:
        v = sorted(rr.values())
        ratio = "%.3f (%.2f–%.2f)" % (med(rr), v[0], v[-1])
    verdict = ""
    if r["check"] is not None:
        cs, pred = r["check"]
        if not cs:
            verdict = "no verified run"
        else:
            verdict = "%s (%d/%d runs)" % (
                "met" if pred(med(cs)) else "not met",
                sum(1 for x in cs.values() if pred(x)), len(cs))
    print("| %s | %s | %s | %s | %s | %d/%d | %s | %s | %s | %s |" % (
        r["target"], r["what"], r["unit"], m, mm, len(s), runs, base, ratio,
        r["goal"], verdict))
    k = r["scale"]
    vals = [s[i] * k for i in sorted(s)]
    bmed = med(r["base"]) * k if r["base"] else None
    tsv.append("\t".join(str(x) for x in [
        r["target"], r["what"], r["unit"], len(s), runs,
        "%.6g" % (med(s) * k) if s else "", "%.6g" % min(vals) if s else "",
        "%.6g" % max(vals) if s else "", r["base_what"],
        "%.6g" % bmed if bmed is not None else "",
        "%.4f" % med(rr) if rr else "", "%.4f" % min(rr.values()) if rr else "",
        "%.4f" % max(rr.values()) if rr else "", r["goal"], verdict,
        ",".join("%.6g" % x for x in vals)]))
with open(out, "w") as f:
    f.write("\n".join(tsv) + "\n")
EOF
echo
echo "written: $OUT"
exit "$failed"
