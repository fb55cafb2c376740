package federation_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

func sessionRecord(w *world, region, id string) map[string]string {
	h, _ := w.regions[region].redis.Client().HGetAll(context.Background(), "geolab:session:{"+id+"}").Result()
	return h
}

// TestSessionBindingCrossesRegions: a session bound to alice in us-east is
// hers in eu-west too, once the bridge carried the record (with its
// subject): bob naming it there is refused with 403 session_forbidden, and
// alice takes it over.
func TestSessionBindingCrossesRegions(t *testing.T) {
	w := newWorld(t, "us-east", "eu-west")
	w.startBridges()
	dial(t, w.regions["us-east"].gw.Addr()+"?session=s-bind", "alice")
	wait.For(t, 20*time.Second, "eu-west learns alice's session", func() bool {
		h := sessionRecord(w, "eu-west", "s-bind")
		return h["region"] == "us-east" && h["sub"] == "alice"
	})
	c, resp, err := wsprobe.Dial(t, w.regions["eu-west"].gw.Addr()+"?session=s-bind", gatewaytest.Token(t, authority, "bob"))
	if err == nil {
		c.Close()
		t.Fatal("bob connected in eu-west with alice's session")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob in eu-west: %v %v, want 403", err, resp)
	}
	var body struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Code != protocol.CodeSessionForbidden {
		t.Fatalf("bob in eu-west: code %q, want %s", body.Code, protocol.CodeSessionForbidden)
	}
	dial(t, w.regions["eu-west"].gw.Addr()+"?session=s-bind", "alice")
	if h := sessionRecord(w, "eu-west", "s-bind"); h["region"] != "eu-west" || h["sub"] != "alice" {
		t.Fatalf("alice's takeover in eu-west: %v", h)
	}
}

// TestSessionForgottenByATTLIsStillFenced: session records expire
// (--session-ttl), so a region may have forgotten a session another region
// still owns, or the owner may have forgotten it while a connection of it
// stays open. A new take must still win everywhere and close the stale
// connection with 4003: two regions never serve one session.
func TestSessionForgottenByATTLIsStillFenced(t *testing.T) {
	w := newWorld(t, "us-east", "eu-west")
	w.startBridges()
	ctx := context.Background()

	// 1. eu-west owns s-f1 and keeps it; us-east's copy ran out. A take in
	// us-east, which knows no epoch to count from, must beat eu-west's
	// record (eu-west, the smaller name, wins a tie).
	inEU := dialSession(t, w.regions["eu-west"].gw.Addr(), "s-f1")
	wait.For(t, 20*time.Second, "us-east learns eu-west owns s-f1", func() bool {
		return sessionRecord(w, "us-east", "s-f1")["region"] == "eu-west"
	})
	if err := w.regions["us-east"].redis.Client().Del(ctx, "geolab:session:{s-f1}").Err(); err != nil {
		t.Fatal(err)
	}
	inUS := dialSession(t, w.regions["us-east"].gw.Addr(), "s-f1")
	if code := inEU.AwaitClose(30 * time.Second); code != protocol.CloseSessionTakenOver {
		t.Fatalf("eu-west's connection of s-f1 closed with %d, want %d", code, protocol.CloseSessionTakenOver)
	}
	wait.For(t, 20*time.Second, "both regions agree us-east owns s-f1", func() bool {
		a, b := sessionRecord(w, "us-east", "s-f1"), sessionRecord(w, "eu-west", "s-f1")
		return a["region"] == "us-east" && b["region"] == "us-east" && a["epoch"] == b["epoch"]
	})
	select {
	case <-inUS.Done():
		t.Fatalf("us-east closed the session it owns (%d)", inUS.CloseCode())
	default:
	}

	// 2. eu-west's connection of s-f2 stays open while every region's
	// record of it ran out; then it is taken in us-east.
	stale := dialSession(t, w.regions["eu-west"].gw.Addr(), "s-f2")
	wait.For(t, 20*time.Second, "us-east learns eu-west owns s-f2", func() bool {
		return sessionRecord(w, "us-east", "s-f2")["region"] == "eu-west"
	})
	for _, r := range w.names {
		if err := w.regions[r].redis.Client().Del(ctx, "geolab:session:{s-f2}").Err(); err != nil {
			t.Fatal(err)
		}
	}
	dialSession(t, w.regions["us-east"].gw.Addr(), "s-f2")
	if code := stale.AwaitClose(30 * time.Second); code != protocol.CloseSessionTakenOver {
		t.Fatalf("eu-west's stale connection of s-f2 closed with %d, want %d", code, protocol.CloseSessionTakenOver)
	}
}
