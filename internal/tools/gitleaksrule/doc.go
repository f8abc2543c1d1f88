// Package gitleaksrule tests the repository's .gitleaks.toml with the real
// gitleaks (security R20): the rules must find the key files, registry
// exports, JSON registries with keys and registry database files that
// usmp-psk writes, and stay silent on what it writes for sharing. The
// fixtures are made by internal/psk and internal/registry, so a change of
// format shows up here.
//
// The tests run gitleaks from PATH; scripts/install-gitleaks.sh installs
// the pinned version. Without it they skip, except under CI (CI set), where
// a missing gitleaks is a failure: a gate that silently skips is no gate.
package gitleaksrule
