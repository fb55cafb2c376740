package check_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/history/historytest"
)

// withDefects is a generated history broken on purpose: a message
// delivered twice, one never delivered, two delivered out of order.
func withDefects(t *testing.T) [][]byte {
	t.Helper()
	data, _ := historytest.Generate(60_000, 7)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	type rec struct {
		K, C, Dir string
		T         int64
		F         struct{ Type string }
	}
	var msgs []int // message frames received, by line
	for i, l := range lines {
		var r rec
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		if r.K == "frame" && r.Dir == "in" && r.F.Type == "message" {
			msgs = append(msgs, i)
		}
	}
	// Swap the times of two consecutive messages of one client: it then
	// received them out of order.
	tOf := func(i int) int64 { var r rec; _ = json.Unmarshal(lines[i], &r); return r.T }
	clientOf := func(i int) string { var r rec; _ = json.Unmarshal(lines[i], &r); return r.C }
	swapped := false
	for k := 1000; k < len(msgs) && !swapped; k++ {
		for j := k + 1; j < min(k+50, len(msgs)); j++ {
			a, b := msgs[k], msgs[j]
			if clientOf(a) == clientOf(b) && tOf(a) != tOf(b) {
				ta, tb := tOf(a), tOf(b)
				lines[a] = bytes.Replace(lines[a], fmt.Appendf(nil, `"t":%d,`, ta), fmt.Appendf(nil, `"t":%d,`, tb), 1)
				lines[b] = bytes.Replace(lines[b], fmt.Appendf(nil, `"t":%d,`, tb), fmt.Appendf(nil, `"t":%d,`, ta), 1)
				swapped = true
				break
			}
		}
	}
	dup := msgs[3000]
	lines = append(lines, lines[dup]) // the same delivery again, same time
	lines[msgs[5000]] = nil           // never delivered
	return lines
}

// split cuts a history into the controller's part (meta, faults, lag, end)
// and three agents' parts, each client's records in one agent, as a run
// with --agents 3 ships them.
func split(t *testing.T, lines [][]byte) (own []byte, agents [3][]byte) {
	t.Helper()
	for _, l := range lines {
		if l == nil {
			continue
		}
		var r struct{ C string }
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		if r.C == "" {
			own = append(append(own, l...), '\n')
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(r.C))
		k := h.Sum32() % 3
		agents[k] = append(append(agents[k], l...), '\n')
	}
	return own, agents
}

// checkShifted merges the parts with the agents' records moved by shifts
// (a clock offset estimated wrong by that much) and checks the result.
func checkShifted(t *testing.T, own []byte, agents [3][]byte, shifts [3]time.Duration) check.Counts {
	t.Helper()
	parts := []history.Part{{Name: "controller", R: bytes.NewReader(own)}}
	for k := range agents {
		parts = append(parts, history.Part{Name: fmt.Sprint("agent-", k+1), R: bytes.NewReader(agents[k]), Shift: int64(shifts[k])})
	}
	var out bytes.Buffer
	if err := history.Merge(&out, historytest.ThreeRegions("shifted"), parts); err != nil {
		t.Fatal(err)
	}
	h, err := history.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	return check.Check(h, check.Options{}).Counts
}

// Ordering, duplicate, gap and loss findings do not depend on clocks: with
// the clients split over three agents whose clock offsets were estimated
// wrong by anything from a millisecond to seconds, the checker finds the
// same reorder, duplicate, gap and loss as on one clock. Ordering,
// duplicates and gaps compare a client's own records only, which share one
// clock; an obligation's start is judged by the subscribed answer's
// position and the epochs the client received, not by comparing its time
// with a publish timed on another agent's clock.
func TestOrderDuplicatesGapsAndLossUseNoClock(t *testing.T) {
	own, agents := split(t, withDefects(t))
	base := checkShifted(t, own, agents, [3]time.Duration{})
	if base.Reordered == 0 || base.Duplicated == 0 || base.Gaps == 0 || base.Lost == 0 {
		t.Fatalf("the defects are not found on one clock: %+v", base)
	}
	for _, shifts := range [][3]time.Duration{
		{time.Millisecond, -time.Millisecond, 0},
		{-50 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond},
		{-2 * time.Second, 3 * time.Second, 0},
	} {
		got := checkShifted(t, own, agents, shifts)
		if got.Reordered != base.Reordered || got.Duplicated != base.Duplicated || got.Gaps != base.Gaps || got.Lost != base.Lost ||
			got.SilentEpochChanges != base.SilentEpochChanges || got.AnnouncedGaps != base.AnnouncedGaps {
			t.Errorf("agents' clocks off by %v: reordered %d, duplicated %d, gaps %d, lost %d, silent epoch changes %d, announced gaps %d; on one clock %d, %d, %d, %d, %d, %d",
				shifts, got.Reordered, got.Duplicated, got.Gaps, got.Lost, got.SilentEpochChanges, got.AnnouncedGaps,
				base.Reordered, base.Duplicated, base.Gaps, base.Lost, base.SilentEpochChanges, base.AnnouncedGaps)
		}
		t.Logf("clocks off by %v: region_order %d (one clock %d), delivered %d (%d)", shifts,
			got.RegionOrder, base.RegionOrder, got.Delivered, base.Delivered)
	}
}
