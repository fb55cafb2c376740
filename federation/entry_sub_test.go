package federation

import (
	"strings"
	"testing"
)

// TestSessionRecordCarriesItsSubject: a session record's u, the token
// subject session.lua bound the session to, is carried to the apply; one
// that is no token subject is refused; a record without one (from a gateway
// that predates binding) is applied without.
func TestSessionRecordCarriesItsSubject(t *testing.T) {
	e, bad := validateEntry("us-east", testMaxFrame, "1-0", with(goodSession(), "u", "alice"))
	if bad != nil || e.sub != "alice" {
		t.Fatalf("record with u alice: %+v %v", e, bad)
	}
	e, bad = validateEntry("us-east", testMaxFrame, "1-0", with(goodSession(), "u", nil))
	if bad != nil || e.sub != "" {
		t.Fatalf("record without u: %+v %v", e, bad)
	}
	for _, sub := range []string{"a b", "tab\there", strings.Repeat("s", 129), "bad\xff"} {
		if _, bad := validateEntry("us-east", testMaxFrame, "1-0", with(goodSession(), "u", sub)); bad == nil || bad.reason != reasonBadSession {
			t.Errorf("record with u %q: %v, want %s", sub, bad, reasonBadSession)
		}
	}
}
