#!/usr/bin/env bash
# swarm.sh: make the local Docker engine a one-node swarm when it is not one,
# and undo only what it did. Whether the engine is in a swarm is always asked
# of the engine ('docker info'); the mark file only says that this script made
# the swarm. The engine itself is started (and stopped) by docker-engine.sh.
#
# usage: scripts/swarm.sh start|stop|status
#   start   start an engine when none answers (scripts/docker-engine.sh start);
#           nothing more when it is already in a swarm. Else create the bridge
#           docker_gwbridge with host_binding_ipv4=127.0.0.1 (published ports of
#           the swarm provider then listen on the host's loopback only: no task
#           reaches another's port through the host) unless it exists, run
#           'docker swarm init --advertise-addr SWARM_ADVERTISE', and write
#           SWARM_MARK. Run by 'make deps-swarm'.
#   stop    when SWARM_MARK exists: 'docker swarm leave --force', remove the
#           docker_gwbridge it created, remove the mark; nothing otherwise (a
#           swarm it did not make is left alone). Run by 'make chaos-swarm' at
#           exit, before it stops an engine it started.
#   status  say whether the engine is in a swarm and whether this script made it.
#
# environment:
#   SWARM_MARK       the file that says this script made the swarm (default bin/swarm.created)
#   SWARM_ADVERTISE  the address the swarm advertises (default 127.0.0.1: a swarm
#                    of this machine alone; a swarm of several machines is made
#                    by hand, docs/swarm.md)
#   DOCKER           the docker CLI (default docker)
#   and what scripts/docker-engine.sh reads (DOCKERD_FLAGS, DOCKERD_PID, ...)
#
# exit codes: 0 done (status: the engine is in a swarm); 1 no engine, or the
# swarm could not be made or left (the engine's message is shown), or status:
# not in a swarm; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 1 || ! $1 =~ ^(start|stop|status)$ ]]; then
	usage_error "swarm.sh: want one of start, stop, status; got: ${*:-nothing}" "scripts/swarm.sh start|stop|status (--help for more)"
fi
DOCKER=${DOCKER:-docker}
SWARM_MARK=${SWARM_MARK:-$root/bin/swarm.created}
SWARM_ADVERTISE=${SWARM_ADVERTISE:-127.0.0.1}

# state prints the engine's swarm state: active, inactive, pending, ... ("" when no engine answers).
state() { "$DOCKER" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true; }

case $1 in
start)
	"$here/docker-engine.sh" start
	[[ $(state) == active ]] && exit 0
	echo "make deps-swarm: the engine is not in a swarm: docker swarm init --advertise-addr $SWARM_ADVERTISE"
	made_bridge=0
	if ! "$DOCKER" network inspect docker_gwbridge >/dev/null 2>&1; then
		"$DOCKER" network create --label io.geolab.swarm=deps-swarm --opt com.docker.network.bridge.name=docker_gwbridge \
			--opt com.docker.network.bridge.enable_icc=false --opt com.docker.network.bridge.enable_ip_masquerade=true \
			--opt com.docker.network.bridge.host_binding_ipv4=127.0.0.1 docker_gwbridge >/dev/null
		made_bridge=1
	fi
	"$DOCKER" swarm init --advertise-addr "$SWARM_ADVERTISE" >/dev/null
	mkdir -p "$(dirname "$SWARM_MARK")"
	echo "swarm made by scripts/swarm.sh; docker_gwbridge made: $made_bridge" >"$SWARM_MARK"
	;;
stop)
	[[ -f $SWARM_MARK ]] || exit 0
	if [[ $(state) == active ]]; then
		echo "swarm.sh: leaving the swarm it made (docker swarm leave --force)"
		"$DOCKER" swarm leave --force >/dev/null
	fi
	if grep -q 'docker_gwbridge made: 1' "$SWARM_MARK"; then
		"$DOCKER" network rm docker_gwbridge >/dev/null 2>&1 || true
	fi
	rm -f "$SWARM_MARK"
	;;
status)
	s=$(state)
	if [[ $s != active ]]; then
		echo "swarm.sh: the engine is not in a swarm (${s:-no engine answers})"
		exit 1
	fi
	if [[ -f $SWARM_MARK ]]; then
		echo "swarm.sh: the engine is a swarm that 'scripts/swarm.sh start' made; it stays for the next run (leave it: scripts/swarm.sh stop; make chaos-swarm leaves the swarm it makes)"
	else
		echo "swarm.sh: the engine is in a swarm (not one this script made)"
	fi
	;;
esac
