#!/usr/bin/env bash
# compose.sh: bring the two-region stack of docker-compose.yml up or down
# (docs/docker.md), with 'docker compose' when the Compose v2 plugin answers,
# else with docker-compose (Compose v1, Debian's package). 'up' needs the
# images: 'make compose-up' runs 'make images' first.
#
# usage: scripts/compose.sh up|down|config
#   up      'up -d', then wait until both gateways answer /readyz through their
#           client links, and print the endpoints. Run by 'make compose-up'.
#   down    'down -v': stop and remove the stack, its networks and volumes.
#           Run by 'make compose-down'.
#   config  check the file ('config -q'); needs no engine.
#
# environment:
#   COMPOSE         the Compose command, word-split (default: 'docker compose'
#                   when 'docker compose version' answers, else docker-compose)
#   DOCKER          the docker CLI (default docker); DOCKER_COMPOSE Compose v1 (default docker-compose)
#   COMPOSE_WAIT    seconds 'up' waits for the gateways (default 60; 0: no wait)
#   GEOLAB_US_EAST_PORT, GEOLAB_EU_WEST_PORT, GEOLAB_TOXIPROXY_PORT and the
#   rest of docker-compose.yml's variables (images, GEOLAB_JWT_SECRET) are
#   passed to Compose as they are; COMPOSE_PROJECT_NAME names the project.
#
# exit codes: 0 done (up: both gateways ready); 1 Compose failed or a gateway
# was not ready in time (the stack's state and logs are shown); 2 usage error
# or no Compose installed.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
if [[ $# -ne 1 || ! $1 =~ ^(up|down|config)$ ]]; then
	usage_error "compose.sh: want one of up, down, config; got: ${*:-nothing}" "scripts/compose.sh up|down|config (--help for more)"
fi
DOCKER=${DOCKER:-docker}
DOCKER_COMPOSE=${DOCKER_COMPOSE:-docker-compose}
COMPOSE_WAIT=${COMPOSE_WAIT:-60}

if [[ -n ${COMPOSE:-} ]]; then
	read -r -a compose <<<"$COMPOSE"
elif "$DOCKER" compose version >/dev/null 2>&1; then
	compose=("$DOCKER" compose)
elif command -v "$DOCKER_COMPOSE" >/dev/null 2>&1; then
	compose=("$DOCKER_COMPOSE")
else
	echo "compose.sh: neither 'docker compose' nor docker-compose is installed ('make deps-docker' installs docker-compose)" >&2
	exit 2
fi
compose+=(-f "$root/docker-compose.yml")

# ready PORT: true when the gateway behind 127.0.0.1:PORT answers GET /readyz with 200.
ready() {
	local status
	status=$(
		exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 2 line <&3 && echo "$line"
	) || true
	[[ $status == "HTTP/1."?" 200"* ]]
}

case $1 in
config)
	"${compose[@]}" config -q
	echo "compose.sh: docker-compose.yml is valid (${compose[*]:0:${#compose[@]}-2})"
	;;
down)
	echo "${compose[*]} down -v"
	"${compose[@]}" down -v
	;;
up)
	echo "${compose[*]} up -d"
	"${compose[@]}" up -d
	us=${GEOLAB_US_EAST_PORT:-20001} eu=${GEOLAB_EU_WEST_PORT:-20002} api=${GEOLAB_TOXIPROXY_PORT:-8474}
	if ((COMPOSE_WAIT > 0)); then
		for ((i = 0; i < COMPOSE_WAIT * 2; i++)); do
			if ready "$us" && ready "$eu"; then break; fi
			sleep 0.5
		done
		if ! { ready "$us" && ready "$eu"; }; then
			"${compose[@]}" ps >&2 || true
			"${compose[@]}" logs --tail 20 >&2 || true
			echo "compose.sh: the gateways did not answer /readyz on 127.0.0.1:$us and 127.0.0.1:$eu within ${COMPOSE_WAIT}s (state and logs above; 'make compose-down' removes the stack)" >&2
			exit 1
		fi
	fi
	echo "compose.sh: the stack is up: ws://127.0.0.1:$us/ws (us-east), ws://127.0.0.1:$eu/ws (eu-west), Toxiproxy API 127.0.0.1:$api"
	echo "  bin/geolab fault partition us-east eu-west --toxiproxy 127.0.0.1:$api    # break it (docs/docker.md); make compose-down removes it"
	;;
esac
