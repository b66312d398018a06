package kpi_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// The hand-made fleet. The reporting week is 2026-W47 (Mon 16 Nov to Sun 22
// Nov 2026, UTC), the previous week 2026-W46 (9 to 15 Nov); MTBF windows are
// 365 days: [2025-11-23, 2026-11-23) and [2025-11-16, 2026-11-16).
const handFleet = `
INSERT INTO assets (asset_tag, name, vehicle_type, status, commissioned_date) VALUES
	('TRK-1', 'Truck one',   'truck', 'ACTIVE',  '2020-01-01'), -- in service the whole window: 365 days
	('TRK-2', 'Truck two',   'truck', 'ACTIVE',  '2026-11-02'), -- 21 days (current), 14 days (previous)
	('VAN-1', 'Van one',     'van',   'ACTIVE',  '2024-01-01'), -- 365 days, no failure: MTBF n/a
	('BUS-1', 'Bus retired', 'bus',   'RETIRED', '2019-01-01'), -- left out of MTBF and ML
	('CAR-1', 'Car one',     'car',   'ACTIVE',  '2026-11-20'); -- 3 days, exactly one failure

INSERT INTO work_orders (wo_number, asset_id, type, status, priority, title, created_at, started_at, completed_at, due_date, repair_hours)
SELECT v.num, a.id, v.type, v.status, v.prio, v.num, v.created::timestamptz, v.started::timestamptz, v.completed::timestamptz,
       v.due::date, v.hours::numeric
FROM (VALUES
	('W1',  'TRK-1', 'CORRECTIVE', 'COMPLETED',   'HIGH',     '2026-11-17 10:00Z', '2026-11-17 11:00Z', '2026-11-18 09:00Z', NULL,         '4.0'),
	('W2',  'TRK-2', 'CORRECTIVE', 'COMPLETED',   'CRITICAL', '2026-11-10 08:00Z', '2026-11-10 09:00Z', '2026-11-17 12:00Z', NULL,         '6.0'),
	('W3',  'TRK-1', 'CORRECTIVE', 'COMPLETED',   'MEDIUM',   '2026-03-01 08:00Z', '2026-03-01 09:00Z', '2026-03-02 08:00Z', NULL,         '2.0'),
	('W4',  'TRK-1', 'CORRECTIVE', 'COMPLETED',   'LOW',      '2025-11-20 08:00Z', '2025-11-20 09:00Z', '2025-11-21 08:00Z', NULL,         '1.0'),
	('W5',  'TRK-1', 'CORRECTIVE', 'CANCELLED',   'MEDIUM',   '2026-06-01 08:00Z', NULL,                NULL,                NULL,         NULL),
	('W6',  'CAR-1', 'CORRECTIVE', 'IN_PROGRESS', 'HIGH',     '2026-11-21 09:00Z', '2026-11-21 10:00Z', NULL,                NULL,         NULL),
	('W7',  'VAN-1', 'PREVENTIVE', 'COMPLETED',   'MEDIUM',   '2026-11-01 08:00Z', '2026-11-18 14:00Z', '2026-11-18 15:00Z', '2026-11-18', '1.0'),
	('W8',  'VAN-1', 'PREVENTIVE', 'COMPLETED',   'LOW',      '2026-11-01 08:00Z', '2026-11-20 08:00Z', '2026-11-20 10:00Z', '2026-11-19', '1.0'),
	('W9',  'TRK-1', 'PREVENTIVE', 'OPEN',        'MEDIUM',   '2026-11-05 08:00Z', NULL,                NULL,                '2026-11-20', NULL),
	('W10', 'TRK-1', 'PREVENTIVE', 'CANCELLED',   'LOW',      '2026-11-05 08:00Z', NULL,                NULL,                '2026-11-21', NULL),
	('W11', 'VAN-1', 'PREVENTIVE', 'COMPLETED',   'MEDIUM',   '2026-11-02 08:00Z', '2026-11-11 08:00Z', '2026-11-11 09:00Z', '2026-11-12', '1.0'),
	('W12', 'VAN-1', 'PREVENTIVE', 'OPEN',        'HIGH',     '2026-11-03 08:00Z', NULL,                NULL,                '2026-11-13', NULL),
	('W13', 'TRK-2', 'CORRECTIVE', 'ON_HOLD',     'LOW',      '2026-11-22 23:30Z', NULL,                NULL,                NULL,         NULL),
	('W14', 'TRK-1', 'CORRECTIVE', 'OPEN',        'MEDIUM',   '2026-11-23 00:00Z', NULL,                NULL,                NULL,         NULL),
	('W15', 'BUS-1', 'CORRECTIVE', 'COMPLETED',   'HIGH',     '2026-11-16 00:00Z', '2026-11-16 01:00Z', '2026-11-16 05:00Z', NULL,         '3.0'),
	('W16', 'VAN-1', 'PREVENTIVE', 'COMPLETED',   'MEDIUM',   '2026-11-15 08:00Z', '2026-11-22 20:00Z', '2026-11-22 23:59Z', '2026-11-22', '1.0'),
	('W17', 'VAN-1', 'PREVENTIVE', 'COMPLETED',   'MEDIUM',   '2026-11-01 08:00Z', '2026-11-14 08:00Z', '2026-11-14 10:00Z', '2026-11-14', '1.0')
) AS v(num, tag, type, status, prio, created, started, completed, due, hours)
JOIN assets a ON a.asset_tag = v.tag;

INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level, predicted_at)
SELECT a.id, v.model, v.p, v.risk, v.at::timestamptz
FROM (VALUES
	('TRK-1', 'v1', 0.30, 'medium',   '2026-11-10 02:00Z'),
	('TRK-1', 'v2', 0.80, 'critical', '2026-11-20 02:00Z'),
	('VAN-1', 'v2', 0.65, 'high',     '2026-11-20 02:00Z'),
	('BUS-1', 'v2', 0.99, 'critical', '2026-11-20 02:00Z'),
	('TRK-2', 'v2', 0.10, 'low',      '2026-11-23 01:00Z')
) AS v(tag, model, p, risk, at)
JOIN assets a ON a.asset_tag = v.tag;

INSERT INTO inventory_items (sku, name, quantity, reorder_level, unit_cost) VALUES
	('S1', 'Oil filter',  5,  10, 2.50),
	('S2', 'Wiper blade', 10, 10, 1.00),
	('S3', 'Fuse',        100, 10, 0.25);`

func week(t *testing.T, s string) kpi.Week {
	t.Helper()
	w, err := kpi.ParseWeek(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func wantOpt(t *testing.T, name string, got kpi.Opt, want float64, valid bool) {
	t.Helper()
	if got.Valid != valid || (valid && !near(got.V, want)) {
		if valid {
			t.Errorf("%s = %+v, want %v", name, got, want)
		} else {
			t.Errorf("%s = %+v, want n/a", name, got)
		}
	}
}

func wantInt(t *testing.T, name string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", name, got, want)
	}
}

func TestComputeHandMadeFleet(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, handFleet); err != nil {
		t.Fatal(err)
	}
	r, err := kpi.Compute(ctx, pool, kpi.Params{Week: week(t, "2026-W47"), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	c, p := r.Current, r.Previous
	if c.Week.String() != "2026-W47" || p.Week.String() != "2026-W46" {
		t.Fatalf("weeks %s %s", c.Week, p.Week)
	}
	if !c.Start.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)) || !c.End.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("current bounds %s %s", c.Start, c.End)
	}

	// Work orders, current week. Opened: W1, W6, W13 and W15 (created at the
	// week's first instant); W14 (the next week's first instant) is not.
	wantInt(t, "opened", c.WorkOrders.Opened, 4)
	for pr, n := range map[string]int64{"CRITICAL": 0, "HIGH": 3, "MEDIUM": 0, "LOW": 1} {
		wantInt(t, "opened "+pr, c.WorkOrders.OpenedByPriority[pr], n)
	}
	// Completed: W1, W2, W7, W8, W15, W16 (at 23:59 on Sunday); of which
	// preventive W7, W8, W16.
	wantInt(t, "completed", c.WorkOrders.Completed, 6)
	wantInt(t, "completed preventive", c.WorkOrders.CompletedPreventive, 3)
	// At the end of the week: W6 in progress; W9, W12, W13 pending; W9 (due
	// 20 Nov) and W12 (due 13 Nov) overdue. Cancelled W5 and W10 never count.
	wantInt(t, "in progress", c.WorkOrders.InProgress, 1)
	wantInt(t, "pending", c.WorkOrders.Pending, 3)
	wantInt(t, "overdue", c.WorkOrders.Overdue, 2)

	// Previous week: opened W2 (critical), W16 (medium); completed W11, W17
	// (both preventive); at its end W2 in progress (completed on the 17th),
	// W7, W8, W9, W12, W16 pending (W15, created at the current week's first
	// instant, is not), W12 overdue.
	wantInt(t, "prev opened", p.WorkOrders.Opened, 2)
	wantInt(t, "prev opened CRITICAL", p.WorkOrders.OpenedByPriority["CRITICAL"], 1)
	wantInt(t, "prev opened MEDIUM", p.WorkOrders.OpenedByPriority["MEDIUM"], 1)
	wantInt(t, "prev completed", p.WorkOrders.Completed, 2)
	wantInt(t, "prev in progress", p.WorkOrders.InProgress, 1)
	wantInt(t, "prev pending", p.WorkOrders.Pending, 5)
	wantInt(t, "prev overdue", p.WorkOrders.Overdue, 1)

	// MTTR: corrective work orders completed in the week: W1 truck 4 h, W2
	// truck 6 h, W15 bus 3 h (a retired bus's repair still took time).
	wantInt(t, "repairs", c.Repairs, 3)
	wantOpt(t, "MTTR", c.MTTR, 13.0/3, true)
	wantOpt(t, "MTTR truck", c.Type("truck").MTTR, 5, true)
	wantOpt(t, "MTTR bus", c.Type("bus").MTTR, 3, true)
	wantOpt(t, "MTTR van", c.Type("van").MTTR, 0, false)
	wantOpt(t, "prev MTTR", p.MTTR, 0, false) // no corrective work order completed in W46

	// MTBF. Trucks, current window: 365 + 21 operating days; failures W1,
	// W2, W3 and W13 (W4 is before the window, W14 after it, W5 cancelled).
	tr := c.Type("truck")
	wantInt(t, "truck assets", tr.Assets, 2)
	wantOpt(t, "truck operating days", kpi.Some(tr.OperatingDays), 386, true)
	wantInt(t, "truck failures", tr.Failures, 4)
	wantOpt(t, "MTBF truck", tr.MTBF, 386.0/4, true)
	// Previous window: 365 + 14 days; failures W2, W3, W4.
	wantOpt(t, "prev MTBF truck", p.Type("truck").MTBF, 379.0/3, true)
	// The car: 3 days in service (20-22 Nov), exactly one failure (W6).
	car := c.Type("car")
	wantInt(t, "car failures", car.Failures, 1)
	wantOpt(t, "MTBF car", car.MTBF, 3, true)
	// Not yet in service in the previous week: no time, no failure.
	wantInt(t, "prev car assets", p.Type("car").Assets, 0)
	wantOpt(t, "prev MTBF car", p.Type("car").MTBF, 0, false)
	// The van never failed: n/a, not 0 and not infinity.
	wantOpt(t, "MTBF van", c.Type("van").MTBF, 0, false)
	wantOpt(t, "van operating days", kpi.Some(c.Type("van").OperatingDays), 365, true)
	// The only bus is retired: no operating time, and its failure W15 is left out.
	wantOpt(t, "MTBF bus", c.Type("bus").MTBF, 0, false)
	wantInt(t, "bus failures", c.Type("bus").Failures, 0)

	// PM compliance: due in W47 W7 (on time), W8 (a day late), W9 (open),
	// W16 (at 23:59 on its due date: on time); cancelled W10 left out.
	wantInt(t, "pm due", c.PMDue, 4)
	wantInt(t, "pm on time", c.PMOnTime, 2)
	wantOpt(t, "pm compliance", c.PMCompliance, 50, true)
	// W46: W11 and W17 on time, W12 open.
	wantOpt(t, "prev pm compliance", p.PMCompliance, 200.0/3, true)
	// Planned maintenance: 3 of 6 completed were preventive; 2 of 2.
	wantOpt(t, "planned %", c.PlannedPct, 50, true)
	wantOpt(t, "prev planned %", p.PlannedPct, 100, true)

	// ML: latest before the week's end, retired bus left out: TRK-1 v2
	// (0.80 critical) and VAN-1 (0.65 high); TRK-2's score came after the
	// end. Previous week: only TRK-1 v1 (0.30).
	wantInt(t, "ml assets", c.ML.Assets, 2)
	wantInt(t, "ml high", c.ML.High, 1)
	wantInt(t, "ml critical", c.ML.Critical, 1)
	wantOpt(t, "ml avg", c.ML.AvgProbability, 0.725, true)
	if len(c.ML.Top) != 2 || c.ML.Top[0].AssetTag != "TRK-1" || c.ML.Top[1].AssetTag != "VAN-1" || c.ML.Top[0].RiskLevel != "critical" {
		t.Errorf("top %+v", c.ML.Top)
	}
	wantInt(t, "prev ml assets", p.ML.Assets, 1)
	wantOpt(t, "prev ml avg", p.ML.AvgProbability, 0.30, true)

	// Inventory: S1 below and S2 at its reorder level; 12.50 + 10 + 25.
	if r.Inventory != (kpi.Inventory{Items: 3, AtOrBelowReorder: 2, StockValue: 47.5}) {
		t.Errorf("inventory %+v", r.Inventory)
	}

	// Trend: 12 weeks W36..W47.
	if len(r.Trend) != 12 || r.Trend[0].Week.String() != "2026-W36" || r.Trend[11].Week.String() != "2026-W47" {
		t.Fatalf("trend weeks %+v", r.Trend)
	}
	want := map[string][2]int64{"2026-W47": {4, 6}, "2026-W46": {2, 2}, "2026-W45": {4, 0}, "2026-W44": {3, 0}}
	for _, tp := range r.Trend {
		if got := [2]int64{tp.Opened, tp.Completed}; got != want[tp.Week.String()] {
			t.Errorf("trend %s = %v, want %v", tp.Week, got, want[tp.Week.String()])
		}
	}

	// The table shows what was worked out above.
	rows := map[string]kpi.Row{}
	for _, row := range kpi.Rows(r) {
		rows[row.Key] = row
	}
	for key, want := range map[string][3]string{
		"wo_opened":                     {"4", "2", "+2"},
		"wo_pending":                    {"3", "5", "-2"},
		"mttr_hours":                    {"4.3 h", "n/a", "n/a"},
		"mtbf_days_truck":               {"96.5 d", "126.3 d", "-29.8 d"},
		"mtbf_days_car":                 {"3.0 d", "n/a", "n/a"},
		"mtbf_days_van":                 {"n/a", "n/a", "n/a"},
		"pm_compliance_pct":             {"50.0 %", "66.7 %", "-16.7 pp"},
		"inventory_stock_value":         {"47.50", "n/a", "n/a"},
		"inventory_at_or_below_reorder": {"2", "n/a", "n/a"},
		"ml_avg_failure_probability":    {"0.725", "0.300", "+0.425"},
		"ml_critical":                   {"1", "0", "+1"},
	} {
		row, ok := rows[key]
		if got := [3]string{row.CurText(), row.PrevText(), row.DeltaText()}; !ok || got != want {
			t.Errorf("row %s = %v, want %v", key, got, want)
		}
	}
}

// An empty week on a fleet with no history: every count is zero, every
// ratio n/a.
func TestComputeEmptyWeek(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES
		('TRK-1', 'Truck', 'truck', '2020-01-01'), ('VAN-1', 'Van', 'van', '2020-01-01')`); err != nil {
		t.Fatal(err)
	}
	r, err := kpi.Compute(ctx, pool, kpi.Params{Week: week(t, "2026-W01")})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Current
	if c.WorkOrders.Opened+c.WorkOrders.Completed+c.WorkOrders.InProgress+c.WorkOrders.Pending+c.WorkOrders.Overdue != 0 {
		t.Errorf("work orders %+v", c.WorkOrders)
	}
	for name, o := range map[string]kpi.Opt{
		"MTTR": c.MTTR, "MTBF truck": c.Type("truck").MTBF, "MTBF van": c.Type("van").MTBF,
		"PM compliance": c.PMCompliance, "planned": c.PlannedPct, "ml avg": c.ML.AvgProbability,
	} {
		wantOpt(t, name, o, 0, false)
	}
	if c.Type("truck").OperatingDays != 365 || len(c.ML.Top) != 0 || r.Inventory != (kpi.Inventory{}) {
		t.Errorf("figures %+v %+v", c.Type("truck"), r.Inventory)
	}
	if r.Previous.Week.String() != "2025-W52" || r.Trend[0].Week.String() != "2025-W42" {
		t.Errorf("previous %s, trend from %s", r.Previous.Week, r.Trend[0].Week)
	}
	rows := kpi.Rows(r)
	for _, row := range rows {
		if row.Key == "ml_high_risk" && row.CurText() != "n/a" {
			t.Errorf("ml high risk with no scores: %q, want n/a", row.CurText())
		}
	}
}

// MTTR takes a work order's repair_hours and, when they are missing, the
// hours from started_at to completed_at (an export with only timestamps
// still has an MTTR); a work order with neither is left out.
func TestMTTRFallsBackToStartedCompleted(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES
	('TRK-1', 'Truck', 'truck', '2020-01-01'), ('VAN-1', 'Van', 'van', '2020-01-01');
INSERT INTO work_orders (wo_number, asset_id, type, status, title, created_at, started_at, completed_at, repair_hours)
SELECT v.num, a.id, 'CORRECTIVE', 'COMPLETED', v.num, timestamptz '2026-11-16 07:00Z', v.started::timestamptz, v.completed::timestamptz, v.hours::numeric
FROM (VALUES
	('R1', 'TRK-1', '2026-11-17 08:00Z', '2026-11-17 10:00Z', '3.0'),  -- repair_hours win over the 2 h span
	('R2', 'TRK-1', '2026-11-18 10:00Z', '2026-11-18 16:30Z', NULL),   -- no repair_hours: 6.5 h
	('R3', 'VAN-1', '2026-11-19 23:15Z', '2026-11-20 01:00Z', NULL),   -- over midnight: 1.75 h
	('R4', 'VAN-1', NULL,                '2026-11-20 12:00Z', NULL)    -- neither: left out
) AS v(num, tag, started, completed, hours)
JOIN assets a ON a.asset_tag = v.tag`); err != nil {
		t.Fatal(err)
	}
	r, err := kpi.Compute(ctx, pool, kpi.Params{Week: week(t, "2026-W47"), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Current
	wantInt(t, "repairs", c.Repairs, 3)
	wantOpt(t, "MTTR", c.MTTR, (3+6.5+1.75)/3, true)
	wantOpt(t, "MTTR truck", c.Type("truck").MTTR, (3+6.5)/2, true)
	wantInt(t, "repairs van", c.Type("van").Repairs, 1)
	wantOpt(t, "MTTR van", c.Type("van").MTTR, 1.75, true)
}
