package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/geolabbin"
)

// A scenario with an impossible expectation runs, exits 1 and names the
// expectation; the reports are written all the same.
func TestRunExitsNonZeroNamingAnImpossibleExpectation(t *testing.T) {
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	topo, _ := filepath.Abs("../../topologies/single-region.yaml")
	sc := filepath.Join(dir, "impossible.yaml")
	if err := os.WriteFile(sc, []byte(`name: impossible
topology: `+topo+`
workload: {clients: 4, federated_rooms: 2, local_rooms: 1, publish_rate: 20, duration: 3s, quiesce: 10s}
expect:
  - lost == 0
  - delivered < 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "run", sc, "--quiet", "--out", out)
	cmd.Env = append(os.Environ(), geolabbin.Env+"="+bin)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v:\n%s", err, b)
	}
	if !strings.Contains(string(b), "FAIL  delivered = ") || !strings.Contains(string(b), "1 expectation(s) failed: delivered") {
		t.Fatalf("the failed expectation is not named:\n%s", b)
	}
	if !strings.Contains(string(b), "PASS  lost = 0") {
		t.Fatalf("the passing expectation is not shown:\n%s", b)
	}
	for _, f := range []string{"history.jsonl", "report.json", "report.html", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}
