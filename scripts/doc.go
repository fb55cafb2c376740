// Package scripts holds the shell programs behind the Makefile's targets: each
// recipe longer than a line or two is a bash script here (set -euo pipefail),
// whose header comment says what it does, the environment variables it reads
// and its exit codes, and which `--help` prints. The Makefile stays the index
// (`make help`) and passes its variables (LABELS, FUZZ_TARGETS, MUTANTS,
// DOCKER_TESTS, ...) through the environment.
//
// Every script is tested by running it: `make test` runs test.sh, fuzz.sh,
// chaos-docker.sh, docker-engine.sh, apt-install.sh and ginkgo-install.sh for
// real, and scripts_test.go (run by `go test ./...`, so by `make test`) runs
// each script's syntax check, `--help` and usage errors, and runs each in a
// cheap mode with stand-in commands (GO, GINKGO, DOCKER, GEOLAB_BIN, ...)
// that record what the script asked of them: the mutant loop's caught and
// survived verdicts, the scenario loop, fuzz.sh's check of FUZZ_TARGETS,
// report-png.sh's errors, the engine start/stop bookkeeping, and so on.
package scripts
