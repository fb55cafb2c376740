// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and kills them (by pid) when the test ends. It works with
// *testing.T and with Ginkgo's GinkgoT().
package redistest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/internal/certs"
	"github.com/geolab/geolab/internal/redisproc"
)

// startTimeout bounds Start: a slow CI machine under -race may need it.
const startTimeout = 30 * time.Second

// TB is what Start needs of a test: *testing.T, testing.TB and Ginkgo's
// GinkgoT() all satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	TempDir() string
}

// Server is a redis-server started for one test, with a client for it.
type Server struct {
	*redisproc.Server
	client *redis.Client
}

// Option changes how the server starts.
type Option func(*redisproc.Options)

// Persistent makes the server keep every acknowledged write across Stop,
// Kill and Restart (appendonly yes, appendfsync always).
func Persistent() Option { return func(o *redisproc.Options) { o.Persistent = true } }

// TLS makes the server speak TLS only, with a throwaway CA and a
// certificate for 127.0.0.1 (internal/certs) in the test's temporary
// directory; Options().TLS.CAFile is the CA a client trusts.
func TLS() Option { return func(o *redisproc.Options) { o.TLS = &redisproc.TLS{} } }

// Users gives the server these ACL users, and turns the default user off
// (redisproc.Options.Users); the first one needs PING and INFO, and the
// test's Client is that user.
func Users(users ...redisproc.User) Option {
	return func(o *redisproc.Options) { o.Users = users }
}

// Start runs a redis-server in a temporary directory of t and waits until it
// answers PING; it fails t if it cannot. When t ends the server is killed
// by pid (and restarts are refused from then on), the client is closed, and
// t fails if the process is still there.
func Start(t TB, opts ...Option) *Server {
	t.Helper()
	o := redisproc.Options{Dir: filepath.Join(t.TempDir(), "redis")}
	for _, f := range opts {
		f(&o)
	}
	if o.TLS != nil {
		files, err := certs.Write(filepath.Join(t.TempDir(), "tls"), net.ParseIP("127.0.0.1"))
		if err != nil {
			t.Fatalf("redistest: %v", err)
			return nil
		}
		o.TLS = &redisproc.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	rs, err := redisproc.Start(ctx, o)
	if err != nil {
		t.Fatalf("redistest: %v", err)
		return nil // for a TB whose Fatalf returns
	}
	co := &redis.Options{
		Addr:                     rs.Addr(),
		DisableIdentity:          true, // no CLIENT SETINFO in MONITOR output
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if o.TLS != nil {
		if co.TLSConfig, err = rs.ClientTLS(); err != nil {
			_ = rs.Close()
			t.Fatalf("redistest: %v", err)
			return nil
		}
	}
	if len(o.Users) > 0 {
		co.Username, co.Password = o.Users[0].Name, o.Users[0].Password
	}
	s := &Server{Server: rs, client: redis.NewClient(co)}
	t.Cleanup(func() {
		_ = s.client.Close()
		pid := rs.Pid() // the current run: a Restart changes the pid
		if err := rs.Close(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if rs.Running() {
			t.Fatalf("redistest: redis-server %s (pid %d) still running after SIGKILL", rs.Addr(), pid)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("redistest: redis-server %s (pid %d) still exists after SIGKILL (kill -0: %v)", rs.Addr(), pid, err)
		}
	})
	return s
}

// Client returns the go-redis client for the server; it is closed when the
// test ends. It reconnects by itself after a Restart.
func (s *Server) Client() *redis.Client { return s.client }
