package agent

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/lab/workload"
)

func testController(t *testing.T, version string, agents int) *Controller {
	t.Helper()
	plan := &workload.Plan{Clients: []workload.ClientPlan{{Name: "c-a-001", Home: "a"}, {Name: "c-a-002", Home: "a"}}}
	c, err := Listen(Config{Agents: agents, Version: version, Dir: t.TempDir(),
		Assign: Assignment{Plan: plan, Resolver: "http://127.0.0.1:1", Tokens: map[string]string{"c-a-001": "t1", "c-a-002": "t2"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if host, _, _ := net.SplitHostPort(c.Addr()); host != "127.0.0.1" {
		t.Fatalf("the controller listens on %s: want 127.0.0.1 by default", c.Addr())
	}
	return c
}

// An agent of another geolab build is refused, and says so: it would not
// play the plan as the controller draws it.
func TestAgentOfAnotherBuildIsRefused(t *testing.T) {
	c := testController(t, "v2", 1)
	err := Run(context.Background(), Options{Controller: c.Addr(), Version: "v1", ConnectTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "refused this agent: version mismatch: the agent is geolab v1, the controller geolab v2") {
		t.Fatalf("want a version mismatch naming both builds, got %v", err)
	}
	if c.Err() != nil {
		t.Fatalf("a refused agent failed the run: %v", c.Err())
	}
}

// A hello of another protocol version is refused with the two versions.
func TestAgentOfAnotherProtocolIsRefused(t *testing.T) {
	c := testController(t, "dev", 1)
	ws := dialRaw(t, c)
	send(t, ws, Message{Type: TypeHello, Protocol: 2, Version: "dev"})
	m := readMsg(t, ws)
	if m.Type != TypeError || !strings.Contains(m.Error, "protocol mismatch: the agent speaks v2, this controller v1") {
		t.Fatalf("got %+v, want a protocol mismatch", m)
	}
}

// A controller nobody listens at is named, with how long it was tried.
func TestUnreachableController(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = Run(context.Background(), Options{Controller: addr, Version: "dev", ConnectTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "controller "+addr+" unreachable after 300ms") {
		t.Fatalf("got %v, want the controller named unreachable", err)
	}
	err = Run(context.Background(), Options{Controller: "no-port", Version: "dev"})
	if err == nil || !strings.Contains(err.Error(), `--controller "no-port": want host:port`) {
		t.Fatalf("got %v, want the bad --controller named", err)
	}
}

// An agent that goes away after its assignment fails the run, naming the
// agent, what it was doing and the clients whose history is lost; the
// agents share the plan's clients round robin.
func TestLostAgentFailsTheRun(t *testing.T) {
	c := testController(t, "dev", 2)
	ws := dialRaw(t, c)
	send(t, ws, Message{Type: TypeHello, Protocol: Protocol, Version: "dev", Label: "doomed", PID: 4242})
	m := readMsg(t, ws)
	if m.Type != TypeAssign || m.Assign.Agent != "agent-1" || len(m.Assign.Clients) != 1 || m.Assign.Clients[0] != 0 ||
		m.Assign.Tokens["c-a-001"] != "t1" || len(m.Assign.Tokens) != 1 {
		t.Fatalf("want agent-1 given client 0 and its token only, got %+v", m.Assign)
	}
	ws.Close()
	select {
	case <-c.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("the controller did not notice the agent was gone")
	}
	for _, want := range []string{"agent agent-1 (doomed, pid 4242) lost while connecting its clients", "c-a-001", "not judged"} {
		if !strings.Contains(c.Err().Error(), want) {
			t.Errorf("error %q does not say %q", c.Err(), want)
		}
	}
	if err := c.Join(context.Background(), 5*time.Second, nil); err == nil || err.Error() != c.Err().Error() {
		t.Fatalf("Join after the loss: got %v, want the loss", err)
	}
}

func dialRaw(t *testing.T, c *Controller) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+c.Addr()+Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func send(t *testing.T, ws *websocket.Conn, m Message) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func readMsg(t *testing.T, ws *websocket.Conn) *Message {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
