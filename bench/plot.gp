# bench/plot.gp — the plots of bench/run.sh:
#   gnuplot -c bench/plot.gp VARS.gp
# VARS.gp (written by run.sh) names the data files and the PNGs, and per
# plot the series: name, colour, line width and dash type arrays.
#   throughput  stream, 1 producer: msgs/s against message size, one line
#               per transport (medians), both axes logarithmic
#   latency     ping-pong round trips, 64 B: the latency at each
#               percentile, HdrHistogram style (x is 1/(1-q), so that
#               each further "9" takes the same width), medians over runs
#   durable     DURABLE ack latency (p50, p99, p99.9) per variant and
#               producer count, against a 4 KiB write + fdatasync (p50)
load ARG1

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1100,700 font "sans,10" noenhanced
} else {
	set terminal png size 1100,700 noenhanced
}
set grid xtics ytics mytics lc rgb "#dddddd"
set key outside right top spacing 1.1
set border 3
set tics nomirror

# ---- throughput ----
set output thr_png
set title sprintf("Stream, 1 producer -> 1 consumer (%s)", subtitle)
set logscale xy
set xlabel "message size (bytes, header included)"
set ylabel "messages per second"
set xtics (64, 256, 1024, 4096, 16384)
set format y "%.0s%c"
set xrange [48:22000]
if (thr_n > 0) {
	plot for [i=1:thr_n] thr_data index (i-1) using 1:2 with linespoints \
		lc rgb thr_color[i] lw thr_lw[i] dt thr_dt[i] pt 7 ps 0.6 \
		title thr_name[i]
} else {
	set label 1 "no verified stream run" at graph 0.5, 0.5 center
	plot NaN notitle
	unset label 1
}

# ---- latency ----
set output lat_png
set title sprintf("Ping-pong, 64 B round trip latency by percentile (%s)", subtitle)
set logscale xy
set xlabel "percentile"
set ylabel "round trip (µs)"
set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, \
	"99.99%%" 10000, "max" 100000)
set format y "%g"
set xrange [1:150000]
set key outside right top
if (lat_n > 0) {
	plot for [i=1:lat_n] lat_data index (i-1) using 1:2 with linespoints \
		lc rgb lat_color[i] lw lat_lw[i] dt lat_dt[i] pt 7 ps 0.5 \
		title lat_name[i]
} else {
	set label 1 "no verified ping-pong run" at graph 0.5, 0.5 center
	plot NaN notitle
	unset label 1
}

# ---- durable ----
set output dur_png
set title sprintf("Durable, 64 B: the time a send takes to return, on disk (%s)", subtitle)
unset logscale x
set logscale y
set xlabel ""
set ylabel "ack latency (µs)"
set xtics auto
set xrange [*:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set format y "%.0f"
if (dur_n > 0) {
	set yrange [10:*]
	set xrange [-0.6:dur_n - 0.4]
	plot dur_data using 2:xtic(1) title "p50" lc rgb "#4c72b0", \
		"" using 3 title "p99" lc rgb "#dd8452", \
		"" using 4 title "p99.9" lc rgb "#c44e52", \
		(disk_p50 > 0 ? disk_p50 : NaN) with lines lw 2 dt 2 \
		lc rgb "#000000" title "4 KiB write + fdatasync, p50"
} else {
	set label 1 "no verified durable run" at graph 0.5, 0.5 center
	plot NaN notitle
	unset label 1
}
