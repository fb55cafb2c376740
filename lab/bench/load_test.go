package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
)

// The load process against a real gateway on a real redis-server: every
// delivery the window's acked publishes owe arrives, the markers come in
// order before the result, and nobody is cut.
func TestLoadAgainstAGatewayDeliversEverythingOwed(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(peersSecret)
	srv := gatewaytest.Start(t, a, rs.Addr(), "bench", "gw-1")
	c := DefaultLoad()
	c.URL, c.Secret = "ws://"+srv.Addr()+"/ws", []byte(peersSecret)
	c.Rooms, c.SubsPerRoom, c.Rate = 3, 4, 20
	c.Duration, c.Warmup, c.Drain = time.Second, 200*time.Millisecond, 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunLoad(ctx, c, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published < 40 || res.Owed != res.Published*4 || res.Delivered != res.Owed || res.Cut != 0 || res.Errors != 0 {
		t.Fatalf("want ≥40 publishes each delivered to 4 subscribers, nobody cut: %+v", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("latency quantiles out of order: %+v", res)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m LoadMarker
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		events = append(events, m.Event)
	}
	if got := strings.Join(events, " "); got != "connected window_start window_end result" {
		t.Errorf("lines: %s", got)
	}
}

func TestLoadConfigNamesTheBadField(t *testing.T) {
	c := DefaultLoad()
	c.URL, c.Secret = "ws://127.0.0.1:1/ws", []byte(peersSecret)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mod := range map[string]func(*LoadConfig){
		"Target": func(c *LoadConfig) { c.Target = "nchan" },
		"URL":    func(c *LoadConfig) { c.URL = "http://x" },
		"Secret": func(c *LoadConfig) { c.Secret = nil },
		"Rate":   func(c *LoadConfig) { c.Rate = 0 },
	} {
		d := c
		mod(&d)
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestCentrifugoFrames(t *testing.T) {
	p := centrifugoProto{}
	if id, e, ok := p.ack([]byte(`{"id":7,"publish":{}}`)); !ok || id != "7" || e != "" {
		t.Errorf("publish reply: %q %q %v", id, e, ok)
	}
	if id, e, ok := p.ack([]byte(`{"id":8,"error":{"code":103,"message":"permission denied"}}`)); !ok || id != "8" || e != "103: permission denied" {
		t.Errorf("error reply: %q %q %v", id, e, ok)
	}
	if _, _, ok := p.ack([]byte(`{"push":{"channel":"bench:0","pub":{"data":{"t":1}}}}`)); ok {
		t.Error("a push taken for a reply")
	}
	if !p.isPing([]byte("{}")) || !p.isPing([]byte(`{"push":{"channel":"bench:0","pub":{"data":{"t":1}}}}`+"\n{}")) || p.isPing([]byte(`{"id":1}`)) {
		t.Error("ping")
	}
}

// procCPU reads this process's own CPU from /proc; a busy loop moves it.
func TestProcCPU(t *testing.T) {
	before := procCPU(os.Getpid())
	end := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	if after := procCPU(os.Getpid()); after <= before {
		t.Errorf("CPU did not move: %v → %v", before, after)
	}
	if procCPU(0) != 0 {
		t.Error("pid 0 is no process")
	}
}

// TestParseGatewayCounters: the publish, frame and write counters of a
// gateway's /metrics, labels and all; other lines and unreadable values
// are passed over.
func TestParseGatewayCounters(t *testing.T) {
	text := `# HELP geolab_gateway_writes_total Writes.
# TYPE geolab_gateway_writes_total counter
geolab_gateway_writes_total{node="gw-1",region="bench"} 250
geolab_gateway_frames_out_total{node="gw-1",region="bench"} 500
geolab_gateway_publish_seconds_bucket{node="gw-1",region="bench",le="0.1"} 3
geolab_gateway_publish_seconds_sum{node="gw-1",region="bench"} 0.25
geolab_gateway_publish_seconds_count{node="gw-1",region="bench"} 5
geolab_gateway_frames_in_total{type="publish"} not-a-number
`
	g := parseGatewayCounters(strings.NewReader(text))
	if g != (gatewayCounters{publishSum: 0.25, publishCount: 5, framesOut: 500, writes: 250}) {
		t.Fatalf("got %+v", g)
	}
}

// FuzzParseGatewayCounters: whatever a /metrics answer holds, parsing it
// never panics, and text without the four names yields zeros.
func FuzzParseGatewayCounters(f *testing.F) {
	f.Add("geolab_gateway_writes_total{a=\"b\"} 3\n")
	f.Add("geolab_gateway_publish_seconds_sum 1e9\nx y z\n")
	f.Fuzz(func(t *testing.T, text string) {
		g := parseGatewayCounters(strings.NewReader(text))
		if !strings.Contains(text, "geolab_gateway_") && g != (gatewayCounters{}) {
			t.Fatalf("%+v from %q", g, text)
		}
	})
}
