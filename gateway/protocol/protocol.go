// Package protocol is geolab's wire protocol v1: the JSON text frames a client
// and a gateway exchange over /ws, the error codes carried in error frames and
// the WebSocket close codes. docs/protocol.md is the reference for people; this
// package is the reference for code, and the two say the same thing.
//
// Frames are JSON objects with a "type" field. Unknown fields are ignored by
// both sides so that the protocol can be extended without breaking clients;
// an unknown "type" sent to the gateway is answered with an error frame.
package protocol

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Version is the protocol version this package speaks.
const Version = 1

// Frame types, client → server.
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypePing        = "ping"
)

// Frame types, server → client.
const (
	TypeWelcome    = "welcome"
	TypeSubscribed = "subscribed"
	TypeMessage    = "message"
	TypeAck        = "ack"
	TypeError      = "error"
	TypeBye        = "bye"
	TypePong       = "pong"
)

// Error codes carried in error frames. The connection stays open after an
// error frame unless a close code says otherwise.
const (
	CodeBadJSON       = "bad_json"       // the frame is not a JSON object
	CodeBadUTF8       = "bad_utf8"       // the frame is not valid UTF-8, or its data escapes a lone UTF-16 surrogate
	CodeUnknownType   = "unknown_type"   // "type" is missing or not a v1 client frame
	CodeBadFrame      = "bad_frame"      // a required field is missing or of the wrong kind
	CodeBadRoom       = "bad_room"       // the room name breaks the naming rule
	CodeBadID         = "bad_id"         // the client message id breaks the id rule
	CodeBadSince      = "bad_since"      // since/epochs name a bad origin or a negative oseq
	CodeForbidden     = "forbidden"      // the token does not allow this room for this action
	CodeRateLimited   = "rate_limited"   // publish over the connection's rate: not published
	CodeTooManyRooms  = "too_many_rooms" // subscribing would pass the per-connection room limit
	CodeNotSubscribed = "not_subscribed" // unsubscribe from a room the connection is not in
	CodeDataTooLarge  = "data_too_large" // publish data passes the payload limit
	CodeUnavailable   = "unavailable"    // Redis cannot be reached: not published / not subscribed, retry
	CodeRedisOOM      = "redis_oom"      // Redis refused the write: it is at maxmemory (OOM). Not published; retry later
	CodeInternal      = "internal"       // a server fault; the request may be retried
)

// Handshake error codes: the "code" of the JSON body ({"code", "message"})
// of the HTTP error that refuses GET /ws before the upgrade. CodeUnavailable
// also answers a handshake, when Redis cannot be reached to claim its session.
const (
	CodeUnauthorized = "unauthorized"  // 401: no token, or one that does not verify
	CodeTokenExpired = "token_expired" // 401: the token's exp has passed (or its nbf is ahead)
	CodeBadSession   = "bad_session"   // 400: the session id breaks the id rule
	CodeDraining     = "draining"      // 503: the node is draining: connect to another node
	// 503: the node holds its most connections (--max-conns): connect to another node
	CodeTooManyConnections = "too_many_connections"
	// 429: the token's subject holds its most connections on this node (--max-conns-per-sub)
	CodeTooManySubConnections = "too_many_sub_connections"
	// 403: the session named is bound to another token subject (close
	// CloseSessionForbidden when that is found only after the upgrade)
	CodeSessionForbidden = "session_forbidden"
)

// CodeGoingAway is the code of a bye frame: the node is draining, and a
// close 1001 (CloseGoingAway, named the same) follows.
const CodeGoingAway = "going_away"

// Close codes. 1000–1999 are the standard WebSocket codes; 4000–4499 mean
// "reconnect (with backoff) and resume"; 4500–4999 mean "do not reconnect
// until something changes" (a new token, a fixed client).
const (
	CloseNormal        = 1000 // normal closure
	CloseGoingAway     = 1001 // drain: a bye frame came first; reconnect elsewhere and resume
	CloseMessageTooBig = 1009 // a frame passed the gateway's frame size limit

	CloseInternalError    = 4000 // server fault; reconnect and resume
	CloseSlowConsumer     = 4001 // the outbound queue filled: the client did not read fast enough; reconnect and resume
	CloseTokenExpired     = 4002 // the token's exp passed while connected; reconnect with a fresh token
	CloseSessionTakenOver = 4003 // another region owns this session now; reconnect through the resolver
	CloseHeartbeatTimeout = 4004 // nothing was read from the client within the read deadline

	CloseFlood            = 4500 // the client sent frames far over its rate limits; fix the client before reconnecting
	CloseSessionForbidden = 4501 // the session named is bound to another token subject; connect with another session or the right token
)

// Reconnectable reports whether a close code tells the client to reconnect.
func Reconnectable(code int) bool {
	switch {
	case code == CloseGoingAway, code == 1006, code == 1011, code == 1012, code == 1013:
		return true
	case code >= 4000 && code < 4500:
		return true
	}
	return false
}

// CloseReason names a close code the way docs/protocol.md does.
func CloseReason(code int) string {
	switch code {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going_away"
	case CloseMessageTooBig:
		return "message_too_big"
	case CloseInternalError:
		return "internal_error"
	case CloseSlowConsumer:
		return "slow_consumer"
	case CloseTokenExpired:
		return "token_expired"
	case CloseSessionTakenOver:
		return "session_taken_over"
	case CloseHeartbeatTimeout:
		return "heartbeat_timeout"
	case CloseFlood:
		return "flood"
	case CloseSessionForbidden:
		return "session_forbidden"
	}
	return fmt.Sprintf("code_%d", code)
}

// Names. A room, an origin region and a client message id share one alphabet
// so that they can be embedded in Redis keys and logs without escaping.
const (
	MaxRoomLen   = 128
	MaxOriginLen = 64
	MaxIDLen     = 128
)

var (
	roomRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-:]*$`)
	originRE = regexp.MustCompile(`^[a-z0-9][a-z0-9\-]*$`)
	idRE     = regexp.MustCompile(`^[A-Za-z0-9_.\-:]+$`)
)

// ValidRoom checks a room name: 1–128 characters of A–Z a–z 0–9 _ . - :,
// starting with a letter or digit (e.g. "tenant:42").
func ValidRoom(room string) error {
	if room == "" {
		return fmt.Errorf("room is empty")
	}
	if len(room) > MaxRoomLen {
		return fmt.Errorf("room is %d characters, more than %d", len(room), MaxRoomLen)
	}
	if !roomRE.MatchString(room) {
		return fmt.Errorf("room %q has a character outside A-Z a-z 0-9 _ . - : or does not start with a letter or digit", room)
	}
	return nil
}

// ValidOrigin checks a region name: 1–64 characters of a–z 0–9 -, starting
// with a letter or digit (e.g. "us-east").
func ValidOrigin(origin string) error {
	if origin == "" {
		return fmt.Errorf("region is empty")
	}
	if len(origin) > MaxOriginLen {
		return fmt.Errorf("region %q is longer than %d characters", origin, MaxOriginLen)
	}
	if !originRE.MatchString(origin) {
		return fmt.Errorf("region %q has a character outside a-z 0-9 -", origin)
	}
	return nil
}

// ValidID checks a client message id: 1–128 characters of A–Z a–z 0–9 _ . - :.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("id is empty")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id is %d characters, more than %d", len(id), MaxIDLen)
	}
	if !idRE.MatchString(id) {
		return fmt.Errorf("id %q has a character outside [A-Za-z0-9_.:-]", id)
	}
	return nil
}

// Positions maps an origin region to the last oseq a client saw from it.
type Positions map[string]uint64

// Epochs maps an origin region to the epoch of its sequence the client saw.
type Epochs map[string]string

// ClientFrame is a decoded client → server frame. Only the fields of its
// Type are set.
type ClientFrame struct {
	Type   string          `json:"type"`
	Room   string          `json:"room,omitempty"`
	ID     string          `json:"id,omitempty"`
	Since  Positions       `json:"since,omitempty"`
	Epochs Epochs          `json:"epochs,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Error is a decoding or validation failure, with the error code that the
// gateway puts in the error frame and the ref (client message id or room) it
// refers to, when one could be read.
type Error struct {
	Code    string
	Ref     string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errf(code, ref, format string, args ...any) *Error {
	return &Error{Code: code, Ref: ref, Message: fmt.Sprintf(format, args...)}
}

// rawClientFrame keeps every field raw so that a wrong kind in one field is
// reported by name instead of as an opaque JSON error.
type rawClientFrame struct {
	Type   json.RawMessage `json:"type"`
	Room   json.RawMessage `json:"room"`
	ID     json.RawMessage `json:"id"`
	Since  json.RawMessage `json:"since"`
	Epochs json.RawMessage `json:"epochs"`
	Data   json.RawMessage `json:"data"`
}

// DecodeClientFrame parses and validates one client frame. Every failure is
// an *Error naming the field at fault; it never panics on any input.
//
// A frame must be valid UTF-8 (a WebSocket text message is), and a publish's
// data must not escape a lone UTF-16 surrogate ("\udc80"): such data is no
// Unicode text, a browser fails a connection whose text frame carries
// invalid UTF-8, and a stored event is replayed to every resume of its room.
// Both get CodeBadUTF8, with the client message id (or room) as ref.
// (encoding/json accepts either: it copies raw bytes and escapes as they
// are, and replaces them only when it decodes a string.)
func DecodeClientFrame(b []byte) (*ClientFrame, error) {
	f, err := decodeClientFrame(b)
	if err != nil {
		return nil, err
	}
	ref := f.Room
	if f.Type == TypePublish {
		ref = f.ID
	}
	if !utf8.Valid(b) {
		return nil, errf(CodeBadUTF8, ref, "frame is not valid UTF-8")
	}
	if f.Type == TypePublish {
		if off := loneSurrogate(f.Data); off >= 0 {
			return nil, errf(CodeBadUTF8, ref, "data escapes a lone UTF-16 surrogate at byte %d: it is not Unicode text", off)
		}
	}
	return f, nil
}

// loneSurrogate returns the offset in js, a valid JSON text, of the first
// \u escape of a UTF-16 surrogate that is not half of a pair (a high one
// followed at once by an escaped low one), or -1 when there is none. In
// valid JSON a backslash appears only inside strings, where it starts a
// two-character escape or a six-character \uXXXX one.
func loneSurrogate(js []byte) int {
	for i := 0; i < len(js); i++ {
		if js[i] != '\\' {
			continue
		}
		if i+1 >= len(js) || js[i+1] != 'u' {
			i++ // \" \\ \/ \b \f \n \r \t: skip the escaped character
			continue
		}
		r, ok := hex4(js, i+2)
		if !ok {
			return i
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF: // a low half with no high one before it
			return i
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(js, i+8)
			if !ok || js[i+6] != '\\' || js[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
				return i
			}
			i += 11 // the pair; the loop's i++ passes its last digit
		default:
			i += 5
		}
	}
	return -1
}

// hex4 reads the four hex digits of a \u escape at js[at:].
func hex4(js []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(js) {
		return 0, false
	}
	var r rune
	for _, c := range js[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func decodeClientFrame(b []byte) (*ClientFrame, error) {
	trimmed := strings.TrimSpace(string(b))
	if !strings.HasPrefix(trimmed, "{") {
		return nil, errf(CodeBadJSON, "", "frame is not a JSON object")
	}
	var raw rawClientFrame
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, errf(CodeBadJSON, "", "frame is not valid JSON: %v", err)
	}
	ref := refOf(raw) // every error below refers to it
	var f ClientFrame
	if raw.Type == nil {
		return nil, errf(CodeUnknownType, ref, "frame has no \"type\"")
	}
	if err := json.Unmarshal(raw.Type, &f.Type); err != nil {
		return nil, errf(CodeUnknownType, ref, "\"type\" is not a string")
	}
	str := func(field string, r json.RawMessage, dst *string) *Error {
		if r == nil || string(r) == "null" {
			return errf(CodeBadFrame, ref, "%s frame needs %q", f.Type, field)
		}
		if err := json.Unmarshal(r, dst); err != nil {
			return errf(CodeBadFrame, ref, "%q is not a string", field)
		}
		return nil
	}
	switch f.Type {
	case TypePing:
		return &f, nil
	case TypeSubscribe, TypeUnsubscribe, TypePublish:
	default:
		return nil, errf(CodeUnknownType, ref, "unknown frame type %q (v1 client frames: subscribe, unsubscribe, publish, ping)", f.Type)
	}
	if e := str("room", raw.Room, &f.Room); e != nil {
		return nil, e
	}
	if err := ValidRoom(f.Room); err != nil {
		return nil, errf(CodeBadRoom, ref, "%v", err)
	}
	switch f.Type {
	case TypeSubscribe:
		if raw.Since != nil && string(raw.Since) != "null" {
			if err := json.Unmarshal(raw.Since, &f.Since); err != nil {
				return nil, errf(CodeBadSince, ref, "\"since\" must map region names to non-negative integers: %v", err)
			}
			for o := range f.Since {
				if err := ValidOrigin(o); err != nil {
					return nil, errf(CodeBadSince, ref, "since: %v", err)
				}
			}
			if f.Since == nil {
				f.Since = Positions{}
			}
		}
		if raw.Epochs != nil && string(raw.Epochs) != "null" {
			if err := json.Unmarshal(raw.Epochs, &f.Epochs); err != nil {
				return nil, errf(CodeBadSince, ref, "\"epochs\" must map region names to strings: %v", err)
			}
			for o, e := range f.Epochs {
				if err := ValidOrigin(o); err != nil {
					return nil, errf(CodeBadSince, ref, "epochs: %v", err)
				}
				if len(e) > 64 {
					return nil, errf(CodeBadSince, ref, "epochs: epoch of %s is longer than 64 characters", o)
				}
			}
		}
	case TypePublish:
		if e := str("id", raw.ID, &f.ID); e != nil {
			return nil, e
		}
		if err := ValidID(f.ID); err != nil {
			return nil, errf(CodeBadID, ref, "%v", err)
		}
		if raw.Data == nil {
			return nil, errf(CodeBadFrame, ref, "publish frame needs \"data\"")
		}
		f.Data = raw.Data
	}
	return &f, nil
}

// refOf is the ref of an error about a frame that parsed as a JSON object
// (docs/protocol.md, error): a publish's id when it is a string, else the
// frame's room when it is a string, else empty; cut to MaxRoomLen bytes. So
// a client can tell which of its publishes, else which room, was refused.
func refOf(raw rawClientFrame) string {
	var typ, s string
	_ = json.Unmarshal(raw.Type, &typ)
	if typ == TypePublish && raw.ID != nil && json.Unmarshal(raw.ID, &s) == nil && s != "" {
		return truncate(s)
	}
	s = ""
	if raw.Room != nil && json.Unmarshal(raw.Room, &s) == nil {
		return truncate(s)
	}
	return ""
}

func truncate(s string) string {
	if len(s) > MaxRoomLen {
		return s[:MaxRoomLen]
	}
	return s
}

// Welcome is the first frame on every connection.
type Welcome struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	Region  string `json:"region"`
	Node    string `json:"node"`
	// Version is the protocol version (an extension of v1: always 1).
	Version int `json:"version"`
}

// Subscribed answers a subscribe. When Since was given, Recovered says
// whether the gateway could replay exactly what the client missed (the Missed
// messages follow this frame); when false, Reason says why and no history is
// replayed: the client has a gap it must repair from elsewhere.
//
// A Subscribed frame with Recovered false may also arrive unasked for a room
// the client is in, when the gateway lost history it could not fill (its
// Redis restarted without persistence).
type Subscribed struct {
	Type      string `json:"type"`
	Room      string `json:"room"`
	Recovered bool   `json:"recovered"`
	Missed    int    `json:"missed"`
	Reason    string `json:"reason,omitempty"`
	// Position is the per-origin oseq live delivery starts after, and Epochs
	// the current epoch of each origin: a client keeps both and sends them
	// back as since/epochs when it resumes (extension of v1).
	Position Positions `json:"position"`
	Epochs   Epochs    `json:"epochs"`
}

// Reasons a Subscribed frame gives for Recovered false.
const (
	ReasonHistoryTrimmed = "history_trimmed"  // the stream no longer reaches back to the client's position
	ReasonEpochChanged   = "epoch_changed"    // the origin's sequence restarted: its history was lost
	ReasonAheadOfHistory = "ahead_of_history" // since is past what this region has: a new sequence, or a region that lost data
	ReasonGapMarked      = "gap_marked"       // federation recorded a gap for this room and origin
	ReasonHistoryLost    = "history_lost"     // reserved, never sent: a Redis that lost its data is announced with epoch_changed and an empty epoch
)

// Message is one event, as delivered to subscribers.
type Message struct {
	Type   string          `json:"type"`
	Room   string          `json:"room"`
	ID     string          `json:"id"`
	Origin string          `json:"origin"`
	Oseq   uint64          `json:"oseq"`
	Epoch  string          `json:"epoch"`
	Sender string          `json:"sender"`
	TS     string          `json:"ts"`
	Data   json.RawMessage `json:"data"`
}

// Ack confirms a publish after Redis stored it. A retried publish (same
// sender, same client message id, within the dedup window) gets the same ack.
type Ack struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Event string `json:"event"`
	Oseq  uint64 `json:"oseq"`
	// Room and Duplicate are extensions of v1: Duplicate is true when the
	// publish was a retry answered from the dedup record.
	Room      string `json:"room,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Origin, an extension of v1, is the region that assigned Oseq: the
	// region of the connection, except for a retry answered from the dedup
	// record of an event its first attempt made in another region.
	Origin string `json:"origin,omitempty"`
	// Epoch, an extension of v1, is the epoch of the (room, Origin)
	// sequence Oseq belongs to: the same as the event's message frames
	// carry. A gateway older than the field leaves it out.
	Epoch string `json:"epoch,omitempty"`
}

// ErrorFrame reports a refused request. Ref is the client message id or the
// room the error refers to, when one could be read.
type ErrorFrame struct {
	Type    string `json:"type"`
	Ref     string `json:"ref"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Bye is sent before a drain closes the socket.
type Bye struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Reconnect bool   `json:"reconnect"`
}

// Pong answers a ping.
type Pong struct {
	Type string `json:"type"`
}

// ServerFrame is any server → client frame decoded loosely, as a client
// reads it: every field of every type, only those of Type set.
type ServerFrame struct {
	Type      string          `json:"type"`
	Session   string          `json:"session,omitempty"`
	Region    string          `json:"region,omitempty"`
	Node      string          `json:"node,omitempty"`
	Room      string          `json:"room,omitempty"`
	Recovered bool            `json:"recovered,omitempty"`
	Missed    int             `json:"missed,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Position  Positions       `json:"position,omitempty"`
	Epochs    Epochs          `json:"epochs,omitempty"`
	ID        string          `json:"id,omitempty"`
	Origin    string          `json:"origin,omitempty"`
	Oseq      uint64          `json:"oseq,omitempty"`
	Epoch     string          `json:"epoch,omitempty"`
	Sender    string          `json:"sender,omitempty"`
	TS        string          `json:"ts,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Event     string          `json:"event,omitempty"`
	Duplicate bool            `json:"duplicate,omitempty"`
	Ref       string          `json:"ref,omitempty"`
	Code      string          `json:"code,omitempty"`
	Message   string          `json:"message,omitempty"`
	Reconnect bool            `json:"reconnect,omitempty"`
}

// DecodeServerFrame parses one server frame for a client.
func DecodeServerFrame(b []byte) (*ServerFrame, error) {
	var f ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("protocol: server frame is not valid JSON: %w", err)
	}
	if f.Type == "" {
		return nil, fmt.Errorf("protocol: server frame has no type")
	}
	return &f, nil
}
