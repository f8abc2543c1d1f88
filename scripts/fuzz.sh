#!/bin/sh
# Run every native Go fuzz target of the module for a set time each
# (house style §22, security R28).
#
# Usage: scripts/fuzz.sh [REGEXP]
#   FUZZTIME   how long each target runs (go test -fuzztime; default 30s)
#   REGEXP     run only the targets whose "package.FuzzName" matches (grep -E)
#
# Targets are discovered with `go test -list`, so new Fuzz* functions are run
# without touching this script. Every target runs even when one fails; the
# script exits 1 if any failed. A failing input is saved by go test under
# the package's testdata/fuzz/<FuzzName>/: commit it as a regression seed
# once the bug is fixed.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is busy, most often
# on a loaded machine (golang/go#75804, fixed in Go 1.27). Such a run wrote
# no failing input, so there is nothing to reproduce: the target is run once
# more, and if that run hits the same race it is reported as a flake, not a
# failure. A run that writes a failing input, or fails in any other way,
# always fails the script.
set -eu

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
filter=${1:-}

# "go test -list" prints each package's matching tests, then "ok <package>".
list=$(go test -list '^Fuzz' ./...)
targets=$(printf '%s\n' "$list" | awk '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok[ \t]/ { for (i = 0; i < n; i++) print $2 " " names[i]; n = 0 }
')
if [ -n "$filter" ]; then
	targets=$(printf '%s\n' "$targets" | awk -v re="$filter" '{ p = $1; sub(/.*\//, "", p); if ((p "." $2) ~ re) print }')
fi
count=$(printf '%s\n' "$targets" | grep -c . || true)
if [ "$count" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $count targets, $FUZZTIME each"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fuzz_once PKG NAME: runs one target, printing its output; returns 0 when it
# passed, 1 when it failed, 75 when it failed only by golang/go#75804.
fuzz_once() {
	corpus="$(go list -f '{{.Dir}}' "$1")/testdata/fuzz/$2"
	ls "$corpus" >"$tmp/before" 2>/dev/null || : >"$tmp/before"
	{
		rc=0
		go test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" "$1" || rc=$?
		echo "$rc" >"$tmp/rc"
	} 2>&1 | tee "$tmp/out"
	[ "$(cat "$tmp/rc")" -eq 0 ] && return 0
	ls "$corpus" >"$tmp/after" 2>/dev/null || : >"$tmp/after"
	if cmp -s "$tmp/before" "$tmp/after" &&
		grep -q '^    context deadline exceeded$' "$tmp/out" &&
		! grep -q -e 'Failing input written' -e 'panic:' "$tmp/out"; then
		return 75
	fi
	return 1
}

failed=""
flaked=""
start=$(date +%s)
# Read the list from a here-document, not a pipe, so $failed survives the loop.
while read -r pkg name; do
	t0=$(date +%s)
	echo "== $pkg $name"
	rc=0
	fuzz_once "$pkg" "$name" || rc=$?
	if [ "$rc" -eq 75 ]; then
		echo "-- $name: \"context deadline exceeded\" with no failing input (golang/go#75804); running it again"
		rc=0
		fuzz_once "$pkg" "$name" || rc=$?
	fi
	case $rc in
	0) echo "-- $name ok ($(($(date +%s) - t0))s)" ;;
	75)
		echo "-- $name flaked twice on golang/go#75804, no failing input ($(($(date +%s) - t0))s)"
		flaked="$flaked $pkg.$name"
		;;
	*)
		echo "-- $name FAILED ($(($(date +%s) - t0))s)"
		failed="$failed $pkg.$name"
		;;
	esac
done <<LIST
$targets
LIST

echo "fuzz: $count targets in $(($(date +%s) - start))s"
if [ -n "$flaked" ]; then
	echo "fuzz: warning: stopped by golang/go#75804 twice, with no failing input:$flaked" >&2
fi
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	echo "fuzz: the failing inputs are under the packages' testdata/fuzz/; reproduce with go test -run 'FuzzName/<file>' <package>" >&2
	exit 1
fi
