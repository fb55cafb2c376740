package link_test

import (
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/lab/link"
)

// Against a real Toxiproxy: the API's "not there" (404) and "already
// there" (409) answers are what healing twice and a second command's hold
// markers produce, and they are no errors; any other answer is one.
func TestAttachedHoldsSurviveTheServersConflictAndNotFoundAnswers(t *testing.T) {
	url := toxitest.Start(t)
	const name = "wan.us-east.eu-west"
	listen, err := link.FreeListen()
	if err != nil {
		t.Fatal(err)
	}
	p, err := toxiproxy.NewClient(url).CreateProxy(name, listen, "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Disable(); err != nil { // by hand, with no marker
		t.Fatal(err)
	}
	attach := func() *link.Net {
		t.Helper()
		n, _, err := link.Attach(url, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := attach().Disable(name, "f1"); err != nil {
		t.Fatalf("first hold: %v", err)
	}
	// The second command finds the by-hand marker the first recorded and
	// records it again: the server answers 409.
	n := attach()
	if err := n.Disable(name, "f2"); err != nil {
		t.Fatalf("second hold over existing markers: %v", err)
	}
	if got := strings.Join(n.Holders(name), ","); got != "by-hand,f1,f2" {
		t.Fatalf("holders = %s, want by-hand,f1,f2", got)
	}
	// Healing what is already gone: the server answers 404.
	if err := n.RemoveToxic(name, "f9_upstream"); err != nil {
		t.Fatalf("removing a toxic that is not there: %v", err)
	}
	for _, f := range []string{"f1", "f2", "f2"} {
		if err := n.Enable(name, f); err != nil {
			t.Fatalf("release %s: %v", f, err)
		}
	}
	if got := strings.Join(attach().Holders(name), ","); got != "by-hand" {
		t.Fatalf("after both faults let go, holders = %s, want by-hand", got)
	}
	// Any other refusal is an error, and says what was refused.
	if err := n.AddToxic(name, "bad", "no-such-type", "upstream", nil); err == nil || !strings.Contains(err.Error(), "no-such-type") {
		t.Fatalf("a toxic of an unknown type: err = %v", err)
	}
}
