#!/usr/bin/env bash
# apt-install.sh: make sure a command is on PATH, installing the Debian
# packages that provide it with apt-get when it is missing. Quiet when the
# command is already there. Run by 'make deps-redis', 'make deps-cc',
# 'make deps-docker' and 'make report-png'.
#
# usage: scripts/apt-install.sh CMD PKGS WHAT
#   CMD   a command name or path that must be on PATH (e.g. redis-server, /usr/bin/chromium)
#   PKGS  the Debian packages that provide it, space-separated (e.g. 'gcc libc6-dev')
#   WHAT  what it is for, for the messages
#
# environment:
#   APT_GET  the apt-get command (default apt-get)
#
# exit codes: 0 the command is there (or was installed); 1 it is missing and
# could not be installed (not root, no apt-get, or still missing after
# apt-get); 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 3 || -z $1 || -z $2 ]]; then
	usage_error "apt-install.sh: want 3 arguments CMD PKGS WHAT, got $#: $*" "scripts/apt-install.sh CMD PKGS WHAT (--help for more)"
fi
cmd=$1 pkgs=$2 what=$3
APT_GET=${APT_GET:-apt-get}

if command -v "$cmd" >/dev/null 2>&1; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
	echo "make deps: $cmd ($what) is not on PATH and this is not root: run the make target with sudo or 'sudo apt-get install -y $pkgs'" >&2
	exit 1
fi
if ! command -v "$APT_GET" >/dev/null 2>&1; then
	echo "make deps: $cmd ($what) is not on PATH and there is no apt-get: install $pkgs yourself" >&2
	exit 1
fi
echo "make deps: $cmd not found: installing $pkgs with apt-get"
"$APT_GET" update -qq >/dev/null
# shellcheck disable=SC2086 # PKGS is a list of packages
DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -qq $pkgs >/dev/null
if ! command -v "$cmd" >/dev/null 2>&1; then
	echo "make deps: apt-get installed $pkgs but $cmd is still not on PATH" >&2
	exit 1
fi
