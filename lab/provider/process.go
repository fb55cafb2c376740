package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/geolab/geolab/internal/certs"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/lab/geolabbin"
	"github.com/geolab/geolab/lab/proc"
)

// Process runs every part as a local process: redis-server from PATH, and
// Toxiproxy, gateways and bridges as subcommands of the geolab binary, so
// that kill -9 and SIGSTOP are real. Each child is in its own process group,
// dies with the lab (PR_SET_PDEATHSIG), logs to a file under Dir, and is
// stopped by pid in Close.
type Process struct {
	// Bin is the geolab binary.
	Bin string
	// Dir holds logs, configs and Redis data.
	Dir string
	// Env is added to every geolab child's environment (the JWT secret).
	Env []string

	mu    sync.Mutex
	nodes []Node
	tls   *certs.Files // the CA and server certificate of every TLS Redis, made once
}

// NewProcess checks bin and dir and returns a process provider.
func NewProcess(bin, dir string, env []string) (*Process, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return nil, fmt.Errorf("provider process: geolab binary: %w (build it with 'make build', or set %s)", err, geolabbin.Env)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("provider process: geolab binary %s is not executable", bin)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("provider process: work dir: %w", err)
	}
	return &Process{Bin: bin, Dir: dir, Env: env}, nil
}

// Name is ProcessName.
func (p *Process) Name() string { return ProcessName }

func (p *Process) keep(n Node) {
	p.mu.Lock()
	p.nodes = append(p.nodes, n)
	p.mu.Unlock()
}

// StartToxiproxy runs `geolab toxiproxy` on a free port.
func (p *Process) StartToxiproxy(ctx context.Context) (Node, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	pr, err := proc.Start(ctx, proc.Spec{
		Name: "toxiproxy", Bin: p.Bin, Args: []string{"toxiproxy", "--listen", addr},
		LogFile: filepath.Join(p.Dir, "toxiproxy.log"), ReadyURL: "http://" + addr + "/version",
	})
	if err != nil {
		return nil, "", err
	}
	n := procNode{pr}
	p.keep(n)
	return n, "http://" + addr, nil
}

// ProxyListen is "": every proxy on a free loopback port.
func (p *Process) ProxyListen(string) string { return "" }

// ListenAddr is a free loopback address.
func (p *Process) ListenAddr(string, string) (string, error) { return freeAddr() }

// StartRedis runs redis-server with its data under Dir/redis-REGION. With
// TLS it serves TLS only, with a certificate for 127.0.0.1 (the address of
// every proxy its clients dial) signed by a throwaway CA under Dir/tls.
func (p *Process) StartRedis(ctx context.Context, s RedisSpec) (Redis, error) {
	o := redisproc.Options{Dir: filepath.Join(p.Dir, "redis-"+s.Region), Persistent: s.Persistent, Users: s.Users}
	ca := ""
	if s.TLS {
		f, err := p.certificates()
		if err != nil {
			return nil, fmt.Errorf("provider process: redis of %s: %w", s.Region, err)
		}
		o.TLS = &redisproc.TLS{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}
		ca = f.CA
	}
	srv, err := redisproc.Start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("provider process: redis of %s: %w", s.Region, err)
	}
	r := &redisNode{name: "redis " + s.Region, srv: srv, ca: ca}
	p.keep(r)
	return r, nil
}

// certificates makes the lab's CA and server certificate the first time a
// TLS Redis asks for them, in Dir/tls.
func (p *Process) certificates() (certs.Files, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tls == nil {
		f, err := certs.Write(filepath.Join(p.Dir, "tls"), net.IPv4(127, 0, 0, 1))
		if err != nil {
			return certs.Files{}, err
		}
		p.tls = &f
	}
	return *p.tls, nil
}

// StartGateway runs `geolab gateway`.
func (p *Process) StartGateway(ctx context.Context, s GatewaySpec) (Node, error) {
	args := []string{"gateway", "--region", s.Region, "--node", s.Node, "--listen", s.Listen, "--redis", s.Redis, "--log-format", "json"}
	for _, f := range s.Federate {
		args = append(args, "--federate", f)
	}
	args = append(args, s.Args...)
	pr, err := proc.Start(ctx, proc.Spec{
		Name: "gateway " + s.Region + "/" + s.Node, Bin: p.Bin, Args: args, Env: append(slices.Clone(p.Env), s.Env...),
		LogFile:  filepath.Join(p.Dir, "gateway-"+s.Region+"-"+s.Node+".log"),
		ReadyURL: "http://" + s.Listen + "/readyz",
	})
	if err != nil {
		return nil, err
	}
	n := procNode{pr}
	p.keep(n)
	return n, nil
}

// StartBridge writes the config under Dir and runs `geolab federation`.
func (p *Process) StartBridge(ctx context.Context, s BridgeSpec) (Node, error) {
	cfg := filepath.Join(p.Dir, "federation-"+s.Region+".yaml")
	if err := os.WriteFile(cfg, s.Config, 0o644); err != nil {
		return nil, fmt.Errorf("provider process: bridge config of %s: %w", s.Region, err)
	}
	pr, err := proc.Start(ctx, proc.Spec{
		Name: "bridge " + s.Region, Bin: p.Bin, Env: append(slices.Clone(p.Env), s.Env...),
		Args:     []string{"federation", "--region", s.Region, "--config", cfg, "--listen", s.Listen, "--log-format", "json"},
		LogFile:  filepath.Join(p.Dir, "bridge-"+s.Region+".log"),
		ReadyURL: "http://" + s.Listen + "/readyz",
	})
	if err != nil {
		return nil, err
	}
	n := procNode{pr}
	p.keep(n)
	return n, nil
}

// Close stops every child (bridges and gateways first, Redis and Toxiproxy
// last) and reports any that would not go.
func (p *Process) Close() error {
	p.mu.Lock()
	nodes := p.nodes
	p.nodes = nil
	p.mu.Unlock()
	var errs []error
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := nodes[i].Kill(); err != nil {
			errs = append(errs, err)
		}
		switch r := nodes[i].(type) {
		case *redisNode:
			_ = r.srv.Close()
		case *clusterNode:
			_ = r.srv.Close()
		}
	}
	return errors.Join(errs...)
}

// FreeAddr returns a free 127.0.0.1 address.
func freeAddr() (string, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

// procNode adapts a proc.Process to Node.
type procNode struct{ *proc.Process }

// redisNode adapts a redisproc.Server to Redis.
type redisNode struct {
	name string
	srv  *redisproc.Server
	ca   string // its CA file, when it speaks TLS
}

func (r *redisNode) Name() string   { return r.name }
func (r *redisNode) Pid() int       { return r.srv.Pid() }
func (r *redisNode) Running() bool  { return r.srv.Running() }
func (r *redisNode) Paused() bool   { return r.srv.Paused() }
func (r *redisNode) Kill() error    { return r.srv.Kill() }
func (r *redisNode) Pause() error   { return r.srv.Pause() }
func (r *redisNode) Resume() error  { return r.srv.Resume() }
func (r *redisNode) Addr() string   { return r.srv.Addr() }
func (r *redisNode) CAFile() string { return r.ca }

func (r *redisNode) Terminate(time.Duration) error { return r.srv.Stop() }

func (r *redisNode) Restart(ctx context.Context) error { return r.srv.Restart(ctx) }

// Wipe removes the data directory's append-only files and snapshots.
func (r *redisNode) Wipe() error { return r.wipe() }

// wipe removes everything in the data directory but the logs and the
// files named keep.
func (r *redisNode) wipe(keep ...string) error {
	if r.srv.Running() {
		return fmt.Errorf("provider process: wipe %s: still running", r.name)
	}
	dir := r.srv.Options().Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("provider process: wipe %s: %w", r.name, err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".log" || slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("provider process: wipe %s: %w", r.name, err)
		}
	}
	return nil
}
