package broker

import "testing"

// TestParseDelivery: an event's header and frame, the end notice, and the
// payloads that are neither, each refused with an error naming the room.
func TestParseDelivery(t *testing.T) {
	d, err := ParseDelivery("tenant:1", "1700000000000-3 us-east 7 e1\n{\"type\":\"message\"}")
	if err != nil || d.Ended || d.ID.String() != "1700000000000-3" || d.Origin != "us-east" || d.Oseq != 7 ||
		d.Epoch != "e1" || string(d.Frame) != `{"type":"message"}` {
		t.Fatalf("event: %+v, %v", d, err)
	}
	d, err = ParseDelivery("tenant:1", "end us-east\n")
	if err != nil || !d.Ended || d.Origin != "us-east" || d.Room != "tenant:1" || len(d.Frame) != 0 {
		t.Fatalf("end notice: %+v, %v", d, err)
	}
	for _, bad := range []string{"", "no header", "end \n", "end us-east\n{}", "end us-east", "1-1 us-east x e1\n{}",
		"1-1 us-east 7\n{}", "x us-east 7 e1\n{}"} {
		if d, err := ParseDelivery("tenant:1", bad); err == nil {
			t.Errorf("ParseDelivery(%q) = %+v, want an error", bad, d)
		}
	}
}

// FuzzParseDelivery: whatever a channel carries, ParseDelivery returns an
// error or a delivery that is an end notice naming an origin or an event
// with an origin; it never panics.
func FuzzParseDelivery(f *testing.F) {
	f.Add("1700000000000-3 us-east 7 e1\n{}")
	f.Add("end us-east\n")
	f.Fuzz(func(t *testing.T, payload string) {
		d, err := ParseDelivery("tenant:1", payload)
		if err != nil {
			return
		}
		if d.Ended && (d.Origin == "" || len(d.Frame) != 0) {
			t.Fatalf("end notice %+v from %q", d, payload)
		}
	})
}

// TestRoomOfKey: the room of a channel or history key of either layout,
// and "" for a key that is neither.
func TestRoomOfKey(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{RoomOfChannel(Standalone.Channel("tenant:1")), "tenant:1"},
		{RoomOfChannel(Clustered.Channel("tenant:1")), "tenant:1"},
		{RoomOfHistoryKey(Standalone.HistoryKey("tenant:1")), "tenant:1"},
		{RoomOfHistoryKey(Clustered.HistoryKey("tenant:1")), "tenant:1"},
		{RoomOfHistoryKey(Standalone.SeqKey("tenant:1")), ""},
		{RoomOfChannel("geolab:ch:{a{b}"), ""},
		{RoomOfHistoryKey("geolab:h:tenant:1"), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
