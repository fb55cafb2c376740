package invariant

import "testing"

// TestPublishesTellRecreatedFromOvertaken: events are matched to publishes
// by (room, sender, client message id); a second event is Recreated when
// its region's history already held one of that publish, and a retry that
// overtook its first attempt's event when it did not.
func TestPublishesTellRecreatedFromOvertaken(t *testing.T) {
	ev := func(region, origin, event, sender, cid string) storedEvent {
		return storedEvent{Region: region, Room: "geolab:h:{r}", Origin: origin, Event: event, Sender: sender, ClientID: cid}
	}
	cases := []struct {
		name                 string
		stored               []storedEvent
		recreated, overtaken int
	}{
		{"one event carried to the other region", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("b", "a", "e1", "alice", "m-1")}, 0, 0},
		{"a retry that overtook its first attempt's event", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("a", "b", "e2", "alice", "m-1"),
			ev("b", "b", "e2", "alice", "m-1"), ev("b", "a", "e1", "alice", "m-1")}, 0, 1},
		{"a retry in a region that held the event", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("a", "b", "e2", "alice", "m-1"),
			ev("b", "a", "e1", "alice", "m-1"), ev("b", "b", "e2", "alice", "m-1")}, 1, 0},
		{"a retry in the same region made a second event", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("a", "a", "e2", "alice", "m-1")}, 1, 0},
		{"three events: one overtaking, one recreated", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("b", "b", "e2", "alice", "m-1"),
			ev("b", "a", "e1", "alice", "m-1"), ev("b", "b", "e3", "alice", "m-1")}, 1, 1},
		{"the same id from two senders is two publishes", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), ev("a", "a", "e2", "bob", "m-1")}, 0, 0},
		{"the same id in two rooms is two publishes", []storedEvent{
			ev("a", "a", "e1", "alice", "m-1"), {Region: "a", Room: "geolab:h:{s}", Origin: "a", Event: "e2", Sender: "alice", ClientID: "m-1"}}, 0, 0},
		{"events without a client message id are not matched", []storedEvent{
			ev("a", "a", "e1", "alice", ""), ev("a", "a", "e2", "alice", "")}, 0, 0},
	}
	for _, tc := range cases {
		c := Counts{stored: tc.stored}
		c.publishes()
		if c.Recreated != tc.recreated || c.RetriesOvertaken != tc.overtaken {
			t.Errorf("%s: recreated %d, overtaken %d; want %d, %d (examples %v)", tc.name, c.Recreated, c.RetriesOvertaken,
				tc.recreated, tc.overtaken, c.Examples)
		}
	}
}
