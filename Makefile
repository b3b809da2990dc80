# Ork (Go). `make test` is the one test command: CI (.ci/run) calls exactly it.
SHELL := /bin/bash
MODULES := pkg migrations services/scheduler services/executor services/recorder services/api cmd/ork deploy
GOLANGCI_LINT_VERSION := v2.15.0
GOBIN := $(CURDIR)/bin

.PHONY: build test test-ui test-short lint fmt tidy bench dev-stack clean ui

# The web UI (ui/): its npm packages from the lock file, then the bundle into
# services/api/webui/dist, which ork serve and ork-api embed. npm ci runs again only when the lock
# file changes.
ui: ui/node_modules/.package-lock.json
	node ui/build.mjs

ui/node_modules/.package-lock.json: ui/package-lock.json ui/package.json
	cd ui && npm ci --no-audit --no-fund

build: ui
	@mkdir -p bin
	cd cmd/ork && go build -o $(GOBIN)/ork .
	@for s in scheduler executor recorder api; do \
		(cd services/$$s && go build -o $(GOBIN)/ork-$$s ./cmd) || exit 1; \
	done

# Every workspace module, with the race detector. `go test ./...` at the root does not cross module
# boundaries, so loop. A failing module does not stop the loop: the list of failed modules comes at
# the end, so one red run shows every failure.
test: ui
	@failed=""; for m in $(MODULES); do \
		echo "== $$m"; \
		if ! (cd $$m && GOWORK=off go build ./...); then \
			echo "$$m does not build on its own (GOWORK=off): run make tidy"; failed="$$failed $$m"; continue; \
		fi; \
		(cd $$m && go vet ./... && go test -race -count=1 -timeout 30m ./...) || failed="$$failed $$m"; \
	done; \
	echo "== ui/e2e"; $(MAKE) --no-print-directory test-ui || failed="$$failed ui/e2e"; \
	if [ -n "$$failed" ]; then echo "FAILED modules:$$failed"; exit 1; fi; echo "all modules passed"

# The web UI's end-to-end tests (ui/e2e): a real ork serve driven by Debian's headless Chromium
# (/usr/bin/chromium, which .ci/run installs) through playwright-core. Screenshots, the servers'
# logs and results.json go to ui/e2e/artifacts/. E2E_IDLE_SECONDS=5 shortens the 60 s idle test
# for a local run, E2E_ONLY=REGEXP picks tests, E2E_PERF=0 skips the performance measures.
test-ui: ui
	@mkdir -p bin
	cd cmd/ork && go build -o $(GOBIN)/ork .
	cd ui/e2e && npm ci --no-audit --no-fund && node run.mjs --ork $(GOBIN)/ork

test-short:
	@set -e; for m in $(MODULES); do (cd $$m && go test -short -count=1 ./...); done

lint:
	@test -x $(GOBIN)/golangci-lint || GOBIN=$(GOBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@set -e; for m in $(MODULES); do (cd $$m && $(GOBIN)/golangci-lint run --config $(CURDIR)/.golangci.yml ./...); done

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && go mod tidy); done

bench:
	@set -e; for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...); done

dev-stack: build
	./deploy/devstack.sh

clean:
	rm -rf bin .ork ui/node_modules
	find services/api/webui/dist -mindepth 1 ! -name .gitkeep -delete

# The chaos test (deploy/faults TestChaos) with a random seed, for as long as asked (`make test`
# replays a fixed list of seeds for one minute each): `make chaos CHAOS_DURATION=30m`. It prints the
# seed and the command that replays it, the timeline of faults and the invariant's report; the
# test bounds itself (the duration plus six minutes), hence no go test timeout.
CHAOS_DURATION ?= 10m
.PHONY: chaos
chaos:
	cd deploy && go test -count=1 -v -timeout 0 -run '^TestChaos$$' ./faults -chaos.random -chaos.duration=$(CHAOS_DURATION)

# The multi-process numbers (docs/benchmarks.md, "Cluster scaling" and "Recorder ceiling"): for 1, 2
# and 4 executor processes, a fresh stack and PostgreSQL database, `ork bench` in cluster mode with a
# wide noop and a wide process scenario; then the recorder's events/s from a 100,000-event backlog.
# Needs PostgreSQL (TEST_DATABASE_URL, default postgres@127.0.0.1:5432). BENCH_CLUSTER_ARGS adds flags.
.PHONY: bench-cluster
bench-cluster:
	cd deploy && go run ./benchcluster $(BENCH_CLUSTER_ARGS)
