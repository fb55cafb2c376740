package report

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/geolab/geolab/lab/check"
)

// timelineChart draws the run over time: a lane naming each fault window,
// the first deliveries per second by receiving region, and the
// replication lag of each link, on one time axis, with every fault window
// shaded across all of them.
func timelineChart(r *check.Result) chart {
	tl := r.Timeline
	end := 0.0
	if finite(r.Duration) {
		end = max(r.Duration, 0)
	}
	var regions []string
	if tl.BucketSeconds > 0 {
		for _, name := range sortedKeys(tl.Deliveries) {
			if d := tl.Deliveries[name]; len(d) > 0 {
				regions = append(regions, name)
				end = max(end, float64(len(d))*tl.BucketSeconds)
			}
		}
	}
	var links []string
	for _, name := range sortedKeys(tl.Lag) {
		ok := false
		for _, pt := range tl.Lag[name] {
			if finite(pt.T, pt.Seconds) {
				ok, end = true, max(end, pt.T)
			}
		}
		if ok {
			links = append(links, name)
		}
	}
	if len(regions) == 0 && len(links) == 0 {
		return chart{Note: "No deliveries and no replication lag were recorded: there is no timeline to draw."}
	}
	// Fault windows are drawn within the run (the checker ends an unhealed
	// one at the end of the run); they do not stretch the time axis.
	if !(end > 0) || !finite(end) {
		return chart{Note: "The run has no duration: there is no timeline to draw."}
	}

	bands := &faultBands{windows: faultWindows(r.Faults, end)}
	var panels []panel
	if len(regions) > 0 {
		panels = append(panels, deliveriesPanel(tl, regions, bands))
	}
	if len(links) > 0 {
		panels = append(panels, lagPanel(tl, links, bands))
	}
	var legends []*plot.Legend
	for _, pn := range panels {
		legends = append(legends, pn.legend)
	}
	lw := max(legendWidth(legends...), vg.Points(130))
	if len(bands.windows) > 0 {
		// Labels may run on into the legend column, which is empty beside the lane.
		panels = append([]panel{lanePanel(bands, end, chartWidth-lw-60, lw-vg.Points(14))}, panels...)
	}

	ticks := niceTicks{n: 12}.Ticks(0, end)
	bare := make(plot.ConstantTicks, len(ticks))
	for i, t := range ticks {
		bare[i] = plot.Tick{Value: t.Value}
	}
	for i, pn := range panels {
		pn.plot.X.Min, pn.plot.X.Max = 0, end
		if i == len(panels)-1 {
			pn.plot.X.Tick.Marker = plot.ConstantTicks(ticks)
		} else if pn.plot.X.Width > 0 {
			pn.plot.X.Tick.Marker = bare
		}
	}
	last := &panels[len(panels)-1]
	last.height += 36 // the time axis and its label
	last.xLabel = "time since the start of the run (s)"
	return render("Timeline: deliveries and replication lag with fault windows", lw, panels)
}

// lanePanel is the timeline's top panel: a bar and a label per fault
// window, on a time axis about width points wide; labels may overflow the
// axis's right end by up to overflow points.
func lanePanel(bands *faultBands, end float64, width, overflow vg.Length) panel {
	lane := newFaultLane(bands.windows, end, width, overflow)
	p := newPlot("")
	p.HideX()
	p.Y.Tick.Marker, p.Y.Width = plot.ConstantTicks{}, 0
	p.Y.Min, p.Y.Max = 0, float64(lane.rows)
	p.Add(bands, lane)
	return panel{plot: p, height: vg.Points(float64(lane.rows)*20 + 4)}
}

// deliveriesPanel draws the first deliveries per second of each receiving
// region, one step per bucket.
func deliveriesPanel(tl check.Timeline, regions []string, bands *faultBands) panel {
	p := newPlot("deliveries/s by receiving region")
	p.Add(bands)
	leg := newLegend()
	top := 0.0
	for i, name := range regions {
		d := tl.Deliveries[name]
		xys := make(plotter.XYs, 0, len(d)+1)
		for k, n := range d {
			xys = append(xys, plotter.XY{X: float64(k) * tl.BucketSeconds, Y: float64(n) / tl.BucketSeconds})
			top = max(top, float64(n)/tl.BucketSeconds)
		}
		xys = append(xys, plotter.XY{X: float64(len(d)) * tl.BucketSeconds, Y: xys[len(xys)-1].Y})
		l, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		l.LineStyle = lineStyle(i)
		l.StepStyle = plotter.PostStep
		p.Add(l)
		leg.Add(name, l)
	}
	p.Y.Min, p.Y.Max = 0, max(top*1.08, 1)
	p.Y.Tick.Marker = niceTicks{n: 5}
	return panel{plot: p, height: 210, legend: leg}
}

// lagPanel draws the replication lag of each link over time.
func lagPanel(tl check.Timeline, links []string, bands *faultBands) panel {
	p := newPlot("replication lag (s) by link")
	p.Add(bands)
	leg := newLegend()
	top := 0.0
	for i, name := range links {
		for j, seg := range lagSegments(tl.Lag[name], 3*max(tl.BucketSeconds, 1)) {
			l, err := plotter.NewLine(seg)
			if err != nil {
				continue
			}
			l.LineStyle = lineStyle(i)
			p.Add(l)
			if len(seg) == 1 { // a lone sample: a dot, or it would not show
				if s, err := plotter.NewScatter(seg); err == nil {
					s.GlyphStyle = draw.GlyphStyle{Color: lineStyle(i).Color, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
					p.Add(s)
				}
			}
			if j == 0 {
				leg.Add(pairName(name), l)
			}
			for _, xy := range seg {
				top = max(top, xy.Y)
			}
		}
	}
	p.Y.Min, p.Y.Max = 0, max(top*1.1, 0.1)
	p.Y.Tick.Marker = niceTicks{n: 4}
	return panel{plot: p, height: 170, legend: leg}
}

// lagSegments turns a link's lag samples into lines, broken where no
// sample came for longer than gap (the link was down or silent: drawing
// across would invent values).
func lagSegments(points []check.LagPoint, gap float64) []plotter.XYs {
	var segs []plotter.XYs
	var cur plotter.XYs
	for _, pt := range points {
		if !finite(pt.T, pt.Seconds) {
			continue
		}
		if len(cur) > 0 && pt.T-cur[len(cur)-1].X > gap {
			segs, cur = append(segs, cur), nil
		}
		cur = append(cur, plotter.XY{X: pt.T, Y: pt.Seconds})
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs
}
