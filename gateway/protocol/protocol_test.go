package protocol

import (
	"errors"
	"strings"
	"testing"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClientFrame(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
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
