# The whole test suite: formatting, vet, every package's tests, and the race
# detector over the packages that exercise concurrency. Tests that need
# PostgreSQL, Redis or an external NATS run when LADLE_TEST_POSTGRES_URL,
# LADLE_TEST_REDIS_URL and LADLE_TEST_NATS_URL are set (.ci/run sets them);
# browser tests run when chromium is installed. Every test goes through
# internal/testenv: without a service it skips, and with
# LADLE_REQUIRE_SERVICES=1 (.ci/run) it fails. go test's JSON is read by
# internal/testenv/testreport, which prints go test's usual lines, lists every
# skipped test, ends with "N passed, N failed, N skipped", and fails the run
# on any skip under LADLE_REQUIRE_SERVICES=1.
SHELL := /bin/bash
GO ?= go
REPORT = $(GO) run ./internal/testenv/testreport
RACE_PKGS = ./internal/ordering/... ./internal/httpapi/... ./internal/sqlstore/... ./internal/menucache/... \
	./internal/worker/... ./internal/live/... ./internal/outbox/... ./internal/events/... ./internal/autoscale/... ./internal/campaign/...

.PHONY: test run bench fmt vet
test: fmt vet
	set -o pipefail; $(GO) test -json -count=1 -timeout 15m ./... | $(REPORT)
	set -o pipefail; $(GO) test -json -count=1 -race -timeout 15m $(RACE_PKGS) | $(REPORT)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The embedded default with the demo restaurant.
run:
	$(GO) run ./cmd/ladle serve --demo
