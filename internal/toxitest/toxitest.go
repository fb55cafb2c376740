// Package toxitest gives tests a real Toxiproxy server: `geolab toxiproxy`
// as a process of its own on a free loopback port, stopped by pid when the
// test ends.
package toxitest

import (
	"context"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/provider"
)

// Start runs a Toxiproxy server for t and returns its API URL
// (http://127.0.0.1:PORT). It fails t if the server does not answer.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.NewProcess(bin, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, url, err := p.StartToxiproxy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return url
}
