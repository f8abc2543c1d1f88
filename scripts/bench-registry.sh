#!/bin/sh
# Measure how the registry's cost grows (issue 12; docs/scale-out.md, "How it
# scales"), in alternating rounds, and print medians and the ratios the issue
# sets as targets.
#
# Usage: scripts/bench-registry.sh
#
# Environment (all optional):
#   BENCH_ROUNDS            rounds (default 5); odd rounds run the contenders
#                           in one order, even rounds backwards, so that a
#                           drift in the machine's load weighs on all alike
#   BENCH_DIR               where the registries go (default /dev/shm: tmpfs,
#                           to measure the registry and not the disk's fsync)
#   BENCH_ADDS              'registry add' processes per timing (default 20)
#   USMP_PSK_TEST_POSTGRES  a postgres:// URL of a scratch database: adds the
#                           PostgreSQL batch (docs/scale-out.md says how)
#
# Contenders, per round:
#   go add 1k / 100k        BenchmarkAdd/sqlite/{1k,100k}: one add (a random
#                           key, sealed and checked) on an open registry of N
#   go batch 10k / 200k     BenchmarkBatch/sqlite/{10k,200k}: a batch's
#                           registry part, per device
#   go batch pg 10k         BenchmarkBatch/postgres/10k (with a URL)
#   cli add 1k / 100k       BENCH_ADDS 'usmp-psk registry add --derive'
#                           processes one after another on a registry of N
#                           devices made by 'usmp-psk batch'
#   cli 32 sequential       32 'registry add' processes one after another on
#                           a 10k registry, and
#   cli 32 concurrent       32 started at once on the same registry
#
# Targets (issue 12): add at 100k within 1.5x of add at 1k; a 200k batch's
# per-device cost within 1.2x of a 10k batch's; 32 concurrent adds no slower
# than 32 sequential ones; a PostgreSQL batch within 2x of SQLite's. Each is
# judged on the median of the rounds' own ratios (a round's contenders run
# back to back and share the load of the moment).
set -eu

cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-5}
DIR=${BENCH_DIR:-/dev/shm}
ADDS=${BENCH_ADDS:-20}
PG=${USMP_PSK_TEST_POSTGRES:-}

say() { echo "bench-registry: $*" >&2; }

work=$(mktemp -d "$DIR/usmp-regbench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/log"
say "building usmp-psk and the registry's test binary"
go build -o "$work/usmp-psk" ./cmd/usmp-psk
go test -c -o "$work/registry.test" ./internal/registry
usmp=$work/usmp-psk
USMP_MASTER_SECRET=bench-registry-master-secret-0123456789
export USMP_MASTER_SECRET

# A registry of N derived devices, made as a factory makes it; the images go.
make_registry() { # NAME N
	"$usmp" --registry "$work/$1.db" batch --count "$2" --prefix dev- --out "$work/img-$1" --json >/dev/null 2>"$work/log/make-$1.err"
	rm -rf "$work/img-$1"
}
say "making registries of 1k, 10k and 100k devices"
make_registry r1k 1000
make_registry r10k 10000
make_registry r100k 100000

now() { date +%s%N; }

# go_bench NAME BENCH BENCHTIME METRIC: one run of a Go benchmark; records
# METRIC (ns/op or ns/device) in nanoseconds.
go_bench() {
	out=$(cd internal/registry && TMPDIR=$work "$work/registry.test" -test.run '^$' \
		-test.bench "$2" -test.benchtime "$3" 2>&1) || { echo "$out" >&2; exit 1; }
	v=$(echo "$out" | awk -v m="$4" '/^Benchmark/ { for (i = 2; i < NF; i++) if ($(i+1) == m) print $i }' | tail -1)
	[ -n "$v" ] || { echo "$out" >&2; say "no $4 from $2"; exit 1; }
	record "$1" "$v"
}

# cli_adds NAME REGISTRY TAG: BENCH_ADDS adds one after another; records the
# mean nanoseconds per add.
cli_adds() {
	t0=$(now)
	i=0
	while [ "$i" -lt "$ADDS" ]; do
		"$usmp" --registry "$work/$2.db" registry add "$3-$i" --derive 2>/dev/null
		i=$((i + 1))
	done
	record "$1" $((($(now) - t0) / ADDS))
}

# cli_32 NAME MODE TAG: 32 adds on the 10k registry, one after another
# (seq) or all at once (par); records the total nanoseconds. Each add runs
# in the same wrapper either way, which notes a failure.
add32() { "$usmp" --registry "$work/r10k.db" registry add "$1" --derive 2>/dev/null || echo "$1" >>"$work/log/failed"; }
cli_32() {
	t0=$(now)
	i=0
	while [ "$i" -lt 32 ]; do
		if [ "$2" = par ]; then
			add32 "$3-$i" &
		else
			add32 "$3-$i"
		fi
		i=$((i + 1))
	done
	wait
	record "$1" $(($(now) - t0))
	if [ -s "$work/log/failed" ]; then
		say "these adds failed: $(tr '\n' ' ' <"$work/log/failed")"
		exit 1
	fi
}

# $times holds "round name nanoseconds" lines.
times=$work/times
: >"$times"
round=0
record() { echo "$round $1 $2" >>"$times"; }

contenders="go_add_1k go_add_100k go_batch_10k go_batch_200k cli_add_1k cli_add_100k cli_seq cli_par"
[ -n "$PG" ] && contenders="$contenders go_batch_pg_10k"

run() { # CONTENDER
	case $1 in
	go_add_1k) go_bench "$1" '^BenchmarkAdd$/^sqlite$/^1k$' 300x ns/op ;;
	go_add_100k) go_bench "$1" '^BenchmarkAdd$/^sqlite$/^100k$' 300x ns/op ;;
	go_batch_10k) go_bench "$1" '^BenchmarkBatch$/^sqlite$/^10k$' 3x ns/device ;;
	go_batch_200k) go_bench "$1" '^BenchmarkBatch$/^sqlite$/^200k$' 1x ns/device ;;
	go_batch_pg_10k) go_bench "$1" '^BenchmarkBatch$/^postgres$/^10k$' 3x ns/device ;;
	cli_add_1k) cli_adds "$1" r1k "a1k-$round" ;;
	cli_add_100k) cli_adds "$1" r100k "a100k-$round" ;;
	cli_seq) cli_32 "$1" seq "seq-$round" ;;
	cli_par) cli_32 "$1" par "par-$round" ;;
	esac
}

say "$ROUNDS rounds in $DIR, $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
while [ "$round" -lt "$ROUNDS" ]; do
	round=$((round + 1))
	order=$contenders
	[ $((round % 2)) -eq 0 ] && order=$(echo "$contenders" | tr ' ' '\n' | awk '{ a[NR] = $0 } END { for (i = NR; i > 0; i--) printf "%s ", a[i] }')
	for c in $order; do
		run "$c"
	done
	say "round $round done; load $(cut -d' ' -f1-3 /proc/loadavg)"
done

# Medians, then the median of each round's own ratio for every target.
awk -v rounds="$ROUNDS" '
function median(arr, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
	return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
{ v[$1, $2] = $3; names[$2] = 1 }
function ratio(label, a, b, op, target,    r, n, x, m) {
	if (!((1, a) in v) || !((1, b) in v)) return
	n = 0
	for (r = 1; r <= rounds; r++) x[++n] = v[r, a] / v[r, b]
	m = median(x, n)
	ok = (op == "<=") ? m <= target : m >= target
	printf "  %-44s %7.3fx   target %s %sx: %s\n", label, m, op, target, ok ? "met" : "MISSED"
}
END {
	print "bench-registry: medians of " rounds " rounds (min-max)"
	split("go_add_1k go_add_100k go_batch_10k go_batch_200k go_batch_pg_10k cli_add_1k cli_add_100k cli_seq cli_par", order, " ")
	for (k = 1; k <= 9; k++) {
		c = order[k]
		if (!(c in names)) continue
		n = 0
		for (r = 1; r <= rounds; r++) y[++n] = v[r, c]
		lo = hi = y[1]
		for (i = 2; i <= n; i++) { if (y[i] < lo) lo = y[i]; if (y[i] > hi) hi = y[i] }
		unit = (c ~ /batch/) ? "per device" : (c ~ /cli_(seq|par)/) ? "for 32 adds" : "per add"
		printf "  %-16s %12.1f us %-12s (%.1f-%.1f)\n", c, median(y, n) / 1000, unit, lo / 1000, hi / 1000
	}
	print "bench-registry: ratios (median of the rounds\047 own ratios)"
	ratio("add at 100k / add at 1k (go)", "go_add_100k", "go_add_1k", "<=", 1.5)
	ratio("add at 100k / add at 1k (cli)", "cli_add_100k", "cli_add_1k", "<=", 1.5)
	ratio("batch per device: 200k / 10k", "go_batch_200k", "go_batch_10k", "<=", 1.2)
	ratio("32 adds: concurrent / sequential (cli)", "cli_par", "cli_seq", "<=", 1)
	ratio("batch 10k: postgres / sqlite", "go_batch_pg_10k", "go_batch_10k", "<=", 2)
}' "$times"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
