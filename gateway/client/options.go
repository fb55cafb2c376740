package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/geolab/geolab/internal/backoff"
)

// Defaults for the zero values of Options.
const (
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultPingInterval = 10 * time.Second
)

// Options configure a Client. Token and one of Endpoints or Resolve are
// required; every other field has a default.
type Options struct {
	// Endpoints are ws:// or wss:// URLs of gateways (".../ws"), tried in
	// order: a failed dial moves on to the next one, and so does a drain
	// (close 1001, "reconnect elsewhere").
	Endpoints []string
	// Resolve, when set, is called before every connection attempt and
	// supplies the endpoints in order of preference (the lab's GeoDNS-like
	// resolver); Endpoints is then ignored. A new answer starts again from
	// its first endpoint.
	Resolve func(ctx context.Context) ([]string, error)
	// Token returns the JWT sent as "Authorization: Bearer <token>". It is
	// called before every connection attempt, so a fresh token follows a
	// token_expired close.
	Token func(ctx context.Context) (string, error)

	// MinBackoff and MaxBackoff bound the reconnect backoff: before attempt
	// n (from 0) the client sleeps a uniform random time in
	// [0, min(MaxBackoff, MinBackoff·2ⁿ)] (full jitter). Defaults 100ms, 5s.
	MinBackoff, MaxBackoff time.Duration
	// Rand is the source of jitter, seedable for reproducible runs. The
	// client uses it under its own lock: do not share it with other
	// goroutines. Default: seeded from the clock.
	Rand *rand.Rand

	// DialTimeout bounds one connection attempt: resolve, token, handshake
	// and welcome. WriteTimeout bounds one frame write. Defaults 5s, 5s.
	DialTimeout, WriteTimeout time.Duration
	// PingInterval: a {"type":"ping"} frame is sent when nothing was written
	// for this long, and a connection from which nothing was read for 3×
	// this long is given up as dead (heartbeat timeout). Default 10s.
	PingInterval time.Duration

	// OnFrame receives every text frame sent and received, raw, before the
	// dedup backstop. It is called synchronously on the reader and writer
	// goroutines: it must be cheap and must not call Close. Data may be
	// kept (the client never modifies it afterwards) but must not be
	// modified: a publish frame is resent from the same bytes.
	OnFrame func(f RawFrame)
	// OnMessage receives each delivered message (after the backstop), in
	// the order the gateway sent them. Callbacks run on one goroutine fed
	// by an unbounded queue: a slow callback grows the queue, it never
	// stops the reader (so the gateway never sees this client as slow).
	OnMessage func(Message)
	// OnSubscribed receives every subscribed frame: answers to Subscribe,
	// answers to the resubscribes after each reconnect, and unasked ones
	// (recovered false: a gap the gateway could not fill). It also receives
	// the refusal of a resubscribe (Err set).
	OnSubscribed func(SubscribedEvent)
	// OnState receives the connection's life: connecting, connected,
	// disconnected, closed.
	OnState func(StateEvent)
	// Logger receives the client's logs; default: discarded.
	Logger *slog.Logger

	// MaxReconnects bounds the connection attempts in a row that may fail
	// (at Dial, or after a lost connection) before the client gives up and
	// ends. 0: unlimited, bounded only by the context and Close.
	MaxReconnects int
}

// Validate reports every problem of o, each naming its field.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("client: options: "+format, args...))
	}
	if o.Token == nil {
		bad("Token is required (a func returning the bearer token)")
	}
	if o.Resolve == nil && len(o.Endpoints) == 0 {
		bad("Endpoints is empty and Resolve is nil: give at least one ws:// URL or a resolver")
	}
	if o.Resolve == nil {
		for i, e := range o.Endpoints {
			if err := validEndpoint(e); err != nil {
				bad("Endpoints[%d]: %v", i, err)
			}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MinBackoff", o.MinBackoff}, {"MaxBackoff", o.MaxBackoff}, {"DialTimeout", o.DialTimeout},
		{"WriteTimeout", o.WriteTimeout}, {"PingInterval", o.PingInterval},
	} {
		if d.v < 0 {
			bad("%s is negative (%v)", d.name, d.v)
		}
	}
	if o.MinBackoff > 0 && o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff {
		bad("MinBackoff (%v) is greater than MaxBackoff (%v)", o.MinBackoff, o.MaxBackoff)
	}
	if o.MaxBackoff == 0 && o.MinBackoff > DefaultMaxBackoff {
		bad("MinBackoff (%v) is greater than the default MaxBackoff (%v): set MaxBackoff", o.MinBackoff, DefaultMaxBackoff)
	}
	if o.MaxReconnects < 0 {
		bad("MaxReconnects is negative (%d): 0 means unlimited", o.MaxReconnects)
	}
	return errors.Join(errs...)
}

// validEndpoint checks a gateway URL: ws or wss, with a host.
func validEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", e, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("%q: scheme must be ws or wss", e)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", e)
	}
	return nil
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), rand.Uint64()))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Endpoints = append([]string(nil), o.Endpoints...)
	return o
}

// backoffCeiling is the upper bound of the sleep before attempt n (from 0):
// min·2ⁿ, capped at max.
func backoffCeiling(attempt int, minD, maxD time.Duration) time.Duration {
	return backoff.Ceiling(minD, maxD, attempt)
}

// backoff draws the sleep before attempt n: uniform in [0, ceiling] (full
// jitter, so that thousands of clients cut at once do not return at once).
func backoffDraw(attempt int, minD, maxD time.Duration, rnd *rand.Rand) time.Duration {
	return backoff.FullJitter(minD, maxD, attempt, rnd)
}
