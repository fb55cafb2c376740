package redisaddr_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geolab/geolab/internal/certs"
	"github.com/geolab/geolab/internal/redisaddr"
)

const from = "$GEOLAB_REDIS_PASSWORD or --redis-password-file"

// Every form an address may take, and what each gives go-redis.
func TestParseReadsEachForm(t *testing.T) {
	for _, tc := range []struct {
		addr, host, user string
		db               int
		tls              bool
	}{
		{"127.0.0.1:6379", "127.0.0.1:6379", "", 0, false},
		{"redis-us-east:6379", "redis-us-east:6379", "", 0, false},
		{"[::1]:7000", "[::1]:7000", "", 0, false},
		{"redis://127.0.0.1:7001", "127.0.0.1:7001", "", 0, false},
		{"redis://127.0.0.1", "127.0.0.1:6379", "", 0, false},
		{"redis://geolab-gateway@127.0.0.1:7001", "127.0.0.1:7001", "geolab-gateway", 0, false},
		{"redis://geolab-gateway@127.0.0.1:7001/3", "127.0.0.1:7001", "geolab-gateway", 3, false},
		{"rediss://geolab-bridge@127.0.0.1:17001", "127.0.0.1:17001", "geolab-bridge", 0, true},
		{"rediss://redis.example.com:6380/0", "redis.example.com:6380", "", 0, true},
		{"rediss://[::1]:6380", "[::1]:6380", "", 0, true},
		{"rediss://us%40er@h:1", "h:1", "us@er", 0, true},
	} {
		o, err := redisaddr.Parse(tc.addr, from)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		if o.Addr != tc.host || o.Username != tc.user || o.DB != tc.db || (o.TLSConfig != nil) != tc.tls || o.Password != "" {
			t.Errorf("%s: addr %q user %q db %d tls %v password %q", tc.addr, o.Addr, o.Username, o.DB, o.TLSConfig != nil, o.Password)
		}
		if o.TLSConfig != nil && (o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName == "") {
			t.Errorf("%s: TLS config %+v: must verify the server by name", tc.addr, o.TLSConfig)
		}
		if redisaddr.IsTLS(tc.addr) != tc.tls {
			t.Errorf("%s: IsTLS %v", tc.addr, !tc.tls)
		}
	}
}

// Each wrong address gets an error that says what is wrong.
func TestParseNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"", "missing: want host:port, redis://"},
		{"127.0.0.1", `"127.0.0.1": missing port in address`},
		{":6379", `":6379" names no host`},
		{"127.0.0.1:0", `port "0" must be a number from 1 to 65535`},
		{"127.0.0.1:99999", `port "99999" must be a number from 1 to 65535`},
		{"127.0.0.1:redis", `port "redis" must be`},
		{"user@127.0.0.1:6379", "the address holds '@' (not shown: it may hold a password) but is no URL: a user goes in a URL"},
		{"127.0.0.1/0:6379", "a host may not hold"},
		{"http://127.0.0.1:6379", `unknown scheme "http": want host:port, redis://`},
		{"unix:///var/run/redis.sock", `unknown scheme "unix"`},
		{"redis://", "names no host"},
		{"redis://:6379", "names no host"},
		{"redis://u@:6379", "names no host"},
		{"redis://h:0", `port "0" must be a number from 1 to 65535`},
		{"redis://h:6379/x", `invalid database number: "x"`},
		{"redis://h:6379/1/2", "invalid URL path"},
		{"redis://h:6379?dial_timeout=1s", `"redis://h:6379": query options (?…) are not taken`},
		{"rediss://h:6379?skip_verify=true", "query options (?…) are not taken: timeouts come from the link's profile, and TLS is always verified"},
		{"redis://h:6379?", "query options"},
		{"redis://h:6379#x", "fragment"},
		{"redis://h:port", "not a valid redis:// URL"},
		{"redis://:secret@h:6379", "the redis:// URL holds a password (not shown): a password never goes in the address, where the process list, config files and logs show it; give it in " + from},
		{"rediss://user:secret@h:6379/2", "rediss:// URL holds a password"},
		{"rediss://user:@h:6379", "holds a password"},
	} {
		_, err := redisaddr.Parse(tc.addr, from)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v\n want an error containing %q", tc.addr, err, tc.want)
		}
	}
}

// No error quotes a password, even one the URL parser cannot place.
func TestNoErrorHoldsThePassword(t *testing.T) {
	const pw = "Hunter2-very-secret"
	for _, addr := range []string{
		"redis://:" + pw + "@h:6379",
		"rediss://u:" + pw + "@h:6379/1",
		"rediss://u:" + pw + "@h:6379?skip_verify=true",
		"redis://u:" + pw + "@h:port",
		"redis://u:" + pw + "@",
		"redis://u:" + pw + "#@h:1",
		"redis://u:" + pw + "%zz@h:1",
		"http://u:" + pw + "@h:1",
		"u:" + pw + "@h:1",
	} {
		_, err := redisaddr.Parse(addr, from)
		if err == nil {
			t.Errorf("Parse(%q) took a URL with a password", addr)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Hunter2") {
			t.Errorf("Parse(%q): the error shows the password: %v", addr, err)
		}
	}
}

func TestPasswordPrintsRedacted(t *testing.T) {
	p := redisaddr.Password("Hunter2-very-secret")
	type cfg struct {
		Addr     string
		Password redisaddr.Password
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "password", p, "cfg", cfg{"h:1", p})
	j, _ := json.Marshal(cfg{"h:1", p})
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, cfg{"h:1", p}, p, p), logged.String(), string(j)} {
		if strings.Contains(s, "Hunter2") || !strings.Contains(s, "[redacted]") {
			t.Errorf("printed %q", s)
		}
	}
	if string(p) != "Hunter2-very-secret" || redisaddr.Password("").String() != "" {
		t.Error("the password itself changed")
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GEOLAB_TEST_PW", "from-env \n")
	for _, tc := range []struct {
		file, env string
		want      redisaddr.Password
	}{
		{file, "GEOLAB_TEST_PW", "from-file"}, // the file wins
		{"", "GEOLAB_TEST_PW", "from-env"},
		{"", "GEOLAB_TEST_UNSET", ""},
	} {
		got, err := redisaddr.ReadPassword(tc.file, tc.env)
		if err != nil || got != tc.want {
			t.Errorf("ReadPassword(%q, %q) = %q, %v; want %q", tc.file, tc.env, string(got), err, string(tc.want))
		}
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte(" \n"), 0o600)
	if _, err := redisaddr.ReadPassword(empty, ""); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := redisaddr.ReadPassword(filepath.Join(dir, "none"), ""); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if got := redisaddr.RegionPasswordEnv("ap-southeast-2"); got != "GEOLAB_REDIS_PASSWORD_AP_SOUTHEAST_2" {
		t.Errorf("RegionPasswordEnv: %s", got)
	}
}

func TestConnOptions(t *testing.T) {
	dir := t.TempDir()
	f, err := certs.Write(dir, net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c := redisaddr.Conn{Addr: "rediss://geolab-gateway@127.0.0.1:7001", Password: "pw", CAFile: f.CA,
		PasswordFrom: from, CAFrom: "--redis-ca-file"}
	o, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Username != "geolab-gateway" || o.Password != "pw" || o.TLSConfig == nil || o.TLSConfig.RootCAs == nil ||
		o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "127.0.0.1" {
		t.Fatalf("options %+v", o)
	}
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o644)
	for _, tc := range []struct {
		c    redisaddr.Conn
		want string
	}{
		{redisaddr.Conn{Addr: "rediss://u@h:1", PasswordFrom: from}, `"rediss://u@h:1" names the user "u" but no password was given: give it in ` + from},
		{redisaddr.Conn{Addr: "redis://h:1", CAFile: f.CA, CAFrom: "--redis-ca-file"}, "--redis-ca-file is given, but the address is not a rediss:// URL"},
		{redisaddr.Conn{Addr: "h:1", CAFile: f.CA, CAFrom: "--redis-ca-file"}, "not a rediss:// URL"},
		{redisaddr.Conn{Addr: "rediss://h:1", CAFile: filepath.Join(dir, "none.pem"), CAFrom: "--redis-ca-file"}, "--redis-ca-file: open"},
		{redisaddr.Conn{Addr: "rediss://h:1", CAFile: notPEM, CAFrom: "--redis-ca-file"}, "holds no PEM certificate"},
		{redisaddr.Conn{Addr: "rediss://u:pw@h:1", PasswordFrom: from}, "holds a password"},
	} {
		if _, err := tc.c.Options(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// FuzzParse: any address gives options or an error, never a panic; options
// never skip TLS verification nor carry a password; and an address whose
// URL holds a password is refused without showing it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6379", "redis://u@h:1/2", "rediss://h", "rediss://u:p@h:1", "redis://h:1?skip_verify=true",
		"redis://h:1#f", "unix:///x", "redis://[::1]:1", ":1", "redis://u:pa#ss@h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		o, err := redisaddr.Parse(addr, from)
		u, uerr := url.Parse(addr)
		pw, has := "", false
		if uerr == nil {
			pw, has = u.User.Password()
		}
		if err != nil {
			// A password the address holds once, that no fixed text of
			// an error happens to hold, must not be in the error.
			_, perr := redisaddr.Parse("rediss://u:x@h:1", from)
			fixed := perr.Error() + from + redisaddr.Forms
			if has && len(pw) >= 8 && strings.Count(addr, pw) == 1 && !strings.Contains(fixed, pw) && strings.Contains(err.Error(), pw) {
				t.Fatalf("Parse(%q): the error shows the password %q: %v", addr, pw, err)
			}
			return
		}
		if has {
			t.Fatalf("Parse(%q) took a URL holding a password", addr)
		}
		if o.Password != "" || o.Addr == "" || (o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify) {
			t.Fatalf("Parse(%q) = %+v", addr, o)
		}
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			t.Fatalf("Parse(%q): Addr %q is not host:port: %v", addr, o.Addr, err)
		}
	})
}
