package auth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/geolab/geolab/gateway/auth"
)

const secret = "auth-test-secret-0123456789abcdef0123456789"

// now is the fixed clock of these tests.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func authority(t testing.TB) *auth.Authority {
	t.Helper()
	a, err := auth.NewAuthority([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sign makes a token with arbitrary claims, method and key.
func sign(t testing.TB, m jwt.SigningMethod, claims jwt.MapClaims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// good are the claims Issue would write, as a map to break one at a time.
func good() jwt.MapClaims {
	return jwt.MapClaims{"iss": "geolab", "sub": "alice", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "read": []string{"tenant:*"}, "publish": []string{"tenant:1"}}
}

func with(k string, v any) jwt.MapClaims {
	c := good()
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

// kind is the one sentinel err wraps; it fails t unless exactly one is.
func kind(t *testing.T, err error) error {
	t.Helper()
	var found []error
	for _, e := range []error{auth.ErrMissing, auth.ErrExpired, auth.ErrInvalid} {
		if errors.Is(err, e) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("error %v wraps %v: want exactly one of ErrMissing, ErrExpired, ErrInvalid", err, found)
	}
	return found[0]
}

func TestIssueThenVerify(t *testing.T) {
	a := authority(t)
	tok, err := a.Issue("alice", []string{"tenant:*"}, []string{"tenant:1"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Issuer != "geolab" || !c.ExpiresAt.Equal(now.Add(time.Hour)) ||
		!c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) {
		t.Fatalf("claims %+v", c.RegisteredClaims)
	}
	if !c.CanRead("tenant:7") || c.CanRead("room:7") || !c.CanPublish("tenant:1") || c.CanPublish("tenant:2") {
		t.Fatalf("patterns: read %v publish %v", c.Read, c.Publish)
	}
	// Valid up to the last instant before exp, not at exp.
	if _, err := a.Verify(tok, now.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	if _, err := a.Verify(tok, now.Add(time.Hour)); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("at exp: %v", err)
	}
	// Another authority with another secret refuses it.
	other, _ := auth.NewAuthority([]byte(strings.Repeat("x", 32)))
	if _, err := other.Verify(tok, now); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("other secret: %v", err)
	}
}

func TestVerify(t *testing.T) {
	a := authority(t)
	key := []byte(secret)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issued, _ := a.Issue("alice", []string{"*"}, nil, time.Hour, now)
	parts := strings.Split(issued, ".")
	cases := []struct {
		name  string
		token string
		want  error  // nil: accepted
		msg   string // in the error
	}{
		{"good", sign(t, jwt.SigningMethodHS256, good(), key), nil, ""},
		{"good without nbf", sign(t, jwt.SigningMethodHS256, with("nbf", nil), key), nil, ""},
		{"empty", "", auth.ErrMissing, "no token"},
		{"expired", sign(t, jwt.SigningMethodHS256, with("exp", now.Add(-time.Minute).Unix()), key), auth.ErrExpired,
			"token expired at 2026-11-23T11:59:00Z"},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, with("nbf", now.Add(time.Minute).Unix()), key), auth.ErrExpired,
			"token not valid yet: not valid before 2026-11-23T12:01:00Z"},
		{"forged signature", sign(t, jwt.SigningMethodHS256, good(), []byte(strings.Repeat("k", 32))), auth.ErrInvalid,
			"signature invalid"},
		{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
			`{"iss":"geolab","sub":"mallory","exp":9999999999,"read":["*"]}`)) + "." + parts[2], auth.ErrInvalid, "signature invalid"},
		{"RS256", sign(t, jwt.SigningMethodRS256, good(), rsaKey), auth.ErrInvalid, `alg "RS256" not allowed`},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, good(), key), auth.ErrInvalid, `alg "HS512" not allowed`},
		{"none", sign(t, jwt.SigningMethodNone, good(), jwt.UnsafeAllowNoneSignatureType), auth.ErrInvalid, `alg "none" not allowed`},
		{"none, empty signature", strings.TrimSuffix(sign(t, jwt.SigningMethodNone, good(), jwt.UnsafeAllowNoneSignatureType), "."),
			auth.ErrInvalid, "malformed"},
		{"unknown alg", b64(`{"alg":"XYZ","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], auth.ErrInvalid, `alg "XYZ" not allowed`},
		{"no alg", b64(`{"typ":"JWT"}`) + "." + parts[1] + "." + parts[2], auth.ErrInvalid, `alg "" not allowed`},
		{"garbage", "not.a.jwt", auth.ErrInvalid, "malformed"},
		{"one segment", "abc", auth.ErrInvalid, "malformed"},
		{"header not JSON", b64("{") + "." + parts[1] + "." + parts[2], auth.ErrInvalid, "malformed"},
		{"missing sub", sign(t, jwt.SigningMethodHS256, with("sub", nil), key), auth.ErrInvalid, "no sub claim"},
		{"sub with a space", sign(t, jwt.SigningMethodHS256, with("sub", "a b"), key), auth.ErrInvalid, "white space"},
		{"sub too long", sign(t, jwt.SigningMethodHS256, with("sub", strings.Repeat("s", 129)), key), auth.ErrInvalid, "more than 128"},
		{"missing exp", sign(t, jwt.SigningMethodHS256, with("exp", nil), key), auth.ErrInvalid, "no exp claim"},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, with("exp", "tomorrow"), key), auth.ErrInvalid, "malformed"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, with("iss", "elsewhere"), key), auth.ErrInvalid, `iss "elsewhere"`},
		{"no issuer", sign(t, jwt.SigningMethodHS256, with("iss", nil), key), auth.ErrInvalid, `iss ""`},
		{"bad read pattern", sign(t, jwt.SigningMethodHS256, with("read", []string{"a/b"}), key), auth.ErrInvalid, "read: room pattern"},
		{"bad publish pattern", sign(t, jwt.SigningMethodHS256, with("publish", []string{""}), key), auth.ErrInvalid, "publish: room pattern is empty"},
		{"read not a list", sign(t, jwt.SigningMethodHS256, with("read", "*"), key), auth.ErrInvalid, "malformed"},
		{"oversized", strings.Repeat("a", auth.MaxTokenLen+1), auth.ErrInvalid, "more than 8192"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := a.Verify(c.token, now)
			if c.want == nil {
				if err != nil || claims == nil || claims.Subject != "alice" {
					t.Fatalf("Verify: %v %+v", err, claims)
				}
				return
			}
			if claims != nil {
				t.Errorf("claims returned with an error: %+v", claims)
			}
			if got := kind(t, err); got != c.want {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Verify: %q, want it to say %q", err, c.msg)
			}
		})
	}
}

// TestVerifyWithLeeway: exp may have passed and nbf may be ahead by up to
// the leeway, not more; a token whose nbf is still ahead is ErrExpired (the
// handshake's token_expired), as ErrNotYetValid.
func TestVerifyWithLeeway(t *testing.T) {
	a := authority(t)
	key := []byte(secret)
	leeway := 5 * time.Second
	cases := []struct {
		name   string
		claims jwt.MapClaims
		want   error // nil: accepted
		msg    string
	}{
		{"exp passed within the leeway", with("exp", now.Add(-4*time.Second).Unix()), nil, ""},
		{"exp passed by the leeway", with("exp", now.Add(-leeway).Unix()), auth.ErrExpired, "token expired at 2026-11-23T11:59:55Z (leeway 5s)"},
		{"exp passed beyond the leeway", with("exp", now.Add(-time.Minute).Unix()), auth.ErrExpired, "token expired"},
		{"nbf ahead within the leeway", with("nbf", now.Add(leeway).Unix()), nil, ""},
		{"nbf ahead beyond the leeway", with("nbf", now.Add(leeway+time.Second).Unix()), auth.ErrExpired,
			"token not valid yet: not valid before 2026-11-23T12:00:06Z, and now is 2026-11-23T12:00:00Z (leeway 5s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := a.VerifyWithLeeway(sign(t, jwt.SigningMethodHS256, c.claims, key), now, leeway)
			if c.want == nil {
				if err != nil || claims == nil {
					t.Fatalf("VerifyWithLeeway: %v", err)
				}
				// Without the leeway the same token is refused, as ErrExpired.
				if _, err := a.Verify(sign(t, jwt.SigningMethodHS256, c.claims, key), now); kind(t, err) != auth.ErrExpired {
					t.Fatalf("Verify without leeway: %v, want ErrExpired", err)
				}
				return
			}
			if got := kind(t, err); got != c.want || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("VerifyWithLeeway: %v, want %v saying %q", err, c.want, c.msg)
			}
		})
	}
	// nbf ahead is ErrNotYetValid; an expired token is not.
	_, err := a.Verify(sign(t, jwt.SigningMethodHS256, with("nbf", now.Add(time.Hour).Unix()), key), now)
	if !errors.Is(err, auth.ErrNotYetValid) || !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("nbf ahead: %v, want ErrNotYetValid wrapping ErrExpired", err)
	}
	_, err = a.Verify(sign(t, jwt.SigningMethodHS256, with("exp", now.Add(-time.Hour).Unix()), key), now)
	if errors.Is(err, auth.ErrNotYetValid) {
		t.Fatalf("expired token: %v is ErrNotYetValid", err)
	}
	// A negative leeway counts as none.
	if _, err := a.VerifyWithLeeway(sign(t, jwt.SigningMethodHS256, good(), key), now, -time.Hour); err != nil {
		t.Fatalf("negative leeway: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"bEaReR   abc  ", "abc", true},
		{"  Bearer abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		tok, ok := auth.BearerToken(c.header)
		if tok != c.token || ok != c.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", c.header, tok, ok, c.token, c.ok)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestIssueValidates(t *testing.T) {
	a := authority(t)
	cases := []struct {
		name          string
		sub           string
		read, publish []string
		ttl           time.Duration
		msg           string
	}{
		{"empty sub", "", nil, nil, time.Hour, "sub is empty"},
		{"long sub", strings.Repeat("s", 129), nil, nil, time.Hour, "more than 128"},
		{"sub with tab", "a\tb", nil, nil, time.Hour, "white space"},
		{"sub with newline", "a\n", nil, nil, time.Hour, "white space"},
		{"bad read", "a", []string{"ok:*", "no pe"}, nil, time.Hour, "read: room pattern"},
		{"bad publish", "a", nil, []string{strings.Repeat("p", 129)}, time.Hour, "publish: room pattern"},
		{"zero ttl", "a", nil, nil, 0, "ttl 0s is too short"},
		{"negative ttl", "a", nil, nil, -time.Hour, "too short"},
		{"sub-second ttl", "a", nil, nil, 500 * time.Millisecond, "too short"},
	}
	for _, c := range cases {
		if _, err := a.Issue(c.sub, c.read, c.publish, c.ttl, now); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: Issue: %v, want an error containing %q", c.name, err, c.msg)
		}
	}
	// 128 bytes of sub is fine, and a token with no patterns reads nothing.
	tok, err := a.Issue(strings.Repeat("s", 128), nil, nil, time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Verify(tok, now); err != nil || c.CanRead("x") {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestIssuedClaimsOnTheWire(t *testing.T) {
	tok, _ := authority(t).Issue("bob", []string{"a:*"}, nil, time.Minute, now)
	parts := strings.Split(tok, ".")
	var header, claims map[string]any
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "HS256" {
		t.Errorf("header %v", header)
	}
	for _, k := range []string{"iss", "sub", "iat", "nbf", "exp", "read"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing from %v", k, claims)
		}
	}
	if _, ok := claims["publish"]; ok {
		t.Errorf("empty publish written: %v", claims)
	}
}

func TestNewAuthority(t *testing.T) {
	if _, err := auth.NewAuthority(make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "31 bytes, at least 32") {
		t.Fatalf("31-byte secret: %v", err)
	}
	s := []byte(secret)
	a, err := auth.NewAuthority(s)
	if err != nil {
		t.Fatal(err)
	}
	s[0] ^= 0xff // the authority keeps its own copy
	tok, _ := a.Issue("a", nil, nil, time.Hour, now)
	if _, err := authority(t).Verify(tok, now); err != nil {
		t.Fatalf("secret not copied: %v", err)
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("z", 32)

	t.Setenv(auth.SecretEnv, "")
	if _, err := auth.LoadSecret(""); err == nil || !strings.Contains(err.Error(), auth.SecretEnv) ||
		!strings.Contains(err.Error(), "secret file") || !errors.Is(err, auth.ErrNoSecret) {
		t.Errorf("neither: %v, want both ways named", err)
	}
	if got, err := auth.LoadSecret(write("ok", long+"\n")); err != nil || string(got) != long {
		t.Errorf("file with a newline: %q %v", got, err)
	}
	if _, err := auth.LoadSecret(write("short", "tooshort\n")); err == nil ||
		!strings.Contains(err.Error(), "8 bytes, at least 32") || !strings.Contains(err.Error(), "short") {
		t.Errorf("short file: %v", err)
	}
	if _, err := auth.LoadSecret(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing file: %v", err)
	}

	t.Setenv(auth.SecretEnv, long+" \n")
	if got, err := auth.LoadSecret(""); err != nil || string(got) != long {
		t.Errorf("env: %q %v", got, err)
	}
	if got, err := auth.LoadSecret(write("wins", strings.Repeat("f", 40))); err != nil || string(got) != strings.Repeat("f", 40) {
		t.Errorf("the file wins over the env: %q %v", got, err)
	}
	t.Setenv(auth.SecretEnv, "abc")
	if _, err := auth.LoadSecret(""); err == nil || !strings.Contains(err.Error(), auth.SecretEnv+" is 3 bytes, at least 32") {
		t.Errorf("short env: %v", err)
	}
}

// FuzzVerify feeds Verify arbitrary tokens: it must never panic, must wrap
// exactly one sentinel on failure, and must never accept a token that is
// not HS256-signed with the secret (checked here by recomputing the HMAC).
func FuzzVerify(f *testing.F) {
	a := authority(f)
	key := []byte(secret)
	tok, _ := a.Issue("alice", []string{"tenant:*"}, []string{"*"}, time.Hour, now)
	f.Add(tok)
	f.Add(sign(f, jwt.SigningMethodHS256, with("exp", now.Add(-time.Minute).Unix()), key))
	f.Add(sign(f, jwt.SigningMethodHS256, with("sub", nil), key))
	f.Add(sign(f, jwt.SigningMethodHS512, good(), key))
	f.Add(sign(f, jwt.SigningMethodNone, good(), jwt.UnsafeAllowNoneSignatureType))
	f.Add(sign(f, jwt.SigningMethodHS256, good(), []byte(strings.Repeat("k", 32))))
	f.Add("")
	f.Add("not.a.jwt")
	f.Add("....")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := a.Verify(token, now)
		if err != nil {
			if c != nil {
				t.Fatalf("claims with an error: %v", err)
			}
			kind(t, err)
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d segments: %q", len(parts), token)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		if derr != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted a token not signed with the secret: %q", token)
		}
		var h struct{ Alg string }
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
			t.Fatalf("accepted a token whose alg is not HS256: %q", token)
		}
		if c.Subject == "" || c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time) {
			t.Fatalf("accepted claims that should fail: %+v", c)
		}
		// A leeway only widens the window: what Verify accepts, it accepts.
		if lc, err := a.VerifyWithLeeway(token, now, auth.DefaultLeeway); err != nil || lc.Subject != c.Subject {
			t.Fatalf("accepted without a leeway but not with one: %v", err)
		}
		_ = c.CanRead("tenant:1")
	})
}

// FuzzBearerToken: BearerToken never panics; what it returns is a
// non-empty token with no surrounding white space, taken from a header whose
// scheme is "Bearer" in any letter case; and any such header gives back its
// token.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "BEARER  abc ", "Basic x", "Bearer", " Bearer x y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := auth.BearerToken(header)
		if !ok {
			if tok != "" {
				t.Fatalf("%q: not ok but token %q", header, tok)
			}
		} else {
			trimmed := strings.TrimSpace(header)
			if tok == "" || tok != strings.TrimSpace(tok) || len(trimmed) < 7 ||
				!strings.EqualFold(trimmed[:7], "Bearer ") || !strings.HasSuffix(trimmed, tok) {
				t.Fatalf("%q: accepted token %q", header, tok)
			}
		}
		// Round trip: a token with no surrounding white space comes back.
		if cand := strings.TrimSpace(header); cand != "" {
			for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
				if got, ok := auth.BearerToken(scheme + " " + cand); !ok || got != cand {
					t.Fatalf("%s %q: got %q %v", scheme, cand, got, ok)
				}
			}
		}
	})
}
