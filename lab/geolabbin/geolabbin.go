// Package geolabbin finds the geolab binary the lab runs its children as
// (gateways, bridges, Toxiproxy). It depends on nothing of geolab's, so
// that every package that needs the binary's name or place — lab,
// lab/provider's hints, internal/testbin — takes it from here.
package geolabbin

import (
	"os"
	"path/filepath"
)

// Env is the environment variable naming the geolab binary (the Makefile
// exports it as bin/geolab; the faulty build's tests point it at
// bin/geolab-faulty).
const Env = "GEOLAB_BIN"

// Default finds the geolab binary: $GEOLAB_BIN, this executable when it is
// named geolab, else bin/geolab under the working directory.
func Default() string {
	if b := os.Getenv(Env); b != "" {
		return b
	}
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "geolab" {
		return exe
	}
	abs, _ := filepath.Abs(filepath.Join("bin", "geolab"))
	return abs
}
