package federation_test

import (
	"errors"
	"testing"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/netprofile"
)

const twoRegions = `
regions:
  us-east: {redis: 127.0.0.1:7001}
  eu-west: {redis: 127.0.0.1:7002}
federate: ["tenant:*"]
`

// Every field out of bounds is a *fielderr.Error naming the file's key, the
// value and the bound, and never a command line flag.
func TestValidateNamesFieldValueAndBound(t *testing.T) {
	for _, tc := range []struct {
		yaml, region, field, want string
	}{
		{twoRegions + "lag: {warn: 7s, alert: 5s}\n", "us-east", "lag.alert", "lag.alert 5s must not be below lag.warn 7s"},
		{twoRegions + "lag: {warn: -1s}\n", "us-east", "lag.warn", "lag.warn -1s must be above 0"},
		{twoRegions + "lag: {warn: 6s}\n", "us-east", "lag.alert", "lag.alert 5s must not be below lag.warn 6s"},
		{twoRegions + "batch: 20000\n", "us-east", "batch", "batch 20000 must be in 1..10000"},
		{twoRegions + "block: 1ms\n", "us-east", "block", "block 1ms must be in 10ms..10s"},
		{twoRegions + "profile: moon\n", "us-east", "profile", `profile "moon" must be lan or wan`},
		{twoRegions + "max_frame_bytes: 100\n", "us-east", "max_frame_bytes", "max_frame_bytes 100 must be in 1024..67108864"},
		{twoRegions, "ap-south", "region", `region "ap-south" is not in the file (have eu-west, us-east)`},
		{twoRegions, "US", "region", `region: region "US" has a character outside a-z 0-9 -`},
	} {
		_, err := federation.ParseConfig([]byte(tc.yaml), tc.region)
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != tc.field || fe.Error() != tc.want {
			t.Errorf("got %v, want a field error %q", err, tc.want)
		}
	}
}

func TestLagThresholds(t *testing.T) {
	if got := (federation.LagConfig{}).WithDefaults(); got.Warn != federation.DefaultLagWarn || got.Alert != federation.DefaultLagAlert {
		t.Errorf("defaults: %+v", got)
	}
	if federation.DefaultLagWarn != time.Second || federation.DefaultLagAlert != 5*time.Second {
		t.Errorf("the defaults changed: %s, %s", federation.DefaultLagWarn, federation.DefaultLagAlert)
	}
	if got := (federation.LagConfig{Warn: 2 * time.Second}).WithDefaults(); got.Warn != 2*time.Second || got.Alert != federation.DefaultLagAlert {
		t.Errorf("a set threshold was overwritten: %+v", got)
	}
	// Equal thresholds are allowed: warn and alert at once.
	if err := (federation.LagConfig{Warn: time.Second, Alert: time.Second}).Validate(); err != nil {
		t.Errorf("equal thresholds: %v", err)
	}
	if err := (federation.LagConfig{}).Validate(); err == nil || err.Error() != "lag.warn 0s must be above 0" {
		t.Errorf("zero thresholds: %v", err)
	}
}

// A file that names no profile gets DefaultProfile, wan: the bridge's
// remote links cross regions. (A gateway's "" means lan.)
func TestEmptyProfileMeansWan(t *testing.T) {
	c, err := federation.ParseConfig([]byte(twoRegions), "us-east")
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile != federation.DefaultProfile || federation.DefaultProfile != netprofile.WAN || federation.LocalProfile != netprofile.LAN {
		t.Fatalf("profile %q (default %q, local %q)", c.Profile, federation.DefaultProfile, federation.LocalProfile)
	}
	if c.MaxFrameBytes != federation.DefaultMaxFrameBytes || federation.DefaultMaxFrameBytes != 1<<20 {
		t.Fatalf("max_frame_bytes %d (default %d)", c.MaxFrameBytes, federation.DefaultMaxFrameBytes)
	}
}
