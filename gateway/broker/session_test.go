package broker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/redistest"
)

// TestSessionClaimIsBoundToItsSubject runs session.lua on a real Redis: the
// first claim binds the session to its subject; another subject's claim is
// forbidden and changes nothing (not even the TTL); a record carried in
// from another region brings its subject; a take of a session this region
// has no record of starts at the claim's time in milliseconds, a take of a
// known one counts on from its epoch.
func TestSessionClaimIsBoundToItsSubject(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	cfg := broker.DefaultHistory()
	cfg.SessionTTL = time.Hour
	us := broker.New(rs.Client(), "us-east", cfg)
	eu := broker.New(rs.Client(), "eu-west", cfg)
	key := "geolab:session:{s-1}"

	before := time.Now().UnixMilli()
	own, err := us.ClaimSession(ctx, broker.SessionClaim{ID: "s-1", Sub: "alice", Federated: true})
	if err != nil || own.Status != broker.SessionTaken || own.Region != "us-east" || own.Epoch < before || own.Epoch > time.Now().UnixMilli() {
		t.Fatalf("first claim: %+v %v, want taken at an epoch of now in ms", own, err)
	}
	first := own.Epoch
	if sub, err := us.SessionSubject(ctx, "s-1"); err != nil || sub != "alice" {
		t.Fatalf("SessionSubject: %q %v", sub, err)
	}
	if sub, err := us.SessionSubject(ctx, "nobody"); err != nil || sub != "" {
		t.Fatalf("SessionSubject of an unknown session: %q %v", sub, err)
	}
	// The outbox record carries the epoch as an integer and the subject.
	msgs, _ := rs.Client().XRange(ctx, broker.OutboxKey("us-east"), "-", "+").Result()
	if len(msgs) != 1 || msgs[0].Values["p"] != strconv.FormatInt(first, 10) || msgs[0].Values["u"] != "alice" {
		t.Fatalf("outbox %v", msgs)
	}

	if err := rs.Client().PExpire(ctx, key, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    *broker.Broker
		name string
	}{{us, "us-east"}, {eu, "eu-west"}} {
		own, err = c.b.ClaimSession(ctx, broker.SessionClaim{ID: "s-1", Sub: "bob", Federated: true})
		if err != nil || own.Status != broker.SessionForbidden {
			t.Fatalf("bob's claim in %s: %+v %v, want forbidden", c.name, own, err)
		}
	}
	h, _ := rs.Client().HGetAll(ctx, key).Result()
	if h["region"] != "us-east" || h["sub"] != "alice" || h["epoch"] != strconv.FormatInt(first, 10) {
		t.Fatalf("forbidden claims changed the record: %v", h)
	}
	if d, _ := rs.Client().PTTL(ctx, key).Result(); d > time.Minute {
		t.Fatalf("a forbidden claim restarted the TTL: %v", d)
	}
	if n, _ := rs.Client().XLen(ctx, broker.OutboxKey("eu-west")).Result(); n != 0 {
		t.Fatalf("a forbidden claim wrote %d outbox records", n)
	}

	// alice in eu-west takes it over: the epoch counts on.
	own, err = eu.ClaimSession(ctx, broker.SessionClaim{ID: "s-1", Sub: "alice"})
	if err != nil || own.Status != broker.SessionTaken || own.Epoch != first+1 {
		t.Fatalf("alice's takeover: %+v %v, want taken at epoch %d", own, err, first+1)
	}
	if d, _ := rs.Client().PTTL(ctx, key).Result(); d <= 59*time.Minute {
		t.Fatalf("a take did not restart the TTL: %v", d)
	}

	// A record carried in binds a session this region did not know.
	own, err = us.ApplySession(ctx, "s-2", "eu-west", 7, "carol")
	if err != nil || own.Status != "won" {
		t.Fatalf("apply: %+v %v", own, err)
	}
	if sub, _ := us.SessionSubject(ctx, "s-2"); sub != "carol" {
		t.Fatalf("applied record's subject %q, want carol", sub)
	}
	if d, _ := rs.Client().PTTL(ctx, "geolab:session:{s-2}").Result(); d <= 59*time.Minute {
		t.Fatalf("an applied record has TTL %v, want the session TTL", d)
	}
	if own, _ := us.ClaimSession(ctx, broker.SessionClaim{ID: "s-2", Sub: "dave"}); own.Status != broker.SessionForbidden {
		t.Fatalf("dave's claim of carol's session: %+v", own)
	}
	// A record from before binding (no subject) is bound by its next claim.
	if err := rs.Client().HSet(ctx, "geolab:session:{s-3}", "region", "us-east", "epoch", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if own, _ := us.ClaimSession(ctx, broker.SessionClaim{ID: "s-3", Sub: "erin"}); own.Status != broker.SessionKept {
		t.Fatalf("claim of an unbound record: %+v", own)
	}
	if sub, _ := us.SessionSubject(ctx, "s-3"); sub != "erin" {
		t.Fatalf("unbound record bound to %q, want erin", sub)
	}
}
