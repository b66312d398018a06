package admin

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The page's charts are inline SVG drawn here, server-side, from the
// figures the JSON routes answer with: no script library, no external
// request. Each is an accessible image (role="img" labelled by its <title>
// and <desc>), styled by admin.css through classes (the page's CSP allows no
// inline style), with one <circle class="point"> (line charts) or
// <rect class="bar"> (bar charts) per datum, each with a <title> tooltip.

// Chart is a drawn chart: its SVG and the number of data it plots.
type Chart struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	SVG    string `json:"svg"`
	Points int    `json:"points"`
}

// Series is one line of a line chart: a value per x label (NaN: none).
type Series struct {
	Name   string
	Values []float64
}

// lineChart is a line chart over labelled x positions (weeks, runs).
type lineChart struct {
	ID, Title, Desc string
	XLabel, YLabel  string
	X               []string
	Series          []Series
	// Max is the y axis' top (e.g. 100 for a percentage, 1 for an AUC); 0:
	// a round number at or above the largest value (niceTop).
	Max    float64
	Digits int // of the y ticks' and tooltips' values
}

// The drawing area of a line chart, in viewBox units.
const (
	chartW, chartH            = 640, 260
	padLeft, padRight         = 64, 36
	padTop, padBottom         = 34, 48
	yTicks                    = 4
	plotW, plotH      float64 = chartW - padLeft - padRight, chartH - padTop - padBottom
)

// Render draws the chart.
func (c lineChart) Render() Chart {
	var b strings.Builder
	top := c.Max
	if top <= 0 {
		top = niceTop(maxValue(c.Series), c.Digits)
	}
	svgOpen(&b, c.ID, c.Title, c.Desc, chartW, chartH)
	c.axes(&b, top)
	points := 0
	for i, s := range c.Series {
		points += c.line(&b, i, s, top)
	}
	c.legend(&b)
	b.WriteString("</svg>")
	return Chart{ID: c.ID, Title: c.Title, SVG: b.String(), Points: points}
}

// axes draws the y grid with its ticks, the x labels (thinned to about six) and both axis titles.
func (c lineChart) axes(b *strings.Builder, top float64) {
	for i := 0; i <= yTicks; i++ {
		v := top * float64(i) / yTicks
		y := padTop + plotH - plotH*float64(i)/yTicks
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, padLeft, num(y), chartW-padRight, num(y))
		fmt.Fprintf(b, `<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>`, padLeft-6, num(y+4), esc(fixed(v, c.Digits)))
	}
	step := max(1, (len(c.X)+5)/6)
	for i, x := range c.X {
		if i%step == 0 || i == len(c.X)-1 {
			fmt.Fprintf(b, `<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, num(c.xPos(i)), padTop+int(plotH)+16, esc(x))
		}
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padLeft, padTop+int(plotH), chartW-padRight, padTop+int(plotH))
	fmt.Fprintf(b, `<text class="axis-label" x="%s" y="%d" text-anchor="middle">%s</text>`, num(padLeft+plotW/2), chartH-6, esc(c.XLabel))
	fmt.Fprintf(b, `<text class="axis-label" x="14" y="%s" text-anchor="middle" transform="rotate(-90 14 %s)">%s</text>`,
		num(padTop+plotH/2), num(padTop+plotH/2), esc(c.YLabel))
}

// xPos is the x coordinate of the i-th label.
func (c lineChart) xPos(i int) float64 {
	if len(c.X) < 2 {
		return padLeft + plotW/2
	}
	return padLeft + plotW*float64(i)/float64(len(c.X)-1)
}

// line draws a series' polyline and points and returns how many points.
func (c lineChart) line(b *strings.Builder, i int, s Series, top float64) int {
	var pts []string
	var dots strings.Builder
	for j, v := range s.Values {
		if math.IsNaN(v) || j >= len(c.X) {
			continue
		}
		x, y := c.xPos(j), padTop+plotH-plotH*math.Min(math.Max(v, 0), top)/top
		pts = append(pts, num(x)+","+num(y))
		fmt.Fprintf(&dots, `<circle class="point s%d" cx="%s" cy="%s" r="3.5"><title>%s, %s: %s</title></circle>`,
			i, num(x), num(y), esc(s.Name), esc(c.X[j]), esc(fixed(v, c.Digits)))
	}
	fmt.Fprintf(b, `<g class="series s%d" data-series="%s">`, i, esc(s.Name))
	if len(pts) > 1 {
		fmt.Fprintf(b, `<polyline class="line s%d" points="%s"/>`, i, strings.Join(pts, " "))
	}
	b.WriteString(dots.String())
	b.WriteString("</g>")
	return len(pts)
}

// legend names each series above the plot, in its colour.
func (c lineChart) legend(b *strings.Builder) {
	x := padLeft
	for i, s := range c.Series {
		fmt.Fprintf(b, `<rect class="swatch s%d" x="%d" y="10" width="12" height="12"/>`, i, x)
		fmt.Fprintf(b, `<text class="legend" x="%d" y="20">%s</text>`, x+16, esc(s.Name))
		x += 32 + 7*len([]rune(s.Name))
	}
}

// Threshold is a reference line of a bar chart.
type Threshold struct {
	Name  string
	Value float64
	Class string
}

// Bar is one bar of a bar chart; Class colours it.
type Bar struct {
	Name  string
	Value float64
	Class string
}

// barChart is a horizontal bar chart, a row per bar, with reference lines.
type barChart struct {
	ID, Title, Desc string
	XLabel          string
	Bars            []Bar
	Lines           []Threshold
	Digits          int
}

// Geometry of a bar chart: a row per bar.
const (
	barLabelW, barRowH = 170, 22
)

// Render draws the chart.
func (c barChart) Render() Chart {
	var b strings.Builder
	top := niceTop(math.Max(maxBar(c.Bars), maxLine(c.Lines)*1.2), c.Digits)
	h := padTop + barRowH*len(c.Bars) + padBottom
	bw := float64(chartW - barLabelW - padRight)
	xPos := func(v float64) float64 { return barLabelW + bw*math.Min(math.Max(v, 0), top)/top }
	svgOpen(&b, c.ID, c.Title, c.Desc, chartW, h)
	for i, bar := range c.Bars {
		y := padTop + barRowH*i
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, barLabelW-6, y+15, esc(bar.Name))
		fmt.Fprintf(&b, `<rect class="bar %s" data-name="%s" x="%d" y="%d" width="%s" height="%d"><title>%s: %s</title></rect>`,
			esc(bar.Class), esc(bar.Name), barLabelW, y+3, num(xPos(bar.Value)-barLabelW), barRowH-6, esc(bar.Name), esc(fixed(bar.Value, c.Digits)))
	}
	bottom := padTop + barRowH*len(c.Bars)
	for _, l := range c.Lines {
		x := num(xPos(l.Value))
		fmt.Fprintf(&b, `<line class="threshold %s" x1="%s" y1="%d" x2="%s" y2="%d"><title>%s</title></line>`, esc(l.Class), x, padTop-4, x, bottom, esc(l.Name))
		fmt.Fprintf(&b, `<text class="legend %s" x="%s" y="%d" text-anchor="middle">%s</text>`, esc(l.Class), x, padTop-10, esc(l.Name))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, barLabelW, bottom, chartW-padRight, bottom)
	for i := 0; i <= yTicks; i++ {
		v := top * float64(i) / yTicks
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, num(xPos(v)), bottom+16, esc(fixed(v, c.Digits)))
	}
	fmt.Fprintf(&b, `<text class="axis-label" x="%s" y="%d" text-anchor="middle">%s</text>`, num(barLabelW+bw/2), h-6, esc(c.XLabel))
	b.WriteString("</svg>")
	return Chart{ID: c.ID, Title: c.Title, SVG: b.String(), Points: len(c.Bars)}
}

// svgOpen starts an accessible SVG image of the given size.
func svgOpen(b *strings.Builder, id, title, desc string, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-title %s-desc">`,
		esc(id), w, h, w, h, esc(id), esc(id))
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(id), esc(title), esc(id), esc(desc))
}

// niceTop is an axis' top for data up to v: yTicks steps of 1, 2 or 5
// times a power of ten, a step no finer than the digits shown.
func niceTop(v float64, digits int) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		v = 0
	}
	step := math.Max(v/yTicks, math.Pow(10, -float64(digits)))
	p := math.Pow(10, math.Floor(math.Log10(step)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= step*(1-1e-9) {
			return m * p * yTicks
		}
	}
	return 10 * p * yTicks
}

func maxValue(ss []Series) float64 {
	m := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				m = math.Max(m, v)
			}
		}
	}
	return m
}

func maxBar(bars []Bar) float64 {
	m := 0.0
	for _, b := range bars {
		m = math.Max(m, b.Value)
	}
	return m
}

func maxLine(lines []Threshold) float64 {
	m := 0.0
	for _, l := range lines {
		m = math.Max(m, l.Value)
	}
	return m
}

// num writes a coordinate.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// fixed writes v with digits decimals.
func fixed(v float64, digits int) string { return strconv.FormatFloat(v, 'f', digits, 64) }

// esc escapes text and attribute values for XML.
func esc(s string) string { return html.EscapeString(s) }
