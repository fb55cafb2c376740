package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/internal/redistest"
)

// BenchmarkResumeReplayPeakHeap measures what a node holds while clients
// resume a large replay: 6 clients each resume a room of 2,000 events of
// 30 KB from its start, at once, and read everything. It reports the peak
// of the process's HeapInuse, sampled every 5 ms, before (idle-heap-MB) and
// during the resumes (peak-heap-MB), and the process's peak RSS (VmHWM,
// which includes the publishing before). The clients discard each frame as
// they read it, so what is held is the gateway's (make bench).
func BenchmarkResumeReplayPeakHeap(b *testing.B) {
	const (
		room    = "tenant:replay-heap"
		events  = 2000
		clients = 6
	)
	rs := redistest.Start(b)
	gw := startGateway(b, rs.Addr(), "us-east", "gw-1")
	pub := newClient(b, gw.Addr(), "p")
	payload := strings.Repeat("x", 30000)
	for i := 0; i < events; i++ {
		if f := pub.Publish(room, msgID("h", i), payload); f.Type != "ack" {
			b.Fatalf("publish %d: %+v", i, f)
		}
	}
	pub.Close()
	tok := token(b, "resumer")

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	idle := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if n, err := resumeAndDiscard(gw.Addr(), tok, room); err != nil || n != events {
					errs <- fmt.Errorf("resume: %d of %d messages: %v", n, events, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(float64(idle)/(1<<20), "idle-heap-MB")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	if hwm := vmHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
	}
}

// resumeAndDiscard resumes room from its start on a raw connection, reads
// the subscribed frame and then every message, discarding each as it
// comes, and returns how many messages it read (the missed count at most).
func resumeAndDiscard(addr, tok, room string) (int, error) {
	h := http.Header{"Authorization": {"Bearer " + tok}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", h)
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Minute))
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		return 0, err
	}
	err = ws.WriteJSON(map[string]any{"type": "subscribe", "room": room, "since": map[string]uint64{"us-east": 0}})
	if err != nil {
		return 0, err
	}
	var sub struct {
		Type      string
		Recovered bool
		Missed    int
	}
	if err := ws.ReadJSON(&sub); err != nil {
		return 0, err
	}
	if sub.Type != "subscribed" || !sub.Recovered {
		return 0, fmt.Errorf("answer %+v, want subscribed, recovered", sub)
	}
	n := 0
	for n < sub.Missed {
		_, r, err := ws.NextReader()
		if err != nil {
			return n, err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// vmHWM is the process's peak resident set in bytes (Linux), 0 elsewhere.
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
