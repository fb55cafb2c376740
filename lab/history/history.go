// Package history is the record of a lab run: every WebSocket frame a lab
// client sent or received, raw and before any client-side dedup, with the
// clients' connection life, the faults injected and healed, and the sampled
// replication lag of every federation link, all timed on one monotonic
// clock. It is what the checker (lab/check) judges.
//
//	clients ── OnFrame/OnState ──▶ Writer ──▶ reports/<run>/history.jsonl ──▶ Read ──▶ History ──▶ check
//	faults, lag sampler ──────────▶
//
// The file is JSON lines: one record per line, each with "t" (int64
// nanoseconds since the run's start, from monotonic time) and "k" (its
// kind). The first line is the run's meta record; an end record is written
// after the run quiesced (only the clients' closing states follow it).
// docs/checker.md describes every kind:
//
//	{"k":"meta","t":0,"run":"steady-42","seed":42,"topology":"three-region","regions":[...],"federate":{...},"start":"...","lag_warn":"1s","lag_alert":"5s"}
//	{"k":"frame","t":123,"c":"c-us-east-007","home":"us-east","conn":2,"dir":"in","f":{"type":"message",...}}
//	{"k":"state","t":456,"c":"c-us-east-007","conn":2,"state":"disconnected","endpoint":"ws://...","err":"..."}
//	{"k":"fault","t":789,"id":"f3","action":"inject","kind":"partition","target":"us-east<->eu-west","args":{"mode":"blackhole"}}
//	{"k":"lag","t":999,"region":"eu-west","from":"us-east","seconds":0.12,"events":4,"state":"ok"}
//	{"k":"end","t":1000}
//
// A frame that was not a JSON object (which no v1 peer sends) is kept as a
// JSON string under "text" instead of "f", so that no line is ever broken
// and nothing received is dropped.
package history

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/geolab/geolab/gateway/client"
)

// Meta describes the run a history records.
type Meta struct {
	Run      string   `json:"run"`
	Seed     int64    `json:"seed"`
	Topology string   `json:"topology"`
	Regions  []string `json:"regions"`
	// Federate holds each region's federated room patterns ('*' matches
	// any run of characters): a room leaves its origin region for region X
	// only when it matches a pattern of both.
	Federate map[string][]string `json:"federate"`
	// Start is the wall-clock time of the run's start (t = 0).
	Start time.Time `json:"start,omitzero"`
	// LagWarn and LagAlert are the replication-lag thresholds the run used
	// (investigate at 1 s, alert at 5 s by default).
	LagWarn  Duration `json:"lag_warn,omitzero"`
	LagAlert Duration `json:"lag_alert,omitzero"`
	// HistoryMaxLen and HistoryMaxAge are the smallest room-history bounds
	// the gateways ran with (--history-maxlen, --history-max-age; 0: unknown,
	// or no age bound): the checker knows from them when a history cannot
	// have been trimmed yet.
	HistoryMaxLen int64    `json:"history_maxlen,omitempty"`
	HistoryMaxAge Duration `json:"history_max_age,omitzero"`
	// Agents are the workload agents whose clients this history holds
	// (docs/agents.md), each with its clock's offset to the controller's
	// and the bound of that estimate; empty when the clients ran in the
	// controller's own process. An agent's own history holds its one entry.
	Agents []AgentClock `json:"agents,omitempty"`
}

// AgentClock is one workload agent's clock against the controller's, as
// the agent estimated it from round-trip samples the way NTP does
// (docs/agents.md): the controller's clock reads Offset more than the
// agent's, give or take Bound.
type AgentClock struct {
	Name    string   `json:"name"`
	Clients int      `json:"clients"` // how many of the plan's clients it ran
	Offset  Duration `json:"offset"`  // controller clock − agent clock
	Bound   Duration `json:"bound"`   // the true offset is within Offset ± Bound
	RTT     Duration `json:"rtt"`     // round trip of the best sample
	Samples int      `json:"samples"` // round-trip samples taken, before and after the run
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("1s", "250ms").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string like \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Kind is the kind of a history record.
type Kind uint8

// Kinds of records held in History.Events (the meta record is History.Meta).
const (
	KindFrame Kind = iota + 1 // a WebSocket text frame a client sent or received
	KindState                 // a change of a client's connection state
	KindFault                 // a fault injected or healed
	KindLag                   // a replication-lag sample of one federation link
	KindEnd                   // the run quiesced; written last
)

var kindNames = [...]string{KindFrame: "frame", KindState: "state", KindFault: "fault", KindLag: "lag", KindEnd: "end"}

// String returns the kind's name as written in the "k" field.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind_%d", k)
}

// Client connection states, as written in state records.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateClosed       = "closed"
)

// Lag states, as written in lag records.
const (
	LagOK    = "ok"
	LagWarn  = "warn"
	LagAlert = "alert"
	LagDown  = "down"
)

// History is a whole run: its meta record and every other record in time
// order (stable: records with the same t keep their order in the file).
type History struct {
	Meta   Meta
	Events []Event
}

// Event is one record. Frame records carry the frame's bytes (Raw) and the
// fields the checker needs, decoded once; State, Fault and Lag are set only
// for their kinds. (Fields are ordered to keep an Event small: a history
// holds a million of them.)
type Event struct {
	T    int64 // nanoseconds since the run's start, monotonic
	Kind Kind

	// NotJSON (frame records) is true for a frame that was not a JSON
	// object: Raw holds its text and no frame field below is set.
	NotJSON   bool
	Recovered bool // "recovered" (subscribed)
	Since     bool // "since" is present and not null (subscribe): a resume request

	// Client is the lab client's name (frame and state records), Conn its
	// connection number, counted from 1 per client (0: none yet).
	Client string
	Conn   int64

	// Frame records: Home is the client's home region, Dir whether the
	// frame was received (client.In) or sent (client.Out), Raw its bytes
	// exactly as recorded.
	Home string
	Dir  client.Direction
	Raw  []byte

	// Fields of the frame, decoded (zero when absent or not of the JSON
	// kind the protocol gives them):
	Type    string // "type"
	Room    string // "room"
	ID      string // "id": the event id of a message, the client message id of a publish or ack
	Origin  string // "origin" (message)
	Oseq    uint64 // "oseq" (message, ack)
	Epoch   string // "epoch" (message)
	Reason  string // "reason" (subscribed)
	EventID string // "event" (ack): the event id the publish became
	Ref     string // "ref" (error)
	Code    string // "code" (error, bye)
	Region  string // "region" (welcome)
	Node    string // "node" (welcome)

	State *State // KindState
	Fault *Fault // KindFault
	Lag   *Lag   // KindLag
}

// State is a state record: a stage of a client's connection life.
type State struct {
	State    string // StateConnecting, StateConnected, StateDisconnected or StateClosed
	Endpoint string
	Err      string // what went wrong, if anything
}

// Fault is a fault record: a fault injected or healed.
type Fault struct {
	ID     string            // pairs an inject with its heal
	Action string            // "inject" or "heal"
	Kind   string            // e.g. "partition"
	Target string            // e.g. "us-east<->eu-west"
	Args   map[string]string // e.g. mode: blackhole
}

// Lag is a lag record: the replication lag of the federation link that
// applies, in Region, the events that originate in From.
type Lag struct {
	Region  string
	From    string
	Seconds float64 // NaN when the record held null (no figure)
	Events  int64   // events behind
	State   string  // LagOK, LagWarn, LagAlert or LagDown
}

// Seconds returns t (nanoseconds since the start) in seconds.
func Seconds(t int64) float64 { return float64(t) / 1e9 }
