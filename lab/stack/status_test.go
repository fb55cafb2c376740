package stack_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/stack"
)

func statusFixture() stack.Status {
	return stack.Status{Toxiproxy: "http://127.0.0.1:8474", Regions: []string{"eu-west", "us-east"},
		Links: []stack.LinkState{
			{Link: link.Link{Name: "client.us-east.eu-west.gw-1", Listen: "127.0.0.1:1000", Upstream: "127.0.0.1:9"},
				Toxics: []link.Toxic{{Name: "base_latency", Type: "latency", Stream: "downstream", Attributes: map[string]any{"latency": 40, "jitter": 2}}}},
			{Link: link.Link{Name: "wan.us-east.eu-west", Listen: "127.0.0.1:20001", Upstream: "10.0.0.7:6379"}, Holders: []string{"f1", link.ByHand},
				Toxics: []link.Toxic{{Name: link.HoldPrefix + "f1", Type: "latency", Stream: "upstream"},
					{Name: "f2_upstream", Type: "timeout", Stream: "upstream", Attributes: map[string]any{"timeout": 0}}}},
			{Link: link.Link{Name: "lan.us-east.gw-1", Listen: "l", Upstream: "u"}},
		},
		Faults: []stack.Trace{
			{ID: "f1", Holds: []string{"wan.us-east.eu-west", "wan.eu-west.us-east"}},
			{ID: "f2", Toxics: map[string][]link.Toxic{"wan.us-east.eu-west": {{Name: "f2_upstream", Type: "timeout"}},
				"wan.eu-west.us-east": {{Name: "f2_downstream", Type: "latency"}}}},
		},
		Ignored: []string{"metrics", "other"},
	}
}

// PrintStatus is what 'geolab status --toxiproxy' prints, byte for byte:
// links in a table (hold markers left out of the toxics), faults sorted by
// what they do, the proxies left alone.
func TestPrintStatus(t *testing.T) {
	var b bytes.Buffer
	stack.PrintStatus(&b, statusFixture())
	want := "stack behind toxiproxy http://127.0.0.1:8474: regions eu-west, us-east\n\n" +
		"LINK                         LISTEN           UPSTREAM       STATE                    TOXICS\n" +
		"client.us-east.eu-west.gw-1  127.0.0.1:1000   127.0.0.1:9    enabled                  base_latency(latency downstream jitter=2 latency=40)\n" +
		"wan.us-east.eu-west          127.0.0.1:20001  10.0.0.7:6379  disabled by f1, by-hand  f2_upstream(timeout upstream timeout=0)\n" +
		"lan.us-east.gw-1             l                u              enabled                  \n\n" +
		"fault f1: disables wan.eu-west.us-east; disables wan.us-east.eu-west\n" +
		"fault f2: latency wan.eu-west.us-east; timeout wan.us-east.eu-west\n" +
		"other proxies (not geolab links, left alone): metrics, other\n"
	if b.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	st := statusFixture()
	st.Faults, st.Ignored = nil, nil
	stack.PrintStatus(&b, st)
	if got := b.String(); !bytes.HasSuffix(b.Bytes(), []byte("\n\nfaults: none active\n")) {
		t.Errorf("no faults printed\n%s", got)
	}
}

// The JSON keys of Status are what 'geolab status --toxiproxy --json'
// promises its readers.
func TestStatusJSONKeys(t *testing.T) {
	b, err := json.Marshal(statusFixture())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"toxiproxy", "regions", "links", "faults", "ignored_proxies"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	if len(m) != 5 {
		t.Errorf("keys %d, want 5: %s", len(m), b)
	}
}
