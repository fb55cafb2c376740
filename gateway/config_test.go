package gateway_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/netprofile"
)

// Validate's error is a *fielderr.Error naming the Config field, its value
// and its bound, and no command line flag: cmd/geolab names the flags.
func TestValidateErrorsNameFieldValueAndBound(t *testing.T) {
	a, err := auth.NewAuthority([]byte(strings.Repeat("k", auth.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	base := gateway.DefaultConfig()
	base.Region, base.Node, base.Listen, base.Redis, base.Authority = "us-east", "gw-1", "127.0.0.1:0", "127.0.0.1:1", a
	for _, tc := range []struct {
		mod         func(*gateway.Config)
		field, want string
	}{
		{func(c *gateway.Config) { c.SendQueue = 1 }, "SendQueue", "SendQueue 1 must be at least 16"},
		{func(c *gateway.Config) { c.ReadTimeout = c.PingInterval }, "ReadTimeout", "ReadTimeout 10s must be above PingInterval 10s"},
		{func(c *gateway.Config) { c.MaxDataBytes = 70000 }, "MaxDataBytes", "MaxDataBytes 70000 must be below MaxFrameBytes 65536"},
		{func(c *gateway.Config) { c.PublishRate = 0 }, "PublishRate", "PublishRate 0 must be above 0"},
		{func(c *gateway.Config) { c.DrainTimeout = -time.Second }, "DrainTimeout", "DrainTimeout -1s must not be below 0"},
		{func(c *gateway.Config) { c.MaxConnsPerSub = -1 }, "MaxConnsPerSub", "MaxConnsPerSub -1 must not be below 0"},
		{func(c *gateway.Config) { c.HTTPIdleTimeout = 0 }, "HTTPIdleTimeout", "HTTPIdleTimeout 0s must be above 0"},
		{func(c *gateway.Config) { c.SubscribeMode = "psub" }, "SubscribeMode", `SubscribeMode "psub" must be targeted or pattern`},
		{func(c *gateway.Config) { c.Durability = "sync" }, "Durability", `Durability "sync" must be async or replicated`},
		{func(c *gateway.Config) { c.DurabilityTimeout = 0 }, "DurabilityTimeout", "DurabilityTimeout 0s must be between 1ms and 1m0s"},
		{func(c *gateway.Config) { c.Listen = "" }, "Listen", "Listen is required (e.g. 127.0.0.1:8080)"},
		{func(c *gateway.Config) { c.Region = "" }, "Region", "Region: region is empty"},
	} {
		c := base
		tc.mod(&c)
		err := c.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != tc.field || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "--") {
			t.Errorf("%v names a flag", err)
		}
	}
}

// A gateway's empty profile name is DefaultRedisProfile, lan: it runs next
// to its region's Redis. (A bridge's "" means wan.)
func TestEmptyRedisProfileMeansLan(t *testing.T) {
	p, err := gateway.ProfileByName("")
	if err != nil || p.Name != netprofile.LAN || gateway.DefaultRedisProfile != netprofile.LAN {
		t.Fatalf("ProfileByName(\"\") = %+v, %v", p, err)
	}
	if gateway.DefaultConfig().RedisLink != p {
		t.Fatal("DefaultConfig's link is not the default profile")
	}
	if p, err := gateway.ProfileByName("wan"); err != nil || p.Name != netprofile.WAN {
		t.Fatalf("wan: %+v, %v", p, err)
	}
	if _, err := gateway.ProfileByName("moon"); err == nil || err.Error() != `profile "moon" must be lan or wan` {
		t.Fatalf("moon: %v", err)
	}
}
