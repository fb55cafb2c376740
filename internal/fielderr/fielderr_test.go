package fielderr_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
)

func TestErrorNamesFieldValueAndBound(t *testing.T) {
	cause := errors.New("region is empty")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fielderr.New("SendQueue", 1, "must be at least", 16), "SendQueue 1 must be at least 16"},
		{fielderr.Than("lag.warn", 7*time.Second, "must not be above", "lag.alert", 5*time.Second), "lag.warn 7s must not be above lag.alert 5s"},
		{fielderr.New("profile", "moon", "must be", "lan or wan"), `profile "moon" must be lan or wan`},
		{fielderr.New("profile", "", "must be", "lan or wan"), `profile "" must be lan or wan`},
		{fielderr.Missing("Listen", "(e.g. 127.0.0.1:8080)"), "Listen is required (e.g. 127.0.0.1:8080)"},
		{fielderr.Missing("Authority", ""), "Authority is required"},
		{fielderr.Wrap("Region", nil, cause), "Region: region is empty"},
		{fielderr.Wrap("Federate", "a b", cause), `Federate "a b": region is empty`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if err := fielderr.Wrap("Region", nil, cause); !errors.Is(err, cause) {
		t.Error("Wrap hides its cause from errors.Is")
	}
}

func TestRenameNamesFieldsAsTheCallerDoes(t *testing.T) {
	flags := map[string]string{"SendQueue": "--send-queue", "lag.warn": "LagWarn", "lag.alert": "LagAlert"}
	inner := fielderr.New("SendQueue", 1, "must be at least", 16)
	err := fmt.Errorf("gateway: %w", inner)
	got := fielderr.Rename(err, flags)
	if want := "gateway: --send-queue 1 must be at least 16"; got.Error() != want {
		t.Errorf("renamed %q, want %q", got, want)
	}
	var fe *fielderr.Error
	if !errors.As(got, &fe) || fe != inner || !errors.Is(got, inner) {
		t.Error("the renamed error lost the original from its chain")
	}
	if inner.Field != "SendQueue" {
		t.Error("Rename changed the original error")
	}
	lag := fielderr.Rename(fielderr.Than("lag.warn", 7*time.Second, "must not be above", "lag.alert", 5*time.Second), flags)
	if want := "LagWarn 7s must not be above LagAlert 5s"; lag.Error() != want {
		t.Errorf("renamed %q, want %q", lag, want)
	}
	// Nothing to rename: the very same error comes back.
	plain := errors.New("plain")
	if fielderr.Rename(plain, flags) != plain {
		t.Error("an error without a field error changed")
	}
	other := fielderr.New("batch", 0, "must be in", "1..10000")
	if fielderr.Rename(other, flags) != error(other) {
		t.Error("a field names does not hold changed")
	}
}
