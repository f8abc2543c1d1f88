# Thin wrappers (house style §24): anything longer lives in scripts/, and CI
# (.ci/run, scripts/ci-extra.sh) runs the same scripts.
GO ?= go
GOLANGCI_LINT_VERSION := v2.15.0
GOBIN := $(shell $(GO) env GOPATH)/bin

.PHONY: build test lint docs golden fuzz release-check

## build: the usmp-psk binary in ./usmp-psk
build:
	$(GO) build -o usmp-psk ./cmd/usmp-psk

## test: every test, as the README says
test:
	$(GO) test ./...

## lint: golangci-lint at the version CI pins (installed with go install when missing)
lint:
	@$(GOBIN)/golangci-lint version 2>/dev/null | grep -q 'version $(GOLANGCI_LINT_VERSION:v%=%) ' || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run ./...

## docs: regenerate docs/cli (commit it), man/ and completions/
docs:
	scripts/gen-docs.sh

## golden: rewrite the golden files and testscript scripts from the current output (review the diff)
golden:
	scripts/update-golden.sh

## fuzz: every fuzz target for FUZZTIME each (default 30s)
fuzz:
	scripts/fuzz.sh

## release-check: goreleaser check and a snapshot build of this platform
release-check:
	scripts/release-check.sh
