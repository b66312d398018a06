package admin

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// better is the way a KPI should move.
type better int

const (
	upIsGood   better = 1
	downIsGood better = -1
)

// criticalKey is the critical-risk vehicles KPI, which is not a report
// figure: it is the champion's latest scoring's count (model_scorings).
const criticalKey = "critical_risk_vehicles"

// kpiSpec is how the dashboard shows a KPI.
type kpiSpec struct {
	// Key is the figure's key in reports.kpis (the reporter's kpi.Rows
	// keys) or criticalKey; with perType, the prefix a vehicle type follows
	// (mtbf_days_bus): one tile per type the latest report has.
	Key     string
	Label   string
	Unit    string
	Digits  int // decimals shown
	Better  better
	perType bool
}

// kpiSpecs are the dashboard's KPI tiles, in display order: the only place
// that names and formats them.
var kpiSpecs = []kpiSpec{
	{Key: "wo_opened", Label: "Work orders opened", Unit: "work orders", Better: downIsGood},
	{Key: "wo_completed", Label: "Work orders completed", Unit: "work orders", Better: upIsGood},
	{Key: "wo_overdue", Label: "Overdue work orders", Unit: "work orders", Better: downIsGood},
	{Key: "mttr_hours", Label: "Mean time to repair (MTTR)", Unit: "h", Digits: 1, Better: downIsGood},
	{Key: "mtbf_days_", Label: "Mean time between failures (MTBF)", Unit: "d", Digits: 1, Better: upIsGood, perType: true},
	{Key: "pm_compliance_pct", Label: "PM compliance", Unit: "%", Digits: 1, Better: upIsGood},
	{Key: criticalKey, Label: "Critical-risk vehicles", Unit: "vehicles", Better: downIsGood},
	{Key: "inventory_at_or_below_reorder", Label: "Low stock", Unit: "items at or below reorder level", Better: downIsGood},
}

// specFor is the spec of a report key (a per-type key's prefix's), or false.
func specFor(key string) (kpiSpec, bool) {
	for _, s := range kpiSpecs {
		if key == s.Key || (s.perType && strings.HasPrefix(key, s.Key)) {
			return s, true
		}
	}
	return kpiSpec{}, false
}

// label is the human label of key: the spec's, with the vehicle type of a
// per-type key ("… (bus)").
func (s kpiSpec) label(key string) string {
	if t := strings.TrimPrefix(key, s.Key); s.perType && t != "" {
		return s.Label + " (" + t + ")"
	}
	return s.Label
}

// keys are the spec's keys in the figures: its key, or for a per-type spec
// each of its types' (its bare prefix when there is none, a tile without a
// value).
func (s kpiSpec) keys(cur map[string]float64) []string {
	if !s.perType {
		return []string{s.Key}
	}
	var out []string
	for k := range cur {
		if strings.HasPrefix(k, s.Key) && k != s.Key {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return []string{s.Key}
	}
	slices.Sort(out)
	return out
}

// Tile is a KPI as the dashboard shows it: this week's value and the change
// from the week before.
type Tile struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Unit  string `json:"unit"`
	// Value is the latest figure (nil: none); Text is it as shown ("n/a"
	// without one).
	Value *float64 `json:"value"`
	Text  string   `json:"text"`
	// Delta is the change from the previous week, rounded as shown (nil:
	// no figure that week); DeltaText is it signed ("+3", "-1.5").
	Delta     *float64 `json:"delta"`
	DeltaText string   `json:"delta_text"`
	// Against is what the delta compares with: the previous report's ISO
	// week, or for critical-risk vehicles the day of the scoring.
	Against string `json:"against"`
	// Trend is up, down or flat; Verdict good, bad or neutral (flat), by
	// the KPI's better direction; both empty without a delta.
	Trend   string `json:"trend"`
	Verdict string `json:"verdict"`
}

// tiles are the KPI tiles of a report's figures against those of the
// report before, of ISO week against.
func tiles(cur, prev map[string]float64, against string) []Tile {
	var out []Tile
	for _, s := range kpiSpecs {
		for _, k := range s.keys(cur) {
			out = append(out, s.tile(k, cur, prev, against))
		}
	}
	return out
}

func (s kpiSpec) tile(key string, cur, prev map[string]float64, against string) Tile {
	t := Tile{Key: key, Label: s.label(key), Unit: s.Unit, Text: "n/a"}
	v, ok := cur[key]
	if !ok {
		return t
	}
	t.Value, t.Text = &v, fixed(s.round(v), s.Digits)
	p, ok := prev[key]
	if !ok {
		return t
	}
	d := s.round(v - p)
	t.Delta, t.DeltaText, t.Against = &d, fixed(d, s.Digits), against
	switch {
	case d > 0:
		t.Trend, t.DeltaText = "up", "+"+t.DeltaText
	case d < 0:
		t.Trend = "down"
	default:
		t.Trend, t.Verdict, t.DeltaText = "flat", "neutral", fixed(0, s.Digits)
		return t
	}
	t.Verdict = "bad"
	if (d > 0) == (s.Better == upIsGood) {
		t.Verdict = "good"
	}
	return t
}

// round rounds v to the digits shown, halves away from zero.
func (s kpiSpec) round(v float64) float64 {
	scale := math.Pow(10, float64(s.Digits))
	return math.Round(v*scale) / scale
}

// figures are a report's numeric KPIs.
func figures(kpis map[string]any) map[string]float64 {
	out := map[string]float64{}
	for k, v := range kpis {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// trendSpec is a dashboard trend chart: report figures over the weeks.
type trendSpec struct {
	ID, Title string
	Keys      []string // kpiSpecs keys, a line each
	Max       float64  // the y axis' top; 0: from the data
}

// trendSpecs are the dashboard's trend charts.
var trendSpecs = []trendSpec{
	{ID: "chart-work-orders", Title: "Work orders opened vs completed", Keys: []string{"wo_opened", "wo_completed"}},
	{ID: "chart-overdue", Title: "Overdue work orders", Keys: []string{"wo_overdue"}},
	{ID: "chart-pm-compliance", Title: "PM compliance", Keys: []string{"pm_compliance_pct"}, Max: 100},
	{ID: "chart-mttr", Title: "Mean time to repair", Keys: []string{"mttr_hours"}},
}

// trendCharts draws the trend charts over reports, oldest first.
func trendCharts(reports []Report) []Chart {
	weeks := make([]string, len(reports))
	figs := make([]map[string]float64, len(reports))
	for i, r := range reports {
		weeks[i], figs[i] = r.ISOWeek, figures(r.KPIs)
	}
	var out []Chart
	for _, t := range trendSpecs {
		first, _ := specFor(t.Keys[0])
		c := lineChart{ID: t.ID, Title: t.Title, XLabel: "ISO week", YLabel: first.Unit, X: weeks, Max: t.Max, Digits: first.Digits,
			Desc: t.Title + " per week over the last " + plural(len(weeks), "stored weekly report") + "."}
		for _, k := range t.Keys {
			s, _ := specFor(k)
			line := Series{Name: s.label(k), Values: make([]float64, len(figs))}
			for i, f := range figs {
				if v, ok := f[k]; ok {
					line.Values[i] = v
				} else {
					line.Values[i] = math.NaN()
				}
			}
			c.Series = append(c.Series, line)
		}
		out = append(out, c.Render())
	}
	return out
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
