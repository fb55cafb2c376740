// Package redisproc runs a real redis-server process on a loopback port
// (plain, or TLS only and with ACL users: Options.TLS, Options.Users) and
// drives its life the way the lab's faults need: graceful stop, kill -9,
// pause (SIGSTOP), resume (SIGCONT) and restart on the same address and data
// directory.
//
//	Start ─▶ redis-server (own process group, --daemonize no) ─▶ PING answers
//	Stop (SIGTERM) | Kill (SIGKILL) ─▶ Restart (same addr, dir, options)
//
// A Server is safe for concurrent use. Lifecycle calls (Stop, Kill, Restart,
// Pause, Resume, Close) are serialised: a Kill issued while a Restart is
// waiting for PING runs once the Restart has returned.
package redisproc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/geolab/geolab/internal/freeport"
)

// Timeouts. They are generous because a 2-core CI machine running the race
// detector can be slow to fork and load an append-only file.
const (
	// ReadyTimeout bounds the wait for a started server to answer PING.
	ReadyTimeout = 10 * time.Second
	// StopTimeout bounds the wait for a server to exit after SIGTERM before
	// Stop sends SIGKILL.
	StopTimeout = 10 * time.Second
	// exitTimeout bounds the wait for a process to be reaped after SIGKILL.
	exitTimeout = 10 * time.Second
	// startAttempts is how many times Start (new port) and Restart (same
	// port) try again when the port is taken.
	startAttempts = 5
)

// notFoundHint is the error text when the binary cannot be found on PATH.
const notFoundHint = "redis-server not found on PATH: install it (apt-get install -y redis-server) or run 'make deps'"

// Options say how to run one redis-server.
type Options struct {
	// Addr is the loopback "host:port" to listen on. Empty: a free
	// 127.0.0.1 port is chosen. Only loopback addresses are accepted.
	Addr string
	// Dir is the data directory (required; created if missing). The
	// append-only file and the log live there.
	Dir string
	// Persistent runs with appendonly yes and appendfsync always, so that
	// every write Redis acknowledged survives Stop, Kill and Restart.
	// Without it the server keeps nothing on disk (save "", appendonly no)
	// and a restart starts empty.
	Persistent bool
	// LogFile receives the server's log and its stdout/stderr. Default:
	// Dir/redis.log.
	LogFile string
	// Binary is the redis-server executable. Default: "redis-server" from PATH.
	Binary string
	// TLS, when set, makes the server speak TLS only: --port 0 and
	// --tls-port on Addr's port, with these files. Clients are not asked
	// for a certificate (--tls-auth-clients no): they authenticate with
	// an ACL user (Users).
	TLS *TLS
	// Users, when set, are the server's only ACL users: the default user
	// is off (it keeps its permissions, for Redis's replay of the
	// append-only file), so every client must AUTH as one of them. They are written
	// to Dir/users.acl (mode 0600) with each password as its SHA-256
	// (#hash), never in plain text and never on the command line. Start
	// and Restart check readiness as Users[0], which needs PING and INFO.
	Users []User
	// Args are further redis-server arguments, appended after the ones
	// Options make (e.g. "--cluster-enabled", "yes" for a node of a Redis
	// Cluster); Restart uses them again.
	Args []string
}

// TLS names the PEM files of a TLS server (internal/certs writes them).
type TLS struct {
	CertFile string // the server's certificate
	KeyFile  string // its private key
	CAFile   string // the CA that signed it: what clients trust
}

// User is one ACL user.
type User struct {
	Name     string
	Password string
	// Rules are its ACL rules after "on" and the password, e.g.
	// "~geolab:* &geolab:* +@all -@dangerous +info"
	// (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/).
	Rules string
}

// Server is one redis-server process and the options to start it again.
type Server struct {
	opts Options // resolved: absolute paths, Addr set, Binary found
	host string
	port int

	mu     sync.Mutex           // serialises lifecycle calls
	proc   atomic.Pointer[proc] // the current (or last) process
	closed atomic.Bool          // set by Close: no more restarts
	paused atomic.Bool          // set by Pause, cleared by Resume and on exit
}

// proc is one run of the process.
type proc struct {
	cmd     *exec.Cmd
	logFrom int64         // log size before this run: the tail starts here
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // the exit status, valid after done is closed
}

// Start starts redis-server with o and waits until it answers PING (at most
// ReadyTimeout or until ctx ends). ctx bounds only the start: it does not
// bound the life of the process, which runs until Stop, Kill or Close. On
// failure the error names the address and carries the tail of the log.
func Start(ctx context.Context, o Options) (*Server, error) {
	s, err := newServer(o)
	if err != nil {
		return nil, err
	}
	auto := o.Addr == ""
	for attempt := 1; ; attempt++ {
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			return nil, err
		}
		if auto {
			// Someone took the port between FreePort and redis binding it.
			port, perr := FreePort()
			if perr != nil {
				return nil, perr
			}
			s.port = port
			s.opts.Addr = net.JoinHostPort(s.host, strconv.Itoa(port))
		} else if werr := backoff(ctx, attempt); werr != nil {
			return nil, fmt.Errorf("%w (and gave up: %w)", err, werr)
		}
	}
}

// newServer validates and resolves o.
func newServer(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("redisproc: Options.Dir is required (the data directory)")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisproc: data dir %s: %w", o.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisproc: create data dir: %w", err)
	}
	o.Dir = dir
	if o.LogFile == "" {
		o.LogFile = filepath.Join(dir, "redis.log")
	}
	if o.LogFile, err = filepath.Abs(o.LogFile); err != nil {
		return nil, fmt.Errorf("redisproc: log file %s: %w", o.LogFile, err)
	}
	if o.Binary, err = findBinary(o.Binary); err != nil {
		return nil, err
	}
	host, port := "127.0.0.1", 0
	if o.Addr == "" {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	} else {
		h, p, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return nil, fmt.Errorf("redisproc: address %q: want 127.0.0.1:PORT: %w", o.Addr, err)
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("redisproc: address %q: host must be a loopback IP such as 127.0.0.1", o.Addr)
		}
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("redisproc: address %q: port must be 1-65535", o.Addr)
		}
		host = h
	}
	o.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	if o.TLS, err = checkTLS(o.TLS); err != nil {
		return nil, err
	}
	if len(o.Users) > 0 {
		if err := writeACL(filepath.Join(dir, aclFile), o.Users); err != nil {
			return nil, err
		}
	}
	return &Server{opts: o, host: host, port: port}, nil
}

// aclFile is the ACL file's name in Dir.
const aclFile = "users.acl"

// checkTLS checks that each file of t is named and readable, and returns
// a copy with absolute paths (the server runs in Dir).
func checkTLS(t *TLS) (*TLS, error) {
	if t == nil {
		return nil, nil
	}
	r := *t
	for _, f := range []struct {
		name string
		path *string
	}{{"CertFile", &r.CertFile}, {"KeyFile", &r.KeyFile}, {"CAFile", &r.CAFile}} {
		if *f.path == "" {
			return nil, fmt.Errorf("redisproc: Options.TLS.%s is required", f.name)
		}
		if _, err := os.ReadFile(*f.path); err != nil {
			return nil, fmt.Errorf("redisproc: Options.TLS.%s: %w", f.name, err)
		}
		abs, err := filepath.Abs(*f.path)
		if err != nil {
			return nil, fmt.Errorf("redisproc: Options.TLS.%s: %w", f.name, err)
		}
		*f.path = abs
	}
	return &r, nil
}

// writeACL writes users to path, the default user off, each password as
// its SHA-256.
//
// The default user is off (no client can log in as it) but keeps every
// permission: Redis replays the append-only file as the default user, and
// (until redis/redis#14545, late 2025; Debian's 7.0 among them) checks each
// MULTI/EXEC in it (a script's effects) against that user's rules again
// (redis/redis#14541): a default user without permissions makes a
// persistent server drop every script's writes at its next start.
func writeACL(path string, users []User) error {
	var b strings.Builder
	b.WriteString("user default off resetpass ~* &* +@all\n")
	seen := map[string]bool{"default": true}
	for i, u := range users {
		switch {
		case u.Name == "" || strings.ContainsFunc(u.Name, unicode.IsSpace):
			return fmt.Errorf("redisproc: Options.Users[%d]: name %q must be one word", i, u.Name)
		case seen[u.Name]:
			return fmt.Errorf("redisproc: Options.Users[%d]: user %q given twice (or the default user, which is off)", i, u.Name)
		case u.Password == "":
			return fmt.Errorf("redisproc: Options.Users[%d] (%s): a password is required", i, u.Name)
		case strings.ContainsAny(u.Rules, "\r\n"):
			return fmt.Errorf("redisproc: Options.Users[%d] (%s): rules must be one line", i, u.Name)
		}
		seen[u.Name] = true
		fmt.Fprintf(&b, "user %s on #%x %s\n", u.Name, sha256.Sum256([]byte(u.Password)), u.Rules)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("redisproc: ACL file: %w", err)
	}
	return os.Chmod(path, 0o600) // WriteFile keeps the mode of a file that was there
}

// findBinary resolves the redis-server executable.
func findBinary(bin string) (string, error) {
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return "", fmt.Errorf("redisproc: %s: %w", notFoundHint, err)
		}
		return p, nil
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("redisproc: redis-server binary %s: %w", bin, err)
	}
	return p, nil
}

// args is the redis-server command line for s.
func (s *Server) args() []string {
	a := []string{"--port", strconv.Itoa(s.port)}
	if t := s.opts.TLS; t != nil {
		a = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile, "--tls-ca-cert-file", t.CAFile,
			"--tls-auth-clients", "no"}
	}
	if len(s.opts.Users) > 0 {
		a = append(a, "--aclfile", filepath.Join(s.opts.Dir, aclFile))
	}
	a = append(a,
		"--bind", s.host,
		"--dir", s.opts.Dir,
		"--logfile", s.opts.LogFile,
		"--daemonize", "no",
		"--supervised", "no",
		"--save", "", // no RDB snapshots: persistence, when wanted, is the AOF
	)
	if s.opts.Persistent {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	return append(a, s.opts.Args...)
}

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = errors.New("address already in use")

// start runs the process once and waits for PING. The caller holds s.mu or
// owns s exclusively.
func (s *Server) start(ctx context.Context) error {
	log, err := os.OpenFile(s.opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redisproc: start %s: open log: %w", s.opts.Addr, err)
	}
	defer log.Close() // the child keeps its own descriptor
	var from int64
	if fi, err := log.Stat(); err == nil {
		from = fi.Size()
	}
	cmd := exec.Command(s.opts.Binary, s.args()...)
	cmd.Dir = s.opts.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisproc: start %s: %w", s.opts.Addr, err)
	}
	p := &proc{cmd: cmd, logFrom: from, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		s.paused.Store(false)
		close(p.done)
	}()
	s.proc.Store(p)
	s.paused.Store(false)

	if err := s.waitReady(ctx, p); err != nil {
		_ = signalGroup(p, syscall.SIGKILL)
		<-p.done
		tail := s.logTail(p)
		if bytes.Contains(tail, []byte("Address already in use")) {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("redisproc: start %s: %w\n--- tail of %s ---\n%s", s.opts.Addr, err, s.opts.LogFile, tail)
	}
	return nil
}

// waitReady polls PING until the server answers PONG, the process exits,
// ReadyTimeout passes or ctx ends.
func (s *Server) waitReady(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	// A PING in flight is abandoned as soon as the process exits: something
	// else may hold the port and accept without ever answering.
	pingCtx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	go func() {
		select {
		case <-p.done:
			stopPing()
		case <-pingCtx.Done():
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = s.ping(pingCtx, p.cmd.Process.Pid); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited before answering PING: %v", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no PONG within %v: %w (last PING: %v)", ReadyTimeout, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// ping sends PING on a fresh connection (over TLS, after AUTH as Users[0],
// as the options say) and expects +PONG (a loading server, -LOADING, is not
// ready), then checks with INFO server that the answer came from process
// pid and not from another server that holds the port.
func (s *Server) ping(ctx context.Context, pid int) error {
	addr := s.opts.Addr
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var c net.Conn
	var err error
	if s.opts.TLS != nil {
		cfg, cerr := s.ClientTLS()
		if cerr != nil {
			return cerr
		}
		c, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	} else {
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	var req strings.Builder
	if len(s.opts.Users) > 0 {
		u := s.opts.Users[0]
		fmt.Fprintf(&req, "*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(u.Name), u.Name, len(u.Password), u.Password)
	}
	req.WriteString("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		return err
	}
	r := bufio.NewReader(io.LimitReader(c, 64<<10))
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if len(s.opts.Users) > 0 {
		if line = strings.TrimSpace(line); line != "+OK" {
			return fmt.Errorf("AUTH as %s answered %q", s.opts.Users[0].Name, line)
		}
		if line, err = r.ReadString('\n'); err != nil {
			return err
		}
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	if line, err = r.ReadString('\n'); err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "$"))
	if err != nil || n < 0 {
		return fmt.Errorf("INFO server answered %q", strings.TrimSpace(line))
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(pid) + "\r\n"
	if !bytes.Contains(info, []byte(want)) {
		return fmt.Errorf("the server on %s is not redis-server pid %d (another process holds the port?)", addr, pid)
	}
	return nil
}

// logTail returns the end of what the log got during run p.
func (s *Server) logTail(p *proc) []byte {
	const max = 4 << 10
	f, err := os.Open(s.opts.LogFile)
	if err != nil {
		return []byte(fmt.Sprintf("(cannot read log: %v)", err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return []byte(fmt.Sprintf("(cannot read log: %v)", err))
	}
	from := p.logFrom
	if fi.Size()-from > max {
		from = fi.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	if len(b) == 0 {
		return []byte("(log is empty)")
	}
	return bytes.TrimRight(b, "\n")
}

// Addr is the "host:port" the server listens on; it does not change across
// restarts.
func (s *Server) Addr() string { return s.opts.Addr }

// ClientTLS is a TLS config for a client of a TLS server: it trusts the
// server's CA (Options.TLS.CAFile) and checks the certificate against the
// address's host. It is an error for a server without TLS.
func (s *Server) ClientTLS() (*tls.Config, error) {
	if s.opts.TLS == nil {
		return nil, fmt.Errorf("redisproc: %s does not speak TLS", s.opts.Addr)
	}
	pem, err := os.ReadFile(s.opts.TLS.CAFile)
	if err != nil {
		return nil, fmt.Errorf("redisproc: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redisproc: CA file %s holds no PEM certificate", s.opts.TLS.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: s.host, MinVersion: tls.VersionTLS12}, nil
}

// Options returns the resolved options (absolute paths, Addr and Binary set).
func (s *Server) Options() Options { return s.opts }

// Pid is the process id of the current (or last) run.
func (s *Server) Pid() int { return s.proc.Load().cmd.Process.Pid }

// Running reports whether the process of the current run has not exited. A
// paused server is running.
func (s *Server) Running() bool {
	select {
	case <-s.proc.Load().done:
		return false
	default:
		return true
	}
}

// Stop shuts the server down gracefully: SIGTERM (Redis flushes its
// append-only file and exits), then waits up to StopTimeout; if it has not
// exited by then it is killed and Stop says so. A paused server is resumed so
// that it can act on SIGTERM. Stopping a server that is not running is a
// no-op. A non-zero exit status is an error carrying the log's tail.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc.Load()
	if !s.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redisproc: stop %s (pid %d): SIGTERM: %w", s.opts.Addr, s.Pid(), err)
	}
	_ = signalGroup(p, syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		if err := s.kill(p); err != nil {
			return err
		}
		return fmt.Errorf("redisproc: stop %s (pid %d): no exit within %v of SIGTERM: killed\n--- tail of %s ---\n%s",
			s.opts.Addr, p.cmd.Process.Pid, StopTimeout, s.opts.LogFile, s.logTail(p))
	}
	if p.waitErr != nil {
		return fmt.Errorf("redisproc: stop %s (pid %d): %w\n--- tail of %s ---\n%s",
			s.opts.Addr, p.cmd.Process.Pid, p.waitErr, s.opts.LogFile, s.logTail(p))
	}
	return nil
}

// Kill sends SIGKILL to the server's process group (the server and any
// rewrite child it forked) and waits until the server has exited. Nothing
// is flushed: what a persistent server fsynced survives, the rest is lost.
// Killing a server that is not running is a no-op.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kill(s.proc.Load())
}

func (s *Server) kill(p *proc) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := signalGroup(p, syscall.SIGKILL); err != nil {
		return fmt.Errorf("redisproc: kill %s (pid %d): %w", s.opts.Addr, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(exitTimeout):
		return fmt.Errorf("redisproc: kill %s (pid %d): still not exited %v after SIGKILL", s.opts.Addr, p.cmd.Process.Pid, exitTimeout)
	}
}

// Pause stops the server's process group with SIGSTOP: connections stay open
// and commands hang until Resume, as on a frozen host.
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc.Load()
	if !s.Running() {
		return fmt.Errorf("redisproc: pause %s: not running", s.opts.Addr)
	}
	if err := signalGroup(p, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("redisproc: pause %s (pid %d): %w", s.opts.Addr, p.cmd.Process.Pid, err)
	}
	s.paused.Store(true)
	return nil
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc.Load()
	if !s.Running() {
		return fmt.Errorf("redisproc: resume %s: not running", s.opts.Addr)
	}
	if err := signalGroup(p, syscall.SIGCONT); err != nil {
		return fmt.Errorf("redisproc: resume %s (pid %d): %w", s.opts.Addr, p.cmd.Process.Pid, err)
	}
	s.paused.Store(false)
	return nil
}

// Paused reports whether Pause was called and Resume has not been since.
func (s *Server) Paused() bool { return s.paused.Load() && s.Running() }

// Restart starts the server again on the same address and data directory
// with the same options, after Stop or Kill, and waits for PING. If the port
// is briefly taken it tries again a few times. A persistent server comes
// back with every write it acknowledged; a non-persistent one comes back
// empty. Restarting a running or closed server is an error.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("redisproc: restart %s: server was closed", s.opts.Addr)
	}
	if s.Running() {
		return fmt.Errorf("redisproc: restart %s: still running (pid %d): Stop or Kill it first", s.opts.Addr, s.Pid())
	}
	for attempt := 1; ; attempt++ {
		err := s.start(ctx)
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			return err
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return fmt.Errorf("%w (and gave up: %w)", err, werr)
		}
	}
}

// Close kills the server (as Kill) and makes every later Restart fail, so
// that a Restart racing with the end of a test cannot leave a process behind.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	return s.kill(s.proc.Load())
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// outside the kernel's ephemeral range (freeport.Loopback), so that a server
// restarted on it finds it free again.
func FreePort() (int, error) {
	addr, err := freeport.Loopback()
	if err != nil {
		return 0, fmt.Errorf("redisproc: find a free port: %w", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// signalGroup signals p's process group (its pgid is its pid: Setpgid). A
// process already reaped is not signalled, so that a reused pid is never hit.
func signalGroup(p *proc, sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // already gone
	}
	return err
}

// backoff waits before retry number attempt, or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
