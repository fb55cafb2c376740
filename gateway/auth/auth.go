// Package auth is geolab's one token authority for all regions: HS256 JWTs
// whose claims name the room patterns a user may read and publish. Every
// gateway of every region verifies with the same secret; `geolab token`
// issues with it.
//
//	secret (GEOLAB_JWT_SECRET or a file) ─▶ Authority ─▶ Issue ─▶ token
//	token ─▶ Verify (HS256 only, iss, sub, exp, nbf ± leeway, patterns) ─▶ Claims.CanRead/CanPublish
package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// SecretEnv is the environment variable that holds the JWT secret.
const SecretEnv = "GEOLAB_JWT_SECRET"

// ErrNoSecret is LoadSecret's answer when it was given no file and
// SecretEnv is unset.
var ErrNoSecret = errors.New("no JWT secret")

// MinSecretLen is the shortest secret accepted: HS256 wants 256 bits of key.
const MinSecretLen = 32

// Issuer is the iss claim of every geolab token; Verify requires it.
const Issuer = "geolab"

// MaxSubjectLen is the longest sub claim accepted, in bytes.
const MaxSubjectLen = 128

// MaxTokenLen is the longest token Verify will parse; longer ones are
// rejected before any decoding.
const MaxTokenLen = 8 << 10

// Errors Verify wraps: exactly one of them per failure, in an error whose
// message says what was wrong. ErrExpired means "get a new token and
// reconnect" (a token whose nbf is still ahead wraps it too, through
// ErrNotYetValid); ErrMissing and ErrInvalid mean the client must be fixed.
var (
	ErrMissing = errors.New("no token")
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("token invalid")
)

// ErrNotYetValid is Verify's error for a token whose nbf is ahead of now by
// more than the leeway. It wraps ErrExpired: the token is outside its
// validity window, as an expired one is, and the answer is the same (a token
// valid now, and a look at the clocks).
var ErrNotYetValid error = notYetValid{}

type notYetValid struct{}

func (notYetValid) Error() string { return "token not valid yet" }
func (notYetValid) Unwrap() error { return ErrExpired }

// DefaultLeeway is the clock skew a gateway tolerates unless told otherwise
// (geolab gateway --jwt-leeway): a token's exp may have passed, and its nbf
// may be ahead, by up to this much.
const DefaultLeeway = 5 * time.Second

// MaxLeeway bounds the leeway: a longer one would keep expired tokens
// working for longer than a clock can plausibly be off.
const MaxLeeway = 5 * time.Minute

// BearerToken returns the token of an Authorization header value of the
// Bearer scheme, whose name is case-insensitive (RFC 9110 §11.1: "bearer x"
// and "BEARER x" are "Bearer x"); ok is false for any other scheme or an
// empty token.
func BearerToken(header string) (token string, ok bool) {
	scheme, cred, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(cred)
	return token, token != ""
}

// Claims are a geolab token's claims: the registered ones (sub names the
// user and becomes the sender of its publishes) and the room patterns the
// user may read (subscribe to) and publish to. No pattern means no room.
type Claims struct {
	jwt.RegisteredClaims
	Read    []string `json:"read,omitempty"`
	Publish []string `json:"publish,omitempty"`
}

// CanRead reports whether the token may subscribe to room.
func (c *Claims) CanRead(room string) bool { return c != nil && matchAny(c.Read, room) }

// CanPublish reports whether the token may publish to room.
func (c *Claims) CanPublish(room string) bool { return c != nil && matchAny(c.Publish, room) }

func matchAny(patterns []string, room string) bool {
	for _, p := range patterns {
		if MatchPattern(p, room) {
			return true
		}
	}
	return false
}

// LoadSecret returns the JWT secret: the contents of file when file is not
// empty, else the GEOLAB_JWT_SECRET environment variable. Trailing white
// space (a newline left by an editor or echo) is dropped in both cases, so
// that the same secret given either way verifies the same tokens. The
// secret must be at least MinSecretLen bytes.
func LoadSecret(file string) ([]byte, error) {
	var secret, from string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("auth: read JWT secret file: %w", err)
		}
		secret, from = string(b), "file "+file
	} else {
		secret, from = os.Getenv(SecretEnv), SecretEnv
		if secret == "" {
			return nil, fmt.Errorf("auth: %w: set %s or give a secret file", ErrNoSecret, SecretEnv)
		}
	}
	secret = strings.TrimRightFunc(secret, unicode.IsSpace)
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: the JWT secret from %s is %d bytes, at least %d are needed", from, len(secret), MinSecretLen)
	}
	return []byte(secret), nil
}

// Authority issues and verifies tokens with one secret. It is safe for
// concurrent use.
type Authority struct {
	secret []byte
}

// NewAuthority returns an authority for secret (at least MinSecretLen
// bytes). The secret is copied.
func NewAuthority(secret []byte) (*Authority, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: the JWT secret is %d bytes, at least %d are needed", len(secret), MinSecretLen)
	}
	return &Authority{secret: append([]byte(nil), secret...)}, nil
}

// Issue signs a token for sub that may read and publish the rooms matching
// the given patterns, valid from now (iat, nbf) until now+ttl (exp), with
// iss "geolab". Token times have one-second precision, so ttl must be at
// least a second.
func (a *Authority) Issue(sub string, read, publish []string, ttl time.Duration, now time.Time) (string, error) {
	if err := validSubject(sub); err != nil {
		return "", fmt.Errorf("auth: issue: %w", err)
	}
	if err := validPatterns(read, publish); err != nil {
		return "", fmt.Errorf("auth: issue: %w", err)
	}
	if ttl < time.Second {
		return "", fmt.Errorf("auth: issue: ttl %v is too short: at least 1s (token times have one-second precision)", ttl)
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Read:    append([]string(nil), read...),
		Publish: append([]string(nil), publish...),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// Verify checks token at now with no leeway: VerifyWithLeeway(token, now, 0).
func (a *Authority) Verify(token string, now time.Time) (*Claims, error) {
	return a.VerifyWithLeeway(token, now, 0)
}

// VerifyWithLeeway checks token at now and returns its claims. It accepts
// only HS256 tokens signed with the authority's secret (any other alg,
// "none" included, is refused before the signature is looked at), issued by
// Issuer, with a valid sub, an exp after now - leeway, an nbf (when present)
// not after now + leeway, and valid room patterns. The leeway (negative
// counts as 0) tolerates clock skew between the issuer and this verifier;
// a gateway closes a connection at exp + leeway to match. On failure the
// error wraps exactly one of ErrMissing, ErrExpired, ErrInvalid.
func (a *Authority) VerifyWithLeeway(token string, now time.Time, leeway time.Duration) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("auth: %w: send Authorization: Bearer <token> or ?token=", ErrMissing)
	}
	if len(token) > MaxTokenLen {
		return nil, invalid("token is %d bytes, more than %d", len(token), MaxTokenLen)
	}
	var c Claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	t, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		if t != nil && t.Header != nil {
			if alg, _ := t.Header["alg"].(string); alg != jwt.SigningMethodHS256.Alg() {
				return nil, invalid("alg %q not allowed (only HS256)", alg)
			}
		}
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, invalid("malformed: %v", err)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return nil, invalid("signature invalid")
		default:
			return nil, invalid("%v", err)
		}
	}
	if err := c.validate(now, max(leeway, 0)); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks the claims of a token whose signature is good.
func (c *Claims) validate(now time.Time, leeway time.Duration) error {
	if c.Issuer != Issuer {
		return invalid("iss %q, want %q", c.Issuer, Issuer)
	}
	if c.Subject == "" {
		return invalid("no sub claim")
	}
	if err := validSubject(c.Subject); err != nil {
		return invalid("%v", err)
	}
	if c.ExpiresAt == nil {
		return invalid("no exp claim")
	}
	if exp := c.ExpiresAt.Time; !now.Before(exp.Add(leeway)) {
		return fmt.Errorf("auth: %w at %s%s", ErrExpired, exp.UTC().Format(time.RFC3339), leewayNote(leeway))
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time) {
		return fmt.Errorf("auth: %w: not valid before %s, and now is %s%s (is a clock off?)", ErrNotYetValid,
			c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), leewayNote(leeway))
	}
	if err := validPatterns(c.Read, c.Publish); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func leewayNote(leeway time.Duration) string {
	if leeway <= 0 {
		return ""
	}
	return " (leeway " + leeway.String() + ")"
}

// invalid is an ErrInvalid error saying what was wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("auth: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ValidSubject checks a sub as Verify and Issue do: 1–128 bytes of UTF-8
// without white space or control characters. (A bridge checks the subject a
// session ownership record carries with it.)
func ValidSubject(sub string) error { return validSubject(sub) }

// validSubject checks a sub: 1–128 bytes of UTF-8 without white space or
// control characters.
func validSubject(sub string) error {
	switch {
	case sub == "":
		return errors.New("sub is empty")
	case len(sub) > MaxSubjectLen:
		return fmt.Errorf("sub is %d bytes, more than %d", len(sub), MaxSubjectLen)
	case !utf8.ValidString(sub):
		return fmt.Errorf("sub %q is not valid UTF-8", sub)
	case strings.IndexFunc(sub, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("sub %q has white space or a control character", sub)
	}
	return nil
}

func validPatterns(read, publish []string) error {
	for _, p := range read {
		if err := ValidPattern(p); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	for _, p := range publish {
		if err := ValidPattern(p); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}
