package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/topology"
)

// RTTCheck compares the round trip the lab injects between two regions with
// the topology's figure.
type RTTCheck struct {
	A, B       string
	Configured time.Duration // the topology's RTT, as applied (whole ms)
	Measured   time.Duration // median of Samples round trips
	Samples    int
	// OK is true when Measured is within max(2 ms, 5 %) of Configured.
	OK bool
}

// Tolerance is the allowed difference between the measured and configured
// RTT of a pair: max(2 ms, 5 %).
func Tolerance(configured time.Duration) time.Duration {
	return max(2*time.Millisecond, configured/20)
}

// MeasureRTT measures, for every pair of regions, the round trip of an HTTP
// request from a client living in A to gateway gw-1 of B, over one kept-alive
// connection through the client link (samples per pair, after one warm-up),
// all pairs at once.
func (l *Lab) MeasureRTT(ctx context.Context, samples int) ([]RTTCheck, error) {
	var pairs []topology.Pair
	names := l.topo.RegionNames()
	for i, a := range names {
		for _, b := range names[i+1:] {
			pairs = append(pairs, topology.MakePair(a, b))
		}
	}
	out := make([]RTTCheck, len(pairs))
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = l.measurePair(ctx, p.A, p.B, samples)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (l *Lab) measurePair(ctx context.Context, a, b string, samples int) (RTTCheck, error) {
	c := RTTCheck{A: a, B: b, Samples: samples}
	c.Configured = l.topo.Link(a, b).RTT.Round(time.Millisecond)
	ln, ok := l.net.Get(link.Name(link.Client, a, b, "gw-1"))
	if !ok {
		return c, fmt.Errorf("lab: rtt %s-%s: no client link", a, b)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + ln.Listen + "/healthz"
	var rtts []time.Duration
	for i := 0; i <= samples; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return c, fmt.Errorf("lab: rtt %s-%s: %w", a, b, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i > 0 { // the first request pays for the connection
			rtts = append(rtts, time.Since(t0))
		}
	}
	slices.Sort(rtts)
	c.Measured = rtts[len(rtts)/2]
	d := c.Measured - c.Configured
	c.OK = d.Abs() <= Tolerance(c.Configured)
	return c, nil
}
