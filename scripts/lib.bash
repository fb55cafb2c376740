# lib.bash: the start every script in this folder shares; sourced, never run:
#   . "$(dirname "$0")/lib.bash"
# right after 'set -euo pipefail'. It sets here (this folder) and root (the
# repository), and answers -h/--help with the calling script's header
# comment (its lines from the second to the first that is not a comment).

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	usage
	exit 0
fi

# usage_error MESSAGE USAGE: MESSAGE (naming what is wrong) and 'usage: USAGE'
# on stderr, then exit 2.
usage_error() {
	printf '%s\n' "$1" "usage: $2" >&2
	exit 2
}
