# geolab — `make help` lists the targets; a longer recipe is a script in scripts/
# (its header says what it does, reads and exits with). `make test` and `make chaos`
# work on a fresh Debian machine as root with only Go: `deps` installs what is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
GO     ?= go
BIN    := $(CURDIR)/bin
# The Ginkgo CLI, at the library version in go.mod (scripts/ginkgo-install.sh).
GINKGO := $(BIN)/ginkgo
# Chaos suite: LABELS is a Ginkgo label filter (empty: every spec), e.g. `make chaos LABELS=failover`; PROVIDER=process (real processes), docker (containers) or swarm (Swarm services, docs/swarm.md).
LABELS   ?=
PROVIDER ?= process
# A run on containers keeps its own reports (-docker, -swarm): no run overwrites another's.
CHAOS_REPORT_SUFFIX = $(if $(filter docker swarm,$(PROVIDER)),-$(PROVIDER))
# Specs run the components as processes of the geolab binary built by `build`.
GEOLAB_BIN := $(BIN)/geolab
# make test runs the whole chaos suite; CHAOS_SMOKE='resubscribe' narrows it. DOCKER_SMOKE=0 leaves out its docker smoke subset (for a machine that cannot run an engine; CI runs it).
CHAOS_SMOKE  ?=
DOCKER_SMOKE ?= 1

# Fuzz targets run by `make fuzz` (and `make test`), as package:FuzzName.
FUZZ_TARGETS := ./gateway/protocol:FuzzDecodeClientFrame ./gateway/broker:FuzzParseDelivery ./gateway/auth:FuzzVerify ./gateway/auth:FuzzBearerToken \
	./gateway/auth:FuzzMatchPattern ./federation:FuzzParseConfig ./federation:FuzzValidateEntry ./lab/topology:FuzzParse ./lab/history:FuzzRead \
	./lab/history:FuzzMerge ./lab/expect:FuzzParse ./lab/check:FuzzCheck ./lab/link:FuzzParseName ./internal/redisaddr:FuzzParse ./lab/agent:FuzzDecode ./gateway/broker:FuzzPrimariesWithoutReplica ./lab/bench:FuzzParseGatewayCounters ./lab/bench:FuzzCommandCalls
FUZZTIME ?= 5s

# Each deliberate breakage (docs/mutants.md) and the chaos group that must catch it.
MUTANTS ?= nogapfill:resubscribe noepoch:resubscribe noresume:failover nofence:failover \
	goroutinepermsg:ordering dupwire:ordering psubscribe:amplification \
	noapplydedup:dedup echo:dedup nopubdedup:dedup noslowcut:slow-consumer noshardresubscribe:cluster nowait:cluster

# Arguments of `geolab bench fanout`, e.g. BENCH_ARGS='--clients 500' or '--redis-shards 3 --compare-single'; of `geolab explore` (docs/explore.md), e.g. a week: EXPLORE_ARGS='topologies/three-region.yaml --seed 7 --budget 168h'.
BENCH_ARGS   ?=
EXPLORE_ARGS ?= topologies/two-region.yaml --seed 1 --budget 10m
# report-png: REPORT is a report.html `geolab run` wrote; REPORT_WINDOW chromium's window.
REPORT        ?=
REPORT_WINDOW ?= 1400,3000

# --- Docker (docs/docker.md) ------------------------------------------------
# The images the docker provider and docker-compose.yml run. One named outside geolab/ is not built: docker pulls it (e.g. REDIS_IMAGE=redis:7.2).
GEOLAB_IMAGE    ?= geolab/geolab:dev
TOXIPROXY_IMAGE ?= geolab/toxiproxy:dev
REDIS_IMAGE     ?= geolab/redis:dev
# The engine deps-docker starts when none answers (scripts/docker-engine.sh): chaos-docker stops the engine it started unless KEEP_ENGINE=1.
DOCKERD_FLAGS ?= --iptables=false --storage-driver=vfs
DOCKERD_LOG   := $(BIN)/dockerd.log
DOCKERD_PID   := $(BIN)/dockerd.pid
KEEP_ENGINE   ?=
# chaos-docker: the Go tests of DOCKER_TESTS (./lab is the provider contract suite) matching DOCKER_RUN (empty: all),
# then the chaos specs of DOCKER_LABELS (empty: all) on containers; make test's docker smoke narrows both to DOCKER_SMOKE_RUN/_LABELS.
DOCKER_TESTS        := ./lab ./lab/provider ./docker
DOCKER_SMOKE_RUN    := ^(TestDocker.*|TestCompose.*|TestGatewayKill|TestGatewayPause|TestGatewayDrain|TestRedisRestart|TestRegionDown|TestIsolateStopsEveryCrossRegionDelivery)$$
DOCKER_SMOKE_LABELS := resubscribe || failover
DOCKER_LABELS       ?= $(DOCKER_SMOKE_LABELS)
DOCKER_RUN          ?=
export GO GINKGO PROVIDER GEOLAB_BIN CHAOS_SMOKE DOCKER_SMOKE FUZZ_TARGETS FUZZTIME MUTANTS REPORT REPORT_WINDOW
export GEOLAB_IMAGE TOXIPROXY_IMAGE REDIS_IMAGE DOCKERD_FLAGS DOCKERD_LOG DOCKERD_PID KEEP_ENGINE DOCKER_TESTS DOCKER_SMOKE_LABELS DOCKER_LABELS DOCKER_SMOKE_RUN DOCKER_RUN
.PHONY: help deps deps-redis deps-cc deps-ginkgo build test vet fuzz chaos chaos-mutants scenarios explore bench bench-peers lint clean report-png images deps-docker chaos-docker deps-swarm chaos-swarm compose-up compose-down

help: ## list the targets
	@echo "usage: make TARGET [LABELS=...] [PROVIDER=process|docker|swarm] [BENCH_ARGS=...] [FUZZTIME=5s]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

deps: deps-redis deps-cc deps-ginkgo ## install what is missing: redis-server and a C compiler for -race (apt-get, as root), the Ginkgo CLI at go.mod's version into bin/
deps-redis: ## install redis-server with apt-get unless it is on PATH
	@scripts/apt-install.sh redis-server redis-server 'real Redis for the tests and the lab'
deps-cc: ## install gcc with apt-get unless the C compiler go uses is on PATH (-race needs cgo)
	@scripts/apt-install.sh "$$($(GO) env CC)" 'gcc libc6-dev' 'the C compiler go test -race needs'
deps-ginkgo: ## install the Ginkgo CLI at go.mod's version into bin/ unless it is there
	@scripts/ginkgo-install.sh

build: ## build bin/geolab
	$(GO) build -o $(BIN)/geolab ./cmd/geolab
vet: ## go vet every package
	$(GO) vet ./...
test: deps build vet ## vet; unit, integration and lab tests with -race; the whole chaos suite with its JUnit report (CHAOS_SMOKE narrows it); every fuzz target briefly; the docker smoke subset (chaos-docker; DOCKER_SMOKE=0 skips it) (what CI runs)
	@scripts/test.sh
fuzz: ## run each fuzz target of FUZZ_TARGETS for FUZZTIME (default 5s)
	@scripts/fuzz.sh

chaos: deps build $(if $(CHAOS_REPORT_SUFFIX),images) $(if $(filter swarm,$(PROVIDER)),deps-swarm) ## the Ginkgo suites under specs/ (LABELS=filter, PROVIDER=process|docker|swarm); reports in reports/
	@mkdir -p reports$(if $(CHAOS_REPORT_SUFFIX), && scripts/docker-engine.sh status)
	$(GINKGO) -r --label-filter="$(LABELS)" --junit-report=junit$(CHAOS_REPORT_SUFFIX).xml --json-report=report$(CHAOS_REPORT_SUFFIX).json --output-dir=reports --keep-going -timeout 20m ./specs
chaos-mutants: deps ## run the chaos group of each mutant (MUTANTS) against a -tags faulty build; passes only when every breakage is caught
	@scripts/mutants.sh
scenarios: deps build ## run every shipped scenario with geolab run (reports in reports/NAME-seedN/); fails naming any that fails
	@scripts/scenarios.sh scenarios
explore: deps-redis build ## randomized chaos with shrinking: geolab explore EXPLORE_ARGS (default two-region.yaml, --seed 1, --budget 10m); each failing run, its minimal scenario and replay command in reports/explore/
	$(BIN)/geolab explore $(EXPLORE_ARGS)

bench: deps ## the fan-out benchmark (geolab bench fanout BENCH_ARGS), the checker's 1M-record benchmarks, the gateway's resume memory benchmark, async vs replicated publish durability on a 3x1 cluster
	$(GO) run ./cmd/geolab bench fanout $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench '1M|ResumeReplayPeakHeap|PublishDurability' -benchtime 3x ./lab/check ./lab/history ./gateway
bench-peers: deps-redis build ## one geolab gateway beside Centrifugo v6.9.1 (go-installed into bin/ if missing), the same separate load process: one table (BENCH_PEERS_ARGS: geolab bench peers flags)
	@scripts/bench-peers.sh
lint: ## gofmt (lists unformatted files), go vet, staticcheck (pinned, installed into bin/)
	@scripts/lint.sh
clean: ## remove bin/ and reports/
	rm -rf $(BIN) reports
report-png: ## render REPORT=reports/<run>/report.html to report.png beside it with headless chromium (apt-get installs it if missing)
	@scripts/report-png.sh

deps-docker: ## install docker.io and docker-compose (apt-get, as root) and start an engine (dockerd --iptables=false --storage-driver=vfs) unless one answers
	@scripts/apt-install.sh dockerd docker.io 'the Docker engine for the docker provider' && scripts/apt-install.sh docker-compose docker-compose 'Compose for docker-compose.yml'
	@scripts/docker-engine.sh start
images: deps-docker deps-redis ## build the geolab, Toxiproxy and Redis images (GEOLAB_IMAGE, TOXIPROXY_IMAGE, REDIS_IMAGE) from local binaries, FROM scratch: no registry
	./docker/build-images.sh
chaos-docker: deps-ginkgo build ## start an engine if needed (deps-docker), build the images, run the docker tests and the DOCKER_LABELS chaos specs on containers; stops the engine it started
	@scripts/chaos-docker.sh
deps-swarm: deps-docker ## make the local engine a one-node swarm unless it is in one (scripts/swarm.sh; docs/swarm.md)
	@scripts/swarm.sh start
chaos-swarm: deps-ginkgo build ## chaos-docker on a one-node swarm (PROVIDER=swarm; DOCKER_RUN, DOCKER_LABELS as there): makes the swarm when needed and leaves the swarm it made
	@CHAOS_PROVIDER=swarm scripts/chaos-docker.sh
compose-up: images ## bring docker-compose.yml's two-region stack up (docker compose, else docker-compose) and wait until its gateways answer
	@scripts/compose.sh up
compose-down: ## take docker-compose.yml's stack down and remove its volumes
	@scripts/compose.sh down
