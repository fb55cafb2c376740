package report

import (
	"cmp"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/geolab/geolab/lab/check"
)

// window is a fault window as the timeline draws it.
type window struct {
	from, to float64
	label    string // kind and target
	short    string // the fault's id, where the label does not fit
	row      int    // the fault lane's row, 0 at the top
}

// faultWindows returns the fault windows that can be drawn on [0, end],
// in inject order, labelled kind and target.
func faultWindows(faults []check.FaultWindow, end float64) []window {
	var ws []window
	for _, f := range faults {
		if !finite(f.Inject, f.Heal) {
			continue
		}
		from, to := max(0, min(f.Inject, end)), max(0, min(max(f.Heal, f.Inject), end))
		label := strings.TrimSpace(f.Kind + " " + pairName(f.Target))
		if !f.Healed {
			label += " (not healed)"
		}
		ws = append(ws, window{from: from, to: to, label: label, short: f.ID})
	}
	slices.SortStableFunc(ws, func(a, b window) int { return cmp.Compare(a.from, b.from) })
	return ws
}

// faultBands shades every fault window across a panel's full height, with
// a line at its inject and a dashed one at its heal.
type faultBands struct{ windows []window }

func (b *faultBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	edge := draw.LineStyle{Color: bandEdge, Width: vg.Points(0.8)}
	healed := edge
	healed.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
	for _, w := range b.windows {
		x0, x1 := trX(w.from), trX(w.to)
		x1 = max(x1, x0+vg.Points(1.5))
		c.FillPolygon(bandFill, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		c.StrokeLine2(edge, x0, c.Min.Y, x0, c.Max.Y)
		c.StrokeLine2(healed, x1, c.Min.Y, x1, c.Max.Y)
	}
}

// faultLane draws each fault window as a bar in its row with its label, so
// that the bands below it are named.
type faultLane struct {
	windows  []window
	rows     int
	overflow vg.Length // how far a label may run past the axis's right end
}

// maxLaneRows caps the fault lane's height: past it, a window whose label
// fits nowhere is labelled by its id, or not at all (the fault table below
// the chart lists every window).
const maxLaneRows = 8

// newFaultLane packs the windows' bars and labels into rows, greedily, so
// that no two overlap on a time axis of [0, end] about width points wide.
// A label starts just after its window's inject, or is moved left to end
// overflow points past the axis's end when it would run further (as Plot
// draws it).
func newFaultLane(ws []window, end float64, width, overflow vg.Length) *faultLane {
	sty := textStyle(10, ink)
	perPoint := end / float64(width)
	limit := end + float64(overflow)*perPoint
	type span struct{ from, to float64 }
	var rows [][]span
	free := func(s span) int { // the first row with room for s, or -1
		for k, row := range rows {
			if !slices.ContainsFunc(row, func(o span) bool { return s.from < o.to && o.from < s.to }) {
				return k
			}
		}
		if len(rows) < maxLaneRows {
			rows = append(rows, nil)
			return len(rows) - 1
		}
		return -1
	}
	for i := range ws {
		w := &ws[i]
		placed := false
		for _, label := range []string{w.label, w.short, ""} {
			s := span{w.from, w.to + 2*perPoint}
			if label != "" {
				text := float64(sty.Width(label)+vg.Points(10)) * perPoint
				start := max(0, min(w.from, limit-text))
				s = span{min(w.from, start), max(w.to, start+text)}
			}
			if k := free(s); k >= 0 {
				w.row, w.label, placed = k, label, true
				rows[k] = append(rows[k], s)
				break
			}
		}
		if !placed { // not even its bar fits: draw it over another, unlabelled
			w.row, w.label = i%len(rows), ""
		}
	}
	return &faultLane{windows: ws, rows: max(len(rows), 1), overflow: overflow}
}

func (l *faultLane) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := textStyle(10, ink)
	sty.YAlign = draw.YCenter
	for _, w := range l.windows {
		x0, x1 := trX(w.from), trX(w.to)
		x1 = max(x1, x0+vg.Points(2))
		row := float64(l.rows - 1 - w.row)
		y0, y1 := trY(row+0.1), trY(row+0.9)
		c.FillPolygon(barFill, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
		tx := min(x0+vg.Points(4), c.Max.X+l.overflow-sty.Width(w.label))
		c.FillText(sty, vg.Point{X: max(tx, c.Min.X), Y: (y0 + y1) / 2}, w.label)
	}
}
