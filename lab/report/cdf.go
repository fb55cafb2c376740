package report

import (
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/geolab/geolab/lab/check"
)

// latencyChart draws one CDF per region pair (Latency.Pairs), latency in
// ms on a log axis against the percentile: the line of pair "a->b" passes
// through (p-th percentile, p) for p = 0…100.
func latencyChart(r *check.Result) chart {
	p := newPlot("percentile of deliveries (%)")
	leg := newLegend()
	lo, hi := math.Inf(1), math.Inf(-1)
	type series struct {
		name string
		xys  plotter.XYs
	}
	var all []series
	for _, name := range sortedKeys(r.Latency.Pairs) {
		cdf := r.Latency.Pairs[name].CDF
		if len(cdf) < 2 {
			continue
		}
		var xys plotter.XYs
		for i, s := range cdf {
			if ms := s * 1000; finite(ms) && ms > 0 {
				xys = append(xys, plotter.XY{X: ms, Y: 100 * float64(i) / float64(len(cdf)-1)})
				lo, hi = min(lo, ms), max(hi, ms)
			}
		}
		if len(xys) > 0 {
			all = append(all, series{pairName(name), xys})
		}
	}
	if len(all) == 0 {
		return chart{Note: "No latency samples: no acked event was delivered, so there is no CDF to draw."}
	}
	for i, s := range all {
		l, err := plotter.NewLine(s.xys)
		if err != nil {
			continue
		}
		l.LineStyle = lineStyle(i)
		p.Add(l)
		leg.Add(s.name, l)
	}
	if hi < lo*1.5 { // one value, or nearly: give the log axis some room
		lo, hi = lo/1.5, hi*1.5
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = 0, 100
	p.Y.Tick.Marker = niceTicks{n: 10}
	return render("Latency CDF per region pair", legendWidth(leg),
		[]panel{{plot: p, height: 316, legend: leg, xLabel: "publish → delivery latency (ms, log scale)"}})
}

// pairName writes a link or pair key with an arrow: "a->b" → "a → b".
func pairName(k string) string {
	k = strings.Replace(k, "<->", " ↔ ", 1)
	return strings.Replace(k, "->", " → ", 1)
}

// failoverChart draws the CDF of failover times (G8), in seconds.
func failoverChart(r *check.Result) chart {
	f := r.Failover
	var xys plotter.XYs
	for i, s := range f.CDF {
		if finite(s) && len(f.CDF) > 1 {
			xys = append(xys, plotter.XY{X: s, Y: 100 * float64(i) / float64(len(f.CDF)-1)})
		}
	}
	if f.Count == 0 || len(xys) == 0 {
		return chart{Note: "No failover was measured in this run."}
	}
	p := newPlot("percentile of failovers (%)")
	l, err := plotter.NewLine(xys)
	if err != nil {
		return chart{Note: "No failover was measured in this run."}
	}
	l.LineStyle = lineStyle(0)
	p.Add(l)
	leg := newLegend()
	leg.Add("all clients", l)
	p.X.Min, p.X.Max = 0, max(xys[len(xys)-1].X*1.05, 0.1)
	p.X.Tick.Marker = niceTicks{n: 10}
	p.Y.Min, p.Y.Max = 0, 100
	p.Y.Tick.Marker = niceTicks{n: 5}
	return render("Failover time distribution", legendWidth(leg),
		[]panel{{plot: p, height: 226, legend: leg, xLabel: "failover time: disconnect → resubscribed everywhere (s)"}})
}
