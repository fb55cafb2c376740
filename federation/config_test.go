package federation

import (
	"strings"
	"testing"
	"time"
)

const goodConfig = `
regions:
  us-east: {redis: 127.0.0.1:7001}
  eu-west:
    redis: 127.0.0.1:7002
federate: ["tenant:*", "presence:*"]
lag: {warn: 2s, alert: 10s}
batch: 100
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig), "us-east")
	if err != nil {
		t.Fatal(err)
	}
	if c.Lag.Warn != 2*time.Second || c.Lag.Alert != 10*time.Second || c.Batch != 100 || c.Block != 500*time.Millisecond || c.Profile != "wan" {
		t.Fatalf("parsed %+v", c)
	}
	if got := c.Remotes(); len(got) != 1 || got[0] != "eu-west" {
		t.Fatalf("remotes %v", got)
	}
	if !c.Federated("tenant:1") || c.Federated("room:1") {
		t.Fatal("federated patterns")
	}
}

// A region's Redis may be a redis:// or rediss:// URL with an ACL user,
// its password in a file, and its CA.
func TestParseConfigTakesRedisURLs(t *testing.T) {
	c, err := ParseConfig([]byte(`
regions:
  us-east: {redis: "redis://geolab-bridge@127.0.0.1:7001/0", password_file: /run/secrets/us-east}
  eu-west: {redis: "rediss://geolab-bridge@127.0.0.1:17002", ca_file: /etc/geolab/ca.pem}
federate: ["tenant:*"]
`), "us-east")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Regions["us-east"]; r.Redis != "redis://geolab-bridge@127.0.0.1:7001/0" || r.PasswordFile != "/run/secrets/us-east" {
		t.Fatalf("us-east: %+v", r)
	}
	if r := c.Regions["eu-west"]; r.Redis != "rediss://geolab-bridge@127.0.0.1:17002" || r.CAFile != "/etc/geolab/ca.pem" {
		t.Fatalf("eu-west: %+v", r)
	}
}

func TestParseConfigNamesWhatIsWrong(t *testing.T) {
	cases := []struct{ name, yaml, region, want string }{
		{"empty", "", "us-east", "empty"},
		{"unknown key", goodConfig + "colour: blue\n", "us-east", "line 9: field colour not found"},
		{"wrong kind", strings.Replace(goodConfig, "batch: 100", "batch: lots", 1), "us-east", "line 8: cannot unmarshal"},
		{"region missing", goodConfig, "ap-southeast", `region "ap-southeast" is not in the file`},
		{"bad region flag", goodConfig, "US", "region: "},
		{"one region", "regions:\n  us-east: {redis: a:1}\nfederate: [\"*\"]\n", "us-east", "at least one other"},
		{"no redis", strings.Replace(goodConfig, "    redis: 127.0.0.1:7002", "    redis: \"\"", 1), "us-east", "regions.eu-west.redis"},
		{"bad region name", strings.Replace(goodConfig, "eu-west:", "EU West:", 1), "us-east", "regions.EU West"},
		{"no federate", strings.Replace(goodConfig, `federate: ["tenant:*", "presence:*"]`, "", 1), "us-east", "federate: no room patterns"},
		{"bad pattern", strings.Replace(goodConfig, `"presence:*"`, `"pres ence"`, 1), "us-east", "federate[1]"},
		{"alert below warn", strings.Replace(goodConfig, "alert: 10s", "alert: 1s", 1), "us-east", "lag.alert"},
		{"negative warn", strings.Replace(goodConfig, "warn: 2s", "warn: -1s", 1), "us-east", "lag.warn"},
		{"batch", strings.Replace(goodConfig, "batch: 100", "batch: 0", 1) + "block: 1ms\n", "us-east", "block"},
		{"profile", goodConfig + "profile: moon\n", "us-east", "profile"},
		{"password in a URL", strings.Replace(goodConfig, "127.0.0.1:7002", "rediss://geolab-bridge:s3cret-Pw@127.0.0.1:7002", 1), "us-east",
			"regions.eu-west.redis: the rediss:// URL holds a password (not shown): a password never goes in the address, where the process list, config files and logs show it; give it in regions.eu-west.password_file or $GEOLAB_REDIS_PASSWORD_EU_WEST"},
		{"query in a URL", strings.Replace(goodConfig, "127.0.0.1:7002", "rediss://127.0.0.1:7002?skip_verify=true", 1), "us-east",
			`regions.eu-west.redis: "rediss://127.0.0.1:7002": query options (?…) are not taken`},
		{"bad scheme", strings.Replace(goodConfig, "127.0.0.1:7002", "http://127.0.0.1:7002", 1), "us-east", `regions.eu-west.redis: "http://127.0.0.1:7002": unknown scheme "http"`},
		{"no port", strings.Replace(goodConfig, "127.0.0.1:7002", "127.0.0.1", 1), "us-east", `regions.eu-west.redis: "127.0.0.1": missing port in address`},
		{"CA without TLS", strings.Replace(goodConfig, "    redis: 127.0.0.1:7002", "    redis: redis://127.0.0.1:7002\n    ca_file: /etc/ca.pem", 1), "us-east",
			"regions.eu-west.ca_file: given, but regions.eu-west.redis is not a rediss:// URL: the CA would not be used"},
		{"durability", goodConfig + "durability: sync\n", "us-east", `durability "sync" must be async or replicated`},
		{"durability timeout", goodConfig + "durability: replicated\ndurability_timeout: 2m\n", "us-east", "durability_timeout 2m0s must be in 1ms..1m"},
		{"unknown region key", strings.Replace(goodConfig, "    redis: 127.0.0.1:7002", "    redis: 127.0.0.1:7002\n    password: x", 1), "us-east", "field password not found"},
	}
	for _, tc := range cases {
		_, err := ParseConfig([]byte(tc.yaml), tc.region)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseConfig: any bytes give a valid config or an error; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("regions: [1, 2]"))
	f.Add([]byte("lag: {warn: 1h}\n"))
	f.Add([]byte(goodConfig + "durability: replicated\ndurability_timeout: 250ms\n"))
	f.Add([]byte("regions:\n  us-east: {redis: \"rediss://u@h:1/2\", ca_file: c, password_file: p}\n  eu-west: {redis: \"redis://:pw@h:2\"}\nfederate: [\"*\"]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "us-east")
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("ParseConfig returned an invalid config: %v", verr)
			}
		}
	})
}
