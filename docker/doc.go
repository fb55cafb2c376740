// Package docker holds what geolab's containers are made of — the
// Dockerfiles and build-images.sh ('make images'), the compose stack's
// configs under compose/ — and the test that brings docker-compose.yml up
// and carries a message across its regions (docs/docker.md).
package docker
