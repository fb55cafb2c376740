package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/control"
	"github.com/geolab/geolab/lab/geolabbin"
)

// geolab up runs until Ctrl-C and leaves no process behind; status, fault,
// heal and down drive it through its state file.
func TestUpStatusFaultHealAndCtrlCLeavesNothingBehind(t *testing.T) {
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "lab.json")
	logPath := filepath.Join(t.TempDir(), "up.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	out := logText(logPath)
	up := exec.Command(bin, "up", "../../topologies/three-region.yaml", "--state", state, "--rtt-samples", "3")
	up.Env = append(os.Environ(), geolabbin.Env+"="+bin)
	up.Stdout, up.Stderr = logFile, logFile
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = up.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		<-exited
	})
	var c *control.Client
	end := time.Now().Add(60 * time.Second)
	for c == nil {
		if time.Now().After(end) {
			t.Fatalf("no lab after 60s:\n%s", out.String())
		}
		c, _ = control.Open(state)
		time.Sleep(50 * time.Millisecond) // polling for the state file
	}
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, r := range st.Regions {
		pids = append(pids, r.Redis.Pid)
		for _, g := range r.Gateways {
			pids = append(pids, g.Pid)
		}
		if r.Bridge != nil {
			pids = append(pids, r.Bridge.Pid)
		}
	}
	if len(pids) != 3+6+3 {
		t.Fatalf("want 12 processes (3 Redis, 6 gateways, 3 bridges), got %d", len(pids))
	}

	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--state", state)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if o, err := run("fault", "partition", "us-east", "eu-west", "--mode", "blackhole"); err != nil || !strings.Contains(o, "f1: partition us-east<->eu-west injected") {
		t.Fatalf("fault: %v\n%s", err, o)
	}
	if o, err := run("fault", "partition", "us-east", "mars"); err == nil || !strings.Contains(o, `no region "mars"`) {
		t.Fatalf("a fault naming an unknown region was accepted: %v\n%s", err, o)
	}
	if o, err := run("status", "--json"); err != nil || !strings.Contains(o, `"kind": "partition"`) {
		t.Fatalf("status --json does not show the fault: %v\n%s", err, o)
	}
	if o, err := run("heal"); err != nil || !strings.Contains(o, "healed f1") {
		t.Fatalf("heal: %v\n%s", err, o)
	}

	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("geolab up did not exit after Ctrl-C:\n%s", out.String())
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d survived Ctrl-C", pid)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file left behind: %v", err)
	}
	for _, want := range []string{"is up in", "toxiproxy API", "resolver", "RTT self-check", "eu-west↔us-east"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("geolab up did not print %q:\n%s", want, out.String())
		}
	}
}

func TestLabCommandsWithoutALabSayHowToStartOne(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	for _, args := range [][]string{{"status"}, {"fault", "isolate", "us-east"}, {"heal"}, {"down"}} {
		root := newRoot()
		root.SetArgs(append(args, "--state", state))
		root.SetOut(&bytes.Buffer{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "geolab up TOPOLOGY") {
			t.Errorf("%v: want an error saying to run geolab up, got %v", args, err)
		}
	}
}

// logText reads a log file when printed.
type logText string

func (p logText) String() string {
	b, _ := os.ReadFile(string(p))
	return string(b)
}
