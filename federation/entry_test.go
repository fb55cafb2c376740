package federation

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
)

const testMaxFrame = 4096

// goodFrame is a message frame as publish.lua stores it.
func goodFrame(room, origin string, oseq uint64, epoch string) string {
	return `{"type":"message","room":` + strconv.Quote(room) + `,"id":"0193a1c2-7f00-7000-8000-000000000001","origin":` +
		strconv.Quote(origin) + `,"oseq":` + strconv.FormatUint(oseq, 10) + `,"epoch":` + strconv.Quote(epoch) +
		`,"sender":"bob","ts":"2026-11-23T01:33:22.123456Z","data":{"n":1}}`
}

// goodEvent is an event entry of us-east's outbox as publish.lua writes it.
func goodEvent() map[string]any {
	return map[string]any{"r": "tenant:42", "n": "7", "o": "us-east", "q": "18", "e": "k3f9a1c2",
		"f": goodFrame("tenant:42", "us-east", 18, "k3f9a1c2"), "c": "m-1"}
}

// goodSession is a session record of us-east's outbox as session.lua writes it.
func goodSession() map[string]any {
	return map[string]any{"t": "s", "n": "8", "s": "sess-1", "g": "us-east", "p": "1767225600000", "o": "us-east", "u": "alice"}
}

func with(base map[string]any, kv ...any) map[string]any {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

// TestValidateEntry: what publish.lua and session.lua write passes; each
// way an entry can break a rule of the outbox is refused with its reason.
func TestValidateEntry(t *testing.T) {
	frame := func(mod func(string) string) map[string]any {
		return with(goodEvent(), "f", mod(goodEvent()["f"].(string)))
	}
	repl := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("test frame lacks %s", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	cases := []struct {
		name   string
		values map[string]any
		reason string // "" accepted
	}{
		{"event", goodEvent(), ""},
		{"session record", goodSession(), ""},
		{"unknown frame field", frame(repl(`"data"`, `"extra":[1],"data"`)), ""},
		{"other origin", with(goodEvent(), "o", "eu-west"), reasonNotOrigin},
		{"no origin", with(goodEvent(), "o", nil), reasonNotOrigin},
		{"origin not a string", with(goodEvent(), "o", 5), reasonNotOrigin},
		{"unknown kind", with(goodEvent(), "t", "x"), reasonBadKind},
		{"no outbox number", with(goodEvent(), "n", nil), reasonBadNumber},
		{"outbox number zero", with(goodEvent(), "n", "0"), reasonBadNumber},
		{"outbox number negative", with(goodEvent(), "n", "-3"), reasonBadNumber},
		{"no room", with(goodEvent(), "r", nil), reasonBadRoom},
		{"bad room", with(goodEvent(), "r", "tenant 42"), reasonBadRoom},
		{"room too long", with(goodEvent(), "r", strings.Repeat("r", 129)), reasonBadRoom},
		{"room with a brace", with(goodEvent(), "r", "tenant:}x"), reasonBadRoom},
		{"no oseq", with(goodEvent(), "q", nil), reasonBadOseq},
		{"oseq zero", with(goodEvent(), "q", "0"), reasonBadOseq},
		{"oseq not a number", with(goodEvent(), "q", "18a"), reasonBadOseq},
		{"oseq past 2^53", with(goodEvent(), "q", "9007199254740993"), reasonBadOseq},
		{"oseq leading zero", with(goodEvent(), "q", "018"), reasonBadOseq},
		{"no epoch", with(goodEvent(), "e", nil), reasonBadEpoch},
		{"epoch with a space", with(goodEvent(), "e", "k3 f9"), reasonBadEpoch},
		{"epoch with a newline", with(goodEvent(), "e", "k3\nf9"), reasonBadEpoch},
		{"epoch too long", with(goodEvent(), "e", strings.Repeat("e", 65)), reasonBadEpoch},
		{"oversize frame", frame(repl(`{"n":1}`, `"`+strings.Repeat("d", testMaxFrame)+`"`)), reasonOversize},
		{"no frame", with(goodEvent(), "f", nil), reasonBadFrame},
		{"frame not JSON", frame(func(string) string { return "{not json" }), reasonBadFrame},
		{"frame truncated", frame(func(s string) string { return s[:len(s)-1] }), reasonBadFrame},
		{"frame an array", frame(func(s string) string { return "[" + s + "]" }), reasonBadFrame},
		{"frame with trailing data", frame(func(s string) string { return s + " {}" }), reasonBadFrame},
		{"frame not UTF-8", frame(repl(`"bob"`, "\"b\xffb\"")), reasonBadFrame},
		{"frame not a message", frame(repl(`"type":"message"`, `"type":"ack"`)), reasonBadFrame},
		{"frame without data", frame(repl(`,"data":{"n":1}`, ``)), reasonBadFrame},
		{"frame without sender", frame(repl(`"sender":"bob",`, ``)), reasonBadFrame},
		{"frame without event id", frame(repl(`"id":"0193a1c2-7f00-7000-8000-000000000001",`, ``)), reasonBadFrame},
		{"frame event id bad", frame(repl(`"id":"0193a1c2-7f00-7000-8000-000000000001"`, `"id":"a b"`)), reasonBadFrame},
		{"frame oseq a string", frame(repl(`"oseq":18`, `"oseq":"18"`)), reasonBadFrame},
		{"frame oseq a float", frame(repl(`"oseq":18`, `"oseq":18.5`)), reasonBadFrame},
		{"frame room null", frame(repl(`"room":"tenant:42"`, `"room":null`)), reasonBadFrame},
		{"frame key twice", frame(repl(`"room":"tenant:42"`, `"room":"tenant:42","room":"tenant:43"`)), reasonBadFrame},
		{"frame room differs", frame(repl(`"room":"tenant:42"`, `"room":"tenant:43"`)), reasonFrameMismatch},
		{"frame origin differs", frame(repl(`"origin":"us-east"`, `"origin":"eu-west"`)), reasonFrameMismatch},
		{"frame oseq differs", frame(repl(`"oseq":18`, `"oseq":19`)), reasonFrameMismatch},
		{"frame epoch differs", frame(repl(`"epoch":"k3f9a1c2"`, `"epoch":"00000000"`)), reasonFrameMismatch},
		{"frame Room in capitals too", frame(repl(`"room":"tenant:42"`, `"room":"tenant:42","Room":"tenant:43"`)), reasonBadFrame},
		{"frame key folded twice", frame(repl(`"sender":"bob"`, `"sender":"bob","\u017fender":"eve"`)), reasonBadFrame},
		{"frame Room only", frame(repl(`"room":"tenant:42"`, `"Room":"tenant:42"`)), reasonBadFrame},
		{"no client message id (an older gateway)", with(goodEvent(), "c", nil), ""},
		{"empty client message id", with(goodEvent(), "c", ""), ""},
		{"client message id with a space", with(goodEvent(), "c", "m 1"), reasonBadClientID},
		{"client message id too long", with(goodEvent(), "c", strings.Repeat("m", 129)), reasonBadClientID},
		{"session without id", with(goodSession(), "s", nil), reasonBadSession},
		{"session id bad", with(goodSession(), "s", "a b"), reasonBadSession},
		{"session id too long", with(goodSession(), "s", strings.Repeat("s", 129)), reasonBadSession},
		{"session owner another region", with(goodSession(), "g", "eu-west"), reasonBadOwner},
		{"session without owner", with(goodSession(), "g", nil), reasonBadOwner},
		{"session epoch zero", with(goodSession(), "p", "0"), reasonBadSessionEpoch},
		{"session epoch missing", with(goodSession(), "p", nil), reasonBadSessionEpoch},
		{"session epoch negative", with(goodSession(), "p", "-1"), reasonBadSessionEpoch},
		{"session epoch past 2^53", with(goodSession(), "p", "9007199254740992"), reasonBadSessionEpoch},
		{"session of another origin", with(goodSession(), "o", "eu-west"), reasonNotOrigin},
		{"session without subject (before binding)", with(goodSession(), "u", nil), ""},
		{"session subject with a space", with(goodSession(), "u", "al ice"), reasonBadSession},
		{"session subject too long", with(goodSession(), "u", strings.Repeat("u", 200)), reasonBadSession},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		e, bad := validateEntry("us-east", testMaxFrame, "1700000000000-0", tc.values)
		got := ""
		if bad != nil {
			got = bad.reason
			if bad.detail == "" {
				t.Errorf("%s: refused (%s) with no detail", tc.name, got)
			}
		}
		if got != tc.reason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, bad, tc.reason)
		}
		seen[got] = true
		if e.id != "1700000000000-0" || e.ms != 1700000000000 {
			t.Errorf("%s: entry id %q ms %d", tc.name, e.id, e.ms)
		}
	}
	for _, r := range append(rejectReasons, reasonNotOrigin) {
		if !seen[r] {
			t.Errorf("no case for reason %s", r)
		}
	}
	// What an accepted entry carries.
	e, _ := validateEntry("us-east", testMaxFrame, "1-0", goodEvent())
	if e.kind != "" || e.room != "tenant:42" || e.origin != "us-east" || e.oseq != 18 || e.epoch != "k3f9a1c2" ||
		e.n != 7 || e.frame != goodEvent()["f"] || e.clientID != "m-1" || e.sender != "bob" ||
		e.eventID != "0193a1c2-7f00-7000-8000-000000000001" {
		t.Errorf("event entry %+v", e)
	}
	s, _ := validateEntry("us-east", testMaxFrame, "1-0", goodSession())
	if s.kind != "s" || s.session != "sess-1" || s.owner != "us-east" || s.ownerEpoch != 1767225600000 || s.sub != "alice" || s.n != 8 {
		t.Errorf("session entry %+v", s)
	}
}

// FuzzValidateEntry: validateEntry never panics, and what it accepts is
// safe to apply: a valid room, origin, oseq and epoch, and a frame a client
// reads as a message of exactly that room, origin, oseq and epoch.
func FuzzValidateEntry(f *testing.F) {
	ev := goodEvent()
	f.Add("", ev["r"].(string), "7", ev["o"].(string), "18", ev["e"].(string), ev["f"].(string), "", "", "", "", "m-1")
	f.Add("s", "", "8", "us-east", "", "", "", "sess-1", "us-east", "3", "alice", "")
	f.Add("", "tenant:42", "1", "us-east", "1", "e", `{"type":"message","room":"tenant:42","room":"x"}`, "", "", "", "", "")
	f.Add("", "tenant:42", "1", "us-east", "1", "e", "{\"type\":\"message\",\"room\":\"tenant:42\",\"id\":\"i\",\"origin\":\"us-east\",\"oseq\":1,\"epoch\":\"e\",\"sender\":\"\\u00ff\",\"ts\":\"\",\"data\":null}", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, kind, room, n, origin, oseq, epoch, frame, session, owner, sepoch, sub, clientID string) {
		values := map[string]any{"t": kind, "r": room, "n": n, "o": origin, "q": oseq, "e": epoch, "f": frame,
			"s": session, "g": owner, "p": sepoch, "u": sub, "c": clientID}
		e, bad := validateEntry("us-east", testMaxFrame, "1-0", values)
		if bad != nil {
			if !slices.Contains(rejectReasons, bad.reason) && bad.reason != reasonNotOrigin {
				t.Fatalf("unknown reason %q", bad.reason)
			}
			return
		}
		if e.origin != "us-east" || e.n < 1 {
			t.Fatalf("accepted %+v", e)
		}
		if e.kind == "s" {
			if protocol.ValidID(e.session) != nil || e.owner != "us-east" || e.ownerEpoch < 1 || e.ownerEpoch > maxSafeInt ||
				(e.sub != "" && auth.ValidSubject(e.sub) != nil) {
				t.Fatalf("accepted session record %+v", e)
			}
			return
		}
		if protocol.ValidRoom(e.room) != nil || e.oseq < 1 || e.oseq > maxSafeInt || validEpoch(e.epoch) != nil ||
			strings.ContainsAny(e.epoch, " \n") || len(e.frame) > testMaxFrame ||
			(e.clientID != "" && protocol.ValidID(e.clientID) != nil) {
			t.Fatalf("accepted event %+v", e)
		}
		// A client reading the frame sees this room, origin, oseq and epoch.
		c, err := protocol.DecodeServerFrame([]byte(e.frame))
		if err != nil || c.Type != "message" || c.Room != e.room || c.Origin != e.origin || c.Oseq != e.oseq || c.Epoch != e.epoch || c.ID == "" {
			t.Fatalf("accepted frame %q reads as %+v (%v)", e.frame, c, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(e.frame), &m); err != nil || m["data"] == nil {
			t.Fatalf("accepted frame %q has no data (%v)", e.frame, err)
		}
	})
}
