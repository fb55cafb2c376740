package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

const (
	redisGWUser = "geolab-gateway"
	redisGWPass = "gw-Pw-c0ffee-71d2e9"
)

// aclTLSRedis is a redis-server that speaks TLS only, with the gateway's
// ACL user (broker.ACLRules) and an admin.
func aclTLSRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t, redistest.TLS(), redistest.Users(
		redisproc.User{Name: "admin", Password: "admin-Pw-8c1d0e", Rules: "~* &* +@all"},
		redisproc.User{Name: redisGWUser, Password: redisGWPass, Rules: broker.ACLRules}))
}

// `geolab gateway` on a TLS Redis as an ACL user, with the password from
// $GEOLAB_REDIS_PASSWORD or from --redis-password-file: it publishes and
// delivers, and the password is neither on its command line (which every
// user of the machine can read in /proc) nor in its log.
func TestGatewayProcessOnTLSRedisAsAnACLUser(t *testing.T) {
	a := gatewaytest.Authority(drainSecret)
	for _, tc := range []struct {
		name string
		env  bool
	}{{"password from the environment", true}, {"password from a file", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rs := aclTLSRedis(t)
			args := []string{"--redis-ca-file", rs.Options().TLS.CAFile, "--log-level", "debug", "--federate", "tenant:*"}
			if tc.env {
				t.Setenv(redisaddr.PasswordEnv, redisGWPass)
			} else {
				t.Setenv(redisaddr.PasswordEnv, "")
				file := filepath.Join(t.TempDir(), "redis-password")
				if err := os.WriteFile(file, []byte(redisGWPass+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--redis-password-file", file)
			}
			g := startGatewayProc(t, "rediss://"+redisGWUser+"@"+rs.Addr(), args...)

			sub := wsprobe.Open(t, g.addr, gatewaytest.Token(t, a, "alice"))
			sub.Subscribe("tenant:tls", nil, nil)
			pub := wsprobe.Open(t, g.addr, gatewaytest.Token(t, a, "bob"))
			ack := pub.Publish("tenant:tls", "m-1", map[string]int{"n": 1})
			if ack.Type != "ack" {
				t.Fatalf("publish: %+v\n%s", ack, g.log)
			}
			wait.For(t, 10*time.Second, "m-1 delivered", func() bool {
				m := sub.Messages()
				return len(m) == 1 && m[0].ID == ack.Event
			})

			cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(g.cmd.Process.Pid) + "/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(cmdline), "rediss://"+redisGWUser+"@") {
				t.Fatalf("command line %q: not the process under test?", cmdline)
			}
			if strings.Contains(string(cmdline), redisGWPass) {
				t.Errorf("the password is on the command line")
			}
			if log := g.log.String(); strings.Contains(log, redisGWPass) || !strings.Contains(log, "rediss://"+redisGWUser+"@") {
				t.Errorf("the log shows the password, or is not the node's:\n%s", log)
			}
		})
	}
}

// A Redis that refuses the node's configuration stops `geolab gateway` at
// once with an error that says what is wrong and where the password goes,
// never the password.
func TestGatewayProcessSaysWhatRedisRefuses(t *testing.T) {
	rs := aclTLSRedis(t)
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	ca := rs.Options().TLS.CAFile
	for _, tc := range []struct {
		name, password string
		args           []string
		want           string
	}{
		{"wrong password", "not-the-Pw-4471", []string{"--redis", "rediss://" + redisGWUser + "@" + rs.Addr(), "--redis-ca-file", ca},
			`authentication as user "geolab-gateway" failed (WRONGPASS invalid username-password pair or user is disabled.): check the user in the address and the password in $GEOLAB_REDIS_PASSWORD or --redis-password-file`},
		{"wrong user", redisGWPass, []string{"--redis", "rediss://geolab-nobody@" + rs.Addr(), "--redis-ca-file", ca},
			`authentication as user "geolab-nobody" failed (WRONGPASS`},
		{"plain redis:// to a TLS port", redisGWPass, []string{"--redis", "redis://" + redisGWUser + "@" + rs.Addr()},
			"and it speaks TLS: use rediss:// (redis:// is plain TCP)"},
		{"no CA", redisGWPass, []string{"--redis", "rediss://" + redisGWUser + "@" + rs.Addr()},
			"give the CA that signed it in --redis-ca-file"},
		{"password in the URL", "", []string{"--redis", "rediss://" + redisGWUser + ":" + redisGWPass + "@" + rs.Addr(), "--redis-ca-file", ca},
			"--redis: the rediss:// URL holds a password (not shown): a password never goes in the address, where the process list, config files and logs show it; give it in $GEOLAB_REDIS_PASSWORD or --redis-password-file"},
		{"a CA without TLS", redisGWPass, []string{"--redis", "redis://" + redisGWUser + "@" + rs.Addr(), "--redis-ca-file", ca},
			"--redis-ca-file \"" + ca + "\" is given, but the Redis address is not a rediss:// URL"},
		{"no password file", "", []string{"--redis", "rediss://" + redisGWUser + "@" + rs.Addr(), "--redis-password-file", "/nonexistent/pw"},
			"--redis-password-file: read the Redis password: open /nonexistent/pw: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0"}, tc.args...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append(os.Environ(), auth.SecretEnv+"="+drainSecret, redisaddr.PasswordEnv+"="+tc.password)
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("geolab gateway did not stop with an error (%v, %v):\n%s", err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output:\n%s\nwant it to hold %q", out, tc.want)
			}
			if strings.Contains(string(out), redisGWPass) || (tc.password != "" && strings.Contains(string(out), tc.password)) {
				t.Fatalf("the output shows a password:\n%s", out)
			}
		})
	}
}
