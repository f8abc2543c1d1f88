#!/bin/sh
# Measure a factory batch (issue 7, design §8) against the floor and against
# Espressif's generator, on a RAM file system, in alternating rounds.
#
# Usage: scripts/bench-batch.sh [--go]
#   --go                also run the Go benchmarks (go test -bench 'Batch|Floor')
#
# Environment (all optional):
#   BENCH_N             devices per batch (default 10000)
#   BENCH_ROUNDS        rounds (default 5); each round runs every contender once,
#                       odd rounds in the order floor, batch, reference and even
#                       rounds backwards, so a drift in the machine's load
#                       weighs on all of them alike
#   BENCH_DIR           where the files go (default /dev/shm: tmpfs); a disk
#                       measures the disk, whose cost swings tenfold run to run
#   BENCH_JOBS          --jobs for the batch (default: the batch's default,
#                       the number of CPUs)
#   BENCH_PROCESS_N     devices for the one-process-per-device reference run
#                       (default 100; 0 skips it)
#   BENCH_STRICT        1: exit 1 when a target is missed
#   USMP_PSK            the usmp-psk binary to measure (default: built from
#                       this checkout into the scratch directory)
#   NVS_PARTITION_GEN   path of a local copy of Espressif's nvs_partition_gen.py
#                       (v0.2.0); without it the reference is skipped. It is
#                       not part of this repository: docs/factory.md says how
#                       to get it.
#   PYTHON              the Python that runs it (default python3; its module
#                       needs the `cryptography` package at import time)
#
# Contenders, each a separate process writing N images of 0x6000 bytes:
#   floor      scripts/bench/benchtool floor: one thread creating N files of
#              0x6000 bytes (open exclusive, write, close) and nothing else
#   batch      usmp-psk batch --count N --prefix fac- --out DIR --json: derived
#              keys, a fresh registry and its audit log, manifest.json, the
#              final sync; the CLI binary as a factory runs it
#   reference  scripts/bench/ref_driver.py: the generator driven in-process per
#              device the way esp-idf's mfg_gen.py does it (a CSV per device,
#              then generate), and with BENCH_PROCESS_N one generator process
#              per device
# The floor and the batch are timed from outside, process start to exit (wall
# clock, and CPU time: user + system of all threads); the in-process reference
# by its own clocks around the device loop (no interpreter start-up, no
# import), which favours the reference. Before timing, the script checks that
# the batch and the reference write byte-identical images.
#
# Targets (design §8), on the wall clock: batch/floor <= 2x; reference/batch
# >= 4x; per-process/batch > 1000x. Each is judged on the median of the
# rounds' own ratios (a round's contenders run back to back, so they share
# the machine's load of the moment); the ratio of the medians is printed
# beside it. The CPU-time ratios are printed too: on a machine busy with
# other work the wall clock drifts toward them.
set -eu

cd "$(dirname "$0")/.."
N=${BENCH_N:-10000}
ROUNDS=${BENCH_ROUNDS:-5}
DIR=${BENCH_DIR:-/dev/shm}
JOBS=${BENCH_JOBS:-}
PROCESS_N=${BENCH_PROCESS_N:-100}
STRICT=${BENCH_STRICT:-0}
PYTHON=${PYTHON:-python3}
GEN=${NVS_PARTITION_GEN:-}
RUN_GO=0
case "${1:-}" in
--go) RUN_GO=1 ;;
"") ;;
*)
	echo "usage: scripts/bench-batch.sh [--go]" >&2
	exit 2
	;;
esac

say() { printf '%s\n' "bench-batch: $*"; }
die() {
	printf '%s\n' "bench-batch: $*" >&2
	exit 1
}
loadavg() {
	if [ -r /proc/loadavg ]; then
		cut -d' ' -f1-3 /proc/loadavg
	else
		uptime | sed 's/.*load average[s]*: *//'
	fi
}

[ -d "$DIR" ] && [ -w "$DIR" ] || die "BENCH_DIR $DIR is not a writable directory (set BENCH_DIR to a tmpfs mount)"
fstype=$(stat -f -c %T "$DIR" 2>/dev/null || echo unknown)
if [ "$fstype" != tmpfs ] && [ "$fstype" != ramfs ]; then
	say "warning: $DIR is $fstype, not tmpfs: this measures the disk as much as the tools"
fi
work=$(mktemp -d "$DIR/usmp-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$work/bin" "$work/log"
times="$work/times"
: >"$times"

# A fixed benchmark master: the keys it derives protect nothing.
USMP_MASTER_SECRET=usmp-bench-master-not-a-secret-0123456789
export USMP_MASTER_SECRET

say "building usmp-psk and benchtool"
go build -o "$work/bin/benchtool" ./scripts/bench/benchtool
bt="$work/bin/benchtool"
if [ -n "${USMP_PSK:-}" ]; then
	usmp=$USMP_PSK
else
	go build -o "$work/bin/usmp-psk" ./cmd/usmp-psk
	usmp="$work/bin/usmp-psk"
fi

# ---- the reference, when there is one ---------------------------------------
ref=0
if [ -z "$GEN" ]; then
	say "reference: skipped (NVS_PARTITION_GEN is not set)."
	say "  To compare with Espressif's generator, put a local copy of nvs_partition_gen.py"
	say "  (esp-idf-nvs-partition-gen v0.2.0) outside this repository and point"
	say "  NVS_PARTITION_GEN at it; docs/factory.md, 'Measuring', says how to get it."
elif [ ! -f "$GEN" ]; then
	die "NVS_PARTITION_GEN=$GEN: no such file"
elif ! command -v "$PYTHON" >/dev/null 2>&1; then
	die "NVS_PARTITION_GEN is set but $PYTHON is not installed (set PYTHON)"
else
	ref=1
fi

# Images are read back only through cmp: 100 devices, every image.
check_same() {
	c="$work/check"
	mkdir "$c"
	"$usmp" --registry "$c/reg.db" batch --count 100 --prefix fac- --out "$c/batch" --json >/dev/null 2>"$work/log/check.err" ||
		{ cat "$work/log/check.err" >&2; die "the check batch failed"; }
	"$PYTHON" scripts/bench/ref_driver.py --generator "$GEN" --outdir "$c/ref" --count 100 >/dev/null ||
		die "the reference driver failed on $GEN"
	i=1
	while [ "$i" -le 100 ]; do
		f=$(printf 'fac-%03d.bin' "$i")
		cmp -s "$c/batch/$f" "$c/ref/bin/$f" ||
			die "$f differs between the batch and the reference: is $GEN version 0.2.0?"
		i=$((i + 1))
	done
	rm -rf "$c"
	say "reference: $GEN writes the same 100 images as the batch, byte for byte"
}
if [ "$ref" -eq 1 ]; then check_same; fi

# ---- one contender, timed ----------------------------------------------------
# $times holds "name seconds" lines; "benchtool time" prints "wall cpu".
record() { printf '%s %s\n' "$1" "$2" >>"$times"; }
json_num() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" "$2"; }

run_floor() {
	d="$work/floor"
	t=$("$bt" time "$work/log/floor.out" "$bt" floor "$d" "$N")
	[ "$(ls "$d" | wc -l)" -eq "$N" ] || die "floor: expected $N files in $d"
	record floor "${t% *}"
	record floor_cpu "${t#* }"
	record floor_loop "$(cat "$work/log/floor.out")"
	rm -rf "$d"
}

run_batch() {
	d="$work/batch"
	mkdir "$d"
	set -- "$usmp" --registry "$d/reg.db" batch --count "$N" --prefix fac- --out "$d/out" --json
	if [ -n "$JOBS" ]; then set -- "$@" --jobs "$JOBS"; fi
	t=$("$bt" time "$work/log/batch.json" "$@" 2>"$work/log/batch.err") ||
		{ cat "$work/log/batch.err" >&2; die "batch failed"; }
	[ "$(ls "$d/out" | wc -l)" -eq $((N + 1)) ] || die "batch: expected $N images and manifest.json in $d/out"
	record batch "${t% *}"
	record batch_cpu "${t#* }"
	record batch_self "$(json_num seconds "$work/log/batch.json")"
	rm -rf "$d"
}

run_ref() {
	d="$work/ref"
	t=$("$bt" time "$work/log/ref.json" "$PYTHON" scripts/bench/ref_driver.py --generator "$GEN" --outdir "$d" --count "$N") ||
		die "the reference driver failed"
	record ref_wall "${t% *}"
	record ref "$(json_num seconds "$work/log/ref.json")"
	record ref_cpu "$(json_num cpu_seconds "$work/log/ref.json")"
	rm -rf "$d"
}

# ---- rounds ------------------------------------------------------------------
load_before=$(loadavg)
say "N=$N devices, $ROUNDS rounds, $DIR ($fstype), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs, batch --jobs ${JOBS:-default}"
say "load average before: $load_before"
last() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$times"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then
		run_floor
		run_batch
		if [ "$ref" -eq 1 ]; then run_ref; fi
	else
		if [ "$ref" -eq 1 ]; then run_ref; fi
		run_batch
		run_floor
	fi
	# The ratios of the round: its contenders ran back to back, on the same
	# machine load.
	record r_batch_floor "$(div "$(last batch)" "$(last floor)")"
	line="round $r: floor $(last floor)s, batch $(last batch)s"
	if [ "$ref" -eq 1 ]; then
		record r_ref_batch "$(div "$(last ref)" "$(last batch)")"
		line="$line, reference $(last ref)s"
	fi
	say "$line (wall); load $(loadavg)"
	r=$((r + 1))
done

pp=""
if [ "$ref" -eq 1 ] && [ "$PROCESS_N" -gt 0 ]; then
	say "reference, one process per device: $PROCESS_N devices"
	"$PYTHON" scripts/bench/ref_driver.py --generator "$GEN" --outdir "$work/pp" --count "$PROCESS_N" --per-process >"$work/log/pp.json" ||
		die "the per-process reference failed"
	pp=$(json_num seconds "$work/log/pp.json")
	rm -rf "$work/pp"
fi
load_after=$(loadavg)

# ---- summary -------------------------------------------------------------------
median() { awk -v k="$1" '$1 == k { print $2 }' "$times" | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { awk -v k="$1" '$1 == k { print $2 }' "$times" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.3f-%.3f", lo, hi }'; }
row() { awk -v name="$1" -v s="$2" -v n="$3" -v sp="$4" 'BEGIN { printf "  %-40s %8.3f s %9.1f us/device  (%s)\n", name, s, s / n * 1e6, sp }'; }

floor=$(median floor)
batch=$(median batch)
echo
say "results: medians of $ROUNDS rounds (min-max), N=$N"
say "load average before $load_before, after $load_after"
row "floor, wall (process)" "$floor" "$N" "$(spread floor)"
row "floor, wall (its loop alone)" "$(median floor_loop)" "$N" "$(spread floor_loop)"
row "floor, CPU (user+sys)" "$(median floor_cpu)" "$N" "$(spread floor_cpu)"
row "batch, wall (process)" "$batch" "$N" "$(spread batch)"
row "batch, wall (its --json seconds)" "$(median batch_self)" "$N" "$(spread batch_self)"
row "batch, CPU (user+sys, all threads)" "$(median batch_cpu)" "$N" "$(spread batch_cpu)"
if [ "$ref" -eq 1 ]; then
	refm=$(median ref)
	row "reference in-process, wall (loop alone)" "$refm" "$N" "$(spread ref)"
	row "reference in-process, wall (process)" "$(median ref_wall)" "$N" "$(spread ref_wall)"
	row "reference in-process, CPU (loop alone)" "$(median ref_cpu)" "$N" "$(spread ref_cpu)"
	if [ -n "$pp" ]; then row "reference, a process per device, wall" "$pp" "$PROCESS_N" "1 run of $PROCESS_N"; fi
fi
awk -v n="$N" -v b="$batch" 'BEGIN { printf "  batch: %.0f devices per second (wall, process)\n", n / b }'

missed=0
# ratio NAME VALUE [OP TARGET [NOTE]]: prints the ratio, and whether it
# meets TARGET.
ratio() {
	ok=""
	if [ $# -ge 4 ]; then
		ok=$(awk -v v="$2" -v op="$3" -v t="$4" 'BEGIN { if ((op == "<=" && v <= t) || (op == ">=" && v >= t) || (op == ">" && v > t)) print "met"; else print "MISSED" }')
		if [ "$ok" != met ]; then missed=1; fi
		ok="target $3 $4x: $ok"
	fi
	awk -v name="$1" -v v="$2" -v ok="$ok" -v note="${5:-}" 'BEGIN { f = v < 100 ? "%9.3f" : "%9.0f"; l = sprintf("  %-34s " f "x   %s%s", name, v, ok, note); sub(/ +$/, "", l); print l }'
}
echo
say "ratios (wall clock; the targets of design §8): the median of the rounds' own"
say "ratios, each round's contenders having run back to back; in brackets the ratio of the medians"
ratio "batch / floor" "$(median r_batch_floor)" "<=" 2 " ($(div "$batch" "$floor" | awk '{ printf "%.3f", $1 }'))"
if [ "$ref" -eq 1 ]; then
	ratio "reference in-process / batch" "$(median r_ref_batch)" ">=" 4 " ($(div "$refm" "$batch" | awk '{ printf "%.3f", $1 }'))"
	if [ -n "$pp" ]; then
		ratio "reference per process / batch" "$(awk -v a="$pp" -v pn="$PROCESS_N" -v b="$batch" -v n="$N" 'BEGIN { print (a / pn) / (b / n) }')" ">" 1000
	fi
else
	say "  reference / batch: not measured (no NVS_PARTITION_GEN)"
fi
say "ratios of CPU time (what the wall clock tends to on a busy machine)"
ratio "batch CPU / floor CPU" "$(div "$(median batch_cpu)" "$(median floor_cpu)")"
if [ "$ref" -eq 1 ]; then
	ratio "reference CPU / batch CPU" "$(div "$(median ref_cpu)" "$(median batch_cpu)")"
fi

if [ "$RUN_GO" -eq 1 ]; then
	echo
	say "Go benchmarks (USMP_BENCH_DIR=$DIR)"
	USMP_BENCH_DIR=$DIR go test -run XXX -bench 'Batch|Floor' -benchtime 3x -count 3 ./internal/provision
fi

if [ "$missed" -eq 1 ] && [ "$STRICT" = 1 ]; then
	exit 1
fi
exit 0
