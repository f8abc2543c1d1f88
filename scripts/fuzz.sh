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

failed=""
start=$(date +%s)
# Read the list from a here-document, not a pipe, so $failed survives the loop.
while read -r pkg name; do
	t0=$(date +%s)
	echo "== $pkg $name"
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
		echo "-- $name ok ($(($(date +%s) - t0))s)"
	else
		echo "-- $name FAILED ($(($(date +%s) - t0))s)"
		failed="$failed $pkg.$name"
	fi
done <<LIST
$targets
LIST

echo "fuzz: $count targets in $(($(date +%s) - start))s"
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	echo "fuzz: the failing inputs are under the packages' testdata/fuzz/; reproduce with go test -run 'FuzzName/<file>' <package>" >&2
	exit 1
fi
