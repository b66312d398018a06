# cmmsflow — the two commands a new user needs are `make up` and `make test`.

SHELL := /bin/bash
# Every module of the workspace, as package patterns (the root is no module).
MODULES  := $(shell go list -m -f '{{.Dir}}' | sed "s|^$(CURDIR)/|./|")
PKGS     := $(addsuffix /...,$(MODULES))
GOTEST   ?= go test -race -shuffle=on -count=1 -timeout=15m
# The service binaries, and how the Dockerfile builds them: static, no cgo.
BINARIES := $(foreach s,$(notdir $(wildcard services/*)),./services/$(s)/cmd/$(s)) ./scheduler/cmd/cron
GOBUILD  := CGO_ENABLED=0 go build -trimpath
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
GRPC_GATEWAY := github.com/grpc-ecosystem/grpc-gateway/v2
PROTOC_GEN_GATEWAY := $(GRPC_GATEWAY)/protoc-gen-grpc-gateway@v2.33.0
PROTOC_GEN_OPENAPI := $(GRPC_GATEWAY)/protoc-gen-openapiv2@v2.33.0

# The stacks of make up, the e2e and chaos tests and make bench run the
# binaries that the bins target built here (deploy/local/stack.Binaries).
STACK_BIN := CMMSFLOW_BIN_DIR=$(CURDIR)/.local/bin

.PHONY: up test bench bench-scale bench-against bench-report deps bins lint build generate generate-check clean

## up: start the whole system locally with demo data; Ctrl-C stops it.
up: deps bins
	@$(GOBUILD) -o .local/bin/ ./deploy/local/cmd/up
	$(STACK_BIN) .local/bin/up $(UP_FLAGS)

## test: unit, integration (real PostgreSQL and emulators) and e2e tests,
## then a short fuzz run. The service binaries are built first, so no test's
## time budget covers their compilation.
test: deps bins
	@go build -o .local/bin/testenv ./deploy/local/cmd/testenv
	E2E_ARTIFACTS=$(CURDIR)/.local/e2e-artifacts $(STACK_BIN) .local/bin/testenv -- \
	  $(GOTEST) $$(go list $(PKGS) | grep -Ev '/e2e/(chaos|agree)$$')
	@# The chaos and agree tests after the rest, one package at a time: their
	@# stacks and the e2e suite's would otherwise pick free ports at the same
	@# time and could take one another's.
	$(STACK_BIN) .local/bin/testenv -- $(GOTEST) -p 1 ./e2e/chaos ./e2e/agree
	@$(MAKE) --no-print-directory fuzz-short

## bins: the service binaries of the local stack, into .local/bin, built as
## the Dockerfile builds them (the first build on a cold cache takes minutes).
bins:
	@echo "building the services into .local/bin"
	@$(GOBUILD) -o .local/bin/ $(BINARIES)

## chaos: every pipeline triggered over and over for CHAOS_DURATION (10 min)
## on a stack of its own while services are SIGKILLed, PostgreSQL restarts,
## Pub/Sub duplicates and reorders deliveries and SendGrid answers 429/5xx;
## then the invariants, and a table of counts. CHAOS_SEED=N replays a run.
## (`make test` runs the same test for 1 minute.)
CHAOS_DURATION ?= 10m
.PHONY: chaos
chaos: deps bins
	@go build -o .local/bin/testenv ./deploy/local/cmd/testenv
	CHAOS_DURATION=$(CHAOS_DURATION) $(STACK_BIN) .local/bin/testenv -- go test -count=1 -timeout=60m -run '^TestChaos$$' -v ./e2e/chaos

# The fuzz targets (no database needed), as Target:package. Their corpora are
# committed under the package's testdata/fuzz/<Target>/.
FUZZ_TARGETS := FuzzDecodePush:./libs/eventing FuzzFromMessage:./libs/eventing \
	FuzzConfValidator:./services/control/internal/api FuzzPageToken:./services/control/internal/api \
	FuzzImportCSV:./libs/fleet
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# fail a target with "context deadline exceeded" as the time runs out
# (golang/go#75804, fixed in Go 1.27). 20,000 inputs take 3-20 s per target.
FUZZTIME ?= 20000x

## fuzz-short: each fuzz target for FUZZTIME (20,000 inputs); an input that
## fails is written to the target's corpus: fix the bug and commit the input.
## New coverage is minimised for at most 2 s (the default minute stalls a run).
.PHONY: fuzz-short
fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t%%:*} for $(FUZZTIME)"; \
	  go test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $${t#*:}; \
	done

## bench: every benchmark beside its baseline, in the same run, then
## docs/benchmarks.md regenerated from the results (about 65 minutes on a
## quiet 2-core machine: 17 for the first five steps, 12 of them Go
## benchmarks, and about 47 for the scale curve). The steps
## (deploy/local/cmd/benchreport): every Go benchmark (-benchtime 1x -count 5:
## each comparison of ours and its baseline as 5 interleaved pairs on one
## fixture, libs/benchpair), scikit-learn on the trainer's split, wrk on
## control's API and on a trivial net/http handler, end-to-end latency per
## pipeline on the local stack, and the scale curve (make bench-scale). The
## report sets each ratio beside the previous run's (.local/bench-previous.txt).
## Raw outputs in .local/bench*; BENCH_FLAGS passes flags (go run
## ./deploy/local/cmd/benchreport -help), e.g. BENCH_FLAGS='-steps latency'.
bench: deps bins
	@go build -o .local/bin/testenv ./deploy/local/cmd/testenv
	@# Its own PostgreSQL folder: a concurrent make test stops .local/test-pg's server when it ends.
	$(STACK_BIN) .local/bin/testenv -dir .local/bench-run-pg -- go run ./deploy/local/cmd/benchreport -run $(BENCH_FLAGS)

## bench-scale: make bench's last step alone, the scale curve (issue 18), then
## docs/benchmarks.md re-rendered: extractor, featurejob (local), trainer and
## reporter at 1M, 3M and 10M work orders (10,000 to 100,000 assets) and
## pmgen at 100,000, 300,000 and 1,000,000 due plans, each as 5 pairs with its
## same-run baseline, with time, peak heap and peak RSS, and each stage's
## log-log slope (libs/benchscale, BenchmarkScale in each stage's package).
## About 47 minutes on a quiet 2-core machine (1M: 3, 3M: 10, 10M: 34;
## measured on 2026-12-03, most of it building the fixtures and pmgen's 1M
## plans). The 10M point needs about 6 GiB of memory (the trainer's peak
## RSS was 5.4 GiB before libs/featurefile). SCALE_POINTS=1M (or 1M,3M)
## measures fewer points.
bench-scale: deps
	@go build -o .local/bin/testenv ./deploy/local/cmd/testenv
	.local/bin/testenv -dir .local/bench-run-pg -- go run ./deploy/local/cmd/benchreport -run -steps scale $(if $(SCALE_POINTS),-scale-points $(SCALE_POINTS)) $(BENCH_FLAGS)

## bench-against: this checkout beside an earlier commit, e.g. make
## bench-against BASE=f58d9bb [PAIRS=5]: each side's end-to-end latency step
## and pmgen benchmark, interleaved in pairs (about 3 minutes a pair), then
## docs/benchmarks.md re-rendered with the comparison (benchreport -against).
bench-against: deps bins
	@test -n "$(BASE)" || { echo "usage: make bench-against BASE=<git revision> [PAIRS=5]"; exit 2; }
	@go build -o .local/bin/testenv ./deploy/local/cmd/testenv
	$(STACK_BIN) .local/bin/testenv -dir .local/bench-run-pg -- go run ./deploy/local/cmd/benchreport -against $(BASE) -pairs $(or $(PAIRS),5)

## bench-report: rewrite docs/benchmarks.md from the last run's outputs in
## .local (after editing its template); measures nothing.
bench-report:
	go run ./deploy/local/cmd/benchreport

## deps: install what a fresh machine lacks (PostgreSQL server binaries).
deps:
	@bash deploy/local/deps.sh

## lint: gofmt, go vet and staticcheck over every module.
lint:
	@out=$$(gofmt -l $(MODULES) | grep -v '\.pb\.go$$' || true); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	go run $(STATICCHECK) $(PKGS)

## build: the static service binaries (and the Vertex AI predictor), built as
## deploy/Dockerfile builds them.
build:
	$(GOBUILD) -ldflags='-s -w' -o bin/ $(BINARIES) ./services/deployer/cmd/predictor

## generate: regenerate the Go code from proto/.
generate:
	@command -v protoc >/dev/null || (apt-get update -q && apt-get install -y -q protobuf-compiler)
	GOBIN=$(CURDIR)/.local/tools go install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/.local/tools go install $(PROTOC_GEN_GO_GRPC)
	GOBIN=$(CURDIR)/.local/tools go install $(PROTOC_GEN_GATEWAY) $(PROTOC_GEN_OPENAPI)
	cd proto && PATH=$(CURDIR)/.local/tools:$$PATH go generate ./...

## generate-check: fail if the committed generated code is stale.
generate-check: generate
	@test -z "$$(git status --porcelain -- proto)" || (git status --short -- proto; echo "generated code is stale: run make generate and commit"; exit 1)

## clean: remove what the commands made, with the PostgreSQL data that a
## clone in a private folder keeps in the postgres user's home (package pg).
clean:
	@for d in .local/*pg; do if [ -L "$$d" ]; then rm -rf "$$(readlink "$$d")"; fi; done
	rm -rf .local bin
