package check

import (
	"cmp"
	"math"
	"slices"

	"github.com/geolab/geolab/lab/history"
)

// percentiles summarises sorted durations in ns (nearest rank).
func percentiles(sorted []int64) Percentiles {
	n := len(sorted)
	if n == 0 {
		return Percentiles{}
	}
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(n))) - 1
		return history.Seconds(sorted[min(max(i, 0), n-1)])
	}
	p := Percentiles{Count: n, P50: at(50), P90: at(90), P99: at(99), Max: history.Seconds(sorted[n-1]),
		CDF: make([]float64, 101)}
	for q := range p.CDF {
		p.CDF[q] = at(float64(q))
	}
	return p
}

// floatPercentile is the nearest-rank p-th percentile of sorted values.
func floatPercentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// merge merges sorted lists into one sorted list, pairwise.
func merge(lists [][]int64) []int64 {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	a, b := merge(lists[:len(lists)/2]), merge(lists[len(lists)/2:])
	out := make([]int64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (c *checker) latencies() {
	l := &c.res.Latency
	l.Pairs, l.Links, l.Regions = map[string]Percentiles{}, map[string]Percentiles{}, map[string]Percentiles{}
	keys := make([][2]int32, 0, len(c.latency))
	for k, v := range c.latency {
		slices.Sort(v)
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]int32) int {
		if d := cmp.Compare(a[0], b[0]); d != 0 {
			return d
		}
		return cmp.Compare(a[1], b[1])
	})
	var all, intra, cross [][]int64
	links := map[string][][]int64{}
	for _, k := range keys {
		v := c.latency[k]
		o, x := c.regions.name(k[0]), c.regions.name(k[1])
		all = append(all, v)
		l.Pairs[o+"->"+x] = percentiles(v)
		switch {
		case k[0] < 0 || k[1] < 0:
		case k[0] == k[1]:
			intra = append(intra, v)
			l.Regions[o] = l.Pairs[o+"->"+x]
		default:
			cross = append(cross, v)
			links[linkName(o, x)] = append(links[linkName(o, x)], v)
		}
	}
	for name, vs := range links {
		l.Links[name] = percentiles(merge(vs))
	}
	l.All, l.IntraRegion, l.CrossRegion = percentiles(merge(all)), percentiles(merge(intra)), percentiles(merge(cross))
}

func (c *checker) failoverStats() {
	slices.Sort(c.failovers)
	c.res.Failover.Percentiles = percentiles(c.failovers)
	slices.SortStableFunc(c.foWorst, func(a, b Example) int { return cmp.Compare(b.Value, a.Value) })
	c.res.Failover.Worst = c.foWorst[:min(len(c.foWorst), c.opts.Examples)]
}

type linkAcc struct {
	LinkLag
	values []float64
	lastT  int64
	last   string
	points []LagPoint
	bucket int64
}

func (a *linkAcc) spend(t int64) {
	if a.last == "" {
		return
	}
	d := history.Seconds(t - a.lastT)
	switch a.last {
	case history.LagWarn:
		a.WarnSeconds += d
	case history.LagAlert:
		a.AlertSeconds += d
	case history.LagDown:
		a.DownSeconds += d
	}
}

// lagAndFaults reads the lag and fault records.
func (c *checker) lagAndFaults() {
	links := map[string]*linkAcc{}
	var order []string
	open := map[string]int{} // fault id → index of its open window
	warn, alert := history.Seconds(int64(c.h.Meta.LagWarn)), history.Seconds(int64(c.h.Meta.LagAlert))
	for i := range c.h.Events {
		e := &c.h.Events[i]
		switch e.Kind {
		case history.KindLag:
			l := e.Lag
			name := l.From + "->" + l.Region
			a, ok := links[name]
			if !ok {
				a = &linkAcc{LinkLag: LinkLag{Region: l.Region, From: l.From}, bucket: -1}
				links[name] = a
				order = append(order, name)
			}
			state := l.State
			if state == "" {
				switch {
				case math.IsNaN(l.Seconds):
					state = history.LagDown
				case alert > 0 && l.Seconds >= alert:
					state = history.LagAlert
				case warn > 0 && l.Seconds >= warn:
					state = history.LagWarn
				default:
					state = history.LagOK
				}
			}
			a.spend(e.T)
			a.lastT, a.last = e.T, state
			a.Samples++
			if math.IsNaN(l.Seconds) || math.IsInf(l.Seconds, 0) {
				continue
			}
			a.values = append(a.values, l.Seconds)
			p := LagPoint{T: history.Seconds(e.T), Seconds: l.Seconds, State: state}
			if b := e.T / 1e9; b != a.bucket || len(a.points) == 0 {
				a.bucket = b
				a.points = append(a.points, p)
			} else if last := &a.points[len(a.points)-1]; l.Seconds > last.Seconds {
				*last = p
			}
		case history.KindFault:
			f := e.Fault
			switch f.Action {
			case "inject":
				open[f.ID] = len(c.res.Faults)
				c.res.Faults = append(c.res.Faults, FaultWindow{ID: f.ID, Kind: f.Kind, Target: f.Target, Args: f.Args,
					Inject: history.Seconds(e.T)})
			case "heal":
				k, ok := open[f.ID]
				if !ok { // healed with no inject in the history: injected before it began
					k = len(c.res.Faults)
					c.res.Faults = append(c.res.Faults, FaultWindow{ID: f.ID, Kind: f.Kind, Target: f.Target, Args: f.Args})
				}
				delete(open, f.ID)
				c.res.Faults[k].Heal, c.res.Faults[k].Healed = history.Seconds(e.T), true
			}
		}
	}
	for k := range c.res.Faults {
		if w := &c.res.Faults[k]; !w.Healed {
			w.Heal = c.res.Duration
		}
	}
	if c.res.Faults == nil {
		c.res.Faults = []FaultWindow{}
	}
	if len(links) == 0 {
		return
	}
	c.res.Lag = map[string]LinkLag{}
	c.res.Timeline.Lag = map[string][]LagPoint{}
	for _, name := range order {
		a := links[name]
		a.spend(max(c.end, a.lastT))
		slices.Sort(a.values)
		if len(a.values) > 0 {
			a.Max = a.values[len(a.values)-1]
			a.P99 = floatPercentile(a.values, 99)
		}
		c.res.Lag[name] = a.LinkLag
		c.res.Timeline.Lag[name] = a.points
	}
}

func (c *checker) timeline() {
	if len(c.deliv) == 0 {
		return
	}
	c.res.Timeline.Deliveries = map[string][]int{}
	for r, d := range c.deliv {
		c.res.Timeline.Deliveries[c.regions.name(r)] = d
	}
}
