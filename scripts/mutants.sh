#!/usr/bin/env bash
# mutants.sh: prove that the chaos specs catch each deliberate breakage
# (internal/faulty, docs/mutants.md). It builds geolab with -tags faulty, then
# for each mutant:group of MUTANTS runs that chaos group against the faulty
# binary with GEOLAB_FAULTY=mutant and --fail-fast, logging to
# REPORTS/mutants/MUTANT.log. It passes only if every group fails (the mutant
# is caught), and names every mutant that survived. Run by 'make chaos-mutants'.
#
# usage: scripts/mutants.sh
#
# environment:
#   MUTANTS     mutant:group pairs, space-separated (e.g. 'echo:dedup'); the
#               Makefile lists them all
#   GO          the go command (default go)
#   GINKGO      the Ginkgo CLI (default bin/ginkgo)
#   FAULTY_BIN  the faulty build it writes and runs (default bin/geolab-faulty;
#               absolute, as GEOLAB_BIN must be)
#   REPORTS     where the logs go, under mutants/ (default reports)
#
# exit codes: 0 every mutant was caught; 1 a mutant survived (named), or the
# faulty build failed; 2 usage error (MUTANTS empty or an entry not mutant:group).
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "mutants.sh: takes no arguments (set MUTANTS), got: $*" "MUTANTS='mutant:group ...' scripts/mutants.sh (--help for more)"
fi
GO=${GO:-go}
GINKGO=${GINKGO:-$root/bin/ginkgo}
FAULTY_BIN=${FAULTY_BIN:-$root/bin/geolab-faulty}
REPORTS=${REPORTS:-$root/reports}
read -r -a mutants <<<"${MUTANTS:-}"
if [[ ${#mutants[@]} -eq 0 ]]; then
	echo "make chaos-mutants: MUTANTS is empty: list mutant:group pairs (docs/mutants.md)" >&2
	exit 2
fi
for m in "${mutants[@]}"; do
	if [[ $m != ?*:?* ]]; then
		echo "make chaos-mutants: MUTANTS entry '$m' is not mutant:group" >&2
		exit 2
	fi
done
if [[ $FAULTY_BIN != /* ]]; then
	echo "make chaos-mutants: FAULTY_BIN=$FAULTY_BIN must be an absolute path (GEOLAB_BIN is read in each spec package's directory)" >&2
	exit 2
fi
cd "$root"

echo "$GO build -tags faulty -o $FAULTY_BIN ./cmd/geolab"
"$GO" build -tags faulty -o "$FAULTY_BIN" ./cmd/geolab
mkdir -p "$REPORTS/mutants"
survived=()
for m in "${mutants[@]}"; do
	name=${m%%:*} label=${m#*:}
	log=$REPORTS/mutants/$name.log
	echo "== mutant $name: chaos group $label must fail"
	if GEOLAB_BIN=$FAULTY_BIN GEOLAB_FAULTY=$name "$GINKGO" --label-filter="$label" --fail-fast \
		--timeout 15m ./specs/chaos >"$log" 2>&1; then
		echo "   SURVIVED: the $label specs passed against $name (${log#"$root"/})"
		survived+=("$name")
	else
		first=$(grep -m1 -o '\[FAIL\].*' "$log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160 || true)
		echo "   caught: ${first:-(no [FAIL] line: see ${log#"$root"/})}"
	fi
done
if [[ ${#survived[@]} -gt 0 ]]; then
	echo "make chaos-mutants: survived: ${survived[*]}" >&2
	exit 1
fi
echo "make chaos-mutants: every mutant was caught"
