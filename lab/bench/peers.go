package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/freeport"
	"github.com/geolab/geolab/internal/redisproc"
)

// PeersConfig sets a side-by-side run: for each rate, each target server in
// turn on its own fresh redis-server, driven by the same load process
// (geolab bench load, a separate process) with the same yardstick.
type PeersConfig struct {
	Load       LoadConfig // the yardstick; Target, URL, Secret and Rate are set per step
	Rates      []float64  // publishes per second per room, one step each
	Targets    []string   // TargetGeolab and/or TargetCentrifugo, run in this order at each rate
	Geolab     string     // the geolab binary: the load process, and the gateway unless Gateway is set
	Gateway    string     // another geolab binary to run the gateway of (another build, to compare); empty: Geolab
	Centrifugo string     // the centrifugo binary (needed when a target is centrifugo)
	// CentrifugoEngine is Centrifugo's engine: "redis" (its own fresh
	// redis-server, as geolab's) or "memory" (no Redis at all).
	CentrifugoEngine string
	// ProfileDir, when set, makes each geolab gateway write a CPU profile
	// there (gateway-rR.pprof) over its whole life.
	ProfileDir string
	// GatewayArgs are extra flags for every geolab gateway.
	GatewayArgs []string
}

// DefaultPeers is issue 16's run: r = 20, 40, 60, 80 publishes/s per room,
// geolab then Centrifugo (Redis engine) at each.
func DefaultPeers() PeersConfig {
	return PeersConfig{Load: DefaultLoad(), Rates: []float64{20, 40, 60, 80},
		Targets: []string{TargetGeolab, TargetCentrifugo}, CentrifugoEngine: "redis"}
}

// Validate names the first bad field.
func (c PeersConfig) Validate() error {
	l := c.Load
	l.Target, l.URL, l.Secret = TargetCentrifugo, "ws://x", nil
	for _, r := range c.Rates {
		l.Rate = r
		if err := l.Validate(); err != nil {
			return err
		}
	}
	if err := l.Validate(); err != nil {
		return err
	}
	switch {
	case len(c.Rates) == 0 || len(c.Rates) > 20:
		return fielderr.New("Rates", len(c.Rates), "must hold", "1..20 rates")
	case len(c.Targets) == 0:
		return fielderr.New("Targets", "", "must name", "geolab and/or centrifugo")
	case c.CentrifugoEngine != "redis" && c.CentrifugoEngine != "memory":
		return fielderr.New("CentrifugoEngine", c.CentrifugoEngine, "must be", "redis or memory")
	}
	for _, t := range c.Targets {
		switch t {
		case TargetGeolab:
		case TargetCentrifugo:
			if c.Centrifugo == "" {
				return fielderr.New("Centrifugo", "", "must name", "the centrifugo binary")
			}
		default:
			return fielderr.New("Targets", t, "must each be", "geolab or centrifugo")
		}
	}
	return nil
}

// PeerRow is one step: one server at one rate.
type PeerRow struct {
	Server    string     // "geolab" or "centrifugo"
	LoadAvg   string     // /proc/loadavg's 1-minute figure just before the step
	Result    LoadResult // what the load process measured
	ServerCPU float64    // CPU seconds of the server process during the window
	RedisCPU  float64    // CPU seconds of its redis-server during the window (0: none)
	LoadTotal float64    // CPU seconds of the load process over its whole run
	// PublishRedisMean is, for geolab, the mean time from a publish frame
	// read to Redis confirming it over the window (the gateway's
	// geolab_gateway_publish_seconds), in milliseconds; 0 for Centrifugo.
	// Beside the load's publish → ack time it says where a publish waits:
	// in the gateway's hands, or before the gateway read it.
	PublishRedisMean float64
	// FramesPerWrite is, for geolab, the frames the gateway wrote to
	// clients per write(2)/writev(2) over the window (its frames_out_total
	// over writes_total); 0 for Centrifugo, or a gateway without the metric.
	FramesPerWrite float64
}

// CPUPerDelivery is the server's CPU time per delivery received in the window.
func (r PeerRow) CPUPerDelivery() time.Duration {
	if r.Result.ReceivedInWindow == 0 {
		return 0
	}
	return time.Duration(r.ServerCPU * 1e9 / float64(r.Result.ReceivedInWindow))
}

// Sustained reports whether the step delivered everything it owed, cut
// nobody and kept p99 under 250 ms (issue 16's saturation criterion).
func (r PeerRow) Sustained() bool {
	x := r.Result
	return x.Owed > 0 && x.Delivered >= x.Owed && x.Cut == 0 && x.Errors == 0 && x.P99 < 250
}

// RunPeers runs every step and returns its rows; progress goes to log.
func RunPeers(ctx context.Context, c PeersConfig, log io.Writer) ([]PeerRow, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var rows []PeerRow
	for _, r := range c.Rates {
		for _, t := range c.Targets {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			row, err := runPeerStep(ctx, c, t, r, log)
			if err != nil {
				return rows, fmt.Errorf("bench peers: %s at %g/s per room: %w", t, r, err)
			}
			fmt.Fprintf(log, "bench peers: %s\n", row.line())
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func (r PeerRow) line() string {
	x := r.Result
	return fmt.Sprintf("%s r=%g: delivered %.0f/s (%.2f%% of owed), p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, publish→ack p50 %.1f ms p99 %.1f ms (gateway's publish read → Redis confirmed mean %.2f ms, frames per write %.2f), server CPU %.1fs, cut %d",
		r.Server, x.Rate, x.DeliveredPerSec, pct(x.Delivered, x.Owed), x.P50, x.P99, x.P999, x.AckP50, x.AckP99, r.PublishRedisMean, r.FramesPerWrite, r.ServerCPU, x.Cut)
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// PeersTable prints rows as one Markdown table, then each server's
// saturation: the highest delivered rate of a step that delivered
// everything with p99 under 250 ms.
func PeersTable(rows []PeerRow, c PeersConfig) string {
	var b strings.Builder
	l := c.Load
	engine := "Redis engine, own fresh redis-server"
	if c.CentrifugoEngine == "memory" {
		engine = "memory engine"
	}
	fmt.Fprintf(&b, "%d subscribers over %d rooms, one publisher per room, %d-byte payloads, %s window after %s warmup; geolab: one gateway on its own redis-server; Centrifugo: %s\n\n",
		l.Rooms*l.SubsPerRoom, l.Rooms, l.Payload, l.Duration, l.Warmup, engine)
	b.WriteString("| r/room | offered/s | server | load avg before | delivered/s | % delivered | p50 | p99 | p99.9 | ack p50 / p99 | server CPU s | CPU/delivery | redis CPU s | load CPU s | cut |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		x := r.Result
		cut := strconv.FormatInt(x.Cut, 10)
		if x.CloseCodes != "" {
			cut += " (" + x.CloseCodes + ")"
		}
		fmt.Fprintf(&b, "| %g | %.0f | %s | %s | %.0f | %.2f %% | %s | %s | %s | %s / %s | %.1f | %.1f µs | %.1f | %.1f | %s |\n",
			x.Rate, x.Offered, r.Server, r.LoadAvg, x.DeliveredPerSec, pct(x.Delivered, x.Owed),
			ms(x.P50), ms(x.P99), ms(x.P999), ms(x.AckP50), ms(x.AckP99), r.ServerCPU, float64(r.CPUPerDelivery())/1e3, r.RedisCPU, x.LoadCPU, cut)
	}
	b.WriteString("\n")
	for _, t := range c.Targets {
		best := 0.0
		for _, r := range rows {
			if r.Server == t && r.Sustained() && r.Result.DeliveredPerSec > best {
				best = r.Result.DeliveredPerSec
			}
		}
		fmt.Fprintf(&b, "%s: highest delivered rate with 100 %% delivered, nobody cut and p99 < 250 ms: %.0f/s\n", t, best)
	}
	return b.String()
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// peersSecret signs the geolab tokens of a peers run (a lab secret: the
// gateway listens on loopback and lives for one step).
const peersSecret = benchSecret

func runPeerStep(ctx context.Context, c PeersConfig, target string, rate float64, log io.Writer) (PeerRow, error) {
	row := PeerRow{Server: target, LoadAvg: loadAvg()}
	dir, err := os.MkdirTemp("", "geolab-peers-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeport.Loopback()
	if err != nil {
		return row, err
	}
	var rs *redisproc.Server
	if target == TargetGeolab || c.CentrifugoEngine == "redis" {
		if rs, err = redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(dir, "redis")}); err != nil {
			return row, err
		}
		defer rs.Close()
	}
	var srv *child
	var url, health string
	switch target {
	case TargetGeolab:
		args := []string{"--log-level", "warn", "gateway", "--region", "bench", "--node", "gw-1", "--listen", addr,
			"--redis", rs.Addr(), "--publish-rate", strconv.FormatFloat(max(100, 2*rate), 'f', -1, 64),
			"--drain-timeout", "1s", "--drain-delay", "0s"}
		if c.ProfileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(c.ProfileDir, fmt.Sprintf("gateway-r%g.pprof", rate)))
		}
		args = append(args, c.GatewayArgs...)
		bin := c.Geolab
		if c.Gateway != "" {
			bin = c.Gateway
		}
		srv, err = startChild(bin, args, []string{"GEOLAB_JWT_SECRET=" + peersSecret}, filepath.Join(dir, "gateway.log"))
		url, health = "ws://"+addr+"/ws", "http://"+addr+"/readyz"
	case TargetCentrifugo:
		cfg := filepath.Join(dir, "centrifugo.json")
		if err := writeCentrifugoConfig(cfg, addr, c.CentrifugoEngine, rs); err != nil {
			return row, err
		}
		srv, err = startChild(c.Centrifugo, []string{"-c", cfg}, nil, filepath.Join(dir, "centrifugo.log"))
		url, health = "ws://"+addr+"/connection/websocket", "http://"+addr+"/health"
	}
	if err != nil {
		return row, err
	}
	defer srv.stop(15 * time.Second)
	if err := waitHTTP(ctx, health, srv, 20*time.Second); err != nil {
		return row, err
	}

	l := c.Load
	args := []string{"bench", "load", "--target", target, "--url", url, "--rate", strconv.FormatFloat(rate, 'f', -1, 64),
		"--rooms", strconv.Itoa(l.Rooms), "--subs-per-room", strconv.Itoa(l.SubsPerRoom), "--payload", strconv.Itoa(l.Payload),
		"--duration", l.Duration.String(), "--warmup", l.Warmup.String(), "--drain", l.Drain.String()}
	load := exec.Command(c.Geolab, args...)
	load.Env = append(os.Environ(), "GEOLAB_JWT_SECRET="+peersSecret)
	load.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	load.Stderr = log
	stdout, err := load.StdoutPipe()
	if err != nil {
		return row, err
	}
	if err := load.Start(); err != nil {
		return row, err
	}
	lc := &child{cmd: load, done: make(chan struct{})}
	go func() { lc.err = load.Wait(); close(lc.done) }()
	defer lc.stop(5 * time.Second)
	// On an interrupt the load stops at once (SIGTERM), closing its connections.
	defer context.AfterFunc(ctx, func() { _ = load.Process.Signal(syscall.SIGTERM) })()
	// The load prints markers and its result; the servers' CPU is read at
	// the markers. A step ends when the load exits (it bounds itself:
	// connect, warmup, window, drain), or on ctx.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var srvCPU0, redisCPU0 float64
	var pub0, pub1 gatewayCounters
	metricsURL := ""
	if target == TargetGeolab {
		metricsURL = "http://" + addr + "/metrics"
	}
	var got bool
	redisPid := 0
	if rs != nil {
		redisPid = rs.Pid()
	}
	for line := range lines {
		var m struct{ Event string }
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m.Event {
		case "window_start":
			srvCPU0, redisCPU0 = procCPU(srv.cmd.Process.Pid), procCPU(redisPid)
			pub0 = readGatewayCounters(metricsURL)
		case "window_end":
			row.ServerCPU, row.RedisCPU = procCPU(srv.cmd.Process.Pid)-srvCPU0, procCPU(redisPid)-redisCPU0
			pub1 = readGatewayCounters(metricsURL)
			if n := pub1.publishCount - pub0.publishCount; n > 0 {
				row.PublishRedisMean = 1000 * (pub1.publishSum - pub0.publishSum) / n
			}
			if w := pub1.writes - pub0.writes; w > 0 {
				row.FramesPerWrite = (pub1.framesOut - pub0.framesOut) / w
			}
		case "result":
			if err := json.Unmarshal([]byte(line), &row.Result); err != nil {
				return row, fmt.Errorf("load result %q: %w", line, err)
			}
			got = true
		}
	}
	select {
	case <-lc.done:
	case <-ctx.Done():
		return row, ctx.Err()
	case <-time.After(30 * time.Second):
		return row, errors.New("the load process did not exit 30s after closing its output")
	}
	if lc.err != nil {
		return row, fmt.Errorf("load process: %w", lc.err)
	}
	if !got {
		return row, errors.New("the load process printed no result")
	}
	if st := load.ProcessState; st != nil {
		row.LoadTotal = (st.UserTime() + st.SystemTime()).Seconds()
	}
	if !srv.running() {
		return row, fmt.Errorf("the %s server exited during the step (log in %s)", target, dir)
	}
	return row, nil
}

func writeCentrifugoConfig(path, addr, engine string, rs *redisproc.Server) error {
	host, port, _ := strings.Cut(addr, ":")
	p, _ := strconv.Atoi(port)
	e := map[string]any{"type": "memory"}
	if engine == "redis" {
		e = map[string]any{"type": "redis", "redis": map[string]any{"address": []string{"redis://" + rs.Addr()}}}
	}
	perm := map[string]any{"name": "bench", "allow_subscribe_for_anonymous": true, "allow_publish_for_anonymous": true,
		"allow_subscribe_for_client": true, "allow_publish_for_client": true}
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": p},
		"log":         map[string]any{"level": "error"},
		"engine":      e,
		"client":      map[string]any{"allow_anonymous_connect_without_token": true},
		"channel":     map[string]any{"namespaces": []any{perm}},
		"health":      map[string]any{"enabled": true},
		"usage_stats": map[string]any{"disabled": true},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(path, b, 0o600)
}

// child is a process this run started; stop ends it by its pid.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

func startChild(bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C reaches this run, which stops it; and
	// killed with this run if this run dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: f}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the exit.
func (c *child) stop(grace time.Duration) {
	if c.running() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	if c.log != nil {
		c.log.Close()
	}
}

// waitHTTP waits until url answers 200, at most within.
func waitHTTP(ctx context.Context, url string, c *child, within time.Duration) error {
	end := time.Now().Add(within)
	hc := http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !c.running() {
			return fmt.Errorf("%s exited before it answered %s: %v", c.cmd.Path, url, c.err)
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer %s within %s", c.cmd.Path, url, within)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// procCPU is the CPU seconds (user+system) process pid used so far, from
// /proc/PID/stat (utime and stime, in clock ticks of 1/100 s); 0 when pid is
// 0 or unreadable.
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// gatewayCounters are the figures bench peers reads from a gateway's
// /metrics at the window markers.
type gatewayCounters struct {
	publishSum, publishCount float64 // geolab_gateway_publish_seconds
	framesOut, writes        float64 // geolab_gateway_frames_out_total, geolab_gateway_writes_total
}

// readGatewayCounters reads them from the /metrics at url; zeros when url
// is empty or unreadable, or for a metric the gateway does not have.
func readGatewayCounters(url string) gatewayCounters {
	var g gatewayCounters
	if url == "" {
		return g
	}
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return g
	}
	defer resp.Body.Close()
	return parseGatewayCounters(resp.Body)
}

// parseGatewayCounters reads the figures from a Prometheus text exposition:
// the value of each sample line "NAME[{labels}] VALUE"; lines it does not
// know, or cannot read, are passed over.
func parseGatewayCounters(r io.Reader) gatewayCounters {
	var g gatewayCounters
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		switch name {
		case "geolab_gateway_publish_seconds_sum":
			g.publishSum = v
		case "geolab_gateway_publish_seconds_count":
			g.publishCount = v
		case "geolab_gateway_frames_out_total":
			g.framesOut = v
		case "geolab_gateway_writes_total":
			g.writes = v
		}
	}
	return g
}

// loadAvg is /proc/loadavg's 1-, 5- and 15-minute figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
