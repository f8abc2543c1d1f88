#!/usr/bin/env bash
# Extra CI gates for release engineering, docs, lint and fuzzing (issue 9).
# .ci/run calls this last, from the repository root, after the tests.
#
#   1. the committed CLI reference (docs/cli) is what the commands say;
#      man pages and completions generate; the bash completion works
#   2. golangci-lint, at a pinned version, is clean (.golangci.yml)
#   3. gitleaks (pinned, scripts/install-gitleaks.sh): no key of ours in the
#      working tree (.gitleaks.toml's usmp-psk-* rules, which
#      internal/tools/gitleaksrule tests with the same gitleaks)
#   4. every fuzz target runs for $FUZZTIME (default here: 10s)
#   5. the allocation guards (Test*Allocs) ran, without the race detector
#
# goreleaser is not run here (building it takes minutes); see
# scripts/release-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

GOLANGCI_LINT_VERSION=v2.15.0
FUZZTIME=${FUZZTIME:-10s}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

section() { printf '== %s (%ss)\n' "$1" "$SECONDS"; }

# --- 1. generated docs --------------------------------------------------------
section "CLI reference is current"
scripts/gen-docs.sh "$tmp/gen"
if ! diff -ruN docs/cli "$tmp/gen/docs/cli" >"$tmp/docs.diff"; then
	cat "$tmp/docs.diff"
	echo
	echo "docs/cli is stale: the commands' help changed but the reference did not."
	echo "Fix: run scripts/gen-docs.sh (or make docs) and commit docs/cli."
	exit 1
fi
echo "docs/cli: $(ls docs/cli | wc -l) pages, current"

section "bash completion loads and completes"
if [ ! -f /usr/share/bash-completion/bash_completion ] && command -v apt-get >/dev/null 2>&1; then
	# cobra's bash completion uses the bash-completion package's helpers,
	# which every distribution that ships completions has.
	echo "installing: bash-completion"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bash-completion >/dev/null
fi
go build -o "$tmp/bin/usmp-psk" ./cmd/usmp-psk
got=$(PATH="$tmp/bin:$PATH" bash -c '
	source /usr/share/bash-completion/bash_completion
	source "$1" || exit 1
	complete -p usmp-psk >/dev/null || exit 1
	COMP_LINE="usmp-psk de"; COMP_WORDS=(usmp-psk de); COMP_CWORD=1; COMP_POINT=${#COMP_LINE}
	__start_usmp-psk
	printf "%s\n" "${COMPREPLY[@]}"
	COMP_LINE="usmp-psk derive --enc"; COMP_WORDS=(usmp-psk derive --enc); COMP_CWORD=2; COMP_POINT=${#COMP_LINE}
	__start_usmp-psk
	printf "%s\n" "${COMPREPLY[@]}"
' _ "$tmp/gen/completions/usmp-psk.bash" 2>/dev/null) || true
if [ "$got" != $'derive\n--encoding' ]; then
	echo "bash completion of 'usmp-psk de' and 'usmp-psk derive --enc' gave:"
	printf '%s\n' "$got"
	echo "want: derive, --encoding"
	exit 1
fi
echo "bash: 'usmp-psk de<TAB>' -> derive, 'usmp-psk derive --enc<TAB>' -> --encoding"

# --- 2. lint --------------------------------------------------------------------
section "golangci-lint $GOLANGCI_LINT_VERSION"
if ! golangci-lint version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
	echo "installing golangci-lint $GOLANGCI_LINT_VERSION (go install)"
	go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
golangci-lint run ./...

# --- 3. secret scan --------------------------------------------------------------
section "gitleaks (usmp-psk rules)"
scripts/install-gitleaks.sh
gitleaks dir --config .gitleaks.toml --no-banner --log-level error --exit-code 0 \
	--report-format json --report-path "$tmp/gitleaks.json" .
if grep -q '"RuleID": "usmp-psk-' "$tmp/gitleaks.json"; then
	grep -B2 -A12 '"RuleID": "usmp-psk-' "$tmp/gitleaks.json" | grep -E '"(RuleID|File|StartLine)"'
	echo "a usmp-psk key (registry, export, key file or registry database) is in the tree: remove it, and rotate the key if it was ever pushed"
	exit 1
fi
echo "no usmp-psk keys in the tree"

# --- 4. fuzz --------------------------------------------------------------------
section "fuzz, $FUZZTIME per target"
FUZZTIME=$FUZZTIME scripts/fuzz.sh

# --- 5. allocation guards ---------------------------------------------------------
# Test*Allocs skip under -race and coverage, where allocation counts differ.
# .ci/run's CGO_ENABLED=0 run (no race detector) is where they count; this
# reruns them the same way (its build is cached) and fails unless every one
# passed, so they cannot go back to skipping everywhere unnoticed.
section "allocation guards, without -race"
if ! CGO_ENABLED=0 go test -count=1 -run 'Allocs$' -v ./... >"$tmp/allocs.txt" 2>&1; then
	grep -v -E '^(ok|\?) ' "$tmp/allocs.txt"
	exit 1
fi
if grep -E -- '^\s*--- SKIP: Test\w*Allocs' "$tmp/allocs.txt"; then
	echo "an allocation guard skipped without the race detector: it is not guarding anything"
	exit 1
fi
grep -E -- '^\s*--- PASS: Test\w*Allocs' "$tmp/allocs.txt" || { echo "no allocation guard (Test*Allocs) ran"; exit 1; }

section "ci-extra done"
