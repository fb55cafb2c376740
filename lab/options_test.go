package lab_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/topology"
)

// Start refuses lag thresholds its bridges would refuse, before it starts
// anything, naming the Options fields (federation.LagConfig.Validate is the
// one check).
func TestStartRefusesLagThresholdsTheBridgesWould(t *testing.T) {
	for _, tc := range []struct {
		warn, alert time.Duration
		want        string
	}{
		{7 * time.Second, 0, "lab: LagAlert 5s must not be below LagWarn 7s"},
		{2 * time.Second, time.Second, "lab: LagAlert 1s must not be below LagWarn 2s"},
		{-time.Second, 0, "lab: LagWarn -1s must be above 0"},
	} {
		l, err := lab.Start(context.Background(), &topology.Topology{Name: "none"},
			lab.Options{LagWarn: tc.warn, LagAlert: tc.alert, WorkDir: t.TempDir()})
		var fe *fielderr.Error
		if l != nil || err == nil || err.Error() != tc.want || !errors.As(err, &fe) {
			t.Errorf("warn %s alert %s: %v, want %q", tc.warn, tc.alert, err, tc.want)
		}
	}
}
