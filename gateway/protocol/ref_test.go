package protocol

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorRef: the ref of every decoding error follows docs/protocol.md's
// rule: a publish's id when it is a non-empty string, else the frame's room
// when it is a string, else empty; cut to 128 bytes.
func TestErrorRef(t *testing.T) {
	long := strings.Repeat("i", MaxIDLen+10)
	cases := []struct {
		name, frame, code, ref string
	}{
		{"publish without id", `{"type":"publish","room":"room:a","data":1}`, CodeBadFrame, "room:a"},
		{"publish id null", `{"type":"publish","room":"room:a","id":null,"data":1}`, CodeBadFrame, "room:a"},
		{"publish id a number", `{"type":"publish","room":"room:a","id":7,"data":1}`, CodeBadFrame, "room:a"},
		{"publish id empty", `{"type":"publish","room":"room:a","id":"","data":1}`, CodeBadID, "room:a"},
		{"publish room a number", `{"type":"publish","room":5,"id":"m-1","data":1}`, CodeBadFrame, "m-1"},
		{"publish without room", `{"type":"publish","id":"m-1","data":1}`, CodeBadFrame, "m-1"},
		{"publish bad room", `{"type":"publish","room":"bad room","id":"m-1","data":1}`, CodeBadRoom, "m-1"},
		{"publish bad id", `{"type":"publish","room":"room:a","id":"a b","data":1}`, CodeBadID, "a b"},
		{"publish id too long", `{"type":"publish","room":"room:a","id":"` + long + `","data":1}`, CodeBadID, long[:MaxRoomLen]},
		{"publish without data", `{"type":"publish","room":"room:a","id":"m-1"}`, CodeBadFrame, "m-1"},
		{"publish room and id numbers", `{"type":"publish","room":5,"id":6,"data":1}`, CodeBadFrame, ""},
		{"subscribe bad room", `{"type":"subscribe","room":"bad room"}`, CodeBadRoom, "bad room"},
		{"subscribe room too long", `{"type":"subscribe","room":"` + strings.Repeat("r", 200) + `"}`, CodeBadRoom, strings.Repeat("r", MaxRoomLen)},
		{"subscribe room a number", `{"type":"subscribe","room":5}`, CodeBadFrame, ""},
		{"subscribe with an id", `{"type":"subscribe","room":"bad room","id":"m-1"}`, CodeBadRoom, "bad room"},
		{"subscribe bad since", `{"type":"subscribe","room":"room:a","since":{"us-east":-1}}`, CodeBadSince, "room:a"},
		{"unsubscribe without room", `{"type":"unsubscribe"}`, CodeBadFrame, ""},
		{"unknown type", `{"type":"teleport","room":"room:a","id":"m-1"}`, CodeUnknownType, "room:a"},
		{"no type", `{"room":"room:a"}`, CodeUnknownType, "room:a"},
		{"type a number", `{"type":7,"room":"room:a"}`, CodeUnknownType, "room:a"},
		{"not JSON", `{"type":"publish","room":"room:a","id":"m-1",`, CodeBadJSON, ""},
		{"not an object", `["publish"]`, CodeBadJSON, ""},
	}
	for _, tc := range cases {
		_, err := DecodeClientFrame([]byte(tc.frame))
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Ref != tc.ref {
			t.Errorf("%s: got %v (ref %q), want %s with ref %q", tc.name, err, refOfErr(pe), tc.code, tc.ref)
		}
	}
}

func refOfErr(pe *Error) string {
	if pe == nil {
		return ""
	}
	return pe.Ref
}
