#!/bin/sh
# Refresh every golden file (house style §21) and the testscript scripts of
# cmd/usmp-psk: `go test -update` on the packages whose tests import
# internal/golden, which defines the one -update flag. `go test ./...
# -update` cannot do it: a test binary without the flag refuses it.
set -eu
cd "$(dirname "$0")/.."
pkgs=$(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk '/ github.com\/usmp\/usmp-psk\/internal\/golden( |$)/ { print $1 }')
# shellcheck disable=SC2086 # one word per package
go test -count=1 $pkgs -update "$@"
git status --short -- '*.golden' '*.txtar'
