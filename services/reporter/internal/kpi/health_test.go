package kpi_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// handMonitoring is the deployer's monitoring of three models around
// 2026-W47 (which ends 2026-11-23 00:00 UTC): the ETL's scoring of v1, the
// monitoring run mon1 of champion v2 with shadow v3 in the week (v2
// drifting), mon2 after the week's end; realized performance of v2 from an
// older run mon0 and from mon1 (with v3 on the same labels), and mon2's.
const handMonitoring = `
INSERT INTO model_scorings (run_id, pipeline, model_version, role, snapshot_date, scored_assets, risk_bands, risk_levels,
                            psi, max_psi, drift, scored_at)
VALUES
	('etl1', 'etl_ml_training', 'v1', 'champion', '2026-11-09', 300, '{}', '{}', '{}', NULL, 'none', '2026-11-10 03:00Z'),
	('mon1', 'model_monitoring', 'v2', 'champion', '2026-11-21', 300, '{}', '{}',
	 '{"asset_age_days": 0.91, "meter_reading": 0.25, "engine_hours": 0.12, "corrective_work_orders": 0.05, "score": 0.3}',
	 0.91, 'alert', '2026-11-21 05:00Z'),
	('mon1', 'model_monitoring', 'v3', 'shadow', '2026-11-21', 300, '{}', '{}', '{"asset_age_days": 0.05, "score": 0.02}',
	 0.05, 'ok', '2026-11-21 05:00Z'),
	('mon2', 'model_monitoring', 'v2', 'champion', '2026-11-23', 300, '{}', '{}', '{"asset_age_days": 0.01}',
	 0.01, 'ok', '2026-11-23 05:00Z');

INSERT INTO model_performance (run_id, model_version, role, scoring_id, snapshot_date, label_window_days, labelled, positives,
                               roc_auc, critical_precision, computed_at)
VALUES
	('mon0', 'v2', 'champion', 1, '2026-08-13', 90, 110, 12, 0.6, 0.4, '2026-11-14 05:00Z'),
	('mon1', 'v2', 'champion', 1, '2026-08-20', 90, 120, 14, 0.71, 0.5, '2026-11-21 05:00Z'),
	('mon1', 'v3', 'shadow', 1, '2026-08-20', 90, 120, 14, 0.74, NULL, '2026-11-21 05:00Z'),
	('mon2', 'v2', 'champion', 1, '2026-08-22', 90, 121, 15, 0.9, 0.9, '2026-11-23 05:00Z');`

func TestModelHealth(t *testing.T) {
	admin, dbURL := pgtest.NewWithURL(t)
	ctx := context.Background()
	// Read as the reporter's role: its grants cover the section's tables.
	pool, err := db.Connect(ctx, pgtest.ServiceLogin(t, admin, dbURL, "reporter"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	params := kpi.Params{Week: week(t, "2026-W47"), Location: time.UTC}

	// No scoring yet.
	r, err := kpi.Compute(ctx, pool, params)
	if err != nil {
		t.Fatal(err)
	}
	if r.Health != (kpi.ModelHealth{}) || r.Drift != monitor.DefaultThresholds {
		t.Fatalf("health of an unmonitored fleet %+v, thresholds %+v", r.Health, r.Drift)
	}

	if _, err := admin.Exec(ctx, handMonitoring); err != nil {
		t.Fatal(err)
	}
	r, err = kpi.Compute(ctx, pool, params)
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	want := kpi.ModelHealth{
		Champion: &kpi.ModelStatus{Version: "v2", Role: "champion", Pipeline: "model_monitoring",
			SnapshotDate: day("2026-11-21"), ScoredAt: time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC),
			MaxPSI: kpi.Some(0.91), Drift: "alert",
			Drifting: []kpi.FeatureDrift{{Feature: "asset_age_days", PSI: 0.91, Level: "alert"}, {Feature: "score", PSI: 0.3, Level: "alert"},
				{Feature: "meter_reading", PSI: 0.25, Level: "alert"}, {Feature: "engine_hours", PSI: 0.12, Level: "warn"}},
			Performance: &kpi.Performance{SnapshotDate: day("2026-08-20"), LabelWindowDays: 90, Labelled: 120, Positives: 14,
				ROCAUC: kpi.Some(0.71), CriticalPrecision: kpi.Some(50)}},
		Shadow: &kpi.ModelStatus{Version: "v3", Role: "shadow", Pipeline: "model_monitoring",
			SnapshotDate: day("2026-11-21"), ScoredAt: time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC),
			MaxPSI: kpi.Some(0.05), Drift: "ok",
			Performance: &kpi.Performance{SnapshotDate: day("2026-08-20"), LabelWindowDays: 90, Labelled: 120, Positives: 14,
				ROCAUC: kpi.Some(0.74)}},
	}
	r.Health.Champion.ScoredAt, r.Health.Shadow.ScoredAt = r.Health.Champion.ScoredAt.UTC(), r.Health.Shadow.ScoredAt.UTC()
	if !reflect.DeepEqual(r.Health, want) {
		t.Fatalf("health\n got %+v %+v\nwant %+v %+v", *r.Health.Champion, *r.Health.Shadow, *want.Champion, *want.Shadow)
	}

	// Other thresholds mark other features.
	params.Drift = monitor.Thresholds{Warn: 0.2, Alert: 0.5}
	if r, err = kpi.Compute(ctx, pool, params); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Health.Champion.Drifting, []kpi.FeatureDrift{{Feature: "asset_age_days", PSI: 0.91, Level: "alert"},
		{Feature: "score", PSI: 0.3, Level: "warn"}, {Feature: "meter_reading", PSI: 0.25, Level: "warn"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("drifting at 0.2/0.5: %+v, want %+v", got, want)
	}

	// The week before: only the ETL's scoring of v1, without a profile, and
	// no realized performance of v1.
	params.Week = week(t, "2026-W46")
	if r, err = kpi.Compute(ctx, pool, params); err != nil {
		t.Fatal(err)
	}
	c := r.Health.Champion
	if c == nil || c.Version != "v1" || c.Drift != "none" || c.MaxPSI.Valid || c.Drifting != nil || c.Performance != nil || r.Health.Shadow != nil {
		t.Fatalf("2026-W46: %+v", r.Health)
	}
}

func TestDriftThresholdsValidation(t *testing.T) {
	for _, th := range []monitor.Thresholds{{Warn: 0.3, Alert: 0.2}, {Warn: -0.1, Alert: 0.2}, {Warn: 0.1}} {
		if _, err := kpi.Compute(context.Background(), nil, kpi.Params{Week: kpi.Week{Year: 2026, Num: 47}, Drift: th}); err == nil {
			t.Errorf("%+v: no error", th)
		}
	}
}
