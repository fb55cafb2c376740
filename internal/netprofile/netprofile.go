// Package netprofile is the one definition of the named timeout profiles of
// a link to Redis, which the gateway (its link to its region's Redis) and
// the federation bridge (its links to its own and to every remote Redis)
// both take from here. Profiles are named so that flags, config files and
// topologies say "lan" or "wan" instead of repeating numbers.
//
// The empty name is no profile here: what "" means belongs to each caller,
// which says it in one named constant (gateway.DefaultRedisProfile is lan,
// federation.DefaultProfile is wan) and resolves "" before calling ByName.
package netprofile

import (
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/fielderr"
)

// Profile names.
const (
	LAN = "lan" // a link inside a region
	WAN = "wan" // a link that crosses regions
)

// Profile holds the timeouts of a link to Redis.
type Profile struct {
	Name         string
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	MaxRetries   int // go-redis retries of one command
	// Subscriber tunes a pub/sub connection over the link.
	Subscriber broker.SubscriberConfig
}

// Lan suits a link next to the Redis it reaches: fail fast, so that a blip
// is noticed in about two seconds and clients get "unavailable" rather than
// a hang.
func Lan() Profile {
	return Profile{Name: LAN, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 1, Subscriber: broker.DefaultSubscriberConfig()}
}

// Wan starts from Lan for a link that crosses regions: every round trip
// pays the RTT, so timeouts stretch to several RTTs.
func Wan() Profile {
	p := Lan()
	p.Name = WAN
	p.DialTimeout = 3 * time.Second             // a handshake is several RTTs
	p.ReadTimeout = 3 * time.Second             // a 300 ms RTT with jitter must not time out
	p.WriteTimeout = 3 * time.Second            // same
	p.Subscriber.DeadAfter = 6 * time.Second    // pings cross the WAN too
	p.Subscriber.PingInterval = 2 * time.Second // fewer pings per RTT
	return p
}

// ByName returns the profile called name, lan or wan; any other name, ""
// included, is a *fielderr.Error on the field "profile" (a caller names it
// as its own field with fielderr.Rename).
func ByName(name string) (Profile, error) {
	switch name {
	case LAN:
		return Lan(), nil
	case WAN:
		return Wan(), nil
	}
	return Profile{}, fielderr.New("profile", name, "must be", LAN+" or "+WAN)
}
