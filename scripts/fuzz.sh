#!/usr/bin/env bash
# fuzz.sh: run each fuzz target of FUZZ_TARGETS for FUZZTIME, one after
# another. It first checks that every listed target exists, so a renamed or
# misspelt one fails at once, by name, instead of fuzzing nothing. Run by
# 'make fuzz' and 'make test'.
#
# usage: scripts/fuzz.sh
#
# environment:
#   FUZZ_TARGETS  the targets, space-separated, as package:FuzzName (e.g.
#                 './lab/link:FuzzParseName'); the Makefile lists them all
#   FUZZTIME      how long each target runs (default 5s)
#   GO            the go command (default go)
#
# exit codes: 0 every target ran and found nothing; 1 a listed target does not
# exist, or go test failed (a fuzz failure: its input is written to the
# package's testdata/fuzz/); 2 usage error (no targets, or one not package:FuzzName).
# A run that fails only with Go 1.26's bare "context deadline exceeded" at the end
# of FUZZTIME and wrote no failing input (golang/go#75804) is run once more.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "fuzz.sh: takes no arguments (set FUZZ_TARGETS), got: $*" "FUZZ_TARGETS='pkg:FuzzName ...' scripts/fuzz.sh (--help for more)"
fi
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
read -r -a targets <<<"${FUZZ_TARGETS:-}"
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "make fuzz: FUZZ_TARGETS is empty: list targets as package:FuzzName" >&2
	exit 2
fi
for t in "${targets[@]}"; do
	if [[ $t != ?*:Fuzz* ]]; then
		echo "make fuzz: FUZZ_TARGETS entry '$t' is not package:FuzzName" >&2
		exit 2
	fi
done
cd "$root"

for t in "${targets[@]}"; do
	pkg=${t%%:*} name=${t##*:}
	if ! "$GO" test -list "^${name}\$" "$pkg" | grep -x "$name" >/dev/null; then
		echo "make fuzz: no fuzz target $name in $pkg (listed in FUZZ_TARGETS)" >&2
		exit 1
	fi
done
# fuzz_once PKG NAME: one fuzzing run; its output is shown and kept in $out.
fuzz_once() {
	local rc=0
	echo "go test -run '^\$' -fuzz '^${2}\$' -fuzztime $FUZZTIME -fuzzminimizetime 3s $1"
	"$GO" test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 3s "$1" >"$out" 2>&1 || rc=$?
	cat "$out"
	return "$rc"
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${targets[@]}"; do
	pkg=${t%%:*} name=${t##*:}
	if fuzz_once "$pkg" "$name"; then continue; fi
	# Go 1.26's fuzz coordinator can report a bare "context deadline
	# exceeded" at the end of -fuzztime when a worker is slow to stop
	# (golang/go#75804, fixed in Go 1.27): no input failed. Such a run, and
	# only such a run (no failing input written), is tried once more.
	if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
		echo "make fuzz: $name: 'context deadline exceeded' with no failing input (Go's fuzz coordinator, golang/go#75804): running it once more"
		fuzz_once "$pkg" "$name" && continue
	fi
	echo "make fuzz: $name failed (above)" >&2
	exit 1
done
