// The chaos suite: every guarantee of docs/design.md (G1–G12) proven against a
// real lab — real redis-server, Toxiproxy, gateway and bridge processes,
// WebSockets — by playing a scenario and asserting on the checker's counts.
// Labels pick groups: ordering, dedup, resubscribe, failover, partition,
// amplification, slow-consumer, tls (the resubscribe and partition specs
// again on Redis with TLS and ACL users) and cluster (regions on Redis
// Cluster: G1–G3 and G7, and G12 through shard-kill, shard-failover and
// slot-migrate) (e.g. make chaos LABELS=failover).
package chaos_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/geolabbin"
	"github.com/geolab/geolab/specs/speclab"
)

func TestChaos(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "chaos")
}

var _ = BeforeSuite(func() {
	bin, err := testbin.Path()
	Expect(err).NotTo(HaveOccurred())
	Expect(os.Setenv(geolabbin.Env, bin)).To(Succeed())
	if f := speclab.Faulty(); f != "" {
		GinkgoWriter.Printf("GEOLAB_FAULTY=%s: the lab runs a deliberately broken binary\n", f)
	}
})

// guarantees maps each label to the guarantees its specs prove.
var guarantees = map[string]string{
	"ordering": "G1 G2", "dedup": "G3 G4", "resubscribe": "G5", "failover": "G6 G8 G11",
	"partition": "G7", "amplification": "G9", "slow-consumer": "G10", "agents": "G7", "cluster": "G1-G3 G5 G7 G12",
}

// The summary table per guarantee, printed at the end and written to
// reports/chaos-summary.txt.
var _ = ReportAfterSuite("summary per guarantee", func(r Report) {
	type row struct{ g, label, spec, state, counts, took string }
	var rows []row
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt || s.State == types.SpecStateSkipped {
			continue
		}
		label := ""
		for _, l := range s.Labels() {
			if _, ok := guarantees[l]; ok {
				label = l
			}
		}
		counts := ""
		for _, e := range s.ReportEntries {
			if e.Name == "counts" {
				counts = e.StringRepresentation()
			}
		}
		rows = append(rows, row{guarantees[label], label, s.LeafNodeText, s.State.String(), counts, s.RunTime.Round(1e8).String()})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].g < rows[j].g })
	passed := 0
	for _, x := range rows {
		if x.state == types.SpecStatePassed.String() {
			passed++
		}
	}
	// Each provider, and each mutant, gets a summary of its own: one run
	// never overwrites another's.
	provider, file := speclab.Provider(), "chaos-summary.txt"
	if provider != "process" {
		file = "chaos-summary-" + provider + ".txt"
	}
	on := "provider " + provider
	if m := os.Getenv("GEOLAB_FAULTY"); m != "" {
		on += ", mutant " + m
		file = filepath.Join("mutants", m+"-summary.txt")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos suite on %s: %d of %d specs passed in %s\n\n", on, passed, len(rows), r.RunTime.Round(time.Second))
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GUARANTEE\tGROUP\tSPEC\tRESULT\tTOOK\tCOUNTS")
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.g, x.label, x.spec, x.state, x.took, x.counts)
	}
	tw.Flush()
	fmt.Println("\n" + b.String())
	path := filepath.Join(speclab.Root(), "reports", file)
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "chaos summary: %v\n", err)
	}
})
