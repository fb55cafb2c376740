#!/usr/bin/env bash
# docker-engine.sh: start a Docker engine when none answers, and stop only the
# one it started. Whether an engine is up is always asked of the engine
# ('docker info'), never read from a file; the pid file only says which
# dockerd this script started, and a pid there that is no longer that dockerd
# is stale and is not killed.
#
# usage: scripts/docker-engine.sh start|stop|status
#   start   nothing when an engine answers; else (as root) start
#           'nice -n 10 dockerd DOCKERD_FLAGS' in the background, record its
#           pid in DOCKERD_PID, and wait until it answers. Run by 'make deps-docker'.
#   stop    stop the dockerd whose pid DOCKERD_PID records (SIGTERM, SIGKILL
#           after the wait) and remove the file; nothing when there is none.
#           Run by 'make chaos-docker' when the engine was not up before it.
#   status  say whether an engine answers and whether this script started it.
#
# environment:
#   DOCKERD_FLAGS  dockerd's flags (default --iptables=false --storage-driver=vfs)
#   DOCKERD_LOG    its log (default bin/dockerd.log)
#   DOCKERD_PID    the pid of the dockerd it started (default bin/dockerd.pid)
#   DOCKERD_WAIT   seconds to wait for it to answer or to stop (default 60)
#   DOCKER         the docker CLI (default docker); DOCKERD the engine (default dockerd)
#
# exit codes: 0 done (start: an engine answers; status: an engine answers);
# 1 no engine and none could be started (not root, or it did not answer in
# time; the log's tail is shown), or status: no engine answers; 2 usage error.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 1 || ! $1 =~ ^(start|stop|status)$ ]]; then
	usage_error "docker-engine.sh: want one of start, stop, status; got: ${*:-nothing}" "scripts/docker-engine.sh start|stop|status (--help for more)"
fi
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD:-dockerd}
DOCKERD_FLAGS=${DOCKERD_FLAGS:---iptables=false --storage-driver=vfs}
DOCKERD_LOG=${DOCKERD_LOG:-$root/bin/dockerd.log}
DOCKERD_PID=${DOCKERD_PID:-$root/bin/dockerd.pid}
DOCKERD_WAIT=${DOCKERD_WAIT:-60}

answers() { "$DOCKER" info >/dev/null 2>&1; }

# ours prints the pid DOCKERD_PID records when that process is still the
# dockerd this script started (its name is DOCKERD's); else it fails.
ours() {
	local pid comm want
	[[ -f $DOCKERD_PID ]] || return 1
	pid=$(<"$DOCKERD_PID")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	want=$(basename "$DOCKERD")
	[[ $comm == "${want:0:15}" ]] || return 1
	[[ $(sed -E 's/.*\) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) != Z ]] || return 1
	echo "$pid"
}

# wait_until CMD...: true once CMD succeeds, polling every 0.5 s for DOCKERD_WAIT seconds.
wait_until() {
	local i
	for ((i = 0; i < DOCKERD_WAIT * 2; i++)); do
		"$@" && return 0
		sleep 0.5
	done
	"$@"
}

case $1 in
start)
	answers && exit 0
	if pid=$(ours); then
		echo "make deps-docker: dockerd (pid $pid, started earlier) does not answer yet: waiting"
	else
		if [[ $(id -u) -ne 0 ]]; then
			echo "make deps-docker: no Docker engine answers and this is not root: start one ('sudo dockerd $DOCKERD_FLAGS &' or your system's service)" >&2
			exit 1
		fi
		mkdir -p "$(dirname "$DOCKERD_LOG")" "$(dirname "$DOCKERD_PID")"
		echo "make deps-docker: no Docker engine answers: starting dockerd $DOCKERD_FLAGS (log ${DOCKERD_LOG#"$root"/})"
		# shellcheck disable=SC2086 # DOCKERD_FLAGS is a list of flags
		nohup nice -n 10 "$DOCKERD" $DOCKERD_FLAGS >"$DOCKERD_LOG" 2>&1 </dev/null &
		echo $! >"$DOCKERD_PID"
	fi
	wait_until answers && exit 0
	tail -20 "$DOCKERD_LOG" >&2 || true
	echo "make deps-docker: dockerd did not answer within ${DOCKERD_WAIT}s (log above)" >&2
	exit 1
	;;
stop)
	[[ -f $DOCKERD_PID ]] || exit 0
	if ! pid=$(ours); then
		echo "docker-engine.sh: ${DOCKERD_PID#"$root"/} names no running $(basename "$DOCKERD") (stale): removed, nothing stopped"
		rm -f "$DOCKERD_PID"
		exit 0
	fi
	echo "docker-engine.sh: stopping the engine it started (dockerd, pid $pid)"
	kill "$pid" 2>/dev/null || true
	# Gone: no such process, or a zombie its parent has not reaped yet.
	gone() { ! kill -0 "$pid" 2>/dev/null || [[ $(sed -E 's/.*\) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) == Z ]]; }
	if ! wait_until gone; then
		echo "docker-engine.sh: dockerd (pid $pid) did not stop within ${DOCKERD_WAIT}s: killing it" >&2
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$DOCKERD_PID"
	;;
status)
	if ! answers; then
		echo "docker-engine.sh: no Docker engine answers"
		exit 1
	fi
	if pid=$(ours); then
		echo "docker-engine.sh: the Docker engine is dockerd pid $pid, which 'scripts/docker-engine.sh start' started; it stays up for the next run (stop it: scripts/docker-engine.sh stop; make chaos-docker stops the engine it starts)"
	else
		echo "docker-engine.sh: a Docker engine answers (not one this script started)"
	fi
	;;
esac
