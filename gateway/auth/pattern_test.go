package auth_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/geolab/geolab/gateway/auth"
)

func TestValidPattern(t *testing.T) {
	good := []string{"*", "tenant:*", "presence:eu-*", "room:a.b_c-d", "**", "*:x", "a", strings.Repeat("a", 128)}
	for _, p := range good {
		if err := auth.ValidPattern(p); err != nil {
			t.Errorf("ValidPattern(%q): %v", p, err)
		}
	}
	bad := map[string]string{
		"":                       "empty",
		strings.Repeat("a", 129): "129 characters, more than 128",
		"room/1":                 "'/'",
		"room 1":                 "' '",
		"tenant:?":               "'?'",
		"r[a]":                   "'['",
		"é":                      "allowed are A-Z a-z 0-9 _ . - : and *",
		"a\x00":                  "'\\x00'",
	}
	for p, want := range bad {
		err := auth.ValidPattern(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidPattern(%q): %v, want an error containing %q", p, err, want)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "anything:at-all", true},
		{"tenant:*", "tenant:42", true},
		{"tenant:*", "tenant:", true},
		{"tenant:*", "tenant", false},
		{"tenant:*", "xtenant:42", false},
		{"presence:eu-*", "presence:eu-west", true},
		{"presence:eu-*", "presence:us-east", false},
		{"room", "room", true},
		{"room", "room2", false},
		{"", "", true},
		{"", "a", false},
		{"a*a", "a", false}, // prefix and suffix may not overlap
		{"a*a", "aa", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"*b*", "abc", true},
		{"*b*", "ac", false},
		{"**", "x", true},
		{"a**b", "ab", true},
		{"*ab*ab", "abab", true},
		{"*ab*ab", "aab", false},
		{"t:*:x", "t:1:2:x", true},
		{"http://localhost:*", "http://localhost:8080", true}, // origins use it too
	}
	for _, c := range cases {
		if got := auth.MatchPattern(c.p, c.s); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
		if got := reference(c.p, c.s); got != c.want {
			t.Errorf("reference(%q, %q) = %v, want %v (the test is wrong)", c.p, c.s, got, c.want)
		}
	}
}

// TestMatchPatternHasNoBacktracking runs the input that makes a naive
// backtracking glob exponential; a linear matcher answers at once (a
// regression shows as a test timeout).
func TestMatchPatternHasNoBacktracking(t *testing.T) {
	p := strings.Repeat("a*", 60) + "b"
	s := strings.Repeat("a", 100_000)
	if auth.MatchPattern(p, s) {
		t.Fatal("matched a string without b")
	}
	if !auth.MatchPattern(p, s+"b") {
		t.Fatal("did not match")
	}
}

func TestClaimsCan(t *testing.T) {
	c := &auth.Claims{Read: []string{"tenant:*", "presence:eu-*"}, Publish: []string{"tenant:1"}}
	if !c.CanRead("tenant:9") || !c.CanRead("presence:eu-west") || c.CanRead("presence:us-east") {
		t.Error("CanRead")
	}
	if !c.CanPublish("tenant:1") || c.CanPublish("tenant:2") {
		t.Error("CanPublish")
	}
	var none *auth.Claims
	if none.CanRead("x") || (&auth.Claims{}).CanPublish("x") {
		t.Error("no patterns must allow no room")
	}
}

// reference is MatchPattern by regexp: each literal quoted, each '*' ".*".
func reference(p, s string) bool {
	parts := strings.Split(p, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`).MatchString(s)
}

// FuzzMatchPattern checks MatchPattern against the regexp reference.
func FuzzMatchPattern(f *testing.F) {
	for _, seed := range [][2]string{
		{"tenant:*", "tenant:42"}, {"*", ""}, {"a*a", "a"}, {"*ab*ab", "aab"},
		{"a*b*c", "aXbYc"}, {"**x**", "yxy"}, {"presence:eu-*", "presence:us-east"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if !utf8.ValidString(p) || !utf8.ValidString(s) || len(p) > 256 || len(s) > 1024 {
			t.Skip() // regexp works on runes; the reference needs valid UTF-8
		}
		if got, want := auth.MatchPattern(p, s), reference(p, s); got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v, reference says %v", p, s, got, want)
		}
	})
}
