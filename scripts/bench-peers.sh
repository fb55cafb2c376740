#!/usr/bin/env bash
# bench-peers.sh: measure the fan-out of one geolab gateway beside Centrifugo
# v6.9.1 with the same separate load process, and print one table (geolab
# bench peers; BENCHMARKS.md says how to read it). Installs Centrifugo first
# when it is missing: 'GOBIN=bin go install github.com/centrifugal/centrifugo/v6@v6.9.1'
# (from the Go module proxy; tried once). Run by 'make bench-peers', which
# builds bin/geolab and installs redis-server first.
#
# usage: scripts/bench-peers.sh
#
# environment:
#   GO                the go command (default go)
#   GEOLAB_BIN        the geolab binary (default bin/geolab)
#   CENTRIFUGO        the centrifugo binary (default bin/centrifugo); installed into its directory when missing
#   BENCH_PEERS_ARGS  more arguments of geolab bench peers, e.g. '--rates 20,40 --duration 10s'
#
# exit codes: 0 the table was printed; 1 Centrifugo could not be installed, or
# a step of the benchmark failed; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "bench-peers.sh: takes no arguments (set BENCH_PEERS_ARGS), got: $*" "scripts/bench-peers.sh (--help for more)"
fi
GO=${GO:-go}
GEOLAB_BIN=${GEOLAB_BIN:-$root/bin/geolab}
CENTRIFUGO=${CENTRIFUGO:-$root/bin/centrifugo}
cd "$root"

if [[ ! -x $CENTRIFUGO ]]; then
	dir=$(dirname "$CENTRIFUGO")
	echo "make bench-peers: installing Centrifugo v6.9.1 into ${dir#"$root"/}/ (go install from the module proxy; a few minutes)"
	mkdir -p "$dir"
	if ! GOBIN=$dir "$GO" install github.com/centrifugal/centrifugo/v6@v6.9.1; then
		echo "make bench-peers: 'go install github.com/centrifugal/centrifugo/v6@v6.9.1' failed (its error is above): no Centrifugo to compare with" >&2
		exit 1
	fi
	if [[ $(basename "$CENTRIFUGO") != centrifugo ]]; then
		mv "$dir/centrifugo" "$CENTRIFUGO"
	fi
fi
# shellcheck disable=SC2086 # BENCH_PEERS_ARGS is a list of arguments
exec "$GEOLAB_BIN" bench peers --centrifugo "$CENTRIFUGO" ${BENCH_PEERS_ARGS:-}
