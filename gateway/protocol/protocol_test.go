package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeClientFrame(t *testing.T) {
	ok := []string{
		`{"type":"ping"}`,
		`{"type":"subscribe","room":"tenant:42"}`,
		`{"type":"subscribe","room":"tenant:42","since":{"us-east":17,"eu-west":5},"epochs":{"us-east":"k3f9","eu-west":"a71c"}}`,
		`{"type":"unsubscribe","room":"tenant:42"}`,
		`{"type":"publish","room":"tenant:42","id":"m-1","data":{"a":[1,2]}}`,
		`{"type":"publish","room":"a","id":"m-1","data":null,"extra":"ignored"}`,
	}
	for _, s := range ok {
		if _, err := DecodeClientFrame([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		``:                                  CodeBadJSON,
		`null`:                              CodeBadJSON,
		`{"type":`:                          CodeBadJSON,
		`{}`:                                CodeUnknownType,
		`{"type":"nope"}`:                   CodeUnknownType,
		`{"type":"subscribe","room":""}`:    CodeBadRoom,
		`{"type":"subscribe","room":":x"}`:  CodeBadRoom,
		`{"type":"subscribe","room":"a/b"}`: CodeBadRoom,
		`{"type":"subscribe","room":"a","since":{"x":1.5}}`: CodeBadSince,
		`{"type":"subscribe","room":"a","since":[1]}`:       CodeBadSince,
		`{"type":"subscribe","room":"a","epochs":{"x":1}}`:  CodeBadSince,
		`{"type":"publish","room":"a","id":"","data":1}`:    CodeBadID,
		`{"type":"publish","room":"a","id":7,"data":1}`:     CodeBadFrame,
	}
	for s, code := range bad {
		_, err := DecodeClientFrame([]byte(s))
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != code || pe.Message == "" {
			t.Errorf("%q: got %v, want code %s", s, err, code)
		}
	}
}

// TestDecodeClientFrameRefusesWhatIsNotUnicode: a frame must be valid
// UTF-8 and a publish's data must not escape a lone surrogate; both are
// bad_utf8 with the publish's id (or the room) as ref. Surrogate pairs, an
// escaped backslash before "u", and U+FFFD itself are fine.
func TestDecodeClientFrameRefusesWhatIsNotUnicode(t *testing.T) {
	pub := func(data string) string { return `{"type":"publish","room":"r","id":"m-1","data":` + data + `}` }
	bad := []struct{ frame, ref string }{
		{pub("\"\xff\""), "m-1"},
		{pub("\"ok\xc3\""), "m-1"},       // truncated sequence
		{pub("\"\xed\xb2\x80\""), "m-1"}, // a surrogate encoded as UTF-8
		{pub(`"\udc80"`), "m-1"},
		{pub(`"\uDC80"`), "m-1"},
		{pub(`{"k":["x\ud800"]}`), "m-1"},
		{pub(`"\ud800\u0041"`), "m-1"},
		{pub(`"\ud800\ud800"`), "m-1"},
		{pub(`{"\udfff":1}`), "m-1"},
		{pub(`"\\\udc80"`), "m-1"}, // an escaped backslash, then a lone escape
		{"{\"type\":\"subscribe\",\"room\":\"r\",\"x\":\"\xff\"}", "r"},
		{"{\"type\":\"ping\",\"x\":\"\xfe\"}", ""},
	}
	for _, tc := range bad {
		_, err := DecodeClientFrame([]byte(tc.frame))
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadUTF8 || pe.Ref != tc.ref || pe.Message == "" {
			t.Errorf("%q: got %v, want %s with ref %q", tc.frame, err, CodeBadUTF8, tc.ref)
		}
	}
	for _, data := range []string{`"\ud83d\ude00"`, `"\uD83D\uDE00x"`, `"\\udc80"`, `"\ufffd"`, "\"\xef\xbf\xbd\"",
		"\"caf\xc3\xa9\"", `"\"\\\/\b\f\n\r\t"`, `{"\u00e9":[1,"\u0000"]}`} {
		f, err := DecodeClientFrame([]byte(pub(data)))
		if err != nil || string(f.Data) != data {
			t.Errorf("%q: %v, want it accepted as is", data, err)
		}
	}
	// Bytes that are not UTF-8 outside a string are not JSON at all.
	if _, err := DecodeClientFrame([]byte(pub("\xff"))); err == nil || err.(*Error).Code != CodeBadJSON {
		t.Errorf("data \\xff: %v, want %s", err, CodeBadJSON)
	}
}

func TestNames(t *testing.T) {
	if ValidRoom(strings.Repeat("a", MaxRoomLen)) != nil || ValidRoom(strings.Repeat("a", MaxRoomLen+1)) == nil {
		t.Fatal("room length bound")
	}
	if ValidOrigin("us-east") != nil || ValidOrigin("US") == nil || ValidOrigin("-x") == nil {
		t.Fatal("origin rule")
	}
}

func TestCloseCodeRanges(t *testing.T) {
	for _, c := range []int{CloseGoingAway, CloseInternalError, CloseSlowConsumer, CloseTokenExpired, CloseSessionTakenOver, CloseHeartbeatTimeout} {
		if !Reconnectable(c) {
			t.Errorf("%d (%s) should be reconnectable", c, CloseReason(c))
		}
	}
	for _, c := range []int{CloseNormal, CloseMessageTooBig, CloseFlood} {
		if Reconnectable(c) {
			t.Errorf("%d (%s) should not be reconnectable", c, CloseReason(c))
		}
	}
}

// FuzzDecodeClientFrame: any bytes either decode to a frame that satisfies
// every rule or fail with a coded *Error; nothing panics.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","room":"tenant:42","since":{"us-east":17},"epochs":{"us-east":"k3f9"}}`,
		`{"type":"publish","room":"tenant:42","id":"m-1","data":{"x":1}}`,
		`{"type":"ping"}`, `{"type":"unsubscribe","room":"a"}`, `{`, `[]`, `""`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"publish","room":"r","id":"m","data":"\ud83d\ude00 \udc80"}`))
	f.Add([]byte("{\"type\":\"publish\",\"room\":\"r\",\"id\":\"m\",\"data\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClientFrame(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted a frame that is not UTF-8: %q", b)
		}
		if fr.Type == TypePublish {
			// encoding/json decodes a lone surrogate escape to U+FFFD: in
			// accepted data every U+FFFD must have been written as one.
			var v any
			if err := json.Unmarshal(fr.Data, &v); err != nil {
				t.Fatalf("accepted data that is not JSON: %q: %v", fr.Data, err)
			}
			lower := strings.ToLower(string(fr.Data))
			written := strings.Count(lower, "\ufffd") + strings.Count(lower, "\\ufffd")
			if got := replacements(v); got > written {
				t.Fatalf("accepted data %q decodes to %d U+FFFD, only %d written: a lone surrogate got through", fr.Data, got, written)
			}
		}
		switch fr.Type {
		case TypePing:
		case TypeSubscribe, TypeUnsubscribe, TypePublish:
			if ValidRoom(fr.Room) != nil {
				t.Fatalf("accepted bad room %q", fr.Room)
			}
			if fr.Type == TypePublish && (ValidID(fr.ID) != nil || fr.Data == nil) {
				t.Fatalf("accepted bad publish %+v", fr)
			}
			for o := range fr.Since {
				if ValidOrigin(o) != nil {
					t.Fatalf("accepted bad origin %q", o)
				}
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

// replacements counts U+FFFD in every string and key of a decoded JSON value.
func replacements(v any) int {
	switch v := v.(type) {
	case string:
		return strings.Count(v, "\ufffd")
	case []any:
		n := 0
		for _, e := range v {
			n += replacements(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range v {
			n += strings.Count(k, "\ufffd") + replacements(e)
		}
		return n
	}
	return 0
}
