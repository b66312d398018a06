package admin_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
)

// node is an element of a chart's SVG, parsed as strict XML.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

// parseSVG parses a chart: it must be well-formed XML, an accessible SVG
// image labelled by its title and description.
func parseSVG(t *testing.T, c admin.Chart) node {
	t.Helper()
	var n node
	if err := xml.Unmarshal([]byte(c.SVG), &n); err != nil {
		t.Fatalf("chart %s is not well-formed: %v\n%s", c.ID, err, c.SVG)
	}
	if n.XMLName.Space != "http://www.w3.org/2000/svg" || n.XMLName.Local != "svg" || n.attr("role") != "img" ||
		n.attr("aria-labelledby") != c.ID+"-title "+c.ID+"-desc" {
		t.Errorf("chart %s: root %v %v", c.ID, n.XMLName, n.Attrs)
	}
	title, desc := n.find("title", ""), n.find("desc", "")
	if len(title) == 0 || title[0].attr("id") != c.ID+"-title" || title[0].Text != c.Title || len(desc) != 1 || desc[0].Text == "" {
		t.Errorf("chart %s: title %+v, desc %+v", c.ID, title, desc)
	}
	return n
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// find is every descendant element named tag with class among its classes
// ("" for any).
func (n node) find(tag, class string) []node {
	var out []node
	for _, c := range n.Nodes {
		if c.XMLName.Local == tag && (class == "" || slices.Contains(strings.Fields(c.attr("class")), class)) {
			out = append(out, c)
		}
		out = append(out, c.find(tag, class)...)
	}
	return out
}

// texts are the character data of the elements named tag with class.
func (n node) texts(tag, class string) []string {
	var out []string
	for _, e := range n.find(tag, class) {
		out = append(out, e.Text)
	}
	return out
}

// seedWeeks stores three weekly reports (the fixture's 2026-W47 gets its
// figures), three champion scorings and an open and a resolved alert.
func (f *fixture) seedWeeks(t *testing.T) {
	t.Helper()
	exec(t, f.pool, `UPDATE reports SET kpis = '{"wo_opened": 40, "wo_completed": 35, "wo_overdue": 6, "mttr_hours": 5.25,
		"mtbf_days_bus": 105.97, "mtbf_days_van": 80, "pm_compliance_pct": 91.25, "inventory_at_or_below_reorder": 4,
		"wo_opened_critical": 2}' WHERE iso_week = '2026-W47'`)
	exec(t, f.pool, `INSERT INTO reports (iso_week, week_start, run_id, pdf_uri, html_uri, csv_uri, kpis) VALUES
		('2026-W46', '2026-11-09', 'r46', '', '', '', '{"wo_opened": 30, "wo_completed": 38, "wo_overdue": 9, "mttr_hours": 6,
		  "mtbf_days_bus": 100, "pm_compliance_pct": 88, "inventory_at_or_below_reorder": 4}'),
		('2026-W45', '2026-11-02', 'r45', '', '', '', '{"wo_opened": 20, "wo_completed": 20, "wo_overdue": 12}')`)
	exec(t, f.pool, `INSERT INTO model_scorings (run_id, pipeline, model_version, role, snapshot_date, scored_assets, risk_bands, risk_levels, psi, max_psi, drift) VALUES
		('s13', 'etl_ml_training', 'v2026-11-08-bbbb', 'champion', '2026-11-13', 12, '{}', '{"critical": 5, "low": 7}', '{}', NULL, 'none'),
		('s19', 'model_monitoring', 'v2026-11-08-bbbb', 'champion', '2026-11-19', 12, '{}', '{"critical": 9, "low": 3}', '{}', NULL, 'none'),
		('s20', 'model_monitoring', 'v2026-11-08-bbbb', 'champion', '2026-11-20', 12, '{}', '{"critical": 3, "low": 9}',
		 '{"age_years": 0.31, "odometer_km": 0.12, "score": 0.02}', 0.31, 'alert'),
		('s20', 'model_monitoring', 'v2026-11-15-cccc', 'shadow', '2026-11-20', 12, '{}', '{"critical": 1, "low": 11}', '{}', NULL, 'none')`)
	exec(t, f.pool, `INSERT INTO alerts (rule, kind, severity, summary, metric, value, threshold, opened_period, resolved_period, status, dedup_key, opened_at, resolved_at) VALUES
		('overdue_work_orders', 'rule', 'warning', 'Overdue work orders above 5 for 2 weeks', 'wo_overdue', 9, 5, '2026-W46', '2026-W47', 'resolved', 'k-old', '2026-11-16T06:00:00Z', '2026-11-23T06:00:00Z'),
		('drift:v2026-11-08-bbbb', 'drift', 'critical', 'Drift on age_years (PSI 0.31)', 'max_psi', 0.31, 0.25, '2026-11-20', NULL, 'open', 'k-drift', '2026-11-20T05:00:00Z', NULL)`)
}

// seedPredictions stores 12 vehicles with the champion's predictions (asset
// i has probability i/20) and the old model's, riskier, which must not show.
func (f *fixture) seedPredictions(t *testing.T) {
	t.Helper()
	exec(t, f.pool, `INSERT INTO assets (id, asset_tag, name, vehicle_type, commissioned_date)
		SELECT i, 'FL-' || lpad(i::text, 3, '0'), 'Vehicle ' || i, (ARRAY['bus', 'van', 'truck'])[1 + i % 3], '2020-01-01'
		FROM generate_series(1, 12) i`)
	exec(t, f.pool, `INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level)
		SELECT i, 'v2026-11-08-bbbb', i / 20.0, CASE WHEN i >= 11 THEN 'critical' WHEN i >= 8 THEN 'high' ELSE 'low' END
		FROM generate_series(1, 12) i`)
	exec(t, f.pool, `INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level)
		SELECT i, 'v2026-11-01-aaaa', 0.99, 'critical' FROM generate_series(1, 3) i`)
}

func tileOf(t *testing.T, tiles []admin.Tile, key string) admin.Tile {
	t.Helper()
	for _, x := range tiles {
		if x.Key == key {
			return x
		}
	}
	t.Fatalf("no tile %s in %+v", key, tiles)
	return admin.Tile{}
}

// The tiles name and measure each KPI and compare the latest report with
// the one before: signed delta, its direction and whether that is better.
func TestDashboardTiles(t *testing.T) {
	f := newFixture(t, admin.Options{})
	f.seedWeeks(t)
	var d admin.Dashboard
	getJSON(t, f.url+"/admin/api/dashboard", f.viewer, &d)
	if d.Week != "2026-W47" || d.PreviousWeek != "2026-W46" {
		t.Fatalf("weeks %q against %q", d.Week, d.PreviousWeek)
	}
	var keys []string
	for _, x := range d.Tiles {
		keys = append(keys, x.Key)
	}
	want := []string{"wo_opened", "wo_completed", "wo_overdue", "mttr_hours", "mtbf_days_bus", "mtbf_days_van",
		"pm_compliance_pct", "critical_risk_vehicles", "inventory_at_or_below_reorder"}
	if !slices.Equal(keys, want) {
		t.Fatalf("tiles %v, want %v", keys, want)
	}
	for _, tc := range []struct {
		key, label, unit, text, delta, trend, verdict string
	}{
		{"wo_opened", "Work orders opened", "work orders", "40", "+10", "up", "bad"},
		{"wo_completed", "Work orders completed", "work orders", "35", "-3", "down", "bad"},
		{"wo_overdue", "Overdue work orders", "work orders", "6", "-3", "down", "good"},
		{"mttr_hours", "Mean time to repair (MTTR)", "h", "5.3", "-0.8", "down", "good"},
		{"mtbf_days_bus", "Mean time between failures (MTBF) (bus)", "d", "106.0", "+6.0", "up", "good"},
		{"mtbf_days_van", "Mean time between failures (MTBF) (van)", "d", "80.0", "", "", ""},
		{"pm_compliance_pct", "PM compliance", "%", "91.3", "+3.3", "up", "good"},
		{"critical_risk_vehicles", "Critical-risk vehicles", "vehicles", "3", "-2", "down", "good"},
		{"inventory_at_or_below_reorder", "Low stock", "items at or below reorder level", "4", "0", "flat", "neutral"},
	} {
		x := tileOf(t, d.Tiles, tc.key)
		got := fmt.Sprint(x.Label, "|", x.Unit, "|", x.Text, "|", x.DeltaText, "|", x.Trend, "|", x.Verdict)
		if w := fmt.Sprint(tc.label, "|", tc.unit, "|", tc.text, "|", tc.delta, "|", tc.trend, "|", tc.verdict); got != w {
			t.Errorf("tile %s: %s, want %s", tc.key, got, w)
		}
	}
	if x := tileOf(t, d.Tiles, "mttr_hours"); x.Value == nil || *x.Value != 5.25 || x.Delta == nil || *x.Delta != -0.8 {
		t.Errorf("mttr value %v delta %v", x.Value, x.Delta)
	}
	// The change names what it compares with: the report before, or for
	// critical-risk vehicles the champion's scoring a week before (not the
	// one of the day before).
	for key, want := range map[string]string{"wo_overdue": "2026-W46", "critical_risk_vehicles": "scoring of 2026-11-13", "mtbf_days_van": ""} {
		if got := tileOf(t, d.Tiles, key).Against; got != want {
			t.Errorf("tile %s against %q, want %q", key, got, want)
		}
	}
	// The report archive shows the same tiles, not raw keys.
	var reps struct{ Reports []admin.Report }
	getJSON(t, f.url+"/admin/api/reports?limit=1", f.viewer, &reps)
	if len(reps.Reports) != 1 {
		t.Fatalf("?limit=1: %d reports", len(reps.Reports))
	}
	if x := tileOf(t, reps.Reports[0].Headline, "wo_overdue"); x.DeltaText != "-3" || x.Against != "2026-W46" {
		t.Errorf("report headline %+v", x)
	}
}

// The trend charts draw a point per week that has the figure, in week
// order, with their axes labelled.
func TestDashboardCharts(t *testing.T) {
	f := newFixture(t, admin.Options{})
	f.seedWeeks(t)
	var d admin.Dashboard
	getJSON(t, f.url+"/admin/api/dashboard", f.viewer, &d)
	points := map[string][]int{ // per series
		"chart-work-orders":   {3, 3},
		"chart-overdue":       {3},
		"chart-pm-compliance": {2},
		"chart-mttr":          {2},
	}
	if len(d.Charts) != len(points) {
		t.Fatalf("%d charts", len(d.Charts))
	}
	for _, c := range d.Charts {
		svg := parseSVG(t, c)
		series := svg.find("g", "series")
		var got []int
		total := 0
		for _, s := range series {
			n := len(s.find("circle", "point"))
			got, total = append(got, n), total+n
		}
		if !slices.Equal(got, points[c.ID]) || c.Points != total {
			t.Errorf("chart %s: points per series %v (Points %d), want %v", c.ID, got, c.Points, points[c.ID])
		}
		if labels := svg.texts("text", "axis-label"); len(labels) != 2 || labels[0] != "ISO week" || labels[1] == "" {
			t.Errorf("chart %s: axis labels %q", c.ID, labels)
		}
	}
	wo := parseSVG(t, d.Charts[0])
	if names := []string{wo.find("g", "series")[0].attr("data-series"), wo.find("g", "series")[1].attr("data-series")}; names[0] != "Work orders opened" || names[1] != "Work orders completed" {
		t.Errorf("series %v", names)
	}
	ticks := strings.Join(wo.texts("text", "tick"), " ")
	if !strings.Contains(ticks, "2026-W45") || !strings.Contains(ticks, "2026-W47") || strings.Index(ticks, "2026-W45") > strings.Index(ticks, "2026-W47") {
		t.Errorf("x ticks not oldest first: %s", ticks)
	}
	if tips := wo.texts("title", ""); !slices.Contains(tips, "Work orders opened, 2026-W47: 40") {
		t.Errorf("tooltips %q", tips)
	}
}

// The riskiest vehicles are the champion's top 10 by failure probability;
// the open alerts exclude the resolved one.
func TestDashboardRiskAndAlerts(t *testing.T) {
	f := newFixture(t, admin.Options{})
	f.seedWeeks(t)
	f.seedPredictions(t)
	var d admin.Dashboard
	getJSON(t, f.url+"/admin/api/dashboard", f.viewer, &d)
	if len(d.Riskiest) != 10 {
		t.Fatalf("%d riskiest vehicles", len(d.Riskiest))
	}
	for i, v := range d.Riskiest {
		id := int64(12 - i)
		if v.AssetID != id || v.ModelVersion != "v2026-11-08-bbbb" || v.AssetTag != fmt.Sprintf("FL-%03d", id) ||
			v.VehicleType != []string{"bus", "van", "truck"}[id%3] || v.FailureProbability != float64(id)/20 {
			t.Errorf("riskiest #%d: %+v", i+1, v)
		}
	}
	if d.Riskiest[0].RiskLevel != "critical" || d.Riskiest[4].RiskLevel != "high" || d.Riskiest[9].RiskLevel != "low" {
		t.Errorf("risk levels %+v", d.Riskiest)
	}
	if len(d.Alerts) != 1 || d.Alerts[0].Rule != "drift:v2026-11-08-bbbb" || d.Alerts[0].Severity != "critical" ||
		d.Alerts[0].Summary != "Drift on age_years (PSI 0.31)" || d.Alerts[0].OpenedAt.IsZero() {
		t.Errorf("open alerts %+v", d.Alerts)
	}
}

// Without a report, a scoring or a model the dashboard has nothing to
// compare or draw, and says so (the page's empty states name the pipeline
// to run).
func TestDashboardEmpty(t *testing.T) {
	f := newFixture(t, admin.Options{})
	exec(t, f.pool, `DELETE FROM reports`)
	var d admin.Dashboard
	getJSON(t, f.url+"/admin/api/dashboard", f.viewer, &d)
	if d.Week != "" || d.PreviousWeek != "" || len(d.Riskiest) != 0 || len(d.Alerts) != 0 || d.Riskiest == nil || d.Alerts == nil {
		t.Fatalf("%+v", d)
	}
	for _, x := range d.Tiles {
		if x.Value != nil || x.Text != "n/a" || x.Delta != nil || x.Label == "" {
			t.Errorf("tile without data %+v", x)
		}
	}
	for _, c := range d.Charts {
		if parseSVG(t, c); c.Points != 0 {
			t.Errorf("chart %s has %d points", c.ID, c.Points)
		}
	}
	_, page := get(t, f.url+"/admin", "")
	_, js := get(t, f.url+"/admin/static/admin.js", "")
	for what, s := range map[string]string{
		`No weekly report yet: run <code>weekly_kpi_report</code>`: page,
		`No model predictions yet: run etl_ml_training.`:           js,
		`No monitoring run yet: run model_monitoring.`:             js,
	} {
		if !strings.Contains(s, what) {
			t.Errorf("no empty state %q", what)
		}
	}
}

// voidElements have no end tag in HTML.
var voidElements = map[string]bool{"meta": true, "link": true, "input": true, "br": true, "img": true, "hr": true}

// The page is well-formed: every element but the void ones is closed in
// order, ids are unique, and every navigation link has its view.
func TestShellWellFormed(t *testing.T) {
	f := newFixture(t, admin.Options{OutboxDir: t.TempDir()})
	_, body := get(t, f.url+"/admin", "")
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict, d.Entity = false, xml.HTMLEntity
	var open []string
	ids, views := map[string]bool{}, []string{}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			t.Fatalf("line %d: %v", line, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			for _, a := range e.Attr {
				if a.Name.Local == "id" && ids[a.Value] {
					t.Errorf("duplicate id %q", a.Value)
				}
				ids[a.Value] = ids[a.Value] || a.Name.Local == "id"
				if a.Name.Local == "data-view" {
					views = append(views, a.Value)
				}
			}
			if !voidElements[e.Name.Local] {
				open = append(open, e.Name.Local)
			}
		case xml.EndElement:
			if voidElements[e.Name.Local] {
				continue
			}
			if line, _ := d.InputPos(); len(open) == 0 || open[len(open)-1] != e.Name.Local {
				t.Fatalf("line %d: </%s> closes %v", line, e.Name.Local, open)
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) != 0 {
		t.Errorf("unclosed %v", open)
	}
	if want := []string{"dashboard", "inbox", "reports", "outbox", "models", "alerts"}; !slices.Equal(views, want) {
		t.Errorf("navigation %v, want %v", views, want)
	}
	for _, v := range views {
		if !ids[v+"-view"] {
			t.Errorf("no view %s", v)
		}
	}
}
