package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chart is one chart of the page: an inline SVG drawn from the data, or,
// when there is nothing to draw, a note saying so.
type chart struct {
	SVG  template.HTML
	Note string
}

// The charts' look. Text is Liberation Sans (metric-compatible with Arial,
// which the page's CSS names as the fallback), at sizes in points of the
// SVG's viewBox, which the page scales to its column.
var (
	sans       = font.Font{Typeface: "Liberation", Variant: "Sans"}
	ink        = color.RGBA{0x1f, 0x29, 0x37, 0xff} // text and axes
	muted      = color.RGBA{0x6b, 0x72, 0x80, 0xff} // tick labels
	gridColour = color.RGBA{0xe5, 0xe7, 0xeb, 0xff}
	// Fault windows: a light band across every panel, a stronger bar in
	// the fault lane.
	bandFill = color.NRGBA{0xdc, 0x26, 0x26, 0x1c}
	bandEdge = color.NRGBA{0xdc, 0x26, 0x26, 0x73}
	barFill  = color.NRGBA{0xdc, 0x26, 0x26, 0x40}
	// palette is Tableau 10 without its red, which marks faults.
	palette = []color.Color{
		color.RGBA{0x4e, 0x79, 0xa7, 0xff}, color.RGBA{0xf2, 0x8e, 0x2b, 0xff},
		color.RGBA{0x59, 0xa1, 0x4f, 0xff}, color.RGBA{0xb0, 0x7a, 0xa1, 0xff},
		color.RGBA{0x76, 0xb7, 0xb2, 0xff}, color.RGBA{0x9c, 0x75, 0x5f, 0xff},
		color.RGBA{0xed, 0xc9, 0x48, 0xff}, color.RGBA{0xff, 0x9d, 0xa7, 0xff},
		color.RGBA{0x6b, 0x72, 0x80, 0xff},
	}
	// dashes vary the lines once the palette is used up.
	dashes = [][]vg.Length{nil, {vg.Points(5), vg.Points(3)}, {vg.Points(1.5), vg.Points(2)}}
)

const chartWidth = 900 // points: the viewBox width of every chart

// lineStyle is the style of the i-th series of a chart.
func lineStyle(i int) draw.LineStyle {
	return draw.LineStyle{
		Color:  palette[i%len(palette)],
		Width:  vg.Points(1.6),
		Dashes: dashes[(i/len(palette))%len(dashes)],
	}
}

func textStyle(size float64, c color.Color) text.Style {
	return text.Style{Color: c, Font: font.From(sans, vg.Points(size)), Handler: plot.DefaultTextHandler}
}

// newPlot is a plot in the report's style: sans-serif text, light grid,
// no legend and no x label (layout draws both).
func newPlot(yLabel string) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil // the page is the background
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		// Keep each axis's own text alignment; change the font and colour.
		a.Label.TextStyle.Font, a.Label.TextStyle.Color = font.From(sans, 11), ink
		a.Tick.Label.Font, a.Tick.Label.Color = font.From(sans, 10), muted
		a.Color, a.Tick.Color = muted, muted
		a.Width, a.Tick.Width = vg.Points(0.6), vg.Points(0.6)
		a.Padding = vg.Points(3)
	}
	p.Y.Label.Text, p.Y.Label.Padding = yLabel, vg.Points(6)
	g := plotter.NewGrid()
	g.Vertical = draw.LineStyle{Color: gridColour, Width: vg.Points(0.6)}
	g.Horizontal = g.Vertical
	p.Add(g)
	return p
}

// newLegend is a legend in the report's style, for layout to draw.
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = textStyle(10, ink)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(18)
	l.Padding = vg.Points(3)
	return &l
}

// panel is one plot of a chart with its height, its legend (nil: none) and
// the label of its x axis, which layout draws centred under the data (the
// plot's own x label is placed by the data's arithmetic middle, which is
// off-centre on a log axis).
type panel struct {
	plot   *plot.Plot
	height vg.Length
	legend *plot.Legend
	xLabel string
}

const xLabelHeight = 18 // points under a panel for its x label

// layout draws panels top to bottom on dc with their data areas aligned
// left and right, so that panels sharing an x axis share its positions, and
// their legends in a column of width legendWidth to the right.
func layout(dc draw.Canvas, legendWidth vg.Length, panels []panel) {
	cs := make([]draw.Canvas, len(panels))
	top := dc.Max.Y
	var left, right vg.Length
	for i, pn := range panels {
		c := dc
		c.Max.X -= legendWidth
		c.Max.Y, c.Min.Y = top, top-pn.height
		if pn.xLabel != "" {
			c.Min.Y += xLabelHeight
		}
		top -= pn.height + panelGap
		cs[i] = c
		d := pn.plot.DataCanvas(c)
		left, right = max(left, d.Min.X-c.Min.X), max(right, c.Max.X-d.Max.X)
	}
	for i, pn := range panels {
		d := pn.plot.DataCanvas(cs[i])
		c := draw.Crop(cs[i], left-(d.Min.X-cs[i].Min.X), -(right - (cs[i].Max.X - d.Max.X)), 0, 0)
		pn.plot.Draw(c)
		d = pn.plot.DataCanvas(c)
		if pn.xLabel != "" {
			sty := textStyle(11, ink)
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
			c.FillText(sty, vg.Point{X: (d.Min.X + d.Max.X) / 2, Y: c.Min.Y - xLabelHeight + 3}, pn.xLabel)
		}
		if pn.legend != nil {
			lc := dc
			lc.Min.X, lc.Max.Y, lc.Min.Y = dc.Max.X-legendWidth+vg.Points(14), d.Max.Y, d.Min.Y
			pn.legend.Draw(lc)
		}
	}
}

// legendWidth is the width of a column that fits every legend's entries.
func legendWidth(ls ...*plot.Legend) vg.Length {
	var w vg.Length
	for _, l := range ls {
		if l == nil {
			continue
		}
		r := l.Rectangle(draw.Canvas{})
		w = max(w, r.Max.X-r.Min.X)
	}
	if w == 0 {
		return 0
	}
	return w + vg.Points(24)
}

// svgSize matches the size attributes vgsvg writes on its root element.
var svgSize = regexp.MustCompile(`^<svg width="[^"]*" height="[^"]*"`)

// The margins of a chart around its panels, in points.
const (
	marginLeft, marginRight, marginBottom, marginTop = 4, 8, 4, 10
	panelGap                                         = 6
)

// render lays the panels out (see layout) on a chartWidth-wide SVG canvas
// as tall as they need and returns it as an inline <svg> element sized by
// its viewBox, labelled for screen readers. A panic of the plotting library
// becomes a note: a report never fails for a chart.
func render(label string, legendWidth vg.Length, panels []panel) (c chart) {
	defer func() {
		if r := recover(); r != nil {
			c = chart{Note: fmt.Sprintf("This chart could not be drawn: %v.", r)}
		}
	}()
	height := vg.Length(marginBottom + marginTop + panelGap*(len(panels)-1))
	for _, pn := range panels {
		height += pn.height
	}
	canvas := vgsvg.New(vg.Points(chartWidth), height)
	layout(draw.Crop(draw.New(canvas), marginLeft, -marginRight, marginBottom, -marginTop), legendWidth, panels)
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return chart{Note: fmt.Sprintf("This chart could not be drawn: %v.", err)}
	}
	svg := buf.Bytes()
	if i := bytes.Index(svg, []byte("<svg")); i >= 0 {
		svg = svg[i:] // drop the XML declaration and comment: the SVG is inline
	}
	attrs := fmt.Sprintf(`<svg class="chart" role="img" aria-label="%s"`, template.HTMLEscapeString(label))
	svg = svgSize.ReplaceAll(svg, []byte(attrs))
	return chart{SVG: template.HTML(svg)}
}

// niceTicks marks about n evenly spaced round values (steps of 1, 2 or 5
// times a power of ten) between lo and hi, with unlabelled minor ticks
// between them.
type niceTicks struct {
	n      int
	suffix string // appended to labels, e.g. " s"
}

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []plot.Tick{{Value: lo, Label: fmtTick(lo, 0) + t.suffix}}
	}
	step := niceStep((hi - lo) / float64(max(t.n, 1)))
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	minor := step / 2
	if m := step / math.Pow10(int(math.Floor(math.Log10(step)+1e-9))); m > 4 {
		minor = step / 5
	}
	for v := math.Ceil(lo/minor-1e-9) * minor; v <= hi+minor*1e-6; v += minor {
		if k := v / step; math.Abs(k-math.Round(k)) < 1e-6 {
			ticks = append(ticks, plot.Tick{Value: v, Label: fmtTick(v, prec) + t.suffix})
		} else {
			ticks = append(ticks, plot.Tick{Value: v})
		}
	}
	return ticks
}

// niceStep is the smallest of 1, 2, 5 × 10^k at or above x.
func niceStep(x float64) float64 {
	if !(x > 0) {
		return 1
	}
	p := math.Pow10(int(math.Floor(math.Log10(x))))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64, prec int) string {
	if math.Abs(v) < 1e-12 {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// logTicks marks 1, 2 and 5 × 10^k on a log axis (only 10^k past four
// decades), with unlabelled minor ticks at the other integers; over less
// than a decade and a half, where that leaves too few labels, it marks
// like niceTicks.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) || hi/lo < 4 {
		return niceTicks{n: 5}.Ticks(lo, hi)
	}
	labelled := map[int]bool{1: true, 2: true, 5: true}
	if hi/lo > 1e4 {
		labelled = map[int]bool{1: true}
	}
	var ticks []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if labelled[m] {
				t.Label = strconv.FormatFloat(v, 'f', max(0, -e), 64)
			}
			ticks = append(ticks, t)
		}
	}
	n := 0
	for _, t := range ticks {
		if t.Label != "" {
			n++
		}
	}
	if n < 3 {
		return niceTicks{n: 5}.Ticks(lo, hi)
	}
	return ticks
}

// finite reports whether every x is a number, neither NaN nor infinite.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
