#!/usr/bin/env bash
# test.sh: what 'make test' runs once deps, build and vet are done, in order:
# the unit, integration and lab tests with -race (every package but the chaos
# suite); the whole chaos suite on processes, as 'make chaos' runs it, with its
# JUnit report in reports/junit.xml (CHAOS_SMOKE narrows it); every fuzz target briefly
# (scripts/fuzz.sh); then the docker smoke subset (scripts/chaos-docker.sh at
# DOCKER_SMOKE_LABELS) unless DOCKER_SMOKE=0. It stops at the first failure.
#
# usage: scripts/test.sh
#
# environment:
#   CHAOS_SMOKE          Ginkgo label filter of the chaos specs (default empty: all of them)
#   DOCKER_SMOKE         0: leave the docker smoke subset out (and say so)
#   DOCKER_SMOKE_LABELS  the label filter chaos-docker.sh runs (required unless DOCKER_SMOKE=0)
#   GO                   the go command (default go); GINKGO the Ginkgo CLI (default bin/ginkgo)
#   and what scripts/fuzz.sh and scripts/chaos-docker.sh read (FUZZ_TARGETS,
#   FUZZTIME, DOCKER_TESTS, KEEP_ENGINE, ...)
#
# exit codes: 0 everything passed; non-zero: the exit code of the first step
# that failed; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "test.sh: takes no arguments, got: $*" "scripts/test.sh (--help for more; 'make test' runs it)"
fi
GO=${GO:-go}
GINKGO=${GINKGO:-$root/bin/ginkgo}
DOCKER_SMOKE=${DOCKER_SMOKE:-1}
if [[ $DOCKER_SMOKE != 0 && -z ${DOCKER_SMOKE_LABELS:-} ]]; then
	echo "make test: DOCKER_SMOKE_LABELS is empty: set the label filter of the docker smoke specs (or DOCKER_SMOKE=0)" >&2
	exit 2
fi
cd "$root"

# run CMD...: print it as make would, then run it.
run() { echo "$*"; "$@"; }

list=$("$GO" list ./... | grep -v '/specs/chaos$')
mapfile -t pkgs <<<"$list"
echo "$GO test -race -count=1 -timeout 15m \$($GO list ./... | grep -v '/specs/chaos\$')   (${#pkgs[@]} packages)"
"$GO" test -race -count=1 -timeout 15m "${pkgs[@]}"
mkdir -p reports
run "$GINKGO" -r --label-filter="${CHAOS_SMOKE:-}" --junit-report=junit.xml --json-report=report.json --output-dir=reports --keep-going --timeout 25m ./specs
"$here/fuzz.sh"
if [[ $DOCKER_SMOKE == 0 ]]; then
	echo "make test: DOCKER_SMOKE=0: the docker smoke subset (make chaos-docker) was NOT run"
else
	DOCKER_LABELS=$DOCKER_SMOKE_LABELS DOCKER_RUN=${DOCKER_SMOKE_RUN:-} "$here/chaos-docker.sh"
fi
