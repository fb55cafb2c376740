// Package proc runs the lab's child processes (gateways, bridges, Toxiproxy)
// as real processes, so that kill -9, SIGSTOP and SIGTERM are real: each in
// its own process group, killed by the kernel if the lab dies first, logging
// to its own file, and stopped by pid.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says how to run and recognise one process.
type Spec struct {
	Name    string   // e.g. "gateway us-east/gw-1", for errors and status
	Bin     string   // executable
	Args    []string // arguments
	Env     []string // added to the lab's environment
	LogFile string   // stdout and stderr go here (appended across restarts)
	// ReadyURL, when set, is polled until it answers 200; else ReadyAddr is
	// dialled until it accepts. One of them is required.
	ReadyURL     string
	ReadyAddr    string
	ReadyTimeout time.Duration // default 15s
}

// Process is one running (or stopped) child.
type Process struct {
	spec Spec

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	paused  bool
	exitErr error
}

// Start runs spec and waits until it is ready; on failure the process is
// killed and the error carries the tail of its log.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.ReadyURL == "" && spec.ReadyAddr == "" {
		return nil, fmt.Errorf("proc: %s: no readiness check (ReadyURL or ReadyAddr)", spec.Name)
	}
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 15 * time.Second
	}
	p := &Process{spec: spec}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Process) start(ctx context.Context) error {
	log, err := os.OpenFile(p.spec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("proc: %s: open log: %w", p.spec.Name, err)
	}
	defer log.Close()
	cmd := exec.Command(p.spec.Bin, p.spec.Args...)
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("proc: start %s: %w", p.spec.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.paused, p.exitErr = cmd, done, false, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	if err := p.waitReady(ctx, done); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("proc: %s not ready: %w\n--- tail of %s ---\n%s", p.spec.Name, err, p.spec.LogFile, tail(p.spec.LogFile, 2000))
	}
	return nil
}

func (p *Process) waitReady(ctx context.Context, done chan struct{}) error {
	end := time.Now().Add(p.spec.ReadyTimeout)
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for {
		select {
		case <-done:
			return errors.New("exited during start")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if p.spec.ReadyURL != "" {
			if resp, err := client.Get(p.spec.ReadyURL); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		} else if c, err := net.DialTimeout("tcp", p.spec.ReadyAddr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("not ready after %s", p.spec.ReadyTimeout)
		}
		time.Sleep(25 * time.Millisecond) // readiness polling interval
	}
}

// Name is the spec's name.
func (p *Process) Name() string { return p.spec.Name }

// Pid is the current process id (0 before the first start).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Paused reports whether the process is stopped by SIGSTOP.
func (p *Process) Paused() bool {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	return paused && p.Running()
}

func (p *Process) signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 || !p.Running() {
		return fmt.Errorf("proc: %s is not running", p.spec.Name)
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("proc: %s: signal %s: %w", p.spec.Name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL (kill -9) and waits for the exit.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT) // a stopped process must be able to die
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.wait(10 * time.Second)
}

// Pause sends SIGSTOP and returns once the kernel shows the process stopped:
// it is frozen, its sockets stay open and nothing it holds answers.
func (p *Process) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	return waitState(p.Pid(), 'T', 5*time.Second)
}

// waitState waits until /proc/PID/stat shows the process in state want
// (e.g. 'T', stopped): a signal is delivered asynchronously.
func waitState(pid int, want byte, bound time.Duration) error {
	end := time.Now().Add(bound)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil // no procfs (or the process is gone): nothing to wait for
		}
		// The state follows the command name in parentheses, which may hold spaces.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == want {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("proc: pid %d not in state %c after %s", pid, want, bound)
		}
		time.Sleep(time.Millisecond) // polling the kernel's view of a signal's delivery
	}
}

// Resume sends SIGCONT.
func (p *Process) Resume() error {
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return nil
}

// Terminate sends SIGTERM (a gateway drains) and waits up to grace for the
// exit, then kills.
func (p *Process) Terminate(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT)
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.wait(grace); err != nil {
		return p.Kill()
	}
	return nil
}

// Stop ends the process however it can: SIGTERM, then SIGKILL after 5 s.
func (p *Process) Stop() error { return p.Terminate(5 * time.Second) }

// Restart starts the process again with the same spec (after it exited).
func (p *Process) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("proc: restart %s: still running (pid %d)", p.spec.Name, p.Pid())
	}
	return p.start(ctx)
}

func (p *Process) wait(bound time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(bound):
		return fmt.Errorf("proc: %s did not exit within %s", p.spec.Name, bound)
	}
}

// Gone reports whether no process with the last pid exists any more (the
// check a test makes that nothing was left behind).
func (p *Process) Gone() bool {
	pid := p.Pid()
	return pid == 0 || (!p.Running() && syscall.Kill(pid, 0) != nil)
}

// tail returns up to n bytes of the end of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return strings.TrimRight(string(b), "\n")
}
