#!/bin/sh
# Regenerate, from the cobra command tree, everything that documents the
# commands (issue 9, house style §24–§25):
#
#   docs/cli/*.md              the CLI reference: one page per command plus an
#                              index (committed; CI fails when it is stale)
#   man/*.1.gz                 man pages, section 1 (built for releases, not
#                              committed: man/.gitignore)
#   completions/usmp-psk.bash, completions/_usmp-psk (zsh),
#   completions/usmp-psk.fish, completions/usmp-psk.ps1
#                              from the binary's own `completion` command (built
#                              for releases, not committed)
#
# Usage: scripts/gen-docs.sh [OUTDIR]
#   OUTDIR defaults to the repository root; CI passes a temporary directory
#   and compares OUTDIR/docs/cli with the committed docs/cli.
#
# The output is deterministic: the markdown has no date, the man pages are
# dated from $SOURCE_DATE_EPOCH (default: the time of the HEAD commit) and
# gzipped without name or mtime. goreleaser runs this in before.hooks.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

go build -o "$tmp/gendocs" ./internal/tools/gendocs
go build -o "$tmp/usmp-psk" ./cmd/usmp-psk

"$tmp/gendocs" -md "$out/docs/cli" -man "$out/man" -gzip

# Completions come from the binary itself. Run it where no config file or
# USMP_PSK_* variable can change what it prints.
mkdir -p "$out/completions" "$tmp/home"
for shell in bash zsh fish powershell; do
	case $shell in
	bash) file=usmp-psk.bash ;;
	zsh) file=_usmp-psk ;;
	fish) file=usmp-psk.fish ;;
	powershell) file=usmp-psk.ps1 ;;
	esac
	(cd "$tmp/home" && env -u USMP_PSK_CONFIG HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home" \
		"$tmp/usmp-psk" completion "$shell") >"$out/completions/$file"
done

echo "gen-docs: wrote $(ls "$out/docs/cli" | wc -l | tr -d ' ') pages to $out/docs/cli, man pages to $out/man, completions to $out/completions"
