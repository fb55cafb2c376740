package auth

import (
	"fmt"
	"strings"
)

// MaxPatternLen is the longest room pattern accepted, the room length bound.
const MaxPatternLen = 128

// ValidPattern checks a room pattern: 1–128 characters of the room alphabet
// (A–Z a–z 0–9 _ . - :) and '*', which matches any run of characters,
// including none. Examples: "tenant:*", "*", "presence:eu-*".
func ValidPattern(p string) error {
	if p == "" {
		return fmt.Errorf("room pattern is empty")
	}
	if len(p) > MaxPatternLen {
		return fmt.Errorf("room pattern is %d characters, more than %d", len(p), MaxPatternLen)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; !patternByte(b) {
			return fmt.Errorf("room pattern %q has %q at byte %d: allowed are A-Z a-z 0-9 _ . - : and *", p, b, i)
		}
	}
	return nil
}

func patternByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '_' || b == '.' || b == '-' || b == ':' || b == '*'
}

// MatchPattern reports whether s matches the glob p, where '*' matches any
// run of bytes (also none) and every other byte matches itself. It does not
// validate p, so it also serves other globs (allowed WebSocket origins).
//
// It runs in linear time, with no backtracking: the literal before the first
// '*' must be a prefix of s and the one after the last '*' a suffix; each
// literal between stars is matched at its earliest place in what is left,
// which is always safe because a later '*' can absorb anything.
func MatchPattern(p, s string) bool {
	first := strings.IndexByte(p, '*')
	if first < 0 {
		return p == s
	}
	last := strings.LastIndexByte(p, '*')
	prefix, suffix := p[:first], p[last+1:]
	if len(s) < len(prefix)+len(suffix) || !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) {
		return false
	}
	rest := s[len(prefix) : len(s)-len(suffix)]
	mid := p[first+1 : max(last, first+1)]
	for mid != "" {
		seg := mid
		if i := strings.IndexByte(mid, '*'); i >= 0 {
			seg, mid = mid[:i], mid[i+1:]
		} else {
			mid = ""
		}
		if seg == "" {
			continue
		}
		i := strings.Index(rest, seg)
		if i < 0 {
			return false
		}
		rest = rest[i+len(seg):]
	}
	return true
}
