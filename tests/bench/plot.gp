# tests/bench/plot.gp - the charts of `make bench`, from the bench.csv it wrote:
#   bench-latency.png     round trip of a 64-byte message, p50 / p99 / p99.9 (us)
#   bench-throughput.png  one-way messages per second at 64 B, 4 KiB and 64 KiB
# Log scale, one bar group per mechanism; a missing bar is n/a or failed (see bench.md).
# Run by `make plot`, or: gnuplot -e "csv='bench.csv'" tests/bench/plot.gp
if (!exists("csv")) csv = "bench.csv"
if (!exists("outdir")) outdir = "."

set datafile separator ","
set datafile columnheaders
set terminal pngcairo size 1400,700 font "sans,10"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics mytics
set key top left
set xtics rotate by -40 scale 0 nomirror
set format y "10^{%L}"
set bmargin 9
set lmargin 10
set rmargin 8

# Each chart leaves out the row that has nothing for it: the ideal copy loop has no
# round trip, the cache-line ping-pong no throughput.
set output outdir."/bench-latency.png"
set title "Round trip of a 64-byte message between two processes on two cores (lower is better)"
set ylabel "microseconds"
set yrange [0.01:*]
plot "< grep -v '^ideal' ".csv using 3:xtic(1) title "p50" lc rgb "#2b83ba", \
     "" using 4 title "p99" lc rgb "#fdae61", \
     "" using 5 title "p99.9" lc rgb "#d7191c"

set output outdir."/bench-throughput.png"
set key top right # the floor and the rings are tallest on the left
set title "One-way throughput between two processes on two cores (higher is better)"
set ylabel "messages per second"
set yrange [100:*]
plot "< grep -v '^cache-line' ".csv using 9:xtic(1) title "64 B" lc rgb "#1a9641", \
     "" using 13 title "4 KiB" lc rgb "#a6d96a", \
     "" using 17 title "64 KiB" lc rgb "#5e3c99"
