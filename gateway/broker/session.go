package broker

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed session.lua
var sessionLua string

var sessionScript = redis.NewScript(sessionLua)

// SessionsChannel carries "taken <session> <region> <epoch>" when this
// region lost a session it owned: its gateways close that session's
// connections with close code 4003.
const SessionsChannel = "geolab:sessions"

func sessionKey(id string) string { return "geolab:session:{" + id + "}" }

// Ownership is a session's owner.
type Ownership struct {
	Status string // claim: "kept" or "taken"; apply: "won" or "lost"
	Region string
	Epoch  int64
}

// ClaimSession makes this region the owner of session id: kept if it owned
// it, else taken with the epoch bumped and the record put in the outbox for
// the other regions.
func (b *Broker) ClaimSession(ctx context.Context, id string) (Ownership, error) {
	keys := []string{sessionKey(id), OutboxKey(b.region), OutboxCounterKey(b.region)}
	return b.session(ctx, keys, "claim", id, b.region, 0, b.region)
}

// ApplySession applies a remote ownership record: it wins if its epoch is
// higher (ties: the smaller region name).
func (b *Broker) ApplySession(ctx context.Context, id, region string, epoch int64) (Ownership, error) {
	return b.session(ctx, []string{sessionKey(id), "", ""}, "apply", id, region, epoch, b.region)
}

func (b *Broker) session(ctx context.Context, keys []string, mode, id, region string, epoch int64, this string) (Ownership, error) {
	v, err := sessionScript.Run(ctx, b.rdb, keys, mode, id, region, epoch, this, b.cfg.OutboxMaxLen).Slice()
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
