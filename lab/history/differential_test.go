package history_test

import (
	"encoding/json"
	"testing"

	"github.com/geolab/geolab/lab/history"
)

func jsonValid(b []byte) bool { return json.Valid(b) }

// checkAgainstEncodingJSON compares the frame fields Read decoded with what
// encoding/json finds in the same bytes (exact keys, last one wins; fields
// encoding/json cannot decode into the protocol's kinds are not compared,
// Read leaves them zero or keeps an earlier valid one).
func checkAgainstEncodingJSON(t *testing.T, e history.Event) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Raw, &m); err != nil {
		t.Fatalf("Read accepted a frame encoding/json rejects: %v\n%q", err, e.Raw)
	}
	for key, got := range map[string]string{
		"type": e.Type, "room": e.Room, "id": e.ID, "origin": e.Origin, "epoch": e.Epoch, "reason": e.Reason,
		"event": e.EventID, "ref": e.Ref, "code": e.Code, "region": e.Region, "node": e.Node,
	} {
		var want string
		if raw, ok := m[key]; ok && json.Unmarshal(raw, &want) == nil && string(raw) != "null" && got != want {
			t.Fatalf("%q: Read decoded %q, encoding/json %q\n%q", key, got, want, e.Raw)
		}
	}
	var oseq uint64
	if raw, ok := m["oseq"]; ok && json.Unmarshal(raw, &oseq) == nil && string(raw) != "null" && oseq != e.Oseq {
		t.Fatalf("oseq: Read decoded %d, encoding/json %d\n%q", e.Oseq, oseq, e.Raw)
	}
	var rec bool
	if raw, ok := m["recovered"]; ok && json.Unmarshal(raw, &rec) == nil && string(raw) != "null" && rec != e.Recovered {
		t.Fatalf("recovered: Read decoded %v, encoding/json %v\n%q", e.Recovered, rec, e.Raw)
	}
	if raw, ok := m["since"]; ok != e.Since && !(ok && string(raw) == "null") {
		t.Fatalf("since: Read decoded %v, encoding/json found %q\n%q", e.Since, raw, e.Raw)
	}
}
