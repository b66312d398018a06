package admin_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
)

// seedMonitoring adds a shadow model, three monitoring runs' realized
// performance (the first without a shadow, the last with the champion's
// AUC undefined) and a retrain, over seedWeeks' scorings.
func (f *fixture) seedMonitoring(t *testing.T) {
	t.Helper()
	f.seedWeeks(t)
	exec(t, f.pool, `INSERT INTO models (version, run_id, kind, artifact_name, artifact_uri, training_fingerprint, metrics, shadow, promoted, gate_reason, created_at) VALUES
		('v2026-11-15-cccc', 'r3', 'gbt', 'models/c/model.json', 'gs://b/models/c/model.json', 'sha256:3', '{"roc_auc": 0.86}', true, false, 'kept as shadow', '2026-11-15T00:00:00Z')`)
	exec(t, f.pool, `INSERT INTO model_performance (run_id, model_version, role, scoring_id, snapshot_date, label_window_days, labelled, positives, roc_auc, critical_precision, computed_at) VALUES
		('m1', 'v2026-11-08-bbbb', 'champion', 1, '2026-10-20', 30, 12, 3, 0.71, 0.5, '2026-11-19T05:00:00Z'),
		('m2', 'v2026-11-08-bbbb', 'champion', 1, '2026-10-21', 30, 12, 3, 0.74, NULL, '2026-11-20T05:00:00Z'),
		('m2', 'v2026-11-15-cccc', 'shadow', 2, '2026-10-21', 30, 12, 3, 0.78, 0.6, '2026-11-20T05:00:00Z'),
		('m3', 'v2026-11-08-bbbb', 'champion', 3, '2026-10-22', 30, 12, 0, NULL, NULL, '2026-11-21T05:00:00Z'),
		('m3', 'v2026-11-15-cccc', 'shadow', 4, '2026-10-22', 30, 12, 0, 0.8, 0.25, '2026-11-21T05:00:00Z')`)
	exec(t, f.pool, `INSERT INTO model_retrains (retrain_run_id, monitor_run_id, model_version, reason) VALUES
		('retrain__1', 'm3', 'v2026-11-08-bbbb', 'drift: age_years PSI 0.31 > 0.25')`)
}

// The Models view marks the champion and the shadow, draws the realized
// AUC per run and role and the latest champion scoring's PSI per feature
// against the warn and alert lines, sets the latest run's figures side by
// side and lists the retrains.
func TestMonitoring(t *testing.T) {
	f := newFixture(t, admin.Options{})
	f.seedMonitoring(t)
	var models struct{ Models []admin.Model }
	getJSON(t, f.url+"/admin/api/models", f.viewer, &models)
	var marks []string
	for _, m := range models.Models {
		marks = append(marks, fmt.Sprintf("%s champion=%v shadow=%v", m.Version, m.Champion, m.Shadow))
	}
	if want := []string{"v2026-11-15-cccc champion=false shadow=true", "v2026-11-08-bbbb champion=true shadow=false",
		"v2026-11-01-aaaa champion=false shadow=false"}; !slices.Equal(marks, want) {
		t.Errorf("models %v, want %v", marks, want)
	}

	var m admin.Monitoring
	getJSON(t, f.url+"/admin/api/monitoring", f.viewer, &m)
	perf := parseSVG(t, m.Performance)
	var got []string
	for _, s := range perf.find("g", "series") {
		got = append(got, fmt.Sprintf("%s:%d", s.attr("data-series"), len(s.find("circle", "point"))))
	}
	if !slices.Equal(got, []string{"champion:2", "shadow:2"}) || m.Performance.Points != 4 {
		t.Errorf("realized AUC points %v (Points %d)", got, m.Performance.Points)
	}
	if tips := perf.texts("title", ""); !slices.Contains(tips, "shadow, 2026-11-21: 0.800") || !slices.Contains(tips, "champion, 2026-11-19: 0.710") {
		t.Errorf("AUC tooltips %q", tips)
	}

	if m.Drift == nil || m.DriftScoring == nil || m.DriftScoring.RunID != "s20" {
		t.Fatalf("drift %+v of %+v", m.Drift, m.DriftScoring)
	}
	drift := parseSVG(t, *m.Drift)
	var bars []string
	for _, b := range drift.find("rect", "bar") {
		bars = append(bars, b.attr("data-name")+":"+b.attr("class"))
	}
	if want := []string{"age_years:bar alert", "odometer_km:bar warn", "score:bar ok"}; !slices.Equal(bars, want) || m.Drift.Points != 3 {
		t.Errorf("drift bars %v, want %v", bars, want)
	}
	if lines := drift.texts("title", ""); !slices.Contains(lines, "warn 0.1") || !slices.Contains(lines, "alert 0.25") || len(drift.find("line", "threshold")) != 2 {
		t.Errorf("threshold lines %q", lines)
	}

	var side []string
	for _, p := range m.Comparison {
		side = append(side, fmt.Sprintf("%s %s %v", p.RunID, p.Role, p.ROCAUC != nil))
	}
	if !slices.Equal(side, []string{"m3 champion false", "m3 shadow true"}) || *m.Comparison[1].ROCAUC != 0.8 {
		t.Errorf("comparison %v", side)
	}
	if len(m.Retrains) != 1 || m.Retrains[0].RetrainRunID != "retrain__1" || !strings.HasPrefix(m.Retrains[0].Reason, "drift:") {
		t.Errorf("retrains %+v", m.Retrains)
	}
}

// Before any monitoring there is nothing to draw or compare.
func TestMonitoringEmpty(t *testing.T) {
	f := newFixture(t, admin.Options{})
	var m admin.Monitoring
	getJSON(t, f.url+"/admin/api/monitoring", f.viewer, &m)
	if parseSVG(t, m.Performance); m.Performance.Points != 0 || m.Drift != nil || len(m.Comparison) != 0 || len(m.Retrains) != 0 || m.Retrains == nil {
		t.Errorf("%+v", m)
	}
}

// The Alerts view lists open and resolved alerts newest first, by status
// when asked.
func TestAlerts(t *testing.T) {
	f := newFixture(t, admin.Options{})
	f.seedWeeks(t)
	list := func(query string) []string {
		var got struct{ Alerts []admin.Alert }
		getJSON(t, f.url+"/admin/api/alerts"+query, f.viewer, &got)
		var out []string
		for _, a := range got.Alerts {
			out = append(out, fmt.Sprintf("%s %s %s %s→%s", a.Status, a.Kind, a.Rule, a.OpenedPeriod, a.ResolvedPeriod))
		}
		return out
	}
	open, resolved := "open drift drift:v2026-11-08-bbbb 2026-11-20→", "resolved rule overdue_work_orders 2026-W46→2026-W47"
	for query, want := range map[string][]string{"": {open, resolved}, "?status=open": {open}, "?status=resolved": {resolved}, "?limit=1": {open}} {
		if got := list(query); !slices.Equal(got, want) {
			t.Errorf("alerts%s: %q, want %q", query, got, want)
		}
	}
	var all struct{ Alerts []admin.Alert }
	getJSON(t, f.url+"/admin/api/alerts?status=resolved", f.viewer, &all)
	if a := all.Alerts[0]; a.Metric != "wo_overdue" || *a.Value != 9 || *a.Threshold != 5 || a.ResolvedAt == nil || a.Severity != "warning" {
		t.Errorf("%+v", a)
	}
	if resp, body := get(t, f.url+"/admin/api/alerts?status=closed", f.viewer); resp.StatusCode != 400 || !strings.Contains(body, "status") {
		t.Errorf("bad status: %d %s", resp.StatusCode, body)
	}
}
