package docker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/provider"
)

// needDocker skips unless the docker tests are asked for (PROVIDER=docker,
// as 'make chaos-docker' sets it) and an engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("PROVIDER") != "docker" {
		t.Skip("docker tests run with PROVIDER=docker (make chaos-docker)")
	}
	if err := provider.DockerEngine(context.Background()); err != nil {
		t.Skip(err)
	}
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
		eventually(t, 60*time.Second, gw+" ready", func() bool { return ready("http://" + gw + "/readyz") })
	}

	a, err := auth.NewAuthority([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
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

	// Cut the WAN link us-east's bridge pulls eu-west through: nothing
	// crosses until it is enabled again, then the message arrives once.
	tp := toxiproxy.NewClient(fmt.Sprintf("http://127.0.0.1:%d", ports["GEOLAB_TOXIPROXY_PORT"]))
	wan, err := tp.Proxy("wan.us-east.eu-west")
	if err != nil {
		t.Fatalf("toxiproxy API: %v", err)
	}
	if err := wan.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, room, "m-2", map[string]string{"during": "partition"}); err != nil {
		t.Fatalf("publish during the cut: %v", err)
	}
	select {
	case m := <-got:
		t.Fatalf("crossed a disabled WAN link: %+v", m)
	case <-time.After(2 * time.Second):
	}
	if err := wan.Enable(); err != nil {
		t.Fatal(err)
	}
	if m := await(t, got, 30*time.Second); m.Origin != "eu-west" || m.Oseq != 2 {
		t.Fatalf("after the heal us-east got %+v, want eu-west's oseq 2", m)
	}
}

func dial(t *testing.T, a *auth.Authority, name, addr string, on func(client.Message)) *client.Client {
	t.Helper()
	tok, err := a.Issue(name, []string{"*"}, []string{"*"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
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

func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition
	}
}
