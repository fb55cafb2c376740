#!/usr/bin/env bash
# chaos-docker.sh: the docker tests. It asks whether a Docker engine answers,
# runs 'make images' (which starts an engine when none answers, and builds
# the images), removes the containers and networks earlier labs left
# (label io.geolab.lab), runs the Go docker tests of DOCKER_TESTS with
# PROVIDER=docker (log in REPORTS/docker-tests.log), then the chaos specs of
# DOCKER_LABELS on the docker provider (REPORTS/junit-docker.xml). At exit it
# stops the engine when none answered before it began (an engine that was
# already up is left running), unless KEEP_ENGINE is set. Run by
# 'make chaos-docker' and, at the smoke labels, by 'make test'.
# With CHAOS_PROVIDER=swarm ('make chaos-swarm') it runs the same on the swarm
# provider: it makes the engine a one-node swarm when it is not in one
# (scripts/swarm.sh start) and leaves that swarm at exit (a swarm that was
# there before is kept), removes the services, volumes and configs earlier
# labs left too, and writes REPORTS/swarm-tests.log and junit-swarm.xml.
#
# usage: scripts/chaos-docker.sh
#
# environment:
#   DOCKER_TESTS   Go packages of the docker tests, space-separated (required)
#   DOCKER_RUN     go test -run filter of the docker tests (empty: all of them)
#   DOCKER_LABELS  Ginkgo label filter of the chaos specs (empty: all of them)
#   KEEP_ENGINE    non-empty and not 0: leave the engine it started running
#   CHAOS_PROVIDER docker (default) or swarm: the provider the tests run on
#   GO             the go command (default go); GINKGO the Ginkgo CLI (default bin/ginkgo)
#   MAKE           the make that builds the images (default make)
#   DOCKER         the docker CLI (default docker)
#   REPORTS        where the reports go (default reports)
#   and what scripts/docker-engine.sh and docker/build-images.sh read
#   (DOCKERD_FLAGS, DOCKERD_PID, GEOLAB_IMAGE, TOXIPROXY_IMAGE, REDIS_IMAGE, ...)
#
# exit codes: 0 every test and spec passed; non-zero: the first step that
# failed (make images, go test, ginkgo), whose output is shown; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "chaos-docker.sh: takes no arguments (set DOCKER_TESTS, DOCKER_LABELS), got: $*" "DOCKER_TESTS='./lab/provider ./docker' scripts/chaos-docker.sh (--help for more)"
fi
GO=${GO:-go}
GINKGO=${GINKGO:-$root/bin/ginkgo}
MAKE=${MAKE:-make}
DOCKER=${DOCKER:-docker}
REPORTS=${REPORTS:-$root/reports}
DOCKER_LABELS=${DOCKER_LABELS:-}
KEEP_ENGINE=${KEEP_ENGINE:-}
CHAOS_PROVIDER=${CHAOS_PROVIDER:-docker}
if [[ ! $CHAOS_PROVIDER =~ ^(docker|swarm)$ ]]; then
	echo "make chaos-docker: CHAOS_PROVIDER must be docker or swarm, got: $CHAOS_PROVIDER" >&2
	exit 2
fi
read -r -a tests <<<"${DOCKER_TESTS:-}"
if [[ ${#tests[@]} -eq 0 ]]; then
	echo "make chaos-docker: DOCKER_TESTS is empty: list the Go packages of the docker tests" >&2
	exit 2
fi
cd "$root"

had=0 had_swarm=0
if "$DOCKER" info >/dev/null 2>&1; then had=1; fi
if [[ $("$DOCKER" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true) == active ]]; then had_swarm=1; fi
stop() {
	if [[ $CHAOS_PROVIDER == swarm && $had_swarm == 0 ]]; then "$here/swarm.sh" stop; fi
	if [[ $had == 1 ]]; then return; fi
	if [[ -n $KEEP_ENGINE && $KEEP_ENGINE != 0 ]]; then
		echo "make chaos-docker: KEEP_ENGINE=$KEEP_ENGINE: the engine it started stays up (stop it: scripts/docker-engine.sh stop)"
		return
	fi
	"$here/docker-engine.sh" stop
}
trap stop EXIT

"$MAKE" --no-print-directory images
if [[ $CHAOS_PROVIDER == swarm ]]; then
	"$here/swarm.sh" start
	left=$("$DOCKER" service ls -q --filter label=io.geolab.lab)
	if [[ -n $left ]]; then
		echo "make chaos-swarm: removing services earlier labs left"
		# shellcheck disable=SC2086 # a list of ids
		"$DOCKER" service rm $left >/dev/null
	fi
fi
left=$("$DOCKER" ps -aq --filter label=io.geolab.lab)
if [[ -n $left ]]; then
	echo "make chaos-docker: removing containers earlier labs left"
	# shellcheck disable=SC2086 # a list of ids
	"$DOCKER" rm -f $left >/dev/null
fi
left=$("$DOCKER" network ls -q --filter label=io.geolab.lab)
# shellcheck disable=SC2086
if [[ -n $left ]]; then "$DOCKER" network rm $left >/dev/null; fi
if [[ $CHAOS_PROVIDER == swarm ]]; then
	# shellcheck disable=SC2046 # lists of names
	"$DOCKER" volume rm $("$DOCKER" volume ls -q --filter label=io.geolab.lab) >/dev/null 2>&1 || true
	# shellcheck disable=SC2046
	"$DOCKER" config rm $("$DOCKER" config ls -q --filter label=io.geolab.lab) >/dev/null 2>&1 || true
fi

mkdir -p "$REPORTS"
t0=$(date +%s)
run=()
if [[ -n ${DOCKER_RUN:-} ]]; then run=(-run "$DOCKER_RUN"); fi
p=$CHAOS_PROVIDER
# A swarm lab starts and heals slower (a new task per restart): ./lab takes 7-13 min there.
limit=15m
if [[ $p == swarm ]]; then limit=25m; fi
echo "PROVIDER=$p $GO test -count=1 -timeout $limit -v ${run[*]} ${tests[*]}   (log ${REPORTS#"$root"/}/$p-tests.log)"
PROVIDER=$p "$GO" test -count=1 -timeout "$limit" -v "${run[@]}" "${tests[@]}" 2>&1 | tee "$REPORTS/$p-tests.log" |
	grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|#)|\.go:[0-9]+:'
echo "PROVIDER=$p $GINKGO --label-filter='$DOCKER_LABELS' ... ./specs/chaos"
PROVIDER=$p "$GINKGO" --label-filter="$DOCKER_LABELS" --junit-report="junit-$p.xml" \
	--output-dir="$REPORTS" --keep-going --timeout 20m ./specs/chaos
echo "make chaos-$p: passed in $(($(date +%s) - t0))s"
