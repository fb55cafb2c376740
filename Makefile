# geolab — `make help` lists the targets.
#
# `make test` and `make chaos` work on a fresh Debian machine as root with Go
# installed and nothing else: `deps` installs redis-server and gcc (for -race)
# with apt-get and the Ginkgo CLI (into ./bin) when missing. `make test` ends
# with the docker smoke subset (chaos-docker), which installs docker.io and
# starts an engine when none answers, and stops it; `make chaos` needs none.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO  ?= go
BIN := $(CURDIR)/bin

# The Ginkgo CLI always matches the library version in go.mod.
GINKGO_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)
GINKGO         := $(BIN)/ginkgo

# staticcheck 2026.2.2 (module v0.8.2): the newest release listed by
# `go list -m -versions honnef.co/go/tools`; it knows Go 1.26.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/staticcheck

# Chaos suite: LABELS is a Ginkgo label filter (empty: every spec), e.g.
# `make chaos LABELS=smoke`. PROVIDER picks how the lab runs regions
# (process: real processes, no Docker; docker: testcontainers-go).
LABELS   ?=
PROVIDER ?= process
export PROVIDER
# Specs run the components as processes of the geolab binary built by `build`.
export GEOLAB_BIN := $(BIN)/geolab

# Fuzz targets run by `make fuzz` (and `make test`), as package:FuzzName.
FUZZ_TARGETS := \
	./gateway/protocol:FuzzDecodeClientFrame \
	./gateway/auth:FuzzVerify \
	./gateway/auth:FuzzMatchPattern \
	./federation:FuzzParseConfig \
	./lab/topology:FuzzParse \
	./lab/history:FuzzRead \
	./lab/expect:FuzzParse \
	./lab/check:FuzzCheck \
	./lab/link:FuzzParseName
FUZZTIME ?= 5s

# Arguments of `geolab bench fanout`, e.g. BENCH_ARGS='--clients 500'.
BENCH_ARGS ?=

.PHONY: help deps deps-redis deps-cc deps-ginkgo build test vet fuzz chaos chaos-mutants scenarios bench lint clean report-png images deps-docker chaos-docker

help: ## list the targets
	@echo "usage: make TARGET [LABELS=...] [PROVIDER=process|docker] [BENCH_ARGS=...] [FUZZTIME=5s]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

deps: deps-redis deps-cc deps-ginkgo ## install what is missing: redis-server and a C compiler for -race (apt-get, as root), the Ginkgo CLI at go.mod's version into bin/

# apt_install: $(1) a command that must be on PATH, $(2) the Debian packages
# that provide it, $(3) what it is for. Quiet when the command is there.
define apt_install
	@if ! command -v $(1) >/dev/null 2>&1; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "make deps: $(1) ($(3)) is not on PATH and this is not root: run 'sudo make deps' or 'sudo apt-get install -y $(2)'" >&2; \
			exit 1; \
		fi; \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "make deps: $(1) ($(3)) is not on PATH and there is no apt-get: install $(2) yourself" >&2; \
			exit 1; \
		fi; \
		echo "make deps: $(1) not found: installing $(2) with apt-get"; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
		command -v $(1) >/dev/null || { echo "make deps: apt-get ran but $(1) is still not on PATH" >&2; exit 1; }; \
	fi
endef

deps-redis: ## install redis-server with apt-get unless it is on PATH
	$(call apt_install,redis-server,redis-server,real Redis for the tests and the lab)

deps-cc: ## install gcc with apt-get unless the C compiler go uses is on PATH (-race needs cgo)
	$(call apt_install,"$$($(GO) env CC)",gcc libc6-dev,the C compiler go test -race needs)

deps-ginkgo: ## install the Ginkgo CLI at go.mod's version into bin/ unless it is there
	@want='$(GINKGO_VERSION)'; \
	if [ -z "$$want" ]; then echo "make deps: cannot read the ginkgo version from go.mod" >&2; exit 1; fi; \
	have=$$($(GINKGO) version 2>/dev/null | awk '{ print "v" $$NF }' || true); \
	if [ "$$have" != "$$want" ]; then \
		echo "make deps: installing the Ginkgo CLI $$want into bin/"; \
		GOBIN='$(BIN)' $(GO) install "github.com/onsi/ginkgo/v2/ginkgo@$$want"; \
	fi

build: ## build bin/geolab
	$(GO) build -o $(BIN)/geolab ./cmd/geolab

vet: ## go vet every package
	$(GO) vet ./...

# The chaos specs make test runs (the full suite is make chaos): quick ones
# that still start real labs.
CHAOS_SMOKE ?= amplification || resubscribe

# DOCKER_SMOKE=0 leaves the docker smoke subset out of make test (for a
# machine that cannot run a Docker engine; CI runs it).
DOCKER_SMOKE ?= 1

test: deps build ## vet; unit, integration and lab tests with -race; the chaos smoke specs (CHAOS_SMOKE); every fuzz target briefly; the docker smoke subset (chaos-docker; DOCKER_SMOKE=0 skips it) (what CI runs)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v '/specs/chaos$$')
	$(GINKGO) --label-filter='$(CHAOS_SMOKE)' --timeout 10m ./specs/chaos
	@$(MAKE) --no-print-directory fuzz
	@if [ '$(DOCKER_SMOKE)' = 0 ]; then \
		echo "make test: DOCKER_SMOKE=0: the docker smoke subset (make chaos-docker) was NOT run"; \
	else \
		$(MAKE) --no-print-directory chaos-docker DOCKER_LABELS='$(DOCKER_SMOKE_LABELS)'; \
	fi

fuzz: ## run each fuzz target of FUZZ_TARGETS for FUZZTIME (default 5s)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		if ! $(GO) test -list "^$${name}\$$" "$$pkg" | grep -x "$$name" >/dev/null; then \
			echo "make fuzz: no fuzz target $$name in $$pkg (listed in FUZZ_TARGETS)" >&2; exit 1; \
		fi; \
		echo "go test -run '^\$$' -fuzz '^$${name}\$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$${name}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s "$$pkg"; \
	done

# A run on containers keeps its own JUnit and JSON reports, as it keeps its own
# summary (chaos-summary-docker.txt): no run overwrites another's.
CHAOS_REPORT_SUFFIX = $(if $(filter docker,$(PROVIDER)),-docker)

chaos: deps build ## the Ginkgo suites under specs/ (LABELS=filter, PROVIDER=process|docker); reports in reports/
	@mkdir -p reports
	@if [ '$(PROVIDER)' = docker ]; then \
		$(MAKE) --no-print-directory images; \
		if [ -f '$(DOCKERD_PID)' ]; then echo "make chaos: the Docker engine stays up for the next run (stop it: kill \$$(cat $(DOCKERD_PID)); make chaos-docker stops the engine it starts)"; fi; \
	fi
	$(GINKGO) -r --label-filter="$(LABELS)" --junit-report=junit$(CHAOS_REPORT_SUFFIX).xml \
		--json-report=report$(CHAOS_REPORT_SUFFIX).json --output-dir=reports --keep-going -timeout 20m ./specs

# Each deliberate breakage (internal/faulty, docs/mutants.md) and the chaos
# group that must catch it: make chaos-mutants passes only if every one fails.
MUTANTS ?= nogapfill:resubscribe noepoch:resubscribe noresume:failover nofence:failover \
	goroutinepermsg:ordering dupwire:ordering psubscribe:amplification \
	noapplydedup:dedup echo:dedup nopubdedup:dedup noslowcut:slow-consumer

chaos-mutants: deps ## run the chaos group of each mutant (MUTANTS) against a -tags faulty build; passes only when every breakage is caught
	$(GO) build -tags faulty -o $(BIN)/geolab-faulty ./cmd/geolab
	@mkdir -p reports/mutants
	@survived=""; \
	for m in $(MUTANTS); do \
		name=$${m%%:*}; label=$${m##*:}; \
		echo "== mutant $$name: chaos group $$label must fail"; \
		if GEOLAB_BIN='$(BIN)/geolab-faulty' GEOLAB_FAULTY=$$name $(GINKGO) --label-filter="$$label" --fail-fast \
			--timeout 15m ./specs/chaos > reports/mutants/$$name.log 2>&1; then \
			echo "   SURVIVED: the $$label specs passed against $$name (reports/mutants/$$name.log)"; survived="$$survived $$name"; \
		else \
			echo "   caught: $$(grep -m1 -o '\[FAIL\].*' reports/mutants/$$name.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160)"; \
		fi; \
	done; \
	if [ -n "$$survived" ]; then echo "make chaos-mutants: survived:$$survived" >&2; exit 1; fi; \
	echo "make chaos-mutants: every mutant was caught"

scenarios: deps build ## run every shipped scenario with geolab run (reports in reports/NAME-seedN/); fails naming any that fails
	@failed=""; for f in scenarios/*.yaml; do \
		echo "== geolab run $$f"; \
		$(BIN)/geolab run "$$f" --quiet || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "make scenarios: failed:$$failed" >&2; exit 1; fi

bench: deps ## the fan-out benchmark (geolab bench fanout BENCH_ARGS), then the checker's 1M-record benchmarks
	$(GO) run ./cmd/geolab bench fanout $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench 1M -benchtime 3x ./lab/check ./lab/history

lint: ## gofmt (lists unformatted files), go vet, staticcheck (pinned, installed into bin/)
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt: these files are not formatted (run gofmt -w):" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	@have=$$($(STATICCHECK) -version 2>/dev/null || true); \
	if [[ "$$have" != *"($(STATICCHECK_VERSION:v%=%))"* ]]; then \
		echo "make lint: installing staticcheck $(STATICCHECK_VERSION) into bin/"; \
		GOBIN='$(BIN)' $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi
	$(STATICCHECK) ./...

clean: ## remove bin/ and reports/
	rm -rf $(BIN) reports

# report-png: REPORT is a report.html that `geolab run` wrote; the PNG goes
# beside it. REPORT_WINDOW is chromium's window (the screenshot's size).
REPORT        ?=
REPORT_WINDOW ?= 1400,3000
CHROMIUM      := /usr/bin/chromium

report-png: ## render REPORT=reports/<run>/report.html to report.png beside it with headless chromium (apt-get installs it if missing)
	@if [ -z '$(REPORT)' ]; then echo "usage: make report-png REPORT=reports/<run>/report.html" >&2; exit 1; fi
	@if [ ! -f '$(REPORT)' ]; then echo "make report-png: no such file: $(REPORT)" >&2; exit 1; fi
	$(call apt_install,$(CHROMIUM),chromium,headless rendering of report.html to a PNG)
	@html=$$(realpath '$(REPORT)'); out=$$(dirname "$$html")/report.png; \
	profile=$$(mktemp -d); log=$$(mktemp); trap 'rm -rf "$$profile" "$$log"' EXIT; \
	rm -f "$$out"; \
	if ! $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$$profile" --window-size=$(REPORT_WINDOW) --screenshot="$$out" "file://$$html" >"$$log" 2>&1 \
		|| [ ! -s "$$out" ]; then \
		cat "$$log" >&2; echo "make report-png: chromium wrote no $$out" >&2; exit 1; \
	fi; \
	echo "make report-png: wrote $$out"

# --- Docker (docs/docker.md) ------------------------------------------------
# The images the docker provider and docker-compose.yml run. An image named
# outside geolab/ is an official one: 'make images' does not build it, and
# docker pulls it on first use (e.g. REDIS_IMAGE=redis:7.2,
# TOXIPROXY_IMAGE=ghcr.io/shopify/toxiproxy:2.5.0).
GEOLAB_IMAGE    ?= geolab/geolab:dev
TOXIPROXY_IMAGE ?= geolab/toxiproxy:dev
REDIS_IMAGE     ?= geolab/redis:dev
export GEOLAB_IMAGE TOXIPROXY_IMAGE REDIS_IMAGE

# The engine deps-docker starts when none answers (as root): its flags, and
# where it logs and records its pid (chaos-docker stops the engine it started
# unless KEEP_ENGINE=1).
DOCKERD_FLAGS ?= --iptables=false --storage-driver=vfs
DOCKERD_LOG   := $(BIN)/dockerd.log
DOCKERD_PID   := $(BIN)/dockerd.pid
KEEP_ENGINE   ?=

# What chaos-docker runs: the Go docker tests (the provider's, the compose
# stack's), then the chaos specs of DOCKER_LABELS on the docker provider
# (DOCKER_LABELS= runs them all).
DOCKER_TESTS  := ./lab/provider ./docker
DOCKER_SMOKE_LABELS := resubscribe || failover
DOCKER_LABELS ?= $(DOCKER_SMOKE_LABELS)

deps-docker: ## install docker.io and docker-compose (apt-get, as root) and start an engine (dockerd --iptables=false --storage-driver=vfs) unless one answers
	$(call apt_install,dockerd,docker.io,the Docker engine for the docker provider)
	$(call apt_install,docker-compose,docker-compose,Compose for docker-compose.yml)
	@if docker info >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "make deps-docker: no Docker engine answers and this is not root: start one ('sudo dockerd $(DOCKERD_FLAGS) &' or your system's service)" >&2; exit 1; \
	fi; \
	mkdir -p '$(BIN)'; \
	echo "make deps-docker: no Docker engine answers: starting dockerd $(DOCKERD_FLAGS) (log $(DOCKERD_LOG))"; \
	nohup nice -n 10 dockerd $(DOCKERD_FLAGS) >'$(DOCKERD_LOG)' 2>&1 & echo $$! >'$(DOCKERD_PID)'; \
	for i in $$(seq 120); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	tail -20 '$(DOCKERD_LOG)' >&2; echo "make deps-docker: dockerd did not answer within 60s (log above)" >&2; exit 1

images: deps-docker deps-redis ## build the geolab, Toxiproxy and Redis images (GEOLAB_IMAGE, TOXIPROXY_IMAGE, REDIS_IMAGE) from local binaries, FROM scratch: no registry
	GO='$(GO)' ./docker/build-images.sh

chaos-docker: deps-ginkgo build ## start an engine if needed (deps-docker), build the images, run the docker tests and the DOCKER_LABELS chaos specs on containers; stops the engine it started
	@had=0; docker info >/dev/null 2>&1 && had=1; \
	stop() { \
		if [ "$$had" = 0 ] && [ -f '$(DOCKERD_PID)' ] && [ -z '$(KEEP_ENGINE)' ]; then \
			pid=$$(cat '$(DOCKERD_PID)'); echo "make chaos-docker: stopping the engine it started (pid $$pid)"; \
			kill "$$pid" 2>/dev/null || true; \
			for i in $$(seq 120); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.5; done; \
			if kill -0 "$$pid" 2>/dev/null; then echo "make chaos-docker: dockerd (pid $$pid) did not stop within 60s: killing it" >&2; kill -9 "$$pid" 2>/dev/null || true; fi; \
			rm -f '$(DOCKERD_PID)'; \
		fi; \
	}; \
	trap stop EXIT; \
	$(MAKE) --no-print-directory images; \
	left=$$(docker ps -aq --filter label=io.geolab.lab); \
	if [ -n "$$left" ]; then echo "make chaos-docker: removing containers earlier labs left"; docker rm -f $$left >/dev/null; fi; \
	left=$$(docker network ls -q --filter label=io.geolab.lab); \
	if [ -n "$$left" ]; then docker network rm $$left >/dev/null; fi; \
	mkdir -p reports; \
	t0=$$(date +%s); \
	PROVIDER=docker $(GO) test -count=1 -timeout 15m -v $(DOCKER_TESTS) 2>&1 | tee reports/docker-tests.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|#)|\.go:[0-9]+:'; \
	PROVIDER=docker $(GINKGO) --label-filter='$(DOCKER_LABELS)' --junit-report=junit-docker.xml \
		--output-dir=reports --keep-going --timeout 20m ./specs/chaos; \
	echo "make chaos-docker: passed in $$(( $$(date +%s) - t0 ))s"
