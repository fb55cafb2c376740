//go:build faulty

package faulty

import "testing"

func TestParseNamesMutants(t *testing.T) {
	on := parse(" nogapfill,dupwire ,,")
	if !on["nogapfill"] || !on["dupwire"] || len(on) != 2 {
		t.Fatalf("parse: %v", on)
	}
	if len(parse("")) != 0 {
		t.Fatal("an empty GEOLAB_FAULTY switched something on")
	}
}

// TestParseRefusesAnUnknownMutant: a typo must not pass for a mutant that
// no spec catches.
func TestParseRefusesAnUnknownMutant(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown mutant name was accepted")
		}
	}()
	parse("nogapfil")
}
