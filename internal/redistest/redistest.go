// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and stops them (by pid) when the test ends.
package redistest

import (
	"context"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/redisproc"
)

// TB is what Start needs of a test: *testing.T and ginkgo's GinkgoT() both
// satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	TempDir() string
}

// Server is a redis-server started for one test.
type Server struct {
	*redisproc.Server
	client *redis.Client
}

// Option changes how the server starts.
type Option func(*redisproc.Options)

// Persistent makes the server keep everything acked across a restart
// (appendonly, fsync always).
func Persistent() Option { return func(o *redisproc.Options) { o.Persistent = true } }

// Start runs a redis-server for t; it is killed when t ends.
func Start(t TB, opts ...Option) *Server {
	t.Helper()
	o := redisproc.Options{Dir: filepath.Join(t.TempDir(), "redis")}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := redisproc.Start(ctx, o)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := &Server{Server: rs}
	t.Cleanup(func() {
		if s.client != nil {
			_ = s.client.Close()
		}
		pid := rs.Pid()
		_ = rs.Resume() // a paused server cannot die
		_ = rs.Kill()
		if pid > 0 && syscall.Kill(pid, 0) == nil && rs.Running() {
			t.Fatalf("redistest: redis-server pid %d still running after kill", pid)
		}
	})
	return s
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	}
	return s.client
}
