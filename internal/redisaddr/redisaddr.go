// Package redisaddr reads a Redis address as geolab's gateway (--redis) and
// federation bridge (a region's redis in its config) take it, and makes the
// go-redis options to dial it, the one way both do:
//
//	host:port                                 plain TCP, no user (today's form)
//	redis://[user@]host[:port][/db]           plain TCP, ACL user
//	rediss://[user@]host[:port][/db]          TLS, ACL user
//
// go-redis's redis.ParseURL reads the URLs; this package only decides what
// geolab takes of them. A password is never part of the address: an address
// is a flag value (in the process list), a line of a config file and a field
// of log lines, so a URL holding one is refused, and the password comes from
// an environment variable or a file (Conn.Password, ReadPassword). Query
// options are refused too: timeouts come from the link's profile
// (internal/netprofile), and TLS verification is never switched off (no
// skip_verify). For rediss:// the server's certificate is checked against
// the system's roots plus an optional CA file.
//
// No error of this package holds a password: an address that may hold one
// is never quoted.
package redisaddr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
)

// PasswordEnv is the environment variable that holds the gateway's Redis
// password (geolab gateway; --redis-password-file takes precedence).
const PasswordEnv = "GEOLAB_REDIS_PASSWORD"

// RegionPasswordEnv is the environment variable that holds the password the
// bridge uses for region's Redis (a region's password_file in the bridge's
// config takes precedence): GEOLAB_REDIS_PASSWORD_ and the region's name in
// upper case with '-' as '_', e.g. GEOLAB_REDIS_PASSWORD_US_EAST.
func RegionPasswordEnv(region string) string {
	return PasswordEnv + "_" + strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
}

// Forms names the forms an address may take, for errors and help.
const Forms = "host:port, redis://[user@]host:port[/db] or rediss://[user@]host:port[/db]"

// Password is a Redis password. It prints as [redacted] (fmt, log/slog,
// encoding/json), so that a config or struct that holds one can be logged
// without it; string(p) is the password.
type Password string

const redacted = "[redacted]"

// String is "[redacted]", or "" for no password.
func (p Password) String() string {
	if p == "" {
		return ""
	}
	return redacted
}

// GoString is String, for %#v.
func (p Password) GoString() string { return strconv.Quote(p.String()) }

// LogValue is String, for log/slog.
func (p Password) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON is String, quoted.
func (p Password) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// ReadPassword returns the password in file when file is not "", else the
// environment variable env ("" when it is unset: no password). Trailing
// white space (the newline an editor or echo leaves) is dropped. A file
// that cannot be read or holds nothing is an error naming the file, never
// its contents.
func ReadPassword(file, env string) (Password, error) {
	if file == "" {
		return Password(strings.TrimRightFunc(os.Getenv(env), unicode.IsSpace)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the Redis password: %w", err)
	}
	p := strings.TrimRightFunc(string(b), unicode.IsSpace)
	if p == "" {
		return "", fmt.Errorf("the Redis password file %s is empty", file)
	}
	return Password(p), nil
}

// Parse reads addr, in one of the Forms, into go-redis options: Addr, and
// for a URL Username, DB and (rediss://) a TLSConfig that verifies the
// server against the system's roots. passwordFrom says where a password
// goes instead of the URL (e.g. "$GEOLAB_REDIS_PASSWORD or
// --redis-password-file"), for the error that refuses a URL holding one.
// The error says what is wrong; it quotes addr only when addr cannot hold
// a password.
func Parse(addr, passwordFrom string) (*redis.Options, error) {
	if addr == "" {
		return nil, fmt.Errorf("missing: want %s", Forms)
	}
	scheme, _, isURL := strings.Cut(addr, "://")
	if !isURL {
		return parseHostPort(addr, passwordFrom)
	}
	if scheme != "redis" && scheme != "rediss" {
		if strings.Contains(addr, "@") {
			return nil, fmt.Errorf("unknown scheme %q: want %s", scheme, Forms)
		}
		return nil, fmt.Errorf("%q: unknown scheme %q: want %s", addr, scheme, Forms)
	}
	u, err := url.Parse(addr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error quotes the whole URL
		}
		if strings.Contains(addr, "@") {
			// Where the user part ends is what the parser could not
			// tell: the URL, and the parser's complaint, may hold a
			// password.
			return nil, fmt.Errorf("not a valid %s:// URL (not shown: it may hold a password): want %s", scheme, Forms)
		}
		return nil, fmt.Errorf("%q is not a valid %s:// URL: %v", addr, scheme, err)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("the %s:// URL holds a password (not shown): a password never goes in the address, where the process list, config files and logs show it; give it in %s, and the URL as %s://[user@]host:port[/db]",
			scheme, passwordFrom, scheme)
	}
	shown := u.Redacted()
	switch {
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q: query options (?…) are not taken: timeouts come from the link's profile, and TLS is always verified", strings.SplitN(shown, "?", 2)[0])
	case u.Fragment != "":
		return nil, fmt.Errorf("%q: a URL fragment (#…) is not taken", strings.SplitN(shown, "#", 2)[0])
	case u.Opaque != "":
		return nil, fmt.Errorf("%q: want %s://[user@]host:port[/db]", shown, scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q names no host: want %s://[user@]host:port[/db]", shown, scheme)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return nil, fmt.Errorf("%q: %w", shown, err)
		}
	}
	o, err := redis.ParseURL(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %s", shown, strings.TrimPrefix(err.Error(), "redis: "))
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil || strings.ContainsAny(u.Hostname(), "[]/?# ") {
		return nil, fmt.Errorf("%q: host %q is not a host name or IP address", shown, u.Hostname())
	}
	if o.DB < 0 {
		return nil, fmt.Errorf("%q: database number %d is negative", shown, o.DB)
	}
	return o, nil
}

// parseHostPort reads the plain host:port form.
func parseHostPort(addr, passwordFrom string) (*redis.Options, error) {
	if strings.Contains(addr, "@") {
		return nil, fmt.Errorf("the address holds '@' (not shown: it may hold a password) but is no URL: a user goes in a URL, redis://user@host:port or rediss://user@host:port, and the password in %s", passwordFrom)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return nil, fmt.Errorf("%q: %v: want %s", addr, err, Forms)
	}
	if host == "" {
		return nil, fmt.Errorf("%q names no host: want %s", addr, Forms)
	}
	if strings.ContainsAny(host, "/?# ") {
		return nil, fmt.Errorf("%q: a host may not hold '/', '?', '#' or a space: want %s", addr, Forms)
	}
	if err := checkPort(port); err != nil {
		return nil, fmt.Errorf("%q: %w", addr, err)
	}
	return &redis.Options{Network: "tcp", Addr: addr}, nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 1 to 65535", p)
	}
	return nil
}

// IsTLS reports whether addr is a rediss:// URL.
func IsTLS(addr string) bool { return strings.HasPrefix(addr, "rediss://") }

// Conn is everything needed to reach one Redis: its address and what the
// address never holds. The From fields name, for errors, where each came
// from (a flag, a config key, an environment variable).
type Conn struct {
	Addr string // in one of the Forms
	// Password is the password to AUTH with (as the URL's user, or the
	// default user); "" for none.
	Password Password
	// CAFile is a PEM file of CA certificates trusted for a rediss://
	// server besides the system's roots; "" for none. It is an error with
	// any other address.
	CAFile string

	PasswordFrom string // e.g. "$GEOLAB_REDIS_PASSWORD or --redis-password-file"
	CAFrom       string // e.g. "--redis-ca-file"
}

// Options makes the go-redis options that reach c: Parse, the password,
// and for rediss:// the system's roots plus CAFile. The caller adds its
// timeouts (internal/netprofile), client name and pool. An address that
// names a user needs a password.
//
// For a cluster address (ClusterForms) it gives the options every node is
// dialled with, Addr the first seed (Target gives the seeds too).
func (c Conn) Options() (*redis.Options, error) {
	t, err := c.Target()
	if err != nil {
		return nil, err
	}
	return t.Node, nil
}

// complete adds to o, parsed from c.Addr, what the address never holds:
// the password, and for rediss:// the system's roots plus CAFile.
func (c Conn) complete(o *redis.Options) error {
	if o.Username != "" && c.Password == "" {
		return fmt.Errorf("%q names the user %q but no password was given: give it in %s", c.Addr, o.Username, c.PasswordFrom)
	}
	o.Password = string(c.Password)
	if c.CAFile != "" && o.TLSConfig == nil {
		return fmt.Errorf("%s is given, but the address is not a rediss:// URL: the CA would not be used (want rediss://[user@]host:port)", c.CAFrom)
	}
	if o.TLSConfig != nil {
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return fmt.Errorf("%s: %w", c.CAFrom, err)
			}
			if !roots.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%s: %s holds no PEM certificate", c.CAFrom, c.CAFile)
			}
		}
		o.TLSConfig.RootCAs = roots
	}
	return nil
}

// Diagnose turns the error of a first command sent to c (dialled with
// options o from c.Options) into an error that says what is wrong with the
// configuration, when it is the configuration: a password or user the
// server refuses, a certificate it cannot verify, TLS on one side only. For
// anything else (the server is down, slow, unreachable: it may come up
// later) it returns nil. It may dial the address once more, for at most 2
// s within ctx (which must not be the context the command ran out of), to
// tell a TLS server from one that closed the connection or a plain one
// from a TLS handshake that timed out: with TLS and full verification, or
// with a plain PING.
func Diagnose(ctx context.Context, err error, c Conn, o *redis.Options) error {
	if err == nil {
		return nil
	}
	who := "the default user"
	if o.Username != "" {
		who = fmt.Sprintf("user %q", o.Username)
	}
	msg := err.Error()
	tlsErr := func(what string) error {
		return fmt.Errorf("redis %s: %s: %w", o.Addr, what, err)
	}
	var (
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"):
		return fmt.Errorf("redis %s: authentication as %s failed (%s): check the user in the address and the password in %s", o.Addr, who, msg, c.PasswordFrom)
	case strings.HasPrefix(msg, "NOAUTH"):
		return fmt.Errorf("redis %s wants a password and none was given (%s): give it in %s", o.Addr, msg, c.PasswordFrom)
	case strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("redis %s: %s may not do what this program needs (%s): widen its ACL rules", o.Addr, who, msg)
	case strings.Contains(msg, "AUTH <password> called without any password configured"):
		return fmt.Errorf("redis %s needs no password but one was given (%s): leave %s unset", o.Addr, msg, c.PasswordFrom)
	case errors.As(err, &unknownCA):
		ca := "give the CA that signed it in " + c.CAFrom
		if c.CAFile != "" {
			ca = c.CAFrom + " " + c.CAFile + " did not sign it either"
		}
		return tlsErr("the server's certificate is signed by an authority neither the system nor this program trusts: " + ca)
	case errors.As(err, &badHost):
		return tlsErr(fmt.Sprintf("the server's certificate is not valid for %s, the host the address names", badHost.Host))
	case errors.As(err, &invalid):
		return tlsErr("the server's certificate is not valid")
	case errors.As(err, &record):
		return tlsErr("the server does not speak TLS: use redis:// (rediss:// is TLS)")
	}
	if o.TLSConfig == nil && closedOnUs(err) && speaksTLS(ctx, o) {
		return fmt.Errorf("redis %s: the server closed the connection, and it speaks TLS: use rediss:// (redis:// is plain TCP): %w", o.Addr, err)
	}
	if o.TLSConfig != nil && speaksRESP(ctx, o.Addr) {
		return tlsErr("the TLS handshake failed, and the server answers plain RESP: it does not speak TLS: use redis:// (rediss:// is TLS)")
	}
	return nil
}

// speaksRESP dials addr over plain TCP, sends PING and reports whether a
// Redis reply came back (+PONG, or an error such as -NOAUTH): a server
// that speaks plain RESP, not TLS.
func speaksRESP(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return false
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		return false
	}
	return b[0] == '+' || b[0] == '-'
}

// closedOnUs: the server (or a proxy in front of it) closed or reset the
// connection, as a TLS server does to a client that speaks plain RESP.
func closedOnUs(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// speaksTLS dials o.Addr and tries a TLS handshake with the system's roots:
// a handshake that completes, or fails only at verifying the certificate,
// proves a TLS server. Nothing is sent after the handshake.
func speaksTLS(ctx context.Context, o *redis.Options) bool {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", o.Addr)
	if err == nil {
		_ = conn.Close()
		return true
	}
	var verr *tls.CertificateVerificationError
	return errors.As(err, &verr)
}
