package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/fielderr"
)

// The servers the load process speaks to.
const (
	TargetGeolab     = "geolab"     // a geolab gateway: protocol v1 on /ws (docs/protocol.md)
	TargetCentrifugo = "centrifugo" // Centrifugo: its JSON client protocol on /connection/websocket
)

// LoadConfig sets one run of the load process: Rooms×SubsPerRoom
// subscriber connections, one publisher connection per room publishing
// Rate times a second for Warmup+Duration, against one server.
type LoadConfig struct {
	Target      string        // TargetGeolab or TargetCentrifugo
	URL         string        // the WebSocket URL, e.g. ws://127.0.0.1:8080/ws
	Secret      []byte        // geolab's JWT secret (tokens are minted here, one subject per connection)
	Rooms       int           // rooms "bench:0" … "bench:Rooms-1"
	SubsPerRoom int           // subscriber connections per room
	Rate        float64       // publishes per second per room (one publisher connection each)
	Payload     int           // bytes of each publish's JSON data, send time included
	Duration    time.Duration // measured window
	Warmup      time.Duration // publishing before the window opens
	Drain       time.Duration // the most time waited after the window for what it owes
}

// DefaultLoad is the yardstick of issue 16: 2,000 subscribers over 100
// rooms, one publisher per room, 240-byte payloads, 20 s.
func DefaultLoad() LoadConfig {
	return LoadConfig{Target: TargetGeolab, Rooms: 100, SubsPerRoom: 20, Rate: 20, Payload: 240,
		Duration: 20 * time.Second, Warmup: 2 * time.Second, Drain: 10 * time.Second}
}

// Validate names the first bad field.
func (c LoadConfig) Validate() error {
	switch {
	case c.Target != TargetGeolab && c.Target != TargetCentrifugo:
		return fielderr.New("Target", c.Target, "must be", TargetGeolab+" or "+TargetCentrifugo)
	case !strings.HasPrefix(c.URL, "ws://"):
		return fielderr.New("URL", c.URL, "must be", "a ws:// URL")
	case c.Target == TargetGeolab && len(c.Secret) < 32:
		return fielderr.New("Secret", len(c.Secret), "must be at least", "32 bytes for geolab")
	case c.Rooms < 1 || c.Rooms > 10000:
		return fielderr.New("Rooms", c.Rooms, "must be in", "1..10000")
	case c.SubsPerRoom < 1 || c.Rooms*c.SubsPerRoom > 20000:
		return fielderr.New("SubsPerRoom", c.SubsPerRoom, "must be at least 1, with rooms×subs at most", 20000)
	case c.Rate <= 0 || c.Rate > 2000:
		return fielderr.New("Rate", c.Rate, "must be in", "(0, 2000] publishes/s per room")
	case c.Payload < 64 || c.Payload > 16384:
		return fielderr.New("Payload", c.Payload, "must be in", "64..16384 bytes")
	case c.Duration < time.Second || c.Duration > 10*time.Minute:
		return fielderr.New("Duration", c.Duration, "must be in", "1s..10m")
	case c.Warmup < 0 || c.Warmup > time.Minute:
		return fielderr.New("Warmup", c.Warmup, "must be in", "0..1m")
	case c.Drain < 0 || c.Drain > time.Minute:
		return fielderr.New("Drain", c.Drain, "must be in", "0..1m")
	}
	return nil
}

// LoadResult is what one run of the load process measured. Only publishes
// sent inside the window count: Owed is what they owe the subscribers (every
// publish sent, less those the server refused with an error: one never
// acked still owes), Delivered what arrived of it by the end of the drain,
// and the latencies are theirs. ReceivedInWindow counts every delivery that arrived
// during the window, whenever it was published: the rate the server
// sustained.
type LoadResult struct {
	Event            string  `json:"event"` // "result"
	Target           string  `json:"target"`
	Rate             float64 `json:"rate"`
	Offered          float64 `json:"offered_per_s"` // deliveries per second the publishes owe
	Published        int64   `json:"published"`     // acked publishes sent in the window
	Errors           int64   `json:"errors"`        // publishes answered with an error
	Owed             int64   `json:"owed"`
	Delivered        int64   `json:"delivered"`
	ReceivedInWindow int64   `json:"received_in_window"`
	DeliveredPerSec  float64 `json:"delivered_per_s"` // ReceivedInWindow / window
	P50              float64 `json:"p50_ms"`
	P99              float64 `json:"p99_ms"`
	P999             float64 `json:"p999_ms"`
	Max              float64 `json:"max_ms"`
	Cut              int64   `json:"cut"`           // subscriber connections the server closed before the end
	WindowSeconds    float64 `json:"window_s"`      // the measured window, as it ran
	LoadCPU          float64 `json:"load_cpu_s"`    // this process's CPU time during the window
	ConnectSeconds   float64 `json:"connect_s"`     // time to connect and subscribe everyone
	CloseCodes       string  `json:"close_codes"`   // close codes of the cut connections, "code×n"
	DrainSeconds     float64 `json:"drain_s"`       // time waited after the window
	DrainedFully     bool    `json:"drained_fully"` // everything owed had arrived when the drain ended
	FirstError       string  `json:"first_error"`   // the first error answer, if any
	PublishSendLag   float64 `json:"send_lag_ms"`   // the most a publisher fell behind its schedule
	// AckP50 and AckP99 are the quantiles of publish → answer (ack, or
	// Centrifugo's reply) of the window's publishes, on the load's clock:
	// how long the server took to take a publish in and confirm it, its
	// wait in the publisher connection's socket included.
	AckP50           float64 `json:"ack_p50_ms"`
	AckP99           float64 `json:"ack_p99_ms"`
	ConnectedClients int     `json:"subscribers"` // subscriber connections
	Publishers       int     `json:"publishers"`  // publisher connections
}

// LoadMarker is a line the load process prints when the window opens and
// when it closes, so that whoever runs it can read the servers' CPU then.
type LoadMarker struct {
	Event string `json:"event"` // "connected", "window_start", "window_end"
}

// RunLoad connects every subscriber and publisher, publishes, measures, and
// closes every connection. Markers and the result are written to out as
// JSON lines; progress to log.
func RunLoad(ctx context.Context, c LoadConfig, out, log io.Writer) (LoadResult, error) {
	res := LoadResult{Event: "result", Target: c.Target, Rate: c.Rate}
	if err := c.Validate(); err != nil {
		return res, err
	}
	raiseFileLimit()
	var p proto = centrifugoProto{}
	if c.Target == TargetGeolab {
		a, err := auth.NewAuthority(c.Secret)
		if err != nil {
			return res, err
		}
		p = geolabProto{a: a}
	}
	marker := func(ev string) {
		b, _ := json.Marshal(LoadMarker{Event: ev})
		fmt.Fprintf(out, "%s\n", b)
	}

	// Connect: subscribers first (8 at a time), then publishers.
	nsubs := c.Rooms * c.SubsPerRoom
	subs := make([]*loadSub, nsubs)
	start := time.Now()
	var all []*websocket.Conn
	var allMu sync.Mutex
	defer func() {
		allMu.Lock()
		defer allMu.Unlock()
		for _, ws := range all {
			ws.Close()
		}
	}()
	keep := func(ws *websocket.Conn) {
		allMu.Lock()
		all = append(all, ws)
		allMu.Unlock()
	}
	var firstErr error
	var errMu sync.Mutex
	jobs := make(chan int)
	var cwg sync.WaitGroup
	for w := 0; w < 8; w++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := range jobs {
				ws, err := p.dial(c.URL, "load-sub-"+strconv.Itoa(i))
				if err == nil {
					keep(ws)
					err = p.subscribe(ws, roomName(i%c.Rooms))
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("bench load: subscriber %d: %w", i, err)
					}
					errMu.Unlock()
					continue
				}
				subs[i] = &loadSub{ws: ws, lat: make([]int64, 0, int(c.Rate*(c.Duration+c.Warmup).Seconds()*1.1)+16)}
			}
		}()
	}
	for i := 0; i < nsubs && ctx.Err() == nil; i++ {
		errMu.Lock()
		failed := firstErr != nil
		errMu.Unlock()
		if failed {
			break
		}
		jobs <- i
	}
	close(jobs)
	cwg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	pubs := make([]*loadPub, c.Rooms)
	for r := range pubs {
		ws, err := p.dial(c.URL, "load-pub-"+strconv.Itoa(r))
		if err != nil {
			return res, fmt.Errorf("bench load: publisher %d: %w", r, err)
		}
		keep(ws)
		pubs[r] = &loadPub{ws: ws, room: roomName(r), pending: map[string]int64{}}
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	res.ConnectedClients, res.Publishers = nsubs, len(pubs)
	fmt.Fprintf(log, "bench load: %s: %d subscribers and %d publishers connected in %.1fs\n", c.Target, nsubs, len(pubs), res.ConnectSeconds)
	marker("connected")

	// The window: [windowStart, windowEnd). Publishes sent in it carry
	// their send time; the others carry 0.
	t0 := time.Now()
	windowStart := t0.Add(c.Warmup)
	windowEnd := windowStart.Add(c.Duration)

	var rwg sync.WaitGroup
	for _, s := range subs {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			s.read(p, windowStart.UnixNano(), windowEnd.UnixNano())
		}()
	}
	var owed, published, errorsN atomic.Int64
	var firstErrMsg atomic.Value
	for _, pb := range pubs {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			pb.readAcks(p, func(id string, errMsg string) {
				now := time.Now().UnixNano()
				pb.mu.Lock()
				sent, ok := pb.pending[id]
				delete(pb.pending, id)
				inWindow := sent != 0
				if ok && inWindow {
					pb.ackLat = append(pb.ackLat, now-sent)
				}
				pb.mu.Unlock()
				switch {
				case !ok:
				case errMsg != "":
					errorsN.Add(1)
					firstErrMsg.CompareAndSwap(nil, errMsg)
					if inWindow {
						owed.Add(-int64(c.SubsPerRoom)) // refused: owes nothing
					}
				case inWindow:
					published.Add(1)
				}
			})
		}()
	}
	pctx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	var pwg sync.WaitGroup
	var maxLag atomic.Int64
	pad := strings.Repeat("x", max(0, c.Payload-len(`{"t":0000000000000000000,"p":""}`)))
	interval := time.Duration(float64(time.Second) / c.Rate)
	for r, pb := range pubs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			// Spread the publishers' phases over one interval.
			next := t0.Add(interval * time.Duration(r) / time.Duration(len(pubs)))
			for i := 0; ; i++ {
				if d := time.Until(next); d > 0 {
					t := time.NewTimer(d) // pacing the offered load, not synchronisation
					select {
					case <-pctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				} else if lag := -d; int64(lag) > maxLag.Load() {
					maxLag.Store(int64(lag))
				}
				if pctx.Err() != nil {
					return
				}
				now := time.Now()
				if !now.Before(windowEnd) {
					return
				}
				inWindow := !now.Before(windowStart)
				ts := int64(0)
				if inWindow {
					ts = now.UnixNano()
				}
				data := `{"t":` + strconv.FormatInt(ts, 10) + `,"p":"` + pad + `"}`
				id := pb.nextID()
				pb.mu.Lock()
				pb.pending[id] = ts
				pb.mu.Unlock()
				if inWindow {
					owed.Add(int64(c.SubsPerRoom)) // until it is refused
				}
				if err := pb.write(p.publish(id, pb.room, data)); err != nil {
					return
				}
				next = next.Add(interval)
			}
		}()
	}
	if !sleepUntil(ctx, windowStart) {
		return res, ctx.Err()
	}
	cpu0 := selfCPU()
	marker("window_start")
	if !sleepUntil(ctx, windowEnd) {
		return res, ctx.Err()
	}
	marker("window_end")
	cpu1 := selfCPU()
	res.WindowSeconds = c.Duration.Seconds()
	res.LoadCPU = (cpu1 - cpu0).Seconds()
	pwg.Wait()

	// Drain: wait (bounded) for every ack and every delivery owed.
	drainStart := time.Now()
	delivered := func() int64 {
		var n int64
		for _, s := range subs {
			n += s.owedGot.Load()
		}
		return n
	}
	pendingAcks := func() int {
		n := 0
		for _, pb := range pubs {
			pb.mu.Lock()
			for _, sent := range pb.pending {
				if sent != 0 {
					n++
				}
			}
			pb.mu.Unlock()
		}
		return n
	}
	tick := time.NewTicker(20 * time.Millisecond)
	deadline := time.NewTimer(c.Drain)
	for pendingAcks() > 0 || delivered() < owed.Load() {
		select {
		case <-ctx.Done():
		case <-deadline.C:
		case <-tick.C:
			continue
		}
		break
	}
	tick.Stop()
	deadline.Stop()
	res.DrainSeconds = time.Since(drainStart).Seconds()
	stopPub()
	allMu.Lock()
	for _, ws := range all {
		_ = ws.SetReadDeadline(time.Now()) // ends every reader; Close follows in the defer
	}
	allMu.Unlock()
	rwg.Wait()

	res.Published, res.Owed, res.Errors = published.Load(), owed.Load(), errorsN.Load()
	if m, ok := firstErrMsg.Load().(string); ok {
		res.FirstError = m
	}
	res.Delivered = delivered()
	res.DrainedFully = res.Delivered >= res.Owed
	res.Offered = c.Rate * float64(c.Rooms*c.SubsPerRoom)
	var lat []int64
	codes := map[int]int{}
	for _, s := range subs {
		res.ReceivedInWindow += s.inWindow
		lat = append(lat, s.lat...)
		if s.cut {
			res.Cut++
			codes[s.closeCode]++
		}
	}
	var cc []string
	for code, n := range codes {
		cc = append(cc, fmt.Sprintf("%d×%d", code, n))
	}
	slices.Sort(cc)
	res.CloseCodes = strings.Join(cc, " ")
	res.DeliveredPerSec = float64(res.ReceivedInWindow) / res.WindowSeconds
	res.PublishSendLag = float64(maxLag.Load()) / 1e6
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99, res.P999, res.Max = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999), float64(lat[len(lat)-1])/1e6
	}
	var ackLat []int64
	for _, pb := range pubs {
		ackLat = append(ackLat, pb.ackLat...)
	}
	if len(ackLat) > 0 {
		slices.Sort(ackLat)
		res.AckP50, res.AckP99 = quantile(ackLat, 0.50), quantile(ackLat, 0.99)
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(out, "%s\n", b)
	return res, nil
}

// quantile is the f-quantile of sorted latencies (ns), in milliseconds.
func quantile(sorted []int64, f float64) float64 {
	i := min(len(sorted)-1, max(0, int(f*float64(len(sorted))+0.5)-1))
	return float64(sorted[i]) / 1e6
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadSub is one subscriber connection. Its reader alone touches its
// fields until it returns.
type loadSub struct {
	ws        *websocket.Conn
	buf       bytes.Buffer // the message being read
	owedGot   atomic.Int64 // deliveries of window publishes received (read by the drain)
	inWindow  int64        // deliveries received during the window
	lat       []int64      // latencies (ns) of deliveries of window publishes
	cut       bool         // the server closed the connection
	closeCode int
}

var sendTimeKey = []byte(`{"t":`)

func (s *loadSub) read(p proto, windowStart, windowEnd int64) {
	for {
		_, r, err := s.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				s.cut, s.closeCode = true, ce.Code
			} else if !isTimeout(err) {
				s.cut, s.closeCode = true, 1006
			}
			return
		}
		s.buf.Reset()
		if _, err := s.buf.ReadFrom(r); err != nil {
			continue
		}
		b := s.buf.Bytes()
		now := time.Now().UnixNano()
		if now >= windowStart && now < windowEnd {
			s.inWindow += int64(bytes.Count(b, sendTimeKey))
		}
		for rest := b; ; {
			i := bytes.Index(rest, sendTimeKey)
			if i < 0 {
				break
			}
			rest = rest[i+len(sendTimeKey):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			sent, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
			if sent != 0 {
				s.owedGot.Add(1)
				s.lat = append(s.lat, now-sent)
			}
		}
		if p.isPing(b) {
			_ = s.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// loadPub is one publisher connection: one room, its own ids.
type loadPub struct {
	ws      *websocket.Conn
	room    string
	wmu     sync.Mutex // the pacer and the ack reader (pongs) both write
	n       int
	mu      sync.Mutex
	pending map[string]int64 // id → its send time (Unix ns) if sent in the window, else 0
	ackLat  []int64          // publish → answer (ns) of the window's publishes
}

func (pb *loadPub) nextID() string {
	pb.n++ // from 1: Centrifugo's connect (id 1) was answered before the ack reader started
	return strconv.Itoa(pb.n)
}

func (pb *loadPub) write(b []byte) error {
	pb.wmu.Lock()
	defer pb.wmu.Unlock()
	return pb.ws.WriteMessage(websocket.TextMessage, b)
}

func (pb *loadPub) readAcks(p proto, answer func(id, errMsg string)) {
	for {
		_, b, err := pb.ws.ReadMessage()
		if err != nil {
			return
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if p.isPing(line) {
				_ = pb.write([]byte("{}"))
				continue
			}
			if id, errMsg, ok := p.ack(line); ok {
				answer(id, errMsg)
			}
		}
	}
}

// proto is what the load process needs of a server's protocol.
type proto interface {
	dial(url, subject string) (*websocket.Conn, error)
	subscribe(ws *websocket.Conn, room string) error
	publish(id, room, data string) []byte
	ack(frame []byte) (id, errMsg string, ok bool) // an answer to a publish
	isPing(frame []byte) bool                      // the frame holds an application ping, to answer with "{}"
}

var loadDialer = websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}

// geolabProto is protocol v1 (docs/protocol.md).
type geolabProto struct{ a *auth.Authority }

func (g geolabProto) dial(url, subject string) (*websocket.Conn, error) {
	tok, err := g.a.Issue(subject, []string{"bench:*"}, []string{"bench:*"}, time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	ws, _, err := loadDialer.Dial(url, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return nil, err
	}
	return ws, readUntil(ws, "welcome")
}

func (geolabProto) subscribe(ws *websocket.Conn, room string) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","room":"`+room+`"}`)); err != nil {
		return err
	}
	return readUntil(ws, "subscribed")
}

func (geolabProto) publish(id, room, data string) []byte {
	return []byte(`{"type":"publish","room":"` + room + `","id":"` + id + `","data":` + data + `}`)
}

func (geolabProto) ack(b []byte) (string, string, bool) {
	var f struct{ Type, ID, Ref, Code, Message string }
	if json.Unmarshal(b, &f) != nil {
		return "", "", false
	}
	switch f.Type {
	case "ack":
		return f.ID, "", true
	case "error":
		return f.Ref, f.Code + ": " + f.Message, true
	}
	return "", "", false
}

func (geolabProto) isPing([]byte) bool { return false } // pings are WebSocket control frames

// centrifugoProto is Centrifugo's JSON client protocol (v2): commands
// {"id":N,"connect"|"subscribe"|"publish":{…}}, replies with the same id,
// pushes {"push":{"channel":…,"pub":{"data":…}}}, several replies per
// frame separated by newlines, and an empty object as the server's ping,
// answered with an empty object.
type centrifugoProto struct{}

func (centrifugoProto) dial(url, _ string) (*websocket.Conn, error) {
	ws, _, err := loadDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{"name":"geolab-load"}}`)); err != nil {
		ws.Close()
		return nil, err
	}
	if err := centrifugoReply(ws, 1); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

func (centrifugoProto) subscribe(ws *websocket.Conn, room string) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":2,"subscribe":{"channel":"`+room+`"}}`)); err != nil {
		return err
	}
	return centrifugoReply(ws, 2)
}

// centrifugoReply reads until the reply to command id; an error reply is an error.
func centrifugoReply(ws *websocket.Conn, id int) error {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var r struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil || r.ID != id {
				continue
			}
			if r.Error != nil {
				return fmt.Errorf("centrifugo: %s", r.Error)
			}
			return nil
		}
	}
}

func (centrifugoProto) publish(id, room, data string) []byte {
	return []byte(`{"id":` + id + `,"publish":{"channel":"` + room + `","data":` + data + `}}`)
}

func (centrifugoProto) ack(b []byte) (string, string, bool) {
	var r struct {
		ID    int `json:"id"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &r) != nil || r.ID == 0 {
		return "", "", false
	}
	if r.Error != nil {
		return strconv.Itoa(r.ID), strconv.Itoa(r.Error.Code) + ": " + r.Error.Message, true
	}
	return strconv.Itoa(r.ID), "", true
}

// isPing reports whether the frame holds the server's ping: an empty object
// on a line of its own, alone or batched with pushes.
func (centrifugoProto) isPing(b []byte) bool {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) {
			return true
		}
		b = rest
	}
	return false
}
