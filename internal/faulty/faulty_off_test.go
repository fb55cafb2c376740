//go:build !faulty

package faulty

import (
	"strings"
	"testing"
)

// TestProductBuildIgnoresTheEnvironment: without -tags faulty no mutant can
// be switched on, whatever GEOLAB_FAULTY says.
func TestProductBuildIgnoresTheEnvironment(t *testing.T) {
	t.Setenv("GEOLAB_FAULTY", strings.Join(Names, ","))
	for _, n := range Names {
		if On(n) {
			t.Errorf("On(%q) is true in a build without the faulty tag", n)
		}
	}
}
