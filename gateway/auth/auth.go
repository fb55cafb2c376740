// Package auth is geolab's one token authority for all regions: HS256 JWTs
// whose claims name the room patterns a user may read and publish. Every
// gateway of every region verifies with the same secret; `geolab token`
// issues with it.
package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// SecretEnv is the environment variable that holds the JWT secret.
const SecretEnv = "GEOLAB_JWT_SECRET"

// MinSecretLen is the shortest secret accepted (HS256 wants 256 bits).
const MinSecretLen = 32

// Errors Verify wraps: exactly one of them, with a message saying what was wrong.
var (
	ErrMissing = errors.New("no token")
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("token invalid")
)

// Claims are a geolab token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Read    []string `json:"read,omitempty"`
	Publish []string `json:"publish,omitempty"`
}

// CanRead reports whether the token may subscribe to room.
func (c *Claims) CanRead(room string) bool { return matchAny(c.Read, room) }

// CanPublish reports whether the token may publish to room.
func (c *Claims) CanPublish(room string) bool { return matchAny(c.Publish, room) }

func matchAny(patterns []string, room string) bool {
	for _, p := range patterns {
		if MatchPattern(p, room) {
			return true
		}
	}
	return false
}

// LoadSecret reads the secret from file when file is set, else from the
// GEOLAB_JWT_SECRET environment variable.
func LoadSecret(file string) ([]byte, error) {
	var secret []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("auth: read --jwt-secret-file: %w", err)
		}
		secret = []byte(strings.TrimRight(string(b), " \t\r\n"))
	case os.Getenv(SecretEnv) != "":
		secret = []byte(os.Getenv(SecretEnv))
	default:
		return nil, fmt.Errorf("auth: no JWT secret: set %s or pass --jwt-secret-file", SecretEnv)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: the JWT secret is %d bytes; at least %d are needed", len(secret), MinSecretLen)
	}
	return secret, nil
}

// Authority issues and verifies tokens with one secret.
type Authority struct {
	secret []byte
}

// NewAuthority returns an authority for secret (at least 32 bytes).
func NewAuthority(secret []byte) (*Authority, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: the JWT secret is %d bytes; at least %d are needed", len(secret), MinSecretLen)
	}
	return &Authority{secret: append([]byte(nil), secret...)}, nil
}

// Issue signs a token for sub, valid from now for ttl.
func (a *Authority) Issue(sub string, read, publish []string, ttl time.Duration, now time.Time) (string, error) {
	if err := validSubject(sub); err != nil {
		return "", err
	}
	for _, p := range append(append([]string{}, read...), publish...) {
		if err := ValidPattern(p); err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: --ttl must be positive, got %s", ttl)
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "geolab",
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Read: read, Publish: publish,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

func validSubject(sub string) error {
	switch {
	case sub == "":
		return fmt.Errorf("auth: --sub is empty")
	case len(sub) > 128:
		return fmt.Errorf("auth: --sub is %d characters, more than 128", len(sub))
	case strings.IndexFunc(sub, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("auth: --sub %q has white space or a control character", sub)
	}
	return nil
}

// Verify checks a token's signature (HS256 only), time claims and subject
// at now.
func (a *Authority) Verify(token string, now time.Time) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("auth: %w: send Authorization: Bearer <token> or ?token=", ErrMissing)
	}
	var c Claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired())
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return a.secret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		exp := "?"
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return nil, fmt.Errorf("auth: %w at %s", ErrExpired, exp)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, fmt.Errorf("auth: %w: not valid before %s", ErrExpired, c.NotBefore.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fmt.Errorf("auth: %w: signature invalid", ErrInvalid)
	default:
		return nil, fmt.Errorf("auth: %w: %v", ErrInvalid, err)
	}
	if err := validSubject(c.Subject); err != nil {
		return nil, fmt.Errorf("auth: %w: no valid sub claim", ErrInvalid)
	}
	return &c, nil
}

// ValidPattern checks a room pattern: 1–128 characters of the room alphabet
// (A–Z a–z 0–9 _ . - :) and '*', which matches any run of characters.
func ValidPattern(p string) error {
	if p == "" {
		return fmt.Errorf("room pattern is empty")
	}
	if len(p) > 128 {
		return fmt.Errorf("room pattern %q is longer than 128 characters", p)
	}
	for _, r := range p {
		ok := r == '*' || r == '_' || r == '.' || r == '-' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("room pattern %q has %q: allowed are A-Z a-z 0-9 _ . - : and *", p, r)
		}
	}
	return nil
}

// MatchPattern reports whether s matches the glob p, where '*' matches any
// run of characters (also none) and every other byte matches itself. It runs
// in linear time: each '*' commits to the earliest match of the literal
// segment after it.
func MatchPattern(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, seg := range parts[1 : len(parts)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
