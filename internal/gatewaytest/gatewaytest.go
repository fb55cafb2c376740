// Package gatewaytest runs gateway nodes inside a test process and signs
// the tokens their clients dial with. The gateway's, the federation's and
// the Go client's tests all start their nodes with Start, instead of a copy
// each of the config, the start and the wait for readiness.
package gatewaytest

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/wait"
)

// ReadyBound is how long Start waits for a node to report ready.
const ReadyBound = 30 * time.Second

// TB is what Start and Token need of a test: what a wait needs, a cleanup
// and a log. *testing.T, testing.TB and Ginkgo's GinkgoT() all satisfy it.
type TB interface {
	wait.TB
	Cleanup(func())
	Log(args ...any)
}

// Authority returns the token authority for a test's secret; it panics
// when the secret is unusable, as a test's constant never is.
func Authority(secret string) *auth.Authority {
	a, err := auth.NewAuthority([]byte(secret))
	if err != nil {
		panic(err)
	}
	return a
}

// Token signs a token of a for sub, valid for an hour, that may read and
// write the rooms matching patterns: every room when none are given.
func Token(t TB, a *auth.Authority, sub string, patterns ...string) string {
	t.Helper()
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	tok, err := a.Issue(sub, patterns, patterns, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("gatewaytest: issue a token for %s: %v", sub, err)
	}
	return tok
}

// Start runs one gateway node of region on the Redis at redisAddr, on a
// free loopback port, checking tokens with a, and waits until it is ready.
// Publishing and frame rates are lifted (tests publish as fast as Redis
// answers; the limits have their own test); the node logs to t under
// 'go test -v' and nowhere else. mod adjusts the config before the start.
// The node is closed when t ends.
func Start(t TB, a *auth.Authority, redisAddr, region, node string, mod ...func(*gateway.Config)) *gateway.Server {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Region, cfg.Node, cfg.Listen, cfg.Redis, cfg.Authority = region, node, "127.0.0.1:0", redisAddr, a
	cfg.PublishRate, cfg.PublishBurst = 100000, 100000
	cfg.FrameRate, cfg.FrameBurst = 100000, 100000
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gatewaytest: gateway.New: %v", err)
		return nil
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("gatewaytest: start %s/%s: %v", region, node, err)
		return nil
	}
	t.Cleanup(func() { _ = srv.Close() })
	wait.For(t, ReadyBound, "gateway "+region+"/"+node+" ready", func() bool { ok, _ := srv.Ready(); return ok })
	return srv
}

// logWriter hands each line a node logs to the test's log.
type logWriter struct{ t TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
