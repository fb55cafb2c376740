package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads one JSON text (a history line, a frame) without building a
// generic tree: callers walk objects key by key and decode only the values
// they need, skipping the rest. It accepts exactly RFC 8259 JSON, like
// encoding/json (which it replaces on the hot path for speed), and, like
// encoding/json, replaces invalid UTF-8 in decoded strings with U+FFFD.
type scanner struct {
	b []byte
	i int
}

// maxDepth bounds nesting, as encoding/json does, so that a hostile line
// cannot exhaust the stack.
const maxDepth = 10000

// errEnd is the syntax error of a line that stops in the middle of a value:
// what a history cut by a killed run looks like.
var errEnd = errors.New("unexpected end of line")

// syntaxError is a scanner error at a byte offset of the line.
type syntaxError struct {
	off int
	msg string
	end bool // the text stopped before the value was complete
}

func (e *syntaxError) Error() string { return e.msg }

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) eof() error { return &syntaxError{off: s.i, msg: errEnd.Error(), end: true} }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// begin consumes the '{' that opens an object.
func (s *scanner) begin() error {
	switch c := s.peek(); c {
	case '{':
		s.i++
		return nil
	case 0:
		return s.eof()
	default:
		return s.fail("expected a JSON object, found %s", describe(c))
	}
}

// key reads the next key of an object opened by begin, and the ':' after
// it; done is true (and key nil) when the object closed instead. first
// says whether this is the object's first key.
func (s *scanner) key(first bool) (key []byte, done bool, err error) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, true, nil
	}
	if !first {
		if c != ',' {
			if c == 0 {
				return nil, false, s.eof()
			}
			return nil, false, s.fail("expected ',' or '}' in an object, found %s", describe(c))
		}
		s.i++
		c = s.peek()
	}
	if c != '"' {
		if c == 0 {
			return nil, false, s.eof()
		}
		return nil, false, s.fail("expected a string key in an object, found %s", describe(c))
	}
	if key, err = s.str(); err != nil {
		return nil, false, err
	}
	if c = s.peek(); c != ':' {
		if c == 0 {
			return nil, false, s.eof()
		}
		return nil, false, s.fail("expected ':' after an object key, found %s", describe(c))
	}
	s.i++
	s.ws()
	return key, false, nil
}

// str reads a string value. The result is a slice of the input when the
// string holds only printable ASCII and no escapes (the common case), a new
// buffer otherwise; callers must not keep or modify it beyond the line.
func (s *scanner) str() ([]byte, error) {
	if c := s.peek(); c != '"' {
		if c == 0 {
			return nil, s.eof()
		}
		return nil, s.fail("expected a string, found %s", describe(c))
	}
	start := s.i + 1
	for j := plain(s.b, start); j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return s.b[start:j], nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return s.strSlow(start)
		}
	}
	s.i = len(s.b)
	return nil, s.eof()
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain returns the offset of the first byte at or after j that may end or
// escape a string, or is not printable ASCII ('"', '\\', < 0x20, >= 0x80),
// or a point near the end of b: a string's bulk is passed over eight bytes
// at a time.
func plain(b []byte, j int) int {
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		q := x ^ ('"' * ones)
		e := x ^ ('\\' * ones)
		special := ((x - 0x20*ones) | (q - ones) | (e - ones) | x) & highs // < 0x20, '"', '\\' or >= 0x80
		if special != 0 {
			return j
		}
	}
	return j
}

// strSlow decodes a string with escapes or non-ASCII bytes from start (the
// byte after the opening quote).
func (s *scanner) strSlow(start int) ([]byte, error) {
	out := make([]byte, 0, 2*(len(s.b)-start)/3+8)
	j := start
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return out, nil
		case c < 0x20:
			s.i = j
			return nil, s.fail("control character %#02x in a string", c)
		case c == '\\':
			if j+1 >= len(s.b) {
				s.i = len(s.b)
				return nil, s.eof()
			}
			e := s.b[j+1]
			j += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(s.b, j)
				if !ok {
					s.i = j
					if j+4 > len(s.b) {
						return nil, s.eof()
					}
					return nil, s.fail("bad \\u escape in a string")
				}
				j += 4
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if j+6 <= len(s.b) && s.b[j] == '\\' && s.b[j+1] == 'u' {
						r2, ok2 = hex4(s.b, j+2)
					}
					if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
						r = d
						j += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				s.i = j - 1
				return nil, s.fail("bad escape \\%c in a string", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			j++
		default:
			r, n := utf8.DecodeRune(s.b[j:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s.b[j:j+n]...)
			}
			j += n
		}
	}
	s.i = len(s.b)
	return nil, s.eof()
}

func hex4(b []byte, j int) (rune, bool) {
	if j+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[j : j+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipStr passes over a string without decoding it, validating escapes.
func (s *scanner) skipStr() error {
	j := s.i + 1
	for j < len(s.b) {
		j = plain(s.b, j)
		if j >= len(s.b) {
			break
		}
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return nil
		case c < 0x20:
			s.i = j
			return s.fail("control character %#02x in a string", c)
		case c == '\\':
			if j+1 >= len(s.b) {
				s.i = len(s.b)
				return s.eof()
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, ok := hex4(s.b, j+2); !ok {
					s.i = j
					if j+6 > len(s.b) {
						return s.eof()
					}
					return s.fail("bad \\u escape in a string")
				}
				j += 6
			default:
				s.i = j
				return s.fail("bad escape \\%c in a string", s.b[j+1])
			}
		default:
			j++
		}
	}
	s.i = len(s.b)
	return s.eof()
}

// num reads a number and returns its text.
func (s *scanner) num() ([]byte, error) {
	start := s.i
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
			j++
		}
		return j - k
	}
	switch {
	case j >= len(s.b):
		s.i = j
		return nil, s.eof()
	case s.b[j] == '0':
		j++
	case s.b[j] >= '1' && s.b[j] <= '9':
		digits()
	default:
		s.i = j
		return nil, s.fail("bad number: expected a digit, found %s", describe(s.b[j]))
	}
	if j < len(s.b) && s.b[j] == '.' {
		j++
		if digits() == 0 {
			s.i = j
			if j >= len(s.b) {
				return nil, s.eof()
			}
			return nil, s.fail("bad number: expected a digit after '.'")
		}
	}
	if j < len(s.b) && (s.b[j] == 'e' || s.b[j] == 'E') {
		j++
		if j < len(s.b) && (s.b[j] == '+' || s.b[j] == '-') {
			j++
		}
		if digits() == 0 {
			s.i = j
			if j >= len(s.b) {
				return nil, s.eof()
			}
			return nil, s.fail("bad number: expected a digit in the exponent")
		}
	}
	s.i = j
	return s.b[start:j], nil
}

// literal reads true, false or null.
func (s *scanner) literal(want string) error {
	end := s.i + len(want)
	if end > len(s.b) {
		if string(s.b[s.i:]) == want[:len(s.b)-s.i] {
			s.i = len(s.b)
			return s.eof()
		}
		return s.fail("bad literal: expected %s", want)
	}
	if string(s.b[s.i:end]) != want {
		return s.fail("bad literal: expected %s", want)
	}
	s.i = end
	return nil
}

// skip passes over one value of any kind, validating it.
func (s *scanner) skip() error { return s.skipDepth(0) }

func (s *scanner) skipDepth(depth int) error {
	if depth > maxDepth {
		return s.fail("values nested more than %d deep", maxDepth)
	}
	switch c := s.peek(); c {
	case '"':
		return s.skipStr()
	case '{':
		s.i++
		for first := true; ; first = false {
			_, done, err := s.key(first)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			if err := s.skipDepth(depth + 1); err != nil {
				return err
			}
		}
	case '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skipDepth(depth + 1); err != nil {
				return err
			}
			switch c := s.peek(); c {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			case 0:
				return s.eof()
			default:
				return s.fail("expected ',' or ']' in an array, found %s", describe(c))
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		return s.eof()
	default:
		if c == '-' || c >= '0' && c <= '9' {
			_, err := s.num()
			return err
		}
		return s.fail("expected a JSON value, found %s", describe(c))
	}
}

// isNull consumes a null if one comes next.
func (s *scanner) isNull() bool {
	if s.peek() == 'n' && s.literal("null") == nil {
		return true
	}
	return false
}

// int reads an integer that fits an int64.
func (s *scanner) int() (int64, error) {
	at := s.i
	t, err := s.num()
	if err != nil {
		return 0, err
	}
	v, ok := parseInt(t)
	if !ok {
		s.i = at
		return 0, s.fail("%s is not an integer that fits 64 bits", t)
	}
	return v, nil
}

// parseInt parses -?[0-9]+ into an int64; false on anything else or overflow.
func parseInt(t []byte) (int64, bool) {
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	u, ok := parseUint(t)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return int64(-u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// parseUint parses [0-9]+ into a uint64; false on anything else or overflow.
func parseUint(t []byte) (uint64, bool) {
	if len(t) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (1<<64-1-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// end checks that nothing but spaces follows the value just read.
func (s *scanner) end() error {
	if c := s.peek(); c != 0 {
		return s.fail("unexpected %s after the end of the JSON object", describe(c))
	}
	return nil
}

// validObject reports whether b is exactly one JSON object (spaces around
// allowed).
func validObject(b []byte) bool {
	s := scanner{b: b}
	if s.peek() != '{' {
		return false
	}
	return s.skip() == nil && s.end() == nil
}

func describe(c byte) string {
	if c == 0 {
		return "the end of the line"
	}
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf("byte %#02x", c)
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced with U+FFFD (as encoding/json
// does), everything else as is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigit[c>>4], hexDigit[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigit = "0123456789abcdef"
