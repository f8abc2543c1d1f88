#!/usr/bin/env bash
# Install the pinned gitleaks with `go install` unless that version is
# already on PATH. .ci/run calls it before the tests: the rules of
# .gitleaks.toml are tested with the real gitleaks (internal/tools/
# gitleaksrule, security R20), which fails under CI when it is missing.
# The module proxy serves gitleaks; no release binary is downloaded.
set -eu
GITLEAKS_VERSION=v8.30.1
export PATH="/usr/local/go/bin:$PATH"
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

# A go-installed gitleaks knows its module version (`gitleaks version` does
# not: it prints "version is set by build process").
if bin=$(command -v gitleaks) &&
	go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]mod[[:space:]]+github.com/zricethezav/gitleaks/v8[[:space:]]+$GITLEAKS_VERSION([[:space:]]|\$)"; then
	echo "gitleaks $GITLEAKS_VERSION: $bin"
	exit 0
fi
echo "installing gitleaks $GITLEAKS_VERSION (go install)"
go install "github.com/zricethezav/gitleaks/v8@$GITLEAKS_VERSION"
echo "gitleaks $GITLEAKS_VERSION: $gobin/gitleaks"
