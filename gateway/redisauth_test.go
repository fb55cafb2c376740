package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/netprofile"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// The gateway's Redis user in these tests, with the rules a gateway needs
// (broker.ACLRules), and a Redis admin that is not the gateway.
const (
	gwUser     = "geolab-gateway"
	gwPassword = "gw-Pw-5b0f8e1c2d7a"
	adminPW    = "admin-Pw-0a1b2c3d4e"
)

// logBuffer collects a node's log lines, for a test to search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsRedis is a real redis-server that speaks TLS only, with the default
// user off, an admin (the test's client) and the gateway's user.
func tlsRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t, redistest.Persistent(), redistest.TLS(), redistest.Users(
		redisproc.User{Name: "admin", Password: adminPW, Rules: "~* &* +@all"},
		redisproc.User{Name: gwUser, Password: gwPassword, Rules: broker.ACLRules}))
}

// overTLS points a node at rs as the gateway's user, over TLS verified
// against rs's CA, logging at debug level into logs.
func overTLS(rs *redistest.Server, logs io.Writer) func(*gateway.Config) {
	return func(c *gateway.Config) {
		c.Redis = "rediss://" + gwUser + "@" + rs.Addr()
		c.RedisPassword = gwPassword
		c.RedisCAFile = rs.Options().TLS.CAFile
		c.Federate = []string{"tenant:*"}
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// Two nodes on a TLS Redis with an ACL user: a publish on one is delivered
// on the other, a session is claimed, and after Redis is killed and
// restarted the nodes log in again and deliver on. The user's narrowed
// rules sufficed (Redis logged no denial); the link keeps its profile's
// timeouts; no log line holds the password.
func TestGatewayOverTLSWithAnACLUser(t *testing.T) {
	rs := tlsRedis(t)
	var logs logBuffer
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1", overTLS(rs, &logs))
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2", overTLS(rs, &logs), func(c *gateway.Config) { c.RedisLink = netprofile.Wan() })

	for _, tc := range []struct {
		srv  *gateway.Server
		want netprofile.Profile
	}{{gw1, netprofile.Lan()}, {gw2, netprofile.Wan()}} {
		o := gateway.RedisOptions(tc.srv)
		if o.Username != gwUser || o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify || o.TLSConfig.RootCAs == nil {
			t.Fatalf("node dials as %q, TLS %+v", o.Username, o.TLSConfig)
		}
		if o.DialTimeout != tc.want.DialTimeout || o.ReadTimeout != tc.want.ReadTimeout || o.WriteTimeout != tc.want.WriteTimeout || o.MaxRetries != tc.want.MaxRetries {
			t.Errorf("%s profile not applied: dial %s read %s write %s retries %d", tc.want.Name, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries)
		}
	}

	sub := wsprobe.Open(t, gw1.Addr()+"?session=s-tls", token(t, "alice"))
	sub.Subscribe("tenant:tls", nil, nil)
	pub := newClient(t, gw2.Addr(), "bob")
	ack1 := pub.Publish("tenant:tls", "m-1", 1)
	if ack1.Type != "ack" {
		t.Fatalf("publish over TLS: %+v", ack1)
	}
	if got := sub.Collect(1, 10*time.Second); len(got) != 1 || got[0].ID != ack1.Event {
		t.Fatalf("delivered across nodes over TLS: %v, want %s", ids(got), ack1.Event)
	}

	// A Redis blip: both nodes dial again, TLS and AUTH included, and
	// Redis comes back with its data (its append-only file replayed past
	// the ACL: redisproc.writeACL), so the sequence goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	ack2 := pub.PublishAcked("tenant:tls", "m-2", 2, 30*time.Second)
	if got := sub.Collect(1, 20*time.Second); len(got) != 1 || got[0].ID != ack2.Event {
		t.Fatalf("after the restart: %v, want %s last", ids(got), ack2.Event)
	}
	wsprobe.CheckStream(t, "alice", sub.Messages())

	denied, err := rs.Client().Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(denied) != 0 {
		t.Errorf("Redis denied the gateway's user something (broker.ACLRules too narrow): %v", denied)
	}
	if strings.Contains(logs.String(), gwPassword) {
		t.Errorf("a log line holds the password")
	}
	if !strings.Contains(logs.String(), "rediss://"+gwUser+"@") {
		t.Errorf("the logs never name the Redis URL: was anything captured?\n%s", logs.String())
	}
}

// What Redis refuses stops the node at Start (or New) with an error that
// says what is wrong, and neither the error nor the log shows a password.
func TestGatewayRefusesWhatRedisRefuses(t *testing.T) {
	rs := tlsRedis(t)
	plain := redistest.Start(t)
	ca := rs.Options().TLS.CAFile
	for _, tc := range []struct {
		name, redis, ca string
		password        redisaddr.Password
		want            string
	}{
		{"wrong password", "rediss://" + gwUser + "@" + rs.Addr(), ca, "wrong-Pw-9f8e7d6c",
			`authentication as user "geolab-gateway" failed (WRONGPASS invalid username-password pair or user is disabled.): check the user in the address and the password in $GEOLAB_REDIS_PASSWORD or --redis-password-file`},
		{"wrong user", "rediss://nobody@" + rs.Addr(), ca, gwPassword, `authentication as user "nobody" failed (WRONGPASS`},
		{"no user", "rediss://" + rs.Addr(), ca, "", "wants a password and none was given (NOAUTH"},
		{"plain to a TLS port", "redis://" + gwUser + "@" + rs.Addr(), "", gwPassword,
			"the server closed the connection, and it speaks TLS: use rediss:// (redis:// is plain TCP)"},
		{"plain host:port to a TLS port", rs.Addr(), "", "", "it speaks TLS: use rediss://"},
		{"no CA", "rediss://" + gwUser + "@" + rs.Addr(), "", gwPassword,
			"the server's certificate is signed by an authority neither the system nor this program trusts: give the CA that signed it in --redis-ca-file"},
		{"TLS to a plain port", "rediss://" + plain.Addr(), ca, "", "does not speak TLS: use redis:// (rediss:// is TLS)"},
		{"user without a password", "rediss://" + gwUser + "@" + rs.Addr(), ca, "",
			`Redis: names the user "geolab-gateway" but no password was given: give it in $GEOLAB_REDIS_PASSWORD or --redis-password-file`},
		{"password in the URL", "rediss://" + gwUser + ":" + gwPassword + "@" + rs.Addr(), ca, "",
			"Redis: the rediss:// URL holds a password (not shown): a password never goes in the address"},
		{"CA for a plain address", "redis://" + plain.Addr(), ca, "", "RedisCAFile " + `"` + ca + `" is given, but the Redis address is not a rediss:// URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			cfg := gateway.DefaultConfig()
			cfg.Region, cfg.Node, cfg.Listen, cfg.Authority = "us-east", "gw-1", "127.0.0.1:0", authority
			cfg.Redis, cfg.RedisPassword, cfg.RedisCAFile = tc.redis, tc.password, tc.ca
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			srv, err := gateway.New(cfg)
			if err == nil {
				if err = srv.Start(); err == nil {
					t.Fatalf("the node started")
				}
				_ = srv.Close()
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to hold %q", err, tc.want)
			}
			for _, pw := range []string{gwPassword, adminPW, string(tc.password)} {
				if pw != "" && (strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw)) {
					t.Fatalf("the error or the log shows a password: %v\n%s", err, logs.String())
				}
			}
		})
	}
}

// A Redis that is down is no configuration error: the node starts, not
// ready, and becomes ready when Redis comes.
func TestGatewayStartsNotReadyWhileRedisIsDown(t *testing.T) {
	rs := tlsRedis(t)
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	cfg := gateway.DefaultConfig()
	cfg.Region, cfg.Node, cfg.Listen, cfg.Authority = "us-east", "gw-1", "127.0.0.1:0", authority
	overTLS(rs, &logs)(&cfg)
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start with Redis down: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if ok, _ := srv.Ready(); ok {
		t.Fatal("ready with Redis down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the node's log:\n%s", logs.String())
		}
	})
	c := newClient(t, srv.Addr(), "carol")
	c.Subscribe("room:late", nil, nil)
	ack := c.PublishAcked("room:late", "m-1", 1, 30*time.Second)
	// The publisher's own copy may come before its ack: look at every
	// message, not those after the ack.
	wait.For(t, 10*time.Second, "m-1 delivered", func() bool {
		m := c.Messages()
		return len(m) == 1 && m[0].ID == ack.Event && m[0].Type == protocol.TypeMessage
	})
	if !strings.Contains(logs.String(), "redis not reachable yet") {
		t.Errorf("the start did not say Redis was not reachable:\n%s", logs.String())
	}
}
