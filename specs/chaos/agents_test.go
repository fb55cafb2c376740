package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/specs/speclab"
)

// The clients in three workload agents (docs/agents.md): processes, or on
// the swarm provider a swarm service of three tasks whose clients reach the
// gateways through Toxiproxy's client links on the agents' network
// (docs/swarm.md). A partition with the clients split over agents must
// come out as clean as in one process, judged on the merged history, with
// every agent's clock offset estimated within a bound that holds on one
// machine.
var _ = Describe("Workload agents", Label("agents"), func() {
	BeforeEach(func() {
		if p := speclab.Provider(); p == provider.DockerName {
			Skip("the agents' clients reach the docker provider's endpoints untested: the process and swarm providers only")
		}
	})

	It("judges a partition played by clients in three agents as clean", func() {
		out, c := speclab.Play(speclab.Spec{
			Name: "agents-partition", Topology: "two-region", Seed: 81, Agents: 3,
			Workload: speclab.Workload(14 * time.Second),
			Steps:    []speclab.Step{speclab.At(3*time.Second, speclab.Partition("us-east", "us-west").Mode("blackhole").For(6*time.Second))},
		})
		speclab.ExpectClean(c, 3000)
		Expect(out.Result.Faults).To(HaveLen(1), "the partition was not injected")
		Expect(out.Agents).To(HaveLen(3))
		clients := 0
		for _, a := range out.Agents {
			clients += a.Clients
			// One machine, one clock: the true offset, 0, is within the bound.
			Expect(time.Duration(a.Bound)).To(BeNumerically("<", 50*time.Millisecond), "%s's clock bound", a.Name)
			Expect(time.Duration(a.Offset)).To(BeNumerically("<=", time.Duration(a.Bound)), "%s's offset", a.Name)
			Expect(time.Duration(a.Offset)).To(BeNumerically(">=", -time.Duration(a.Bound)), "%s's offset", a.Name)
		}
		Expect(clients).To(Equal(24), "the agents did not run every client of the plan")
	})
})
