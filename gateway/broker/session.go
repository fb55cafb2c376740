package broker

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed session.lua
var sessionLua string

var sessionScript = redis.NewScript(sessionLua)

// SessionsChannel carries "taken <session> <region> <epoch>" when this
// region lost a session it owned: its gateways close that session's
// connections with close code 4003.
const SessionsChannel = "geolab:sessions"

// Ownership is a session's owner.
type Ownership struct {
	Status string // claim: "kept", "taken" or "forbidden"; apply: "won" or "lost"
	Region string
	Epoch  int64
}

// Claim statuses.
const (
	SessionKept      = "kept"      // this region owned the session already
	SessionTaken     = "taken"     // this region owns it now, under a new epoch
	SessionForbidden = "forbidden" // the session is bound to another token subject: nothing changed
)

// SessionClaim is a client's claim of the session it named.
type SessionClaim struct {
	ID  string
	Sub string // the token subject; the session is bound to the first one that claims it
	// Federated appends a take to this region's outbox, for the bridges to
	// carry. Only a region that federates (its gateways have --federate
	// patterns and it runs a bridge) has anyone to carry it.
	Federated bool
}

// ClaimSession makes this region the owner of session c.ID for c.Sub:
// SessionKept if it owned it, else SessionTaken with a new epoch (the
// record put in the outbox when c.Federated); SessionForbidden, changing
// nothing, when the session is bound to another subject. Every claim but a
// forbidden one restarts the record's TTL (HistoryConfig.SessionTTL).
func (b *Broker) ClaimSession(ctx context.Context, c SessionClaim) (Ownership, error) {
	outbox, counter, appendOutbox := b.outbox(c.ID, c.Federated)
	keys := []string{b.layout.SessionKey(c.ID), outbox, counter}
	return b.session(ctx, keys, appendOutbox, "claim", c.ID, b.region, time.Now().UnixMilli(), c.Sub)
}

// SessionSubject returns the token subject session id is bound to in this
// region: "" when it has no record here (or one from before binding).
func (b *Broker) SessionSubject(ctx context.Context, id string) (string, error) {
	sub, err := b.rdb.HGet(ctx, b.layout.SessionKey(id), "sub").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("broker: session %s: %w: %w", id, ErrUnavailable, err)
	}
	return sub, nil
}

// SessionOwner returns the region that owns session id by this region's
// record: "" when it has none.
func (b *Broker) SessionOwner(ctx context.Context, id string) (string, error) {
	region, err := b.rdb.HGet(ctx, b.layout.SessionKey(id), "region").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("broker: session %s: %w: %w", id, ErrUnavailable, err)
	}
	return region, nil
}

// ApplySession applies a remote ownership record, bound to sub ("" from a
// gateway that predates binding): it wins if its epoch is higher (ties: the
// smaller region name), and then restarts the record's TTL here.
func (b *Broker) ApplySession(ctx context.Context, id, region string, epoch int64, sub string) (Ownership, error) {
	outbox, counter, appendOutbox := b.outbox(id, false)
	return b.session(ctx, []string{b.layout.SessionKey(id), outbox, counter}, appendOutbox, "apply", id, region, epoch, sub)
}

func (b *Broker) session(ctx context.Context, keys []string, appendOutbox, mode, id, region string, epoch int64, sub string) (Ownership, error) {
	v, err := sessionScript.Run(ctx, b.rdb, keys, mode, id, region, epoch, b.region, b.cfg.OutboxMaxLen,
		sub, b.cfg.SessionTTL.Milliseconds(), appendOutbox).Slice()
	if err != nil {
		return Ownership{}, fmt.Errorf("broker: session.lua %s %s: %w: %w", mode, id, ErrUnavailable, err)
	}
	if len(v) != 3 {
		return Ownership{}, fmt.Errorf("broker: session.lua returned %d values, want 3", len(v))
	}
	o := Ownership{Status: str(v[0]), Region: str(v[1])}
	o.Epoch, _ = v[2].(int64)
	return o, nil
}

// ParseTaken parses a SessionsChannel message.
func ParseTaken(payload string) (session, region string, ok bool) {
	f := strings.Fields(payload)
	if len(f) != 4 || f[0] != "taken" {
		return "", "", false
	}
	return f[1], f[2], true
}
