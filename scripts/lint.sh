#!/usr/bin/env bash
# lint.sh: gofmt (lists the files that are not formatted), go vet, then
# staticcheck at a pinned version, installed when the one there is another.
# Run by 'make lint' on the repository; DIR lints another module.
#
# The pin: staticcheck 2026.2.2 (module v0.8.2), the newest release listed by
# 'go list -m -versions honnef.co/go/tools'; it knows Go 1.26.
#
# usage: scripts/lint.sh [DIR]
#   DIR  the module to lint (default: this repository)
#
# environment:
#   GO                   the go command (default go)
#   GOFMT                the gofmt command (default gofmt)
#   STATICCHECK          the staticcheck binary (default bin/staticcheck);
#                        installed as staticcheck into its directory (GOBIN)
#   STATICCHECK_VERSION  the pinned module version (default v0.8.2)
#
# exit codes: 0 clean; 1 a file is not formatted (listed), or go vet or
# staticcheck found something, or the install failed; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -gt 1 ]]; then
	usage_error "lint.sh: at most one argument DIR, got $#: $*" "scripts/lint.sh [DIR] (--help for more)"
fi
dir=${1:-$root}
if [[ ! -f $dir/go.mod ]]; then
	echo "make lint: $dir is not a Go module (no go.mod)" >&2
	exit 2
fi
GO=${GO:-go}
GOFMT=${GOFMT:-gofmt}
STATICCHECK=${STATICCHECK:-$root/bin/staticcheck}
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
cd "$dir"

out=$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*' -print0 | xargs -0 -r "$GOFMT" -l)
if [[ -n $out ]]; then
	echo "gofmt: these files are not formatted (run gofmt -w):" >&2
	echo "$out" >&2
	exit 1
fi
echo "$GO vet ./..."
"$GO" vet ./...
have=$("$STATICCHECK" -version 2>/dev/null || true)
if [[ $have != *"(${STATICCHECK_VERSION#v})"* ]]; then
	bindir=$(dirname "$STATICCHECK")
	echo "make lint: installing staticcheck $STATICCHECK_VERSION into ${bindir#"$root"/}/"
	GOBIN=$bindir "$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
echo "staticcheck ./..."
"$STATICCHECK" ./...
