//go:build faulty

package faulty

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// active is read once, when the process starts: mutants do not come and go.
var active = parse(os.Getenv("GEOLAB_FAULTY"))

func parse(env string) map[string]bool {
	on := map[string]bool{}
	for _, n := range strings.Split(env, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(Names, n) {
			panic(fmt.Sprintf("faulty: GEOLAB_FAULTY names unknown mutant %q (known: %s)", n, strings.Join(Names, ", ")))
		}
		on[n] = true
	}
	if len(on) > 0 {
		fmt.Fprintf(os.Stderr, "geolab: FAULTY BUILD: deliberately broken: %s\n", strings.TrimSpace(env))
	}
	return on
}

// On reports whether mutant name is switched on in GEOLAB_FAULTY.
func On(name string) bool { return active[name] }
