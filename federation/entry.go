package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
)

// Trust between regions: a bridge applies what another region's outbox
// holds, and an outbox is only a Redis stream that anything able to reach
// that Redis can write. validateEntry is the door: every entry read is
// checked against the rules publish.lua and session.lua follow when they
// write it, and what breaks one is refused, counted by reason and logged,
// never applied (docs/federation.md, "Trust between regions").

// The reasons an entry is refused: the reason label of
// geolab_federation_rejected_total. reasonNotOrigin is not a rejection but
// loop prevention, counted as skipped (docs/federation.md).
const (
	reasonNotOrigin       = "not_origin"        // o is not the outbox's region (an echo)
	reasonBadKind         = "bad_kind"          // t is neither absent (an event) nor "s" (a session record)
	reasonBadNumber       = "bad_number"        // n, the outbox number, is not a positive integer
	reasonBadRoom         = "bad_room"          // r breaks the room naming rule
	reasonBadOseq         = "bad_oseq"          // q is not an integer in 1..maxSafeInt
	reasonBadEpoch        = "bad_epoch"         // e breaks the epoch rule
	reasonOversize        = "oversize"          // f is longer than max_frame_bytes
	reasonBadFrame        = "bad_frame"         // f is not a message frame a client can read
	reasonFrameMismatch   = "frame_mismatch"    // the frame's room, origin, oseq or epoch is not the entry's
	reasonBadSession      = "bad_session"       // s breaks the session id rule, or u is not a token subject
	reasonBadOwner        = "bad_owner"         // g, the owner, is not the outbox's region
	reasonBadSessionEpoch = "bad_session_epoch" // p is not an integer in 1..maxSafeInt
	reasonBadClientID     = "bad_client_id"     // c, the publisher's message id, breaks the id rule
)

// rejectReasons are every rejection reason, for tests and docs.
var rejectReasons = []string{reasonBadKind, reasonBadNumber, reasonBadRoom, reasonBadOseq, reasonBadEpoch,
	reasonOversize, reasonBadFrame, reasonFrameMismatch, reasonBadSession, reasonBadOwner, reasonBadSessionEpoch, reasonBadClientID}

// maxSafeInt bounds an oseq and a session epoch: the scripts hold numbers
// as Lua numbers (doubles), exact only up to 2^53-1.
const maxSafeInt = 1<<53 - 1

// maxEpochLen bounds an epoch, as the protocol bounds a client's epochs.
const maxEpochLen = 64

// rejection says why an entry must not be applied.
type rejection struct {
	reason string // one of the reason constants
	detail string // for the log line
}

func (r *rejection) Error() string { return r.reason + ": " + r.detail }

func reject(reason, format string, args ...any) *rejection {
	return &rejection{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// validateEntry parses and checks one entry of origin's outbox, as XREAD
// returned it (id and field values; a value that is not a string counts as
// absent). It returns the entry to apply, or why it must not be: an entry
// of another origin (reasonNotOrigin) or one that breaks a rule of the
// outbox (every other reason). maxFrame bounds an event's frame in bytes.
// It is pure and never panics, whatever the values hold.
func validateEntry(origin string, maxFrame int, id string, values map[string]any) (outboxEntry, *rejection) {
	field := func(k string) string { s, _ := values[k].(string); return s }
	e := outboxEntry{id: id, kind: field("t"), origin: field("o")}
	if sid, err := broker.ParseStreamID(id); err == nil {
		e.ms = int64(sid.Ms)
	}
	if e.origin != origin {
		return e, reject(reasonNotOrigin, "entry of origin %q in the outbox of %s", cut(e.origin), origin)
	}
	if e.kind != "" && e.kind != "s" {
		return e, reject(reasonBadKind, "kind %q is neither an event nor a session record (s)", cut(e.kind))
	}
	n, err := positive(field("n"), 1<<63-1)
	if err != nil {
		return e, reject(reasonBadNumber, "outbox number: %v", err)
	}
	e.n = int64(n)
	if e.kind == "s" {
		e.session, e.owner = field("s"), field("g")
		if err := protocol.ValidID(e.session); err != nil {
			return e, reject(reasonBadSession, "session: %v", err)
		}
		if e.owner != origin {
			// A region claims a session only for itself (session.lua).
			return e, reject(reasonBadOwner, "owner %q is not the outbox's region %s", cut(e.owner), origin)
		}
		p, err := positive(field("p"), maxSafeInt)
		if err != nil {
			return e, reject(reasonBadSessionEpoch, "session epoch: %v", err)
		}
		e.ownerEpoch = int64(p)
		// u, the token subject the session is bound to, is absent from a
		// record of a gateway that predates binding.
		if e.sub = field("u"); e.sub != "" {
			if err := auth.ValidSubject(e.sub); err != nil {
				return e, reject(reasonBadSession, "session subject: %v", err)
			}
		}
		return e, nil
	}
	e.room, e.epoch, e.frame = field("r"), field("e"), field("f")
	if err := protocol.ValidRoom(e.room); err != nil {
		return e, reject(reasonBadRoom, "%v", err)
	}
	if e.oseq, err = positive(field("q"), maxSafeInt); err != nil {
		return e, reject(reasonBadOseq, "oseq: %v", err)
	}
	if err := validEpoch(e.epoch); err != nil {
		return e, reject(reasonBadEpoch, "%v", err)
	}
	if len(e.frame) > maxFrame {
		return e, reject(reasonOversize, "frame of %d bytes, more than %d", len(e.frame), maxFrame)
	}
	m, err := parseMessageFrame(e.frame)
	if err != nil {
		return e, reject(reasonBadFrame, "%v", err)
	}
	switch {
	case m.Room != e.room:
		return e, reject(reasonFrameMismatch, "frame room %q, entry room %q", cut(m.Room), e.room)
	case m.Origin != e.origin:
		return e, reject(reasonFrameMismatch, "frame origin %q, entry origin %q", cut(m.Origin), e.origin)
	case m.Oseq != e.oseq:
		return e, reject(reasonFrameMismatch, "frame oseq %d, entry oseq %d", m.Oseq, e.oseq)
	case m.Epoch != e.epoch:
		return e, reject(reasonFrameMismatch, "frame epoch %q, entry epoch %q", cut(m.Epoch), e.epoch)
	}
	// c, the publisher's message id, is absent from an entry of a gateway
	// that predates carrying it; present, it is an id of the protocol.
	if c := field("c"); c != "" {
		if err := protocol.ValidID(c); err != nil {
			return e, reject(reasonBadClientID, "client message id: %v", err)
		}
		e.clientID = c
	}
	e.eventID, e.sender = m.ID, m.Sender
	return e, nil
}

// positive parses a decimal integer in 1..limit, as the scripts write them
// (no sign, no leading zero, no spaces).
func positive(s string, limit uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("missing")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < 1 || v > limit || s[0] == '0' {
		return 0, fmt.Errorf("%q is not an integer in 1..%d", cut(s), limit)
	}
	return v, nil
}

// validEpoch: an epoch is 1–64 characters of the id alphabet (A–Z a–z 0–9
// _ . - :). It travels in the channel's space-separated header line and in
// a client's epochs, so it holds no space and no newline.
func validEpoch(epoch string) error {
	if len(epoch) > maxEpochLen {
		return fmt.Errorf("epoch is %d characters, more than %d", len(epoch), maxEpochLen)
	}
	if err := protocol.ValidID(epoch); err != nil {
		return fmt.Errorf("epoch: %v", err)
	}
	return nil
}

// parseMessageFrame checks that frame is what publish.lua stores and a
// client reads: valid UTF-8 (it goes out as a WebSocket text message), one
// JSON object with no key twice (clients' parsers disagree on which of two
// wins; two keys that differ only in letter case count as the same, as Go's
// encoding/json reads them), of type message, with every field protocol.Message names, each of
// its kind, and an id that follows the id rule.
func parseMessageFrame(frame string) (protocol.Message, error) {
	var m protocol.Message
	if !utf8.ValidString(frame) {
		return m, errors.New("frame is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(frame))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return m, errors.New("frame is not a JSON object")
	}
	// seen holds the keys as written; folded the same keys case-folded,
	// for Go's encoding/json matches a key to a field whatever its case.
	seen, folded := map[string]bool{}, map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return m, fmt.Errorf("frame is not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		if folded[foldKey(key)] {
			return m, fmt.Errorf("frame has key %q twice (letter case aside)", cut(key))
		}
		seen[key], folded[foldKey(key)] = true, true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return m, fmt.Errorf("frame is not valid JSON: %v", err)
		}
		var dst any
		switch key {
		case "type":
			dst = &m.Type
		case "room":
			dst = &m.Room
		case "id":
			dst = &m.ID
		case "origin":
			dst = &m.Origin
		case "oseq":
			dst = &m.Oseq
		case "epoch":
			dst = &m.Epoch
		case "sender":
			dst = &m.Sender
		case "ts":
			dst = &m.TS
		case "data":
			m.Data = raw
			continue
		default:
			continue // unknown fields are allowed: the protocol grows by adding
		}
		if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, dst) != nil {
			return m, fmt.Errorf("frame field %q is not of its kind", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return m, fmt.Errorf("frame is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, errors.New("frame has more after its JSON object")
	}
	for _, k := range []string{"type", "room", "id", "origin", "oseq", "epoch", "sender", "ts", "data"} {
		if !seen[k] {
			return m, fmt.Errorf("frame has no %q", k)
		}
	}
	if m.Type != protocol.TypeMessage {
		return m, fmt.Errorf("frame type %q is not %s", cut(m.Type), protocol.TypeMessage)
	}
	if err := protocol.ValidID(m.ID); err != nil {
		return m, fmt.Errorf("frame event %v", err)
	}
	return m, nil
}

// foldKey maps s to one member of its case-folding class: foldKey(a) ==
// foldKey(b) exactly when strings.EqualFold(a, b).
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// cut bounds what a log line repeats of an untrusted value.
func cut(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
