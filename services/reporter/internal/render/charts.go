// Package render turns a KPI report into its files: PNG charts (gonum
// plot), an HTML document with the charts inline, a PDF with the same
// content (fpdf) and a CSV of the KPI table.
package render

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// Chart sizes: 8 × 4.5 inches at 96 dpi, 768 × 432 pixels.
const (
	ChartWidth  = 8 * vg.Inch
	ChartHeight = 4.5 * vg.Inch
	ChartDPI    = 96
)

// Chart file names.
const (
	ChartStatus = "wo_status.png"
	ChartMTBF   = "mtbf_by_type.png"
	ChartTrend  = "trend_12w.png"
)

// Chart is one rendered chart.
type Chart struct {
	Name  string // file name
	Title string
	PNG   []byte
}

var (
	blue   = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb2, A: 0xff}
	orange = color.RGBA{R: 0xe0, G: 0x7b, B: 0x12, A: 0xff}
)

// Charts draws the report's three charts.
func Charts(r *kpi.Report) ([]Chart, error) {
	var out []Chart
	for _, c := range []struct {
		name, title string
		draw        func(*kpi.Report, string) (*plot.Plot, error)
	}{
		{ChartStatus, "Work orders by status, " + r.Week.String(), statusChart},
		{ChartMTBF, fmt.Sprintf("MTBF by vehicle type (days, trailing %d days to the end of %s)", r.MTBFWindowDays, r.Week), mtbfChart},
		{ChartTrend, fmt.Sprintf("Work orders opened vs completed, %d weeks to %s", len(r.Trend), r.Week), trendChart},
	} {
		p, err := c.draw(r, c.title)
		if err != nil {
			return nil, fmt.Errorf("render: chart %s: %w", c.name, err)
		}
		b, err := png(p)
		if err != nil {
			return nil, fmt.Errorf("render: chart %s: %w", c.name, err)
		}
		out = append(out, Chart{Name: c.name, Title: c.title, PNG: b})
	}
	return out, nil
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 14
	p.X.Tick.Label.Font.Size = 11
	p.Y.Tick.Label.Font.Size = 11
	p.Y.Label.TextStyle.Font.Size = 12
	p.Add(plotter.NewGrid())
	return p
}

// bars is a bar chart with its values written above the bars ("n/a" for
// an undefined one, drawn as no bar).
func bars(title, ylabel string, labels []string, values []kpi.Opt, f kpi.Format, c color.Color) (*plot.Plot, error) {
	p := newPlot(title)
	p.Y.Label.Text = ylabel
	vs := make(plotter.Values, len(values))
	top := 0.0
	for i, v := range values {
		if v.Valid {
			vs[i] = v.V
			top = max(top, v.V)
		}
	}
	if top == 0 {
		top = 1
	}
	b, err := plotter.NewBarChart(vs, vg.Points(40))
	if err != nil {
		return nil, err
	}
	b.Color = c
	b.LineStyle.Width = 0
	p.Add(b)
	xys := make(plotter.XYs, len(values))
	texts := make([]string, len(values))
	for i, v := range values {
		xys[i] = plotter.XY{X: float64(i), Y: vs[i] + top*0.02}
		texts[i] = kpi.FormatValue(v, f)
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = 11
		l.TextStyle[i].XAlign = draw.XCenter
	}
	p.Add(l)
	p.NominalX(labels...)
	p.Y.Min, p.Y.Max = 0, top*1.15
	return p, nil
}

func statusChart(r *kpi.Report, title string) (*plot.Plot, error) {
	w := r.Current.WorkOrders
	return bars(title, "work orders", []string{"Opened", "Completed", "In progress", "Pending", "Overdue"},
		[]kpi.Opt{kpi.Count(w.Opened), kpi.Count(w.Completed), kpi.Count(w.InProgress), kpi.Count(w.Pending), kpi.Count(w.Overdue)},
		kpi.Integer, blue)
}

func mtbfChart(r *kpi.Report, title string) (*plot.Plot, error) {
	types := kpi.VehicleTypes(r)
	values := make([]kpi.Opt, len(types))
	for i, t := range types {
		values[i] = r.Current.Type(t).MTBF
	}
	if len(types) == 0 {
		types, values = []string{"(no vehicles)"}, []kpi.Opt{kpi.NA}
	}
	return bars(title, "days", types, values, kpi.Days, orange)
}

func trendChart(r *kpi.Report, title string) (*plot.Plot, error) {
	p := newPlot(title)
	p.Y.Label.Text = "work orders"
	opened := make(plotter.XYs, len(r.Trend))
	completed := make(plotter.XYs, len(r.Trend))
	labels := make([]string, len(r.Trend))
	top := 1.0
	for i, t := range r.Trend {
		opened[i] = plotter.XY{X: float64(i), Y: float64(t.Opened)}
		completed[i] = plotter.XY{X: float64(i), Y: float64(t.Completed)}
		labels[i] = fmt.Sprintf("W%02d", t.Week.Num)
		top = max(top, float64(t.Opened), float64(t.Completed))
	}
	for _, s := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
		dash []vg.Length
	}{{"Opened", opened, blue, nil}, {"Completed", completed, orange, []vg.Length{vg.Points(6), vg.Points(3)}}} {
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width, l.Dashes = s.c, vg.Points(2), s.dash
		pts.Color, pts.Shape, pts.Radius = s.c, draw.CircleGlyph{}, vg.Points(3)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = font.Points(11)
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(r.Trend))-0.5
	p.Y.Min, p.Y.Max = 0, top*1.2
	return p, nil
}

func png(p *plot.Plot) ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(ChartWidth, ChartHeight), vgimg.UseDPI(ChartDPI))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
