// Package agent runs a share of a scenario's clients in another process,
// possibly on another machine: a workload agent (geolab agent). The
// controller (geolab run --agents N) computes the one seeded plan, hands
// each agent the indexes of the clients it runs, and merges the histories
// the agents ship back into the one history the checker reads.
//
//	controller (geolab run) ── assign ──▶ agent ── workload.StartShare ──▶ gateways
//	         ▲                               │
//	         └── clock samples, ready, progress, quiesced, history ──┘
//
// Each agent estimates its clock's offset to the controller's from
// round-trip samples as NTP does (clock.go), before and after the run, and
// the merged history converts its records to the controller's clock. The
// protocol, its versions and its errors are in docs/agents.md.
package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/workload"
)

// Protocol is the controller/agent protocol's version. A hello of another
// version is refused: both ends must speak the same.
const Protocol = 1

// Path is where the controller serves agents (a WebSocket upgrade).
const Path = "/agent/v1"

// MaxMessage bounds one text message (an assignment carries the plan).
const MaxMessage = 128 << 20

// Message types.
const (
	TypeHello    = "hello"    // agent → controller, first: who it is, its protocol and build
	TypeAssign   = "assign"   // controller → agent: its clients, the plan, tokens, the resolver
	TypeClock    = "clock"    // agent → controller with t0; the answer adds t1, t2
	TypeReady    = "ready"    // agent → controller: its clients are connected and subscribed
	TypeStart    = "start"    // controller → agent: the run's start on the controller's clock
	TypeProgress = "progress" // agent → controller, every second while running
	TypeQuiesce  = "quiesce"  // controller → agent: publishing is over, quiesce
	TypeQuiesced = "quiesced" // agent → controller: quiesced (or why not), churn notes
	TypeFinish   = "finish"   // controller → agent: close the clients, ship the history
	TypeShipped  = "shipped"  // agent → controller: the history was sent (binary frames), its size and digest
	TypeBye      = "bye"      // controller → agent: history received, exit
	TypeError    = "error"    // either way: why the sender gives up
)

// Message is one text frame of the protocol: a JSON object whose "type"
// says which of the other fields it carries.
type Message struct {
	Type string `json:"type"`

	// hello
	Protocol int    `json:"protocol,omitempty"`
	Version  string `json:"version,omitempty"` // the geolab build
	Label    string `json:"label,omitempty"`   // what the agent calls itself (--name)
	Host     string `json:"host,omitempty"`
	PID      int    `json:"pid,omitempty"`

	Assign *Assignment `json:"assign,omitempty"`

	// clock: the agent's send time, the controller's receive and send
	// times (wall clocks, Unix nanoseconds).
	T0 int64 `json:"t0,omitempty"`
	T1 int64 `json:"t1,omitempty"`
	T2 int64 `json:"t2,omitempty"`

	// ready, shipped: the agent's clock estimate so far
	Clock *history.AgentClock `json:"clock,omitempty"`

	// start: the run's start on the controller's wall clock, Unix ns
	At int64 `json:"at,omitempty"`

	Progress *workload.Progress `json:"progress,omitempty"`

	// quiesced
	Notes []string `json:"notes,omitempty"`

	// shipped
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`

	// error; quiesced: why quiescing failed
	Error string `json:"error,omitempty"`
}

// Assignment is an agent's share of a run.
type Assignment struct {
	Agent    string            `json:"agent"` // the name the controller gives it: agent-1 …
	Run      string            `json:"run"`
	Seed     int64             `json:"seed"`
	Digest   string            `json:"digest"` // the plan's (lab/run.Digest)
	Spec     workload.Spec     `json:"spec"`
	Plan     *workload.Plan    `json:"plan"`
	Clients  []int             `json:"clients"`  // indexes into Plan.Clients
	Tokens   map[string]string `json:"tokens"`   // client name → its token
	Resolver string            `json:"resolver"` // the lab resolver's base URL
	Meta     history.Meta      `json:"meta"`     // for the agent's history (Start and Agents are its own)
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Decode reads one text message and checks that it carries what its type
// needs; the error names the field that is wrong.
func Decode(b []byte) (*Message, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("agent message: %d bytes, more than %d", len(b), MaxMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("agent message: not a protocol v%d message: %w", Protocol, err)
	}
	if dec.More() {
		return nil, errors.New("agent message: more than one JSON value")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("agent message %q: %w", m.Type, err)
	}
	return &m, nil
}

func (m *Message) validate() error {
	switch m.Type {
	case TypeHello:
		if m.Protocol <= 0 {
			return errors.New("protocol: want a positive version")
		}
		if m.Version == "" {
			return errors.New("version: missing")
		}
	case TypeAssign:
		return m.Assign.validate()
	case TypeClock:
		if m.T0 == 0 {
			return errors.New("t0: missing")
		}
		if (m.T1 == 0) != (m.T2 == 0) {
			return errors.New("t1, t2: an answer carries both")
		}
	case TypeReady:
		if m.Clock == nil {
			return errors.New("clock: missing")
		}
	case TypeStart:
		if m.At <= 0 {
			return errors.New("at: want the start in Unix nanoseconds")
		}
	case TypeProgress:
		if m.Progress == nil {
			return errors.New("progress: missing")
		}
	case TypeShipped:
		if m.Bytes < 0 {
			return fmt.Errorf("bytes: want ≥ 0, got %d", m.Bytes)
		}
		if !sha256Hex.MatchString(m.SHA256) {
			return fmt.Errorf("sha256: want 64 lowercase hex digits, got %q", m.SHA256)
		}
		if m.Clock == nil {
			return errors.New("clock: missing")
		}
	case TypeError:
		if m.Error == "" {
			return errors.New("error: missing")
		}
	case TypeQuiesce, TypeQuiesced, TypeFinish, TypeBye:
	default:
		return errors.New("unknown type (want hello, assign, clock, ready, start, progress, quiesce, quiesced, finish, shipped, bye or error)")
	}
	return nil
}

func (a *Assignment) validate() error {
	switch {
	case a == nil:
		return errors.New("assign: missing")
	case a.Agent == "":
		return errors.New("assign.agent: missing")
	case a.Plan == nil:
		return errors.New("assign.plan: missing")
	case a.Resolver == "":
		return errors.New("assign.resolver: missing")
	}
	seen := map[int]bool{}
	for _, i := range a.Clients {
		if i < 0 || i >= len(a.Plan.Clients) {
			return fmt.Errorf("assign.clients: index %d outside the plan's %d clients", i, len(a.Plan.Clients))
		}
		if seen[i] {
			return fmt.Errorf("assign.clients: index %d twice", i)
		}
		seen[i] = true
		if _, ok := a.Tokens[a.Plan.Clients[i].Name]; !ok {
			return fmt.Errorf("assign.tokens: none for client %s", a.Plan.Clients[i].Name)
		}
	}
	for _, p := range a.Plan.Publishes {
		if p.Client < 0 || p.Client >= len(a.Plan.Clients) {
			return fmt.Errorf("assign.plan: a publish of client %d outside the plan's %d clients", p.Client, len(a.Plan.Clients))
		}
	}
	for _, e := range a.Plan.Churn {
		if e.Client < 0 || e.Client >= len(a.Plan.Clients) {
			return fmt.Errorf("assign.plan: a churn event of client %d outside the plan's %d clients", e.Client, len(a.Plan.Clients))
		}
	}
	return nil
}

// writeMessage sends m as one text message on ws, one writer at a time
// (mu), within 30 s: the one way either side of the protocol writes.
func writeMessage(ws *websocket.Conn, mu *sync.Mutex, m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return ws.WriteMessage(websocket.TextMessage, b)
}
