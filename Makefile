# botfleet's build and test entry points. `make test` is what CI runs
# (.ci/run); it installs the real servers the integration tests start.

GO       ?= go
PKGS     ?= ./...

.PHONY: test deps vet unit build bench chaos fuzz clean

test: deps vet unit

# deps installs the test programs when they are missing (as root, on
# Debian); elsewhere it says what to install.
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing test programs:$$missing (install them: sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi

# vet checks formatting, go vet, and that go.mod and go.sum are tidy (what
# the imports need, nothing else).
vet:
	$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	cd bench && $(GO) mod tidy -diff || { echo "bench/go.mod/go.sum are not tidy: run go mod tidy in bench/"; exit 1; }
	test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)

# unit runs every test under the race detector, then the allocation test
# without it: the race detector makes sync.Pool drop items, so allocation
# counts only mean something in a normal build.
unit:
	$(GO) test -race -timeout 12m $(PKGS)
	$(GO) test -count=1 -run 'ZeroAllocs' ./logging

# The version is stamped from git, so it does not depend on GOFLAGS letting
# Go record VCS information.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/botfleet/botfleet/internal/version.Version=$(VERSION)" -o bin/botfleet ./cmd/botfleet

# bench runs the comparisons recorded in docs/performance.md.
bench:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

# chaos runs the fault scenarios of docs/reliability.md (kill -9, SIGTERM,
# Redis restarted and frozen, a full backlog) against a real redis-server,
# bot and three workers; it fails if a job is lost or an answer untrue.
chaos:
	cd bench && $(GO) run ./chaos $(CHAOSFLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzJSONHandler -fuzztime 30s ./logging

clean:
	rm -rf bin logs
