package redisproc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/internal/certs"
	"github.com/geolab/geolab/internal/redisproc"
)

// start runs a server for t and closes it (SIGKILL by pid) when t ends.
func start(t *testing.T, o redisproc.Options) *redisproc.Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = filepath.Join(t.TempDir(), "redis")
	}
	s, err := redisproc.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := s.Pid()
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("redis-server pid %d still exists after Close (kill -0: %v)", pid, err)
		}
	})
	return s
}

// client is a go-redis client that gives up quickly: no retries, short
// timeouts, so that a dead or paused server shows as an error at once.
func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func gone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists (kill -0: %v)", pid, err)
	}
}

func TestStartPingStop(t *testing.T) {
	s := start(t, redisproc.Options{})
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr %q: want 127.0.0.1:PORT (%v)", s.Addr(), err)
	}
	if s.Pid() <= 0 || !s.Running() {
		t.Fatalf("pid %d, running %v after Start", s.Pid(), s.Running())
	}
	ctx := context.Background()
	rdb := client(t, s.Addr())
	if got, err := rdb.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING: %q %v", got, err)
	}
	if bind, err := rdb.ConfigGet(ctx, "bind").Result(); err != nil || bind["bind"] != "127.0.0.1" {
		t.Fatalf("CONFIG GET bind: %v %v", bind, err)
	}
	if _, err := os.Stat(filepath.Join(s.Options().Dir, "redis.log")); err != nil {
		t.Fatalf("default log file: %v", err)
	}
	pid := s.Pid()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Running() {
		t.Fatal("running after Stop")
	}
	gone(t, pid)
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestRestartPersistentKeepsAckedWrites(t *testing.T) {
	for _, how := range []string{"stop", "kill"} {
		t.Run(how, func(t *testing.T) {
			s := start(t, redisproc.Options{Persistent: true})
			ctx := context.Background()
			rdb := client(t, s.Addr())
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Incr(ctx, "n").Err(); err != nil {
				t.Fatal(err)
			}
			addr, pid := s.Addr(), s.Pid()
			down := s.Stop
			if how == "kill" {
				down = s.Kill // appendfsync always: acked means on disk
			}
			if err := down(); err != nil {
				t.Fatal(err)
			}
			if err := s.Restart(context.Background()); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if s.Addr() != addr || s.Pid() == pid || !s.Running() {
				t.Fatalf("after Restart: addr %s (was %s), pid %d (was %d), running %v", s.Addr(), addr, s.Pid(), pid, s.Running())
			}
			if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
				t.Fatalf("GET k after %s+restart: %q %v, want v", how, got, err)
			}
			if got, err := rdb.Get(ctx, "n").Int(); err != nil || got != 1 {
				t.Fatalf("GET n after %s+restart: %d %v, want 1", how, got, err)
			}
		})
	}
}

func TestRestartWithoutPersistenceStartsEmpty(t *testing.T) {
	s := start(t, redisproc.Options{})
	ctx := context.Background()
	rdb := client(t, s.Addr())
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k after restart without persistence: %v, want redis.Nil", err)
	}
	entries, err := os.ReadDir(s.Options().Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "redis.log" {
			t.Errorf("non-persistent server left %s in its data dir", e.Name())
		}
	}
}

func TestKill(t *testing.T) {
	s := start(t, redisproc.Options{})
	pid := s.Pid()
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if s.Running() {
		t.Fatal("running after Kill")
	}
	gone(t, pid)
	if err := client(t, s.Addr()).Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	s := start(t, redisproc.Options{})
	ctx := context.Background()
	rdb := client(t, s.Addr())
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if !s.Running() || !s.Paused() {
		t.Fatalf("paused server: running %v, paused %v", s.Running(), s.Paused())
	}
	err := rdb.Ping(ctx).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING to a paused server: %v, want a timeout", err)
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if s.Paused() {
		t.Fatal("paused after Resume")
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
	// A paused server still stops gracefully.
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop while paused: %v", err)
	}
	if err := s.Pause(); err == nil {
		t.Fatal("Pause of a stopped server: no error")
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := redisproc.Start(context.Background(), redisproc.Options{Dir: t.TempDir()})
	want := "redis-server not found on PATH: install it (apt-get install -y redis-server) or run 'make deps'"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Start without redis-server on PATH: %v\nwant an error containing %q", err, want)
	}
	_, err = redisproc.Start(context.Background(), redisproc.Options{Dir: t.TempDir(), Binary: "/nonexistent/redis-server"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/redis-server") {
		t.Fatalf("Start with a missing Binary: %v, want an error naming it", err)
	}
}

func TestStartFailureNamesAddrAndLogTail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = redisproc.Start(context.Background(), redisproc.Options{Addr: addr, Dir: t.TempDir()})
	if err == nil {
		t.Fatal("Start on a taken port: no error")
	}
	for _, want := range []string{addr, "Address already in use", "redis.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

func TestOptionsAreValidated(t *testing.T) {
	ctx := context.Background()
	cases := map[string]redisproc.Options{
		"Dir is required":    {},
		"loopback":           {Dir: t.TempDir(), Addr: "0.0.0.0:6379"},
		"want 127.0.0.1":     {Dir: t.TempDir(), Addr: "6379"},
		"port must be 1-655": {Dir: t.TempDir(), Addr: "127.0.0.1:0"},
	}
	for want, o := range cases {
		if _, err := redisproc.Start(ctx, o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Start(%+v): %v, want an error containing %q", o, err, want)
		}
	}
}

func TestRestartRules(t *testing.T) {
	s := start(t, redisproc.Options{})
	if err := s.Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Restart of a running server: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Restart after Close: %v", err)
	}
}

func TestFreePort(t *testing.T) {
	port, err := redisproc.FreePort()
	if err != nil || port <= 0 {
		t.Fatalf("FreePort: %d %v", port, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", port, err)
	}
	ln.Close()
}

// TestStartDoesNotMistakeAnotherServerForItself: a PONG from the redis that
// already holds the port must not pass for the new server's.
func TestStartDoesNotMistakeAnotherServerForItself(t *testing.T) {
	first := start(t, redisproc.Options{})
	_, err := redisproc.Start(context.Background(), redisproc.Options{Addr: first.Addr(), Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("second Start on %s: %v, want an address-in-use error", first.Addr(), err)
	}
	if err := client(t, first.Addr()).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the first server: %v", err)
	}
}

// A TLS server with ACL users: it serves TLS only, on Addr, to a client
// that trusts its CA and AUTHs as a user; it refuses plain TCP, a client
// without a user, a wrong password; its ACL file holds no password; a
// restart comes back the same way, with what a script wrote; and no
// password is on its command line.
func TestTLSAndACLUsers(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Write(filepath.Join(dir, "tls"), net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	const adminPW, appPW = "admin-Pw-4bd1a2", "app-Pw-77e0c9"
	s := start(t, redisproc.Options{Dir: filepath.Join(dir, "redis"), Persistent: true,
		TLS: &redisproc.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA},
		Users: []redisproc.User{{Name: "admin", Password: adminPW, Rules: "~* &* +@all"},
			{Name: "app", Password: appPW, Rules: "~app:* resetchannels -@all +get +set +ping +eval"}}})
	tlsCfg, err := s.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dial := func(user, pw string, tc *tls.Config) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), Username: user, Password: pw, TLSConfig: tc,
			MaxRetries: -1, DisableIdentity: true, DialTimeout: 2 * time.Second,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	app := dial("app", appPW, tlsCfg)
	if err := app.Set(ctx, "app:1", "v", 0).Err(); err != nil {
		t.Fatalf("SET as app over TLS: %v", err)
	}
	if err := app.Eval(ctx, "redis.call('SET', KEYS[1], 'from-a-script') return redis.call('SET', KEYS[2], 'x')", []string{"app:2", "app:3"}).Err(); err != nil {
		t.Fatalf("EVAL as app: %v", err)
	}
	if err := app.Set(ctx, "other:1", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET outside app's keys: %v, want NOPERM", err)
	}
	if err := dial("app", "wrong", tlsCfg).Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v, want WRONGPASS", err)
	}
	if err := dial("", "", tlsCfg).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("no user: %v, want NOAUTH (the default user is off)", err)
	}
	if err := dial("app", appPW, nil).Ping(ctx).Err(); err == nil {
		t.Fatal("plain TCP to the TLS port answered")
	}
	acl, err := os.ReadFile(filepath.Join(s.Options().Dir, "users.acl"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(s.Options().Dir, "users.acl")); st.Mode().Perm() != 0o600 {
		t.Errorf("users.acl mode %v, want 0600", st.Mode().Perm())
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.Pid()) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{adminPW, appPW} {
		if strings.Contains(string(acl), pw) || strings.Contains(string(cmdline), pw) {
			t.Errorf("a password is in plain text in users.acl or the command line")
		}
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	// A persistent server keeps what a script wrote (two writes: a
	// MULTI/EXEC in the append-only file), for the file is replayed past
	// the ACL (the default user keeps its permissions).
	if v, err := dial("app", appPW, tlsCfg).Get(ctx, "app:2").Result(); err != nil || v != "from-a-script" {
		t.Fatalf("GET app:2 as app after the restart: %q %v (a script's write lost in the AOF replay?)", v, err)
	}
}

func TestTLSAndUsersAreChecked(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		o    redisproc.Options
		want string
	}{
		{redisproc.Options{TLS: &redisproc.TLS{KeyFile: "k", CAFile: "c"}}, "Options.TLS.CertFile is required"},
		{redisproc.Options{TLS: &redisproc.TLS{CertFile: filepath.Join(dir, "none"), KeyFile: "k", CAFile: "c"}}, "Options.TLS.CertFile: open"},
		{redisproc.Options{Users: []redisproc.User{{Name: "a b", Password: "p"}}}, `name "a b" must be one word`},
		{redisproc.Options{Users: []redisproc.User{{Name: "default", Password: "p"}}}, `user "default" given twice (or the default user`},
		{redisproc.Options{Users: []redisproc.User{{Name: "a", Password: "p"}, {Name: "a", Password: "q"}}}, `Users[1]: user "a" given twice`},
		{redisproc.Options{Users: []redisproc.User{{Name: "a"}}}, "a password is required"},
		{redisproc.Options{Users: []redisproc.User{{Name: "a", Password: "p", Rules: "+@all\nuser b on nopass"}}}, "rules must be one line"},
	} {
		tc.o.Dir = filepath.Join(dir, "redis")
		if _, err := redisproc.Start(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// TestArgsReachTheServerAndSurviveRestart: Options.Args are on the command
// line of every run (here a config a test can read back with CONFIG GET).
func TestArgsReachTheServerAndSurviveRestart(t *testing.T) {
	s := start(t, redisproc.Options{Args: []string{"--maxmemory-policy", "noeviction", "--hz", "17"}})
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		rdb := client(t, s.Addr())
		if hz, err := rdb.ConfigGet(ctx, "hz").Result(); err != nil || hz["hz"] != "17" {
			t.Fatalf("%s: CONFIG GET hz: %v %v, want 17", when, hz, err)
		}
	}
	check("after Start")
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check("after Restart")
}
