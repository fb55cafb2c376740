package link

import "testing"

func TestParseNameReadsWhatNameBuilds(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Link
		ok   bool
	}{
		{"client.us-east.eu-west.gw-2", Link{Kind: Client, From: "us-east", To: "eu-west", Node: "gw-2"}, true},
		{"lan.ap-south.gw-1", Link{Kind: LAN, From: "ap-south", To: "ap-south", Node: "gw-1"}, true},
		{"wan.us-east.eu-west", Link{Kind: WAN, From: "us-east", To: "eu-west"}, true},
		{"wan.us-east.us-east", Link{}, false}, // a region does not pull itself
		{"wan.us-east", Link{}, false},
		{"client.us-east..gw-1", Link{}, false},
		{"lan.us-east.gw-1.extra", Link{}, false},
		{"redis", Link{}, false},
		{"", Link{}, false},
	} {
		got, ok := ParseName(tc.name)
		if ok != tc.ok {
			t.Errorf("ParseName(%q) ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		tc.want.Name = tc.name
		if got != tc.want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tc.name, got, tc.want)
		}
		if back := Name(got.Kind, got.From, got.To, got.Node); back != tc.name {
			t.Errorf("Name of ParseName(%q) = %q", tc.name, back)
		}
	}
}

// FuzzParseName: any proxy name a Toxiproxy server reports is either
// refused or read into a link whose Name builds it again.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"client.a.b.gw-1", "lan.a.gw-1", "wan.a.b", "wan.a.a", "x", "..", "client...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		l, ok := ParseName(name)
		if !ok {
			return
		}
		if l.Name != name || Name(l.Kind, l.From, l.To, l.Node) != name {
			t.Fatalf("ParseName(%q) = %+v, which names %q", name, l, Name(l.Kind, l.From, l.To, l.Node))
		}
	})
}
