package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/geolab/geolab/internal/redistest"
)

// recorder is a TB that keeps its cleanups and failures for inspection.
type recorder struct {
	t        *testing.T
	cleanups []func()
	failures []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) TempDir() string  { return r.t.TempDir() }
func (r *recorder) Fatalf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestCleanupKillsTheServerByPid(t *testing.T) {
	r := &recorder{t: t}
	s := redistest.Start(r, redistest.Persistent())
	if s == nil || len(r.failures) > 0 {
		t.Fatalf("Start: %v", r.failures)
	}
	ctx := context.Background()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if on, err := s.Client().ConfigGet(ctx, "appendonly").Result(); err != nil || on["appendonly"] != "yes" {
		t.Fatalf("Persistent: appendonly %v %v", on, err)
	}
	// The cleanup kills the current run, also after a restart.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	r.cleanup()
	if len(r.failures) > 0 {
		t.Fatalf("cleanup failed: %v", r.failures)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after cleanup (kill -0: %v)", pid, err)
	}
	if err := s.Restart(ctx); err == nil {
		_ = s.Kill()
		t.Fatal("Restart after the test's cleanup succeeded")
	}
}

func TestStartFailureFailsTheTest(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &recorder{t: t}
	if s := redistest.Start(r); s != nil {
		t.Fatal("Start without redis-server returned a server")
	}
	if len(r.failures) != 1 || !strings.Contains(r.failures[0], "redis-server not found on PATH") {
		t.Fatalf("failures %q", r.failures)
	}
}
