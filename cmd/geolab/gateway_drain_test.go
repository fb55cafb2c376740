package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

const drainSecret = "drain-test-secret-0123456789abcdef0123456789"

// gatewayProc is a real `geolab gateway` process of a test.
type gatewayProc struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    logText
}

// startGatewayProc runs `geolab gateway` on a free port with args added
// and waits until /readyz answers 200. It is killed by pid when t ends.
func startGatewayProc(t *testing.T, redisAddr string, args ...string) *gatewayProc {
	t.Helper()
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{}),
		log: logText(filepath.Join(t.TempDir(), "gateway.log"))}
	logFile, err := os.Create(string(g.log))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	g.cmd = exec.Command(bin, append([]string{"gateway", "--region", "us-east", "--node", "gw-1",
		"--listen", g.addr, "--redis", redisAddr}, args...)...)
	g.cmd.Env = append(os.Environ(), auth.SecretEnv+"="+drainSecret)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.exited
	})
	wait.For(t, 30*time.Second, "the gateway process ready", func() bool {
		code, _ := g.readyz()
		return code == http.StatusOK
	})
	return g
}

// readyz returns /readyz's status and reason (0 when nothing answered).
func (g *gatewayProc) readyz() (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + g.addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Reason
}

func (g *gatewayProc) running() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// SIGTERM drains behind an open port: /readyz and new /ws answer 503
// draining while a client is still connected, the client gets bye, and the
// process exits once the client leaves, or at --drain-timeout when it does
// not (closing it with 1001), never before.
func TestGatewaySIGTERMDrainsBehindAnOpenPort(t *testing.T) {
	a := gatewaytest.Authority(drainSecret)
	for _, tc := range []struct {
		name         string
		drainTimeout time.Duration
		clientLeaves bool
	}{
		{"the client leaves", time.Minute, true},
		{"the drain timeout passes", 3 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.Start(t)
			g := startGatewayProc(t, rs.Addr(), "--drain-timeout", tc.drainTimeout.String())
			c := wsprobe.Open(t, g.addr, gatewaytest.Token(t, a, "stays"))
			c.Subscribe("room:drain", nil, nil)

			sent := time.Now()
			if err := syscall.Kill(g.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if bye := c.Expect("bye"); bye.Code != protocol.CodeGoingAway || !bye.Reconnect {
				t.Fatalf("bye: %+v", bye)
			}
			if code, why := g.readyz(); code != http.StatusServiceUnavailable || why != "draining" {
				t.Fatalf("/readyz during the drain: %d %q; want 503 draining (a load balancer must see it before the port closes)\n%s", code, why, g.log)
			}
			late, resp, err := wsprobe.Dial(t, g.addr, gatewaytest.Token(t, a, "late"))
			if err == nil {
				late.Close()
				t.Fatal("a new connection during the drain was accepted")
			}
			if resp == nil {
				t.Fatalf("a new connection during the drain: %v; want HTTP 503 draining\n%s", err, g.log)
			}
			var body struct{ Code string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusServiceUnavailable || body.Code != protocol.CodeDraining {
				t.Fatalf("a new connection during the drain: %d %q; want 503 draining", resp.StatusCode, body.Code)
			}
			if c.CloseCode() != 0 || !g.running() {
				t.Fatalf("the client was closed (%d) or the process exited (%v) while the client was still there", c.CloseCode(), !g.running())
			}

			if tc.clientLeaves {
				wait.Never(t, time.Second, "the process exited with a client connected", func() bool { return !g.running() })
				left := time.Now()
				c.Close()
				wait.For(t, 10*time.Second, "the process exits after its last client left", func() bool { return !g.running() })
				took := time.Since(left)
				if took > tc.drainTimeout/2 {
					t.Fatalf("the process exited %s after its last client left: it waited for the drain timeout", took)
				}
				t.Logf("exited %s after the last client left", took.Round(time.Millisecond))
			} else {
				if code := c.AwaitClose(tc.drainTimeout + 10*time.Second); code != protocol.CloseGoingAway {
					t.Fatalf("closed with %d at the drain timeout, want 1001", code)
				}
				wait.For(t, 10*time.Second, "the process exits after the drain timeout", func() bool { return !g.running() })
				took := time.Since(sent)
				if took < tc.drainTimeout {
					t.Fatalf("the process exited %s after SIGTERM, before --drain-timeout %s", took, tc.drainTimeout)
				}
				t.Logf("exited %s after SIGTERM (--drain-timeout %s)", took.Round(time.Millisecond), tc.drainTimeout)
			}
			if !g.cmd.ProcessState.Success() {
				t.Fatalf("the drained gateway exited with %v\n%s", g.cmd.ProcessState, g.log)
			}
		})
	}
}

// A node with no client to wait for still answers 503 draining for
// --drain-delay before its port closes: a load balancer's health check sees
// it not ready first, instead of a refused connection.
func TestGatewaySIGTERMWithNoClientKeepsThePortForTheDrainDelay(t *testing.T) {
	const delay = 3 * time.Second
	rs := redistest.Start(t)
	g := startGatewayProc(t, rs.Addr(), "--drain-delay", delay.String())
	sent := time.Now()
	if err := syscall.Kill(g.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait.For(t, delay, "/readyz answers 503 draining after SIGTERM", func() bool {
		code, why := g.readyz()
		return code == http.StatusServiceUnavailable && why == "draining"
	})
	if !g.running() {
		t.Fatalf("the process exited %s after SIGTERM, before --drain-delay %s\n%s", time.Since(sent), delay, g.log)
	}
	wait.For(t, delay+10*time.Second, "the process exits after the drain delay", func() bool { return !g.running() })
	if took := time.Since(sent); took < delay {
		t.Fatalf("the process exited %s after SIGTERM, before --drain-delay %s", took, delay)
	}
	if !g.cmd.ProcessState.Success() {
		t.Fatalf("the drained gateway exited with %v\n%s", g.cmd.ProcessState, g.log)
	}
}
