package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/geolab/geolab/lab/workload"
)

// Every message the protocol sends decodes; a bad one is refused naming
// what is wrong.
func TestDecodeNamesWhatIsWrong(t *testing.T) {
	clock := clockOf("a", 1, Estimate{})
	plan := &workload.Plan{Clients: []workload.ClientPlan{{Name: "c-a-001", Home: "a"}}}
	good := []Message{
		{Type: TypeHello, Protocol: 1, Version: "dev", Label: "x"},
		{Type: TypeAssign, Assign: &Assignment{Agent: "agent-1", Plan: plan, Clients: []int{0}, Tokens: map[string]string{"c-a-001": "t"}, Resolver: "http://127.0.0.1:1"}},
		{Type: TypeClock, T0: 1},
		{Type: TypeStart, At: 5},
		{Type: TypeQuiesce},
		{Type: TypeShipped, Bytes: 3, SHA256: strings.Repeat("a", 64), Clock: &clock},
	}
	for _, m := range good {
		b, _ := json.Marshal(m)
		if _, err := Decode(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	for in, want := range map[string]string{
		`{"type":"hello","version":"dev"}`:           "protocol",
		`{"type":"hello","protocol":1}`:              "version",
		`{"type":"wave"}`:                            "unknown type",
		`{"type":"clock"}`:                           "t0",
		`{"type":"clock","t0":1,"t1":2}`:             "t1, t2",
		`{"type":"start","at":-1}`:                   "at",
		`{"type":"shipped","bytes":1,"sha256":"zz"}`: "sha256",
		`{"type":"error"}`:                           "error: missing",
		`{"type":"quiesce","colour":"red"}`:          `unknown field "colour"`,
		`{"type":"quiesce"} {"type":"quiesce"}`:      "more than one",
		`[1,2]`:                                      "not a protocol v1 message",
		`{"type":"assign","assign":{"agent":"a","resolver":"r","plan":{"Clients":[]},"clients":[3]}}`: "index 3 outside",
	} {
		_, err := Decode([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %q", in, err, want)
		}
	}
}

// FuzzDecode: any bytes give a message or an error, never a panic; a
// message that decodes encodes and decodes again to the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"type":"hello","protocol":1,"version":"dev"}`, `{"type":"clock","t0":1,"t1":2,"t2":3}`,
		`{"type":"assign","assign":{"agent":"a","resolver":"r","plan":{"Clients":[{"Name":"c","Home":"h","Rooms":["x"]}],"Publishes":[{"At":1,"Client":0,"Room":"x","ID":"m"}]},"clients":[0],"tokens":{"c":"t"}}}`,
		`{"type":"shipped","bytes":0,"sha256":"` + strings.Repeat("0", 64) + `","clock":{"name":"a","clients":1,"offset":"1ms","bound":"2ms","rtt":"4ms","samples":16}}`,
		`{"type":"progress","progress":{"Clients":3}}`, `{"type":"error","error":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", b, err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("%q decoded, but its encoding %s does not: %v", b, again, err)
		}
	})
}
