package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
)

// A run with agents shows every agent's clock (to the microsecond) and
// the bound of latencies across agents, the two largest bounds added, in
// report.html and report.json; a run without shows neither.
func TestReportShowsAgentClocks(t *testing.T) {
	in := Input{Scenario: "agents", Result: &check.Result{}, Agents: []history.AgentClock{
		{Name: "agent-1", Clients: 10, Offset: history.Duration(-3400 * time.Nanosecond), Bound: history.Duration(23540 * time.Nanosecond), RTT: history.Duration(47 * time.Microsecond), Samples: 16},
		{Name: "agent-2", Clients: 10, Offset: history.Duration(12 * time.Millisecond), Bound: history.Duration(2 * time.Millisecond), RTT: history.Duration(4 * time.Millisecond), Samples: 16},
		{Name: "agent-3", Clients: 9, Offset: 0, Bound: history.Duration(500 * time.Microsecond), Samples: 16},
	}}
	if got := in.CrossAgentBound(); got != 2500*time.Microsecond {
		t.Fatalf("cross-agent bound %s, want 2ms + 500µs", got)
	}
	if one := (Input{Agents: in.Agents[:1]}).CrossAgentBound(); one != 23540*time.Nanosecond {
		t.Fatalf("one agent: bound %s, want its own", one)
	}
	dir := t.TempDir()
	if err := WriteAll(dir, in); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 workload agents", "± 2.500 ms", "<td>agent-1</td><td class=\"n\">10</td><td class=\"n\">-0.003</td><td class=\"n\">0.024</td>",
		"<td>agent-2</td><td class=\"n\">10</td><td class=\"n\">12.000</td><td class=\"n\">2.000</td>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html does not show %q", want)
		}
	}
	back, err := ReadJSON(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Agents) != 3 || back.Agents[1] != in.Agents[1] {
		t.Fatalf("report.json agents: got %+v", back.Agents)
	}
	js, _ := os.ReadFile(filepath.Join(dir, JSONFile))
	if !strings.Contains(string(js), `"cross_agent_bound": "2.5ms"`) {
		t.Errorf("report.json does not state the cross-agent bound")
	}
	none := t.TempDir()
	if err := WriteAll(none, Input{Scenario: "in-process", Result: &check.Result{}}); err != nil {
		t.Fatal(err)
	}
	page, _ = os.ReadFile(filepath.Join(none, HTMLFile))
	js, _ = os.ReadFile(filepath.Join(none, JSONFile))
	if strings.Contains(string(page), "workload agents") || strings.Contains(string(js), "agents") {
		t.Errorf("a run without agents shows agents")
	}
}
