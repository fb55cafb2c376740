package federation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// Each region's Redis users in these tests: the gateway's and the
// bridge's, both with broker.ACLRules, and an admin (the test's client).
// Every region has passwords of its own.
func passwords(region string) (gw, bridge string) {
	return "gw-Pw-" + region + "-81f3c2", "bridge-Pw-" + region + "-5ad0e7"
}

// lockedBuffer collects log lines from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsRegion is a region whose Redis speaks TLS only and knows only ACL
// users, with one gateway on it as its user.
type tlsRegion struct {
	name  string
	redis *redistest.Server
	gw    *gateway.Server
}

func startTLSRegion(t *testing.T, name string, logs *lockedBuffer) *tlsRegion {
	t.Helper()
	gwPW, bridgePW := passwords(name)
	rs := redistest.Start(t, redistest.Persistent(), redistest.TLS(), redistest.Users(
		redisproc.User{Name: "admin", Password: "admin-Pw-" + name, Rules: "~* &* +@all"},
		redisproc.User{Name: "geolab-gateway", Password: gwPW, Rules: broker.ACLRules},
		redisproc.User{Name: "geolab-bridge", Password: bridgePW, Rules: broker.ACLRules}))
	gw := gatewaytest.Start(t, authority, rs.Addr(), name, "gw-1", func(c *gateway.Config) {
		c.Redis, c.RedisPassword, c.RedisCAFile = "rediss://geolab-gateway@"+rs.Addr(), redisaddr.Password(gwPW), rs.Options().TLS.CAFile
		c.Federate = federate
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	return &tlsRegion{name: name, redis: rs, gw: gw}
}

// tlsConfig is the bridge config of region x over TLS: its own Redis
// direct, the other's through proxy, each as geolab-bridge with the CA.
// The passwords are not in it: us-east's comes from a password_file, the
// others' from GEOLAB_REDIS_PASSWORD_<REGION>.
func tlsConfig(t *testing.T, x string, addrs map[string]string, regions map[string]*tlsRegion) *federation.Config {
	t.Helper()
	c := &federation.Config{Region: x, Regions: map[string]federation.RegionConfig{}, Federate: federate,
		Block: 200 * time.Millisecond}
	for name, addr := range addrs {
		rc := federation.RegionConfig{Redis: "rediss://geolab-bridge@" + addr, CAFile: regions[name].redis.Options().TLS.CAFile}
		_, bridgePW := passwords(name)
		if name == "us-east" {
			rc.PasswordFile = filepath.Join(t.TempDir(), "us-east.pw")
			if err := os.WriteFile(rc.PasswordFile, []byte(bridgePW+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Setenv(redisaddr.RegionPasswordEnv(name), bridgePW)
		}
		c.Regions[name] = rc
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Two regions whose Redis speak TLS only, each bridge reading the other's
// outbox through a Toxiproxy proxy (which forwards the TLS bytes as they
// are) as an ACL user: a publish in us-east reaches eu-west's subscriber;
// the users' narrowed rules sufficed (Redis logged no denial), and no log
// line shows a password.
func TestBridgeOverTLSAsAnACLUser(t *testing.T) {
	var logs lockedBuffer
	regions := map[string]*tlsRegion{}
	for _, n := range []string{"us-east", "eu-west"} {
		regions[n] = startTLSRegion(t, n, &logs)
	}
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	t.Cleanup(func() { _ = tp.Collection.Clear() })
	proxy := func(name, upstream string) string {
		p := toxiproxy.NewProxy(tp, name, "127.0.0.1:0", upstream)
		if err := tp.Collection.Add(p, true); err != nil {
			t.Fatal(err)
		}
		return p.Listen
	}
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, x := range []string{"us-east", "eu-west"} {
		addrs := map[string]string{}
		for y, r := range regions {
			addrs[y] = r.redis.Addr()
			if y != x {
				addrs[y] = proxy(x+"<-"+y, r.redis.Addr())
			}
		}
		b, err := federation.New(tlsConfig(t, x, addrs, regions), log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("bridge of %s: %v", x, err)
			}
		})
	}

	sub := wsprobe.Open(t, regions["eu-west"].gw.Addr(), gatewaytest.Token(t, authority, "alice", "tenant:*"))
	sub.Subscribe("tenant:1", nil, nil)
	pub := wsprobe.Open(t, regions["us-east"].gw.Addr(), gatewaytest.Token(t, authority, "bob", "tenant:*"))
	ack := pub.Publish("tenant:1", "m-1", 1)
	if ack.Type != "ack" {
		t.Fatalf("publish: %+v", ack)
	}
	wait.For(t, 20*time.Second, "m-1 crosses to eu-west over TLS", func() bool {
		m := sub.Messages()
		return len(m) == 1 && m[0].ID == ack.Event && m[0].Origin == "us-east"
	})

	ctx := context.Background()
	for n, r := range regions {
		denied, err := r.redis.Client().Do(ctx, "ACL", "LOG").Slice()
		if err != nil {
			t.Fatal(err)
		}
		if len(denied) != 0 {
			t.Errorf("%s's Redis denied something (broker.ACLRules too narrow?): %v", n, denied)
		}
	}
	text := logs.String()
	for n := range regions {
		gwPW, bridgePW := passwords(n)
		if strings.Contains(text, gwPW) || strings.Contains(text, bridgePW) {
			t.Errorf("a log line shows a password of %s", n)
		}
	}
	if !strings.Contains(text, "link up") {
		t.Errorf("no link came up in the logs: was anything captured?")
	}
}

// What a Redis refuses stops the bridge with an error naming the region
// and what is wrong: at New (no password for a user, an unreadable
// password file), at Run for its own region before it serves, and for a
// remote region as its link first reaches it. No error shows a password.
func TestBridgeSaysWhatRedisRefuses(t *testing.T) {
	var logs lockedBuffer
	east := startTLSRegion(t, "us-east", &logs)
	west := startTLSRegion(t, "eu-west", &logs)
	cfg := func(eastUser, westUser string) *federation.Config {
		c := &federation.Config{Region: "us-east", Federate: federate, Block: 200 * time.Millisecond,
			Regions: map[string]federation.RegionConfig{
				"us-east": {Redis: "rediss://" + eastUser + "@" + east.redis.Addr(), CAFile: east.redis.Options().TLS.CAFile},
				"eu-west": {Redis: "rediss://" + westUser + "@" + west.redis.Addr(), CAFile: west.redis.Options().TLS.CAFile},
			}}
		c.Defaults()
		return c
	}
	_, eastPW := passwords("us-east")
	_, westPW := passwords("eu-west")
	run := func(c *federation.Config) error {
		b, err := federation.New(c, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = b.Run(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("the bridge ran until the test's deadline: %v", err)
		}
		return err
	}
	for _, tc := range []struct {
		name     string
		eastEnv  string
		westEnv  string
		c        *federation.Config
		want     string
		pwInFile bool
	}{
		{"wrong password here", "wrong-Pw-0001", westPW, cfg("geolab-bridge", "geolab-bridge"),
			`federation: regions.us-east: redis ` + east.redis.Addr() + `: authentication as user "geolab-bridge" failed (WRONGPASS invalid username-password pair or user is disabled.): check the user in the address and the password in regions.us-east.password_file or $GEOLAB_REDIS_PASSWORD_US_EAST`, false},
		{"wrong user there", eastPW, westPW, cfg("geolab-bridge", "geolab-nobody"),
			`federation: regions.eu-west: redis ` + west.redis.Addr() + `: authentication as user "geolab-nobody" failed (WRONGPASS`, false},
		{"no password for a user", eastPW, "", cfg("geolab-bridge", "geolab-bridge"),
			`federation: regions.eu-west: "rediss://geolab-bridge@` + west.redis.Addr() + `" names the user "geolab-bridge" but no password was given: give it in regions.eu-west.password_file or $GEOLAB_REDIS_PASSWORD_EU_WEST`, false},
		{"no password file", eastPW, westPW, cfg("geolab-bridge", "geolab-bridge"),
			"federation: regions.us-east.password_file: read the Redis password: open /nonexistent/pw: no such file or directory", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(redisaddr.RegionPasswordEnv("us-east"), tc.eastEnv)
			t.Setenv(redisaddr.RegionPasswordEnv("eu-west"), tc.westEnv)
			if tc.pwInFile {
				r := tc.c.Regions["us-east"]
				r.PasswordFile = "/nonexistent/pw"
				tc.c.Regions["us-east"] = r
			}
			err := run(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to hold %q", err, tc.want)
			}
			for _, pw := range []string{eastPW, westPW, tc.eastEnv} {
				if pw != "" && strings.Contains(err.Error(), pw) {
					t.Fatalf("the error shows a password: %v", err)
				}
			}
		})
	}
	for _, n := range []string{"us-east", "eu-west"} {
		gwPW, bridgePW := passwords(n)
		if strings.Contains(logs.String(), gwPW) || strings.Contains(logs.String(), bridgePW) || strings.Contains(logs.String(), "wrong-Pw-0001") {
			t.Errorf("a log line shows a password")
		}
	}
}
