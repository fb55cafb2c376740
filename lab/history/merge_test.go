package history_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/history/historytest"
)

// Merge puts two parts on one clock: each record moves by its part's
// shift, the parts' meta records give way to the one meta, and the result
// reads back in time order with every record kept.
func TestMergeShiftsAndOrders(t *testing.T) {
	meta := historytest.ThreeRegions("merged")
	meta.Agents = []history.AgentClock{{Name: "agent-1", Clients: 1, Offset: history.Duration(3 * time.Millisecond), Bound: history.Duration(time.Millisecond)}}
	own := historytest.New(historytest.ThreeRegions("controller"))
	own.Fault(10*time.Millisecond, "f1", "inject", "partition", "us-east<->eu-west", nil)
	own.End(100 * time.Millisecond)
	ag := historytest.New(historytest.ThreeRegions("agent-1"))
	c := ag.Client("c-us-east-001", "us-east")
	c.Connect(5*time.Millisecond, "us-east", "gw-1")
	c.Frame(20*time.Millisecond, client.In, []byte(`{"type":"pong"}`))
	var out bytes.Buffer
	err := history.Merge(&out, meta, []history.Part{
		{Name: "controller", R: bytes.NewReader(own.Bytes())},
		{Name: "agent-1", R: bytes.NewReader(ag.Bytes()), Shift: int64(-8 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := history.Read(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("the merged history does not read back: %v\n%s", err, out.Bytes())
	}
	if h.Meta.Run != "merged" || len(h.Meta.Agents) != 1 || h.Meta.Agents[0].Offset != history.Duration(3*time.Millisecond) {
		t.Fatalf("meta: got %+v, want the merged one with its agent's clock", h.Meta)
	}
	if strings.Count(out.String(), `"k":"meta"`) != 1 {
		t.Fatalf("want one meta record:\n%s", out.Bytes())
	}
	var got []string
	for _, e := range h.Events {
		got = append(got, e.Kind.String()+"@"+time.Duration(e.T).String())
	}
	// The agent's connect (three records at 5ms) lands at −3ms, its pong
	// at 12ms: after the fault at 10ms, before the end at 100ms.
	want := "[state@-3ms frame@-3ms state@-3ms fault@10ms frame@12ms end@100ms]"
	if s := strings.Join(got, " "); "["+s+"]" != want {
		t.Fatalf("got [%s], want %s", s, want)
	}
}

// A part that is not a history a Writer wrote is named with its line.
func TestMergeNamesABadLine(t *testing.T) {
	for in, want := range map[string]string{
		"{\"k\":\"meta\",\"t\":0}\nnot json\n":         "agent-2 line 2: a record must start with",
		"{\"k\":\"end\",\"t\":x}\n":                    "agent-2 line 1: t:",
		"{\"k\":\"end\",\"t\":99999999999999999999}\n": "agent-2 line 1: t:",
		"{\"t\":1,\"k\":\"end\"}\n":                    "agent-2 line 1: a record must start",
	} {
		err := history.Merge(&bytes.Buffer{}, history.Meta{}, []history.Part{{Name: "agent-2", R: strings.NewReader(in)}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

// FuzzMerge: any part gives a merged history or an error naming its line,
// never a panic; a merge keeps every record but meta, one per line.
func FuzzMerge(f *testing.F) {
	ag := historytest.New(historytest.ThreeRegions("a"))
	c := ag.Client("c-us-east-001", "us-east")
	c.Connect(time.Millisecond, "us-east", "gw-1")
	c.Subscribe(2*time.Millisecond, "tenant:1")
	ag.End(3 * time.Millisecond)
	f.Add(ag.Bytes(), int64(5))
	f.Add([]byte("{\"k\":\"end\",\"t\":-7}\n\n{\"k\":\"x\",\"t\":1"), int64(-3))
	f.Fuzz(func(t *testing.T, part []byte, shift int64) {
		var out bytes.Buffer
		if err := history.Merge(&out, history.Meta{Run: "m"}, []history.Part{{Name: "p", R: bytes.NewReader(part), Shift: shift}}); err != nil {
			return
		}
		in := 0
		for _, l := range bytes.Split(part, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 && !bytes.HasPrefix(l, []byte(`{"k":"meta","t":`)) {
				in++
			}
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != in+1 {
			t.Fatalf("%d records in, %d lines out (meta included)", in, len(lines))
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, `{"k":"`) {
				t.Fatalf("line %q does not start a record", l)
			}
		}
	})
}
