package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/lab/provider"
)

// needDocker skips unless the docker provider can run here (an engine
// answers, the images are built) and $PROVIDER does not name another one:
// the harness's rule for every docker test.
func needDocker(t *testing.T) {
	t.Helper()
	harness.RequireProvider(t, provider.DockerName)
}

// compose returns the command that runs Compose: 'docker compose' when the
// plugin is there, else docker-compose.
func compose(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Skip("neither 'docker compose' nor docker-compose is installed (make deps-docker installs docker-compose)")
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestComposeStackCarriesAMessageAcrossRegions brings docker-compose.yml up
// under a project of its own, publishes in eu-west, receives in us-east
// through the bridge and the WAN proxy, cuts that proxy through the
// Toxiproxy API and checks that the next message waits for the cut to heal.
func TestComposeStackCarriesAMessageAcrossRegions(t *testing.T) {
	needDocker(t)
	cmd := compose(t)
	project := fmt.Sprintf("geolabtest%d", time.Now().UnixNano()%1e6)
	secret := "compose-test-secret-0123456789abcdef"
	ports := map[string]int{}
	for _, k := range []string{"GEOLAB_TOXIPROXY_PORT", "GEOLAB_US_EAST_PORT", "GEOLAB_EU_WEST_PORT",
		"GEOLAB_US_EAST_TO_EU_WEST_PORT", "GEOLAB_EU_WEST_TO_US_EAST_PORT"} {
		ports[k] = freePort(t)
	}
	env := append(os.Environ(), "GEOLAB_JWT_SECRET="+secret)
	for k, p := range ports {
		env = append(env, k+"="+strconv.Itoa(p))
	}
	run := func(args ...string) (string, error) {
		c := exec.Command(cmd[0], append(append(cmd[1:], "-f", "../docker-compose.yml", "-p", project), args...)...)
		c.Env = env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		return out.String(), err
	}
	if out, err := run("config", "-q"); err != nil {
		t.Fatalf("compose config: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := run("logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := run("down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := run("up", "-d"); err != nil {
		t.Fatalf("compose up (did 'make images' run?): %v\n%s", err, out)
	}

	usEast := fmt.Sprintf("127.0.0.1:%d", ports["GEOLAB_US_EAST_PORT"])
	euWest := fmt.Sprintf("127.0.0.1:%d", ports["GEOLAB_EU_WEST_PORT"])
	for _, gw := range []string{usEast, euWest} {
		wait.For(t, 60*time.Second, gw+" ready", func() bool { return ready("http://" + gw + "/readyz") })
	}

	a := gatewaytest.Authority(secret)
	got := make(chan client.Message, 16)
	sub := dial(t, a, "sub", usEast, func(m client.Message) { got <- m })
	pub := dial(t, a, "pub", euWest, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "tenant:compose"
	if _, err := sub.Subscribe(ctx, room); err != nil {
		t.Fatalf("subscribe in us-east: %v", err)
	}
	if _, err := pub.Publish(ctx, room, "m-1", map[string]string{"hello": "us-east"}); err != nil {
		t.Fatalf("publish in eu-west: %v", err)
	}
	m := await(t, got, 30*time.Second)
	if m.Origin != "eu-west" || m.Room != room {
		t.Fatalf("us-east got %+v, want a message of %s from eu-west", m, room)
	}

	// Partition the regions with geolab fault through the Toxiproxy API:
	// nothing crosses until it is healed, then the message arrives once.
	api := fmt.Sprintf("127.0.0.1:%d", ports["GEOLAB_TOXIPROXY_PORT"])
	if out := geolab(t, "fault", "partition", "us-east", "eu-west", "--toxiproxy", api); !strings.HasPrefix(out, "f1: partition us-east<->eu-west injected") {
		t.Fatalf("geolab fault printed %q", out)
	}
	var st struct {
		Links []struct {
			Name    string   `json:"name"`
			Holders []string `json:"holders"`
		} `json:"links"`
	}
	if err := json.Unmarshal([]byte(geolab(t, "status", "--toxiproxy", api, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Links {
		cross := strings.HasPrefix(l.Name, "wan.") || l.Name == "client.us-east.eu-west.gw-1" || l.Name == "client.eu-west.us-east.gw-1"
		if held := strings.Join(l.Holders, ","); (cross && held != "f1") || (!cross && held != "") {
			t.Errorf("during the partition %s is held by %q", l.Name, held)
		}
	}
	if _, err := pub.Publish(ctx, room, "m-2", map[string]string{"during": "partition"}); err != nil {
		t.Fatalf("publish during the partition: %v", err)
	}
	wait.Never(t, 2*time.Second, "a message crossed the partition", func() bool { return len(got) > 0 })
	if out := geolab(t, "heal", "f1", "--toxiproxy", api); out != "healed f1\n" {
		t.Fatalf("geolab heal printed %q", out)
	}
	if m := await(t, got, 30*time.Second); m.Origin != "eu-west" || m.Oseq != 2 {
		t.Fatalf("after the heal us-east got %+v, want eu-west's oseq 2", m)
	}

	checkIsolation(t, run)
}

// geolab runs the geolab binary with args and returns its output; it fails
// t if the command fails.
func geolab(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("geolab %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// checkIsolation proves that the region networks hold: from inside
// us-east's gateway, us-east's Redis answers and eu-west's cannot be
// reached, whatever the engine does with iptables. It enters the
// container's network namespace, so it needs root and a local engine.
func checkIsolation(t *testing.T, run func(...string) (string, error)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("isolation not checked: entering a container's network namespace needs root")
		return
	}
	inspect := func(service, format string) string {
		id, err := run("ps", "-q", service)
		if err != nil || strings.TrimSpace(id) == "" {
			t.Fatalf("compose ps %s: %v %q", service, err, id)
		}
		out, err := exec.Command("docker", "inspect", "-f", format, strings.TrimSpace(id)).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", service, err)
		}
		return strings.TrimSpace(string(out))
	}
	ip := `{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}`
	pid, err := strconv.Atoi(inspect("us-east-gw-1", "{{.State.Pid}}"))
	if err != nil {
		t.Fatal(err)
	}
	own, other := inspect("redis-us-east", ip)+":6379", inspect("redis-eu-west", ip)+":6379"
	if err := dialFrom(pid, own); err != nil {
		t.Fatalf("us-east's gateway cannot reach its own Redis %s: %v", own, err)
	}
	if err := dialFrom(pid, other); err == nil {
		t.Fatalf("us-east's gateway reached eu-west's Redis %s directly: the region networks are not isolated", other)
	} else {
		t.Logf("us-east's gateway → eu-west's Redis %s: %v (isolated)", other, err)
	}
}

// dialFrom opens (and closes) a TCP connection to addr from inside the
// network namespace of process pid.
func dialFrom(pid int, addr string) error {
	done := make(chan error, 1)
	go func() {
		// The thread enters the namespace and is never unlocked: it ends
		// with this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	return <-done
}

func dial(t *testing.T, a *auth.Authority, name, addr string, on func(client.Message)) *client.Client {
	t.Helper()
	tok := gatewaytest.Token(t, a, name)
	// The client lives as long as Dial's context: the test's.
	c, err := client.Dial(context.Background(), client.Options{Endpoints: []string{"ws://" + addr + "/ws"},
		Token:      func(context.Context) (string, error) { return tok, nil },
		MaxBackoff: 500 * time.Millisecond, OnMessage: on})
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func await(t *testing.T, ch <-chan client.Message, bound time.Duration) client.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(bound):
		t.Fatalf("no message within %s", bound)
	}
	return client.Message{}
}

func ready(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
