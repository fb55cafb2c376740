#!/usr/bin/env bash
# report-png.sh: render a report.html that 'geolab run' wrote to report.png
# beside it, with headless chromium (installed with apt-get when missing, as
# root). Run by 'make report-png REPORT=reports/<run>/report.html'.
#
# usage: REPORT=reports/<run>/report.html scripts/report-png.sh
#
# environment:
#   REPORT         the report.html to render (required)
#   REPORT_WINDOW  chromium's window, the screenshot's size (default 1400,3000)
#   CHROMIUM       the browser (default /usr/bin/chromium, Debian's chromium)
#
# exit codes: 0 report.png written; 1 chromium missing and not installable,
# or it wrote no PNG (its output is shown); 2 usage error (REPORT unset, or
# no such file).
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "report-png.sh: takes no arguments (set REPORT), got: $*" "make report-png REPORT=reports/<run>/report.html"
fi
REPORT=${REPORT:-}
REPORT_WINDOW=${REPORT_WINDOW:-1400,3000}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ -z $REPORT ]]; then
	usage_error "make report-png: REPORT is not set" "make report-png REPORT=reports/<run>/report.html"
fi
if [[ ! -f $REPORT ]]; then
	echo "make report-png: no such file: $REPORT" >&2
	exit 2
fi
"$here/apt-install.sh" "$CHROMIUM" chromium "headless rendering of report.html to a PNG"

html=$(realpath "$REPORT")
out=$(dirname "$html")/report.png
profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
rm -f "$out"
if ! "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$profile" --window-size="$REPORT_WINDOW" --screenshot="$out" "file://$html" >"$log" 2>&1 ||
	[[ ! -s $out ]]; then
	cat "$log" >&2
	echo "make report-png: chromium wrote no $out" >&2
	exit 1
fi
echo "make report-png: wrote $out"
