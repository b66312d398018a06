package email_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
)

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestRenderDigest(t *testing.T) {
	r, err := email.RenderDigest(email.Digest{
		Technician: "Ann Lee", AsOf: "2026-11-27", RunID: "run-1", Pipeline: "preventive_maintenance", Count: 2,
		Assets: []email.AssetGroup{{
			AssetTag: "TRK-001", AssetName: "Truck <1>", VehicleType: "truck", Location: "Depot A",
			WorkOrders: []email.WorkOrder{
				{Number: "WO-3", Title: "Brakes & tyres", Priority: "CRITICAL", Due: "2026-11-27"},
				{Number: "WO-1", Title: "Oil change", Priority: "HIGH", Due: "2026-11-27", SkippedOccurrences: 2},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "[cmmsflow] 2 preventive maintenance work orders assigned to you (2026-11-27)" {
		t.Errorf("subject %q", r.Subject)
	}
	contains(t, "text", r.Text, "Hello Ann Lee,", "TRK-001 — Truck <1> (truck, Depot A)",
		"- WO-3 [CRITICAL, due 2026-11-27] Brakes & tyres", "- WO-1 [HIGH, due 2026-11-27] Oil change (2 missed occurrences folded in)", "run run-1")
	contains(t, "html", r.HTML, "<!DOCTYPE html>", "Truck &lt;1&gt;", "Brakes &amp; tyres", "2 missed occurrences", "WO-3")
	if strings.Index(r.Text, "WO-3") > strings.Index(r.Text, "WO-1") {
		t.Error("text does not keep the given order")
	}
	one, err := email.RenderDigest(email.Digest{Technician: "Bob", Count: 1, Assets: []email.AssetGroup{{AssetTag: "B", WorkOrders: []email.WorkOrder{{Number: "WO-9"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if one.Subject != "[cmmsflow] 1 preventive maintenance work order assigned to you" {
		t.Errorf("singular subject %q", one.Subject)
	}
}

func TestRenderPMSummary(t *testing.T) {
	r, err := email.RenderPMSummary(email.PMSummary{
		AsOf: "2026-11-27", RunID: "run-1", Pipeline: "preventive_maintenance",
		Created: 7, SkippedOpen: 2, Failed: 1, MissedOccurrences: 3,
		ByVehicleType: []email.Count{{Name: "bus", N: 2}, {Name: "truck", N: 5}},
		Technicians:   []email.TechnicianCount{{Name: "Ann Lee", Email: "ann@fleet.test", WorkOrders: 3}},
		NeedsAssignment: []email.WorkOrder{
			{Number: "WO-5", AssetTag: "VAN-2", Title: "Wipers", Priority: "LOW"},
			{Number: "WO-6", AssetTag: "BUS-3", Title: "Doors", Priority: "HIGH", Technician: "Cid"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "[cmmsflow] Preventive maintenance 2026-11-27: 7 work orders created, 1 failed" {
		t.Errorf("subject %q", r.Subject)
	}
	contains(t, "text", r.Text, "Work orders created:            7", "Plans skipped (order open):     2", "Plans failed:                   1",
		"Missed occurrences folded in:   3", "bus          2", "truck        5", "Ann Lee <ann@fleet.test>: 3 work orders",
		"Needs assignment (2", "- WO-5 VAN-2 [LOW] Wipers", "(inactive: Cid)")
	contains(t, "html", r.HTML, "Work orders created", ">7<", "truck", "Needs assignment (2)", "WO-6")
}

func TestRenderAlert(t *testing.T) {
	r, err := email.RenderAlert(email.Alert{RunID: "run-1", Pipeline: "etl_ml_training", Step: "featurejob",
		Error: "decode input: <bad> parquet", At: time.Date(2026, 11, 29, 2, 3, 4, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "[cmmsflow] ALERT: etl_ml_training run failed at step featurejob" {
		t.Errorf("subject %q", r.Subject)
	}
	contains(t, "text", r.Text, "run-1 failed at step featurejob at 2026-11-29 02:03:04 UTC", "decode input: <bad> parquet")
	contains(t, "html", r.HTML, "decode input: &lt;bad&gt; parquet", "<code>featurejob</code>")
}

func TestRenderModelDeployed(t *testing.T) {
	r, err := email.RenderModelDeployed(email.ModelDeployed{
		RunID: "run-1", Pipeline: "etl_ml_training", ModelVersion: "v20261129-abc", Promoted: false,
		GateReason: "ROC AUC 0.70 < champion's 0.80 & more", ScoredAssets: 2,
		RiskLevels:  []email.Count{{Name: "low", N: 1}, {Name: "critical", N: 1}},
		Metrics:     []email.Metric{{Name: "ROC AUC", Value: "0.7000", Champion: "0.8000"}, {Name: "ECE", Value: "0.0100"}},
		HasChampion: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "[cmmsflow] Failure-risk model v20261129-abc: kept champion — 2 assets scored" {
		t.Errorf("subject %q", r.Subject)
	}
	contains(t, "text", r.Text, "KEPT CHAMPION", "Reason: ROC AUC 0.70 < champion's 0.80 & more",
		"ROC AUC                        0.7000     0.8000", "ECE                            0.0100          —", "critical   1")
	contains(t, "html", r.HTML, "<strong>Kept champion</strong>", "0.70 &lt; champion&#39;s 0.80 &amp; more", "color:#c81e1e", "—</td>")
}
