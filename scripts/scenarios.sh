#!/usr/bin/env bash
# scenarios.sh: run every scenario file (*.yaml) of a directory with
# 'geolab run FILE --quiet', one after another; each writes its reports into
# reports/NAME-seedN/. It runs them all and then fails naming every one that
# failed. Run by 'make scenarios' (over scenarios/).
#
# usage: scripts/scenarios.sh [DIR]
#   DIR  the directory of scenario files (default scenarios)
#
# environment:
#   GEOLAB_BIN  the geolab binary (default bin/geolab; 'make build')
#
# exit codes: 0 every scenario passed; 1 a scenario failed (named); 2 usage
# error (no such directory, no *.yaml in it, GEOLAB_BIN not executable).
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -gt 1 ]]; then
	usage_error "scenarios.sh: at most one argument DIR, got $#: $*" "scripts/scenarios.sh [DIR] (--help for more)"
fi
cd "$root"
dir=${1:-scenarios}
GEOLAB_BIN=${GEOLAB_BIN:-$root/bin/geolab}
if [[ ! -d $dir ]]; then
	echo "make scenarios: no such directory: $dir" >&2
	exit 2
fi
shopt -s nullglob
files=("${dir%/}"/*.yaml)
if [[ ${#files[@]} -eq 0 ]]; then
	echo "make scenarios: no scenario files (*.yaml) in $dir" >&2
	exit 2
fi
if [[ ! -x $GEOLAB_BIN ]]; then
	echo "make scenarios: GEOLAB_BIN=$GEOLAB_BIN is not an executable: run 'make build'" >&2
	exit 2
fi

failed=()
for f in "${files[@]}"; do
	echo "== geolab run $f"
	"$GEOLAB_BIN" run "$f" --quiet || failed+=("$f")
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "make scenarios: failed: ${failed[*]}" >&2
	exit 1
fi
