// Package testbin gives tests the geolab binary that the lab runs its
// children as: $GEOLAB_BIN when it names an existing file (the Makefile
// builds bin/geolab and exports it), else a fresh `go build` of cmd/geolab
// into a temporary directory, once per test process.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/geolab/geolab/lab/geolabbin"
)

var (
	once sync.Once
	path string
	err  error
)

// Path returns the geolab binary, building it on first use when needed.
func Path() (string, error) {
	once.Do(func() {
		if b := os.Getenv(geolabbin.Env); b != "" {
			if _, serr := os.Stat(b); serr == nil {
				path = b
				return
			}
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, derr := os.MkdirTemp("", "geolab-bin-")
		if derr != nil {
			err = derr
			return
		}
		path = filepath.Join(dir, "geolab")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/geolab")
		cmd.Dir = root
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("testbin: go build ./cmd/geolab: %v\n%s", berr, out)
		}
	})
	return path, err
}
