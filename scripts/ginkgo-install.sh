#!/usr/bin/env bash
# ginkgo-install.sh: install the Ginkgo CLI at the version of the Ginkgo
# library go.mod requires, unless that version is already there. Quiet when it
# is. Run by 'make deps-ginkgo' (part of 'make deps').
#
# usage: scripts/ginkgo-install.sh
#
# environment:
#   GO      the go command (default go)
#   GINKGO  the CLI (default bin/ginkgo); it is installed as ginkgo into its directory (GOBIN)
#
# exit codes: 0 the right version is there (or was installed); 1 go.mod's
# version cannot be read or 'go install' failed; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 0 ]]; then
	usage_error "ginkgo-install.sh: takes no arguments, got: $*" "scripts/ginkgo-install.sh (--help for more)"
fi
GO=${GO:-go}
GINKGO=${GINKGO:-$root/bin/ginkgo}
cd "$root"

want=$("$GO" list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2 2>/dev/null || true)
if [[ -z $want ]]; then
	echo "make deps: cannot read the ginkgo version from go.mod ($GO list -m github.com/onsi/ginkgo/v2)" >&2
	exit 1
fi
have=$("$GINKGO" version 2>/dev/null | awk '{ print "v" $NF }' || true)
if [[ $have != "$want" ]]; then
	dir=$(dirname "$GINKGO")
	echo "make deps: installing the Ginkgo CLI $want into ${dir#"$root"/}/"
	GOBIN=$dir "$GO" install "github.com/onsi/ginkgo/v2/ginkgo@$want"
fi
