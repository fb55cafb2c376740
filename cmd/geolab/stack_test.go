package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/lab/stack"
)

// stackToxiproxy starts a real Toxiproxy (toxitest) with
// the proxies of a two-region stack named as the lab names its links, and
// returns its host:port.
func stackToxiproxy(t *testing.T) string {
	t.Helper()
	url := toxitest.Start(t)
	api := toxiproxy.NewClient(url)
	for _, name := range []string{"client.us-east.us-east.gw-1", "client.eu-west.eu-west.gw-1",
		"lan.us-east.gw-1", "lan.eu-west.gw-1", "wan.us-east.eu-west", "wan.eu-west.us-east"} {
		if _, err := api.CreateProxy(name, "127.0.0.1:0", "127.0.0.1:9"); err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimPrefix(url, "http://")
}

// fault, status and heal with --toxiproxy drive a stack geolab did not
// start, each command on its own, as a user of the compose stack does.
func TestFaultStatusHealOnAStackThroughToxiproxy(t *testing.T) {
	api := stackToxiproxy(t)

	out, err := runCmd(t, "fault", "partition", "us-east", "eu-west", "--mode", "blackhole", "--toxiproxy", api)
	if err != nil {
		t.Fatal(err)
	}
	if want := "f1: partition us-east<->eu-west injected, until 'geolab heal --toxiproxy " + api + " f1'\n"; out != want {
		t.Fatalf("fault printed %q, want %q", out, want)
	}
	out, err = runCmd(t, "fault", "latency", "us-east", "eu-west", "--latency", "100ms", "--toxiproxy", api)
	if err != nil || !strings.HasPrefix(out, "f2: latency") {
		t.Fatalf("second fault: %q, %v", out, err)
	}

	out, err = runCmd(t, "status", "--toxiproxy", api)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"regions eu-west, us-east", "f1_upstream(timeout upstream timeout=0)",
		"f2_downstream(latency downstream jitter=0 latency=50)", "fault f1: timeout wan.eu-west.us-east; timeout wan.us-east.eu-west",
		"fault f2: latency wan.eu-west.us-east; latency wan.us-east.eu-west"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, "status", "--toxiproxy", api, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st stack.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(st.Links) != 6 || len(st.Faults) != 2 || st.Faults[0].ID != "f1" {
		t.Fatalf("status --json: %d links, faults %+v", len(st.Links), st.Faults)
	}

	if out, err = runCmd(t, "heal", "f1", "--toxiproxy", api); err != nil || out != "healed f1\n" {
		t.Fatalf("heal f1: %q, %v", out, err)
	}
	if out, err = runCmd(t, "heal", "--toxiproxy", api); err != nil || out != "healed f2\n" {
		t.Fatalf("heal all: %q, %v", out, err)
	}
	if out, err = runCmd(t, "heal", "--toxiproxy", api); err != nil || out != "no active faults\n" {
		t.Fatalf("heal with none active: %q, %v", out, err)
	}

	// --for: the command waits, heals, and says so; nothing is left.
	out, err = runCmd(t, "fault", "isolate", "eu-west", "--for", "300ms", "--toxiproxy", api)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "f1: isolate eu-west injected for 300ms") || !strings.HasSuffix(out, "healed f1\n") {
		t.Fatalf("fault --for printed %q", out)
	}
	if out, _ := runCmd(t, "status", "--toxiproxy", api); !strings.Contains(out, "faults: none active") || strings.Contains(out, "disabled") {
		t.Fatalf("after --for ran out:\n%s", out)
	}
	// A redis-blip without --for is over at once.
	if out, err = runCmd(t, "fault", "redis-blip", "us-east", "--toxiproxy", api); err != nil || !strings.Contains(out, "already over") {
		t.Fatalf("redis-blip: %q, %v", out, err)
	}
}

func TestToxiproxyFlagErrorsNameWhatIsWrong(t *testing.T) {
	api := stackToxiproxy(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "gateway-kill", "us-east/gw-1", "--toxiproxy", api}, "docker compose kill"},
		{[]string{"fault", "partition", "us-east", "ap-south", "--toxiproxy", api}, `no region "ap-south"`},
		{[]string{"heal", "f7", "--toxiproxy", api}, "no fault f7"},
		{[]string{"status", "--toxiproxy", api, "--state", "x.json"}, "--toxiproxy and --state: give one"},
		{[]string{"status", "--toxiproxy", "127.0.0.1:1"}, "Toxiproxy API http://127.0.0.1:1 not answering"},
	} {
		if _, err := runCmd(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

// Ctrl-C during 'geolab fault --for' heals the fault before the command
// exits: nothing is left on the stack.
func TestCtrlCDuringAStackFaultHealsIt(t *testing.T) {
	api := stackToxiproxy(t)
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "fault", "partition", "us-east", "eu-west", "--for", "1h", "--toxiproxy", api)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "f1: partition us-east<->eu-west injected for 1h0m0s") {
		t.Fatalf("first line %q (stderr %s)", lines.Text(), stderr.String())
	}
	if out, _ := runCmd(t, "status", "--toxiproxy", api); !strings.Contains(out, "disabled by f1") {
		t.Fatalf("the partition is not on the stack:\n%s", out)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("geolab fault exited with %v after Ctrl-C (stderr %s)", err, stderr.String())
	}
	if rest.String() != "healed f1\n" {
		t.Fatalf("after Ctrl-C it printed %q", rest.String())
	}
	if out, _ := runCmd(t, "status", "--toxiproxy", api); !strings.Contains(out, "faults: none active") || strings.Contains(out, "disabled") {
		t.Fatalf("after Ctrl-C:\n%s", out)
	}
}
