#!/usr/bin/env bash
# build-images.sh: build geolab's container images from this machine, with no
# registry: every image is FROM scratch with static binaries (geolab and
# Toxiproxy, CGO_ENABLED=0) or with a binary and the shared libraries ldd lists
# (redis-server). Run by 'make images'; see docs/docker.md.
#
#   GEOLAB_IMAGE     geolab (gateway, federation, ...)   default geolab/geolab:dev
#   TOXIPROXY_IMAGE  Toxiproxy 2.5.0 server              default geolab/toxiproxy:dev
#   REDIS_IMAGE      redis-server (from PATH)            default geolab/redis:dev
#
# An image named outside geolab/ (e.g. REDIS_IMAGE=redis:7.2) is not built:
# it is an official image that docker pulls from a registry on first use.
set -euo pipefail

GO=${GO:-go}
DOCKER=${DOCKER:-docker}
GEOLAB_IMAGE=${GEOLAB_IMAGE:-geolab/geolab:dev}
TOXIPROXY_IMAGE=${TOXIPROXY_IMAGE:-geolab/toxiproxy:dev}
REDIS_IMAGE=${REDIS_IMAGE:-geolab/redis:dev}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ours() { [[ $1 == geolab/* ]]; }

# build NAME DOCKERFILE CONTEXT: docker build, niced (other work shares the machine).
build() {
	echo "images: building $1"
	# The classic builder: it needs no buildx plugin, and FROM scratch no registry.
	if ! DOCKER_BUILDKIT=0 nice -n 10 "$DOCKER" build --quiet -f "$2" -t "$1" "$3" >"$work/build.log" 2>&1; then
		grep -v -e DEPRECATED -e 'BuildKit is currently disabled' -e 'environment-variable' "$work/build.log" >&2
		echo "images: building $1 failed" >&2
		exit 1
	fi
	echo "images: $1 $("$DOCKER" image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
}

if ours "$GEOLAB_IMAGE"; then
	ctx=$work/geolab
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc/geolab"
	chmod 1777 "$ctx/rootfs/tmp"
	(cd "$root" && CGO_ENABLED=0 nice -n 10 "$GO" build -trimpath -o "$ctx/rootfs/usr/local/bin/geolab" ./cmd/geolab)
	build "$GEOLAB_IMAGE" "$root/docker/geolab.Dockerfile" "$ctx"
else
	echo "images: GEOLAB_IMAGE=$GEOLAB_IMAGE is not geolab/...: not built"
fi

if ours "$TOXIPROXY_IMAGE"; then
	ctx=$work/toxiproxy
	mkdir -p "$ctx/rootfs"
	# The server of the Toxiproxy module go.mod requires (v2.5.0).
	(cd "$root" && CGO_ENABLED=0 nice -n 10 "$GO" build -trimpath -o "$ctx/rootfs/toxiproxy" github.com/Shopify/toxiproxy/v2/cmd/server)
	build "$TOXIPROXY_IMAGE" "$root/docker/toxiproxy.Dockerfile" "$ctx"
else
	echo "images: TOXIPROXY_IMAGE=$TOXIPROXY_IMAGE is not geolab/...: not built (it must serve the Toxiproxy API on 8474, see docs/docker.md)"
fi

if ours "$REDIS_IMAGE"; then
	if [[ -z $REDIS_SERVER ]]; then
		echo "images: redis-server is not on PATH: run 'make deps-redis' (or set REDIS_IMAGE=redis:7.2 to use the official image)" >&2
		exit 1
	fi
	ctx=$work/redis
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/data"
	# Debian's redis-server is a link to redis-check-rdb; the binary picks its
	# mode from argv[0], so it must be named redis-server.
	cp -L "$REDIS_SERVER" "$ctx/rootfs/usr/local/bin/redis-server"
	# Every shared library ldd lists, at its path, and the dynamic loader.
	ldd "$REDIS_SERVER" | awk '/=>/ { print $3 } /^\t\// { print $1 }' | while read -r lib; do
		[[ -f $lib ]] || continue
		mkdir -p "$ctx/rootfs$(dirname "$lib")"
		cp -L "$lib" "$ctx/rootfs$lib"
	done
	build "$REDIS_IMAGE" "$root/docker/redis.Dockerfile" "$ctx"
else
	echo "images: REDIS_IMAGE=$REDIS_IMAGE is not geolab/...: not built (docker pulls it on first use)"
fi
