package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
)

// Direction says whether a frame was sent or received.
type Direction int

const (
	In  Direction = iota // received from the gateway
	Out                  // sent to the gateway
)

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// RawFrame is one text frame as it crossed the wire, for the lab's history.
type RawFrame struct {
	Conn int64     // connection number, from 1, counted per client
	Dir  Direction // In or Out
	Time time.Time // time.Now() when read, or when the write completed (monotonic)
	Data []byte    // the frame's bytes; never modified by the client
}

// Message is one delivered event.
type Message struct {
	Room   string
	ID     string // the event id (globally unique)
	Origin string // the region that assigned Oseq
	Oseq   uint64
	Epoch  string
	Sender string
	TS     time.Time // the gateway's timestamp; zero when it could not be parsed
	Data   json.RawMessage
	Conn   int64 // the connection it arrived on
	// Gap is true when Oseq skipped past the tracked position within the
	// same epoch (the message is delivered, and Stats.Gaps counted).
	Gap bool
}

// SubscribeResult is the gateway's answer to a subscribe.
type SubscribeResult struct {
	Room string
	// Resumed is true when the subscribe carried since/epochs (the client had
	// positions for the room).
	Resumed bool
	// Recovered false after a resume means a gap the gateway could not
	// fill: nothing is replayed, the caller must repair its state from
	// elsewhere. Reason says why.
	Recovered bool
	Missed    int    // messages replayed after this answer
	Reason    string // protocol.Reason* when Recovered is false
	// Position and Epochs are what the gateway sent: where live delivery
	// starts (per origin) and the current epochs.
	Position protocol.Positions
	Epochs   protocol.Epochs
}

// SubscribedEvent reports a subscribed frame, or the refusal of a
// resubscribe the client made on its own after a reconnect.
type SubscribedEvent struct {
	SubscribeResult
	Conn int64
	// Unasked is true for a frame the gateway sent on its own (a gap it
	// could not fill, reason epoch_changed or history_trimmed): Recovered is
	// false.
	Unasked bool
	// Err is set (a *ServerError) when a resubscribe after a reconnect was
	// refused; WillRetry says whether the client retries it (unavailable,
	// internal, rate_limited) or dropped the room from its set.
	Err       error
	WillRetry bool
}

// State is a stage of the client's life.
type State int

const (
	StateConnecting   State = iota // a connection attempt starts
	StateConnected                 // welcome received
	StateDisconnected              // the connection ended
	StateClosed                    // the client ended; no more events
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return "state_" + strconv.Itoa(int(s))
}

// StateEvent reports a change of the connection's state.
type StateEvent struct {
	State State
	Time  time.Time
	Conn  int64 // connected, disconnected: the connection number
	// Attempt counts the failed attempts in a row before this one
	// (connecting).
	Attempt int
	// Endpoint: connecting, connected. Session, Region, Node: connected.
	Endpoint, Session, Region, Node string
	// Code and Reason: the close code read from the gateway (disconnected,
	// closed), 0 when none was read (network error, heartbeat timeout).
	Code   int
	Reason string
	Err    error // what went wrong, if anything
	// WillReconnect (disconnected): whether the client reconnects.
	WillReconnect bool
}

// ServerError is an error frame from the gateway, or a request the client
// refused before sending by the gateway's own rule (Local).
type ServerError struct {
	Code    string // protocol.Code*
	Ref     string // the client message id or the room
	Message string
	Local   bool
}

func (e *ServerError) Error() string {
	from := "gateway"
	if e.Local {
		from = "client"
	}
	return fmt.Sprintf("%s refused %q: %s: %s", from, e.Ref, e.Code, e.Message)
}

// retryable reports whether a publish refused with code may be retried.
func retryable(code string) bool {
	switch code {
	case protocol.CodeUnavailable, protocol.CodeRateLimited, protocol.CodeInternal:
		return true
	}
	return false
}

// CloseError ends a client that was told not to reconnect, or that gave up.
type CloseError struct {
	Code   int    // the close code; 0 when the client gave up reconnecting
	Reason string // the gateway's close text
	Err    error  // the last error, when the client gave up
}

func (e *CloseError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("client: gave up reconnecting: %v", e.Err)
	}
	return fmt.Sprintf("client: connection closed with %d (%s) %q: not reconnecting",
		e.Code, protocol.CloseReason(e.Code), e.Reason)
}

func (e *CloseError) Unwrap() error { return e.Err }

// ErrClosed is returned by calls on a client that Close or the end of its
// context stopped.
var ErrClosed = errors.New("client: closed")

// ErrDropped is the Err of the StateDisconnected event of a connection that
// Reconnect dropped.
var ErrDropped = errors.New("client: connection dropped by Reconnect")

// eventQueue is an unbounded FIFO between the reader (and the supervisor)
// and the dispatcher: unbounded so that a callback that calls Publish, which
// waits for the reader, can never deadlock the reader.
type eventQueue struct {
	mu     sync.Mutex
	items  []any
	closed bool
	signal chan struct{} // capacity 1: "something changed"
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (q *eventQueue) push(e any) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, e)
	}
	q.mu.Unlock()
	q.wake()
}

// close lets the dispatcher end once it has delivered what is queued.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *eventQueue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take waits for events; it returns nil once closed and drained.
func (q *eventQueue) take() []any {
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 || closed {
			return items
		}
		<-q.signal
	}
}

// dispatch calls the callbacks, in order, until the queue is closed.
func (c *Client) dispatch() {
	defer close(c.dispatchDone)
	c.dispatchG.Store(goroutineID())
	for {
		items := c.events.take()
		if items == nil {
			return
		}
		for _, it := range items {
			switch e := it.(type) {
			case Message:
				c.o.OnMessage(e)
			case SubscribedEvent:
				c.o.OnSubscribed(e)
			case StateEvent:
				c.o.OnState(e)
			}
		}
	}
}

// goroutineID reads the current goroutine's id from its stack header; Close
// uses it only to know whether it runs inside a callback.
func goroutineID() uint64 {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	if i := strings.IndexByte(s, ' '); i > 0 {
		id, _ := strconv.ParseUint(s[:i], 10, 64)
		return id
	}
	return 0
}
