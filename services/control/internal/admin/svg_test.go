package admin

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// An axis' top is yTicks round steps at or above the data, no finer than
// the digits shown.
func TestNiceTop(t *testing.T) {
	for _, tc := range []struct {
		v      float64
		digits int
		want   float64
	}{
		{40, 0, 40}, {41, 0, 80}, {6, 0, 8}, {3, 0, 4}, {1, 0, 4}, {0, 0, 4}, {math.NaN(), 0, 4},
		{0.372, 3, 0.4}, {0.31, 3, 0.4}, {5.25, 1, 8}, {0.05, 1, 0.4}, {250, 0, 400},
	} {
		if got := niceTop(tc.v, tc.digits); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("niceTop(%v, %d) = %v, want %v", tc.v, tc.digits, got, tc.want)
		}
	}
}

// Data is text in a chart, never markup: names and labels are escaped and
// the SVG stays well-formed.
func TestChartEscapes(t *testing.T) {
	evil := `<script>alert("x")</script> & 'y'`
	charts := []Chart{
		lineChart{ID: "c1", Title: evil, Desc: evil, XLabel: evil, YLabel: evil, X: []string{evil, "b"},
			Series: []Series{{Name: evil, Values: []float64{1, math.NaN()}}}}.Render(),
		barChart{ID: "c2", Title: evil, Desc: evil, XLabel: evil, Bars: []Bar{{Name: evil, Value: 0.2, Class: evil}},
			Lines: []Threshold{{Name: evil, Value: 0.1, Class: "warn"}}}.Render(),
	}
	for _, c := range charts {
		d := xml.NewDecoder(strings.NewReader(c.SVG))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
			if e, ok := tok.(xml.StartElement); ok && e.Name.Local == "script" {
				t.Fatalf("%s: a script element", c.ID)
			}
		}
		if c.Points != 1 {
			t.Errorf("%s: %d points, want 1", c.ID, c.Points)
		}
	}
}
