package proc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/testbin"
)

// geolab is the binary the tests run as a child (internal/testbin).
func geolab(t *testing.T) string {
	t.Helper()
	bin, err := testbin.Path()
	if err != nil {
		t.Fatalf("build geolab: %v", err)
	}
	return bin
}

func gatewaySpec(t *testing.T, redisAddr string) Spec {
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return Spec{
		Name: "gateway test/gw-1", Bin: geolab(t),
		Args:     []string{"gateway", "--region", "test", "--node", "gw-1", "--listen", addr, "--redis", redisAddr},
		Env:      []string{"GEOLAB_JWT_SECRET=proc-test-secret-0123456789abcdef0123"},
		LogFile:  filepath.Join(t.TempDir(), "gw.log"),
		ReadyURL: "http://" + addr + "/readyz", ReadyAddr: addr,
	}
}

func ready(url string) bool {
	c := &http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestProcessLifecycleUsesRealSignals(t *testing.T) {
	rs := redistest.Start(t)
	spec := gatewaySpec(t, rs.Addr())
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	if !ready(spec.ReadyURL) || p.Pid() == 0 {
		t.Fatal("started but not ready")
	}
	// SIGSTOP: the process answers nothing, though its port is open.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if ready(spec.ReadyURL) || !p.Paused() {
		t.Fatal("a paused gateway answered")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if !ready(spec.ReadyURL) {
		t.Fatal("not ready after SIGCONT")
	}
	// kill -9, then a restart on the same address.
	pid := p.Pid()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Gone() || p.Running() {
		t.Fatalf("pid %d still there after kill -9", pid)
	}
	if c, err := net.DialTimeout("tcp", spec.ReadyAddr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the killed gateway's port still accepts")
	}
	if err := p.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == pid || !ready(spec.ReadyURL) {
		t.Fatal("restart did not bring a new ready process")
	}
	// SIGTERM drains and exits by itself.
	if err := p.Terminate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Gone() {
		t.Fatal("still running after SIGTERM")
	}
}

func TestStartFailureCarriesTheLogTail(t *testing.T) {
	spec := gatewaySpec(t, "127.0.0.1:1")
	spec.Env = []string{"GEOLAB_JWT_SECRET="} // the gateway refuses to start without a secret
	_, err := Start(context.Background(), spec)
	if err == nil {
		t.Fatal("a gateway with no secret started")
	}
	if want := "GEOLAB_JWT_SECRET"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks the log's reason (%s)", err, want)
	}
	if _, err := Start(context.Background(), Spec{Name: "x", Bin: "true"}); err == nil {
		t.Fatal("a spec without a readiness check was accepted")
	}
}
