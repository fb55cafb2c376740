package netprofile_test

import (
	"errors"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/netprofile"
)

func TestByName(t *testing.T) {
	lan, err := netprofile.ByName(netprofile.LAN)
	if err != nil || lan.Name != "lan" || lan.ReadTimeout != time.Second || lan.MaxRetries != 1 ||
		lan.Subscriber.DeadAfter != 2*time.Second {
		t.Fatalf("lan: %+v, %v", lan, err)
	}
	wan, err := netprofile.ByName(netprofile.WAN)
	if err != nil || wan.Name != "wan" || wan.DialTimeout != 3*time.Second || wan.ReadTimeout != 3*time.Second ||
		wan.WriteTimeout != 3*time.Second || wan.MaxRetries != 1 ||
		wan.Subscriber.DeadAfter != 6*time.Second || wan.Subscriber.PingInterval != 2*time.Second {
		t.Fatalf("wan: %+v, %v", wan, err)
	}
}

// The empty name means something different to each caller, so it means
// nothing here: an error, like any unknown name, naming field, value and
// the names there are.
func TestByNameRefusesWhatItDoesNotKnow(t *testing.T) {
	for name, want := range map[string]string{
		"moon": `profile "moon" must be lan or wan`,
		"":     `profile "" must be lan or wan`,
		"LAN":  `profile "LAN" must be lan or wan`,
	} {
		_, err := netprofile.ByName(name)
		var fe *fielderr.Error
		if err == nil || err.Error() != want || !errors.As(err, &fe) || fe.Field != "profile" {
			t.Errorf("ByName(%q): %v, want %q", name, err, want)
		}
	}
}
