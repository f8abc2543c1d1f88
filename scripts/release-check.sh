#!/bin/sh
# Check the release configuration locally (issue 9): `goreleaser check`, then
# a snapshot build of this platform's binary. Not part of CI: building
# goreleaser itself takes minutes on a small machine.
#
# Usage: scripts/release-check.sh [--full]
#   --full  also runs `goreleaser release --snapshot --clean --skip=sign,sbom`:
#           every target, archives, checksums and deb/rpm packages in dist/.
#           Signing (cosign) and SBOMs (syft) are skipped: they need those
#           tools (and, for keyless signing, an OIDC identity).
#
# goreleaser is installed at a pinned version with `go install` when missing
# (v2.15.1: later versions need a newer Go than the module's).
set -eu

cd "$(dirname "$0")/.."
GORELEASER_VERSION=v2.15.1
PATH="$(go env GOPATH)/bin:$PATH"
export PATH

if ! goreleaser --version 2>/dev/null | grep -Eq "GitVersion: +v?${GORELEASER_VERSION#v}\$"; then
	echo "release-check: installing goreleaser $GORELEASER_VERSION (go install; this takes a few minutes)"
	go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
fi

goreleaser check
goreleaser build --snapshot --clean --single-target
if [ "${1:-}" = "--full" ]; then
	goreleaser release --snapshot --clean --skip=sign,sbom
fi
echo "release-check: ok (artifacts in dist/)"
