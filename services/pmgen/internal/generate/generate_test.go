package generate_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

// expectedDueSQL is the due rule written independently of the code under
// test, as one SQL query over the seeded plans (interval arithmetic by
// PostgreSQL, floating plans re-anchored on their latest completion): the
// plans that must get a work order as of $1.
const expectedDueSQL = `
WITH eff AS (
	SELECT p.*, a.status AS asset_status,
	       CASE WHEN p.schedule_mode = 'floating' AND lc.done IS NOT NULL
	                 AND (p.last_completed_date IS NULL OR lc.done > p.last_completed_date)
	            THEN (lc.done + (p.interval_value || ' ' || p.interval_unit)::interval)::date
	            ELSE p.next_due_date END AS eff_next,
	       CASE p.meter_unit WHEN 'hours' THEN a.engine_hours ELSE a.meter_reading END AS reading
	FROM maintenance_plans p
	JOIN assets a ON a.id = p.asset_id
	LEFT JOIN LATERAL (SELECT (max(w.completed_at) AT TIME ZONE 'UTC')::date AS done
	                   FROM work_orders w WHERE w.plan_id = p.id AND w.status = 'COMPLETED') lc ON true
)
SELECT code FROM eff
WHERE active AND asset_status = 'ACTIVE'
  AND (end_date IS NULL OR end_date >= $1)
  AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = eff.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
  AND (   (interval_value IS NOT NULL AND (eff_next IS NULL
              OR (eff_next - lead_days <= $1 AND (end_date IS NULL OR eff_next <= end_date))))
       OR (meter_interval IS NOT NULL AND next_due_meter <= reading))
ORDER BY code`

// createdSQL lists the work orders a run created, checking every field
// against the plan and asset they came from.
const createdSQL = `
SELECT p.code || ' ' || w.due_date || ' skipped=' || w.skipped_occurrences ||
       CASE WHEN w.wo_number = 'PM-' || p.id || '-' || to_char(w.due_date, 'YYYYMMDD')
             AND w.type = 'PREVENTIVE' AND w.status = 'OPEN' AND w.priority = p.priority
             AND w.title = p.name || ' (' || a.asset_tag || ')'
             AND w.assigned_technician_id IS NOT DISTINCT FROM p.assigned_technician_id
             AND w.asset_id = p.asset_id AND w.description LIKE p.description || '%'
            THEN '' ELSE ' FIELDS WRONG: ' || row_to_json(w)::text END
FROM work_orders w
JOIN maintenance_plans p ON p.id = w.plan_id
JOIN assets a ON a.id = w.asset_id
WHERE w.run_id = $1
ORDER BY p.code`

func TestGenerate(t *testing.T) {
	f := newFixture(t)
	truck := f.asset("VH-1", "truck", "ACTIVE", 50000, 1200)
	van := f.asset("VH-2", "van", "ACTIVE", 10000, 300)
	retiredCar := f.asset("VH-3", "car", "INACTIVE", 1000, 10)
	bus := f.asset("VH-4", "bus", "IN_MAINTENANCE", 90000, 4000)
	forklift := f.asset("VH-5", "forklift", "ACTIVE", 0, 3000)

	f.plan("P-DUE", truck, map[string]any{"next_due_date": "2026-03-15", "priority": "HIGH", "assigned_technician_id": f.techs["T-2"]})
	f.plan("P-LEAD", van, map[string]any{"next_due_date": "2026-03-20", "lead_days": 7})
	f.plan("P-EARLY", van, map[string]any{"next_due_date": "2026-03-25", "lead_days": 7})
	f.plan("P-MISSED", truck, map[string]any{"next_due_date": "2025-12-31", "assigned_technician_id": nil})
	f.plan("P-PLAN-OFF", truck, map[string]any{"next_due_date": "2026-03-01", "active": false})
	f.plan("P-ASSET-OFF", retiredCar, map[string]any{"next_due_date": "2026-03-01"})
	f.plan("P-ASSET-MAINT", bus, map[string]any{"next_due_date": "2026-03-01"})
	f.plan("P-ENDED", van, map[string]any{"next_due_date": "2026-03-01", "end_date": "2026-03-10"})
	f.plan("P-BEYOND-END", van, map[string]any{"next_due_date": "2026-03-20", "lead_days": 10, "end_date": "2026-03-18"})
	f.plan("P-OPEN", truck, map[string]any{"next_due_date": "2026-03-01"})
	f.workOrder("OLD-1", "P-OPEN", "2026-02-01", "IN_PROGRESS", nil)
	f.plan("P-CLOSED", van, map[string]any{"next_due_date": "2026-03-10"})
	f.workOrder("OLD-2", "P-CLOSED", "2026-02-10", "COMPLETED", ts("2026-02-11T09:00:00Z"))
	f.plan("P-KM", truck, map[string]any{"interval_value": nil, "interval_unit": nil, "meter_interval": 15000, "meter_unit": "km", "next_due_meter": 45000})
	f.plan("P-HOURS", forklift, map[string]any{"interval_value": nil, "interval_unit": nil, "meter_interval": 250, "meter_unit": "hours", "next_due_meter": 3500})
	f.plan("P-BOTH", van, map[string]any{"next_due_date": "2026-05-01", "meter_interval": 5000, "meter_unit": "km", "next_due_meter": 9000})
	f.plan("P-FLOAT", truck, map[string]any{"schedule_mode": "floating", "next_due_date": "2026-04-10", "last_completed_date": "2026-02-01"})
	f.workOrder("OLD-3", "P-FLOAT", "2026-03-10", "COMPLETED", ts("2026-03-01T10:00:00Z"))
	f.plan("P-FLOAT-DUE", van, map[string]any{"schedule_mode": "floating", "next_due_date": "2026-05-01", "lead_days": 7})
	f.workOrder("OLD-4", "P-FLOAT-DUE", "2026-02-07", "COMPLETED", ts("2026-02-10T15:00:00Z"))
	f.plan("P-NEW", forklift, map[string]any{"interval_value": 2, "interval_unit": "weeks"})

	const asOf = "2026-03-15"
	want := f.strings(expectedDueSQL, asOf)
	before := f.planStates()

	res := f.run(asOf, "UTC", "run-1")

	gotPlans := f.strings(`SELECT p.code FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id WHERE w.run_id = 'run-1' ORDER BY 1`)
	if fmt.Sprint(gotPlans) != fmt.Sprint(want) {
		t.Errorf("work orders for plans\n %v\nwant (independent query)\n %v", gotPlans, want)
	}
	wantCreated := []string{
		"P-BOTH 2026-03-15 skipped=0",      // meter first
		"P-CLOSED 2026-03-10 skipped=0",    // only a closed work order
		"P-DUE 2026-03-15 skipped=0",       // due today
		"P-FLOAT-DUE 2026-03-10 skipped=0", // re-anchored on its completion, then due
		"P-KM 2026-03-15 skipped=0",        // meter threshold
		"P-LEAD 2026-03-20 skipped=0",      // inside its lead window
		"P-MISSED 2026-02-28 skipped=2",    // Dec 31, Jan 31, Feb 28 folded into one
		"P-NEW 2026-03-15 skipped=0",       // never scheduled
	}
	if got := f.strings(createdSQL, "run-1"); fmt.Sprint(got) != fmt.Sprint(wantCreated) {
		t.Errorf("created\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(wantCreated, "\n "))
	}
	wantRes := generate.Result{
		AsOf: schedule.D(2026, 3, 15), Created: 8, SkippedOpen: 1, MissedOccurrences: 2, Reanchored: 1,
		CreatedByVehicleType: map[string]int{"truck": 3, "van": 4, "forklift": 1},
	}
	checkResult(t, res, wantRes)

	after := f.planStates()
	wantStates := map[string]planState{
		"P-DUE":       {NextDueDate: "2026-04-15", Anchor: "15"},
		"P-LEAD":      {NextDueDate: "2026-04-20", Anchor: "20"},
		"P-MISSED":    {NextDueDate: "2026-03-31", Anchor: "31"},
		"P-CLOSED":    {NextDueDate: "2026-04-10", Anchor: "10"},
		"P-KM":        {NextDueMeter: "60000.0"},
		"P-BOTH":      {NextDueDate: "2026-04-15", Anchor: "15", NextDueMeter: "14000.0"},
		"P-FLOAT":     {NextDueDate: "2026-04-01", Anchor: "1", LastCompletedDate: "2026-03-01"},
		"P-FLOAT-DUE": {NextDueDate: "2026-04-10", Anchor: "10", LastCompletedDate: "2026-02-10"},
		"P-NEW":       {NextDueDate: "2026-03-29"},
	}
	for code, s := range after {
		w, changed := wantStates[code]
		if !changed {
			w = before[code]
		}
		if s != w {
			t.Errorf("plan %s: %+v, want %+v", code, s, w)
		}
	}

	// The same day again, as a new run: nothing new, no plan moves.
	res = f.run(asOf, "UTC", "run-2")
	checkResult(t, res, generate.Result{AsOf: schedule.D(2026, 3, 15), SkippedOpen: 1, CreatedByVehicleType: map[string]int{}})
	if n := f.count(`SELECT count(*) FROM work_orders WHERE run_id = 'run-2'`); n != 0 {
		t.Errorf("rerun created %d work orders", n)
	}
	if again := f.planStates(); !maps.Equal(again, after) {
		t.Errorf("rerun moved plans:\n%v\nwas\n%v", again, after)
	}

	// The next day, with P-MISSED's work order done: its next occurrence
	// (Mar 31, anchored on the 31st) is not due yet; nothing else is.
	f.exec(`UPDATE work_orders SET status = 'COMPLETED', started_at = '2026-03-16 08:00Z', completed_at = '2026-03-16 09:00Z'
		WHERE plan_id = $1 AND run_id = 'run-1'`, f.plans["P-MISSED"])
	res = f.run("2026-03-16", "UTC", "run-3")
	checkResult(t, res, generate.Result{AsOf: schedule.D(2026, 3, 16), SkippedOpen: 1, CreatedByVehicleType: map[string]int{}})
	res = f.run("2026-03-31", "UTC", "run-4")
	if got := f.strings(createdSQL, "run-4"); !slices.Contains(got, "P-MISSED 2026-03-31 skipped=0") {
		t.Errorf("Mar 31 run created %v, want P-MISSED's Mar 31 occurrence", got)
	}
	if s := f.planStates()["P-MISSED"]; s.NextDueDate != "2026-04-30" || s.Anchor != "31" {
		t.Errorf("P-MISSED after Mar 31: %+v, want next 2026-04-30 anchored on the 31st", s)
	}
	_ = res
}

func checkResult(t *testing.T, got, want generate.Result) {
	t.Helper()
	got.Evaluated, got.Failures = 0, nil
	if got.CreatedByVehicleType == nil {
		got.CreatedByVehicleType = map[string]int{}
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("result\n %+v\nwant\n %+v", got, want)
	}
}

// A work order number taken by an unrelated work order fails that plan only;
// a closed work order for the very occurrence moves the plan past it.
func TestGenerateConflicts(t *testing.T) {
	f := newFixture(t)
	a := f.asset("VH-1", "truck", "ACTIVE", 0, 0)
	taken := f.plan("P-TAKEN", a, map[string]any{"next_due_date": "2026-03-15"})
	f.plan("P-EXISTS", a, map[string]any{"next_due_date": "2026-03-15"})
	f.plan("P-OK", a, map[string]any{"next_due_date": "2026-03-15"})
	f.exec(`INSERT INTO work_orders (wo_number, asset_id, type, title) VALUES ($1, $2, 'CORRECTIVE', 'imported')`,
		generate.Number(taken, schedule.D(2026, 3, 15)), a)
	f.workOrder("LEGACY-7", "P-EXISTS", "2026-03-15", "CANCELLED", nil)

	res := f.run("2026-03-15", "UTC", "run-1")
	if res.Created != 1 || res.Failed != 1 || res.AlreadyGenerated != 1 {
		t.Fatalf("result %+v, want 1 created, 1 failed, 1 already generated", res)
	}
	if len(res.Failures) != 1 || res.Failures[0].PlanCode != "P-TAKEN" || !strings.Contains(res.Failures[0].Reason, "taken") {
		t.Errorf("failures %+v", res.Failures)
	}
	states := f.planStates()
	if states["P-TAKEN"].NextDueDate != "2026-03-15" {
		t.Errorf("failed plan advanced: %+v", states["P-TAKEN"])
	}
	if states["P-EXISTS"].NextDueDate != "2026-04-15" || states["P-OK"].NextDueDate != "2026-04-15" {
		t.Errorf("plans not advanced: %+v", states)
	}
	if n := f.count(`SELECT count(*) FROM work_orders WHERE plan_id IS NOT NULL`); n != 2 {
		t.Errorf("%d plan work orders, want 2 (LEGACY-7 and P-OK's)", n)
	}
}

// "Today" and completion dates are taken in the configured zone.
func TestGenerateTimeZone(t *testing.T) {
	for _, tt := range []struct {
		zone string
		want string
	}{
		{"UTC", "2026-04-01"},        // completed Mar 1, 20:00 UTC
		{"Asia/Tokyo", "2026-04-02"}, // which is already Mar 2 in Tokyo
	} {
		t.Run(tt.zone, func(t *testing.T) {
			f := newFixture(t)
			a := f.asset("VH-1", "van", "ACTIVE", 0, 0)
			f.plan("P-FLOAT", a, map[string]any{"schedule_mode": "floating", "next_due_date": "2026-04-10", "last_completed_date": "2026-02-01"})
			f.workOrder("OLD-1", "P-FLOAT", "2026-03-10", "COMPLETED", ts("2026-03-01T20:00:00Z"))
			res := f.run("2026-03-05", tt.zone, "run-1")
			if res.Reanchored != 1 || res.Created != 0 {
				t.Fatalf("result %+v, want one plan re-anchored", res)
			}
			if s := f.planStates()["P-FLOAT"]; s.NextDueDate != tt.want {
				t.Errorf("next due %s, want %s", s.NextDueDate, tt.want)
			}
			// Recorded: the next run does not re-anchor again.
			if res := f.run("2026-03-06", tt.zone, "run-2"); res.Reanchored != 0 || res.Evaluated != 0 {
				t.Errorf("second run %+v, want nothing to do", res)
			}
		})
	}
}

// Concurrent runs for the same day create each work order once.
func TestGenerateConcurrentRuns(t *testing.T) {
	f := newFixture(t)
	for i := range 50 {
		a := f.asset(fmt.Sprintf("VH-%d", i), "car", "ACTIVE", 0, 0)
		f.plan(fmt.Sprintf("P-%d", i), a, map[string]any{"next_due_date": "2026-03-10"})
	}
	var wg sync.WaitGroup
	results := make([]generate.Result, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = runOn(f.pool, "2026-03-15", "UTC", fmt.Sprint("run-", i), nil)
		}()
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		total += results[i].Created
	}
	if total != 50 {
		t.Errorf("runs created %d work orders in all, want 50", total)
	}
	if n := f.count(`SELECT count(*) FROM work_orders`); n != 50 {
		t.Errorf("%d work orders, want 50", n)
	}
	if n := f.count(`SELECT count(*) FROM maintenance_plans WHERE next_due_date <> '2026-04-10'`); n != 0 {
		t.Errorf("%d plans not advanced exactly once", n)
	}
}

func TestGenerateRequestValidation(t *testing.T) {
	f := newFixture(t)
	tx, err := f.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := generate.Run(context.Background(), tx, generate.Request{RunID: "r"}); err == nil {
		t.Error("a request without a date was accepted")
	}
	if _, err := generate.Run(context.Background(), tx, generate.Request{AsOf: schedule.D(2026, 1, 1), RunID: "r"}); err == nil {
		t.Error("a request without a zone was accepted")
	}
}

func TestNumberAndKey(t *testing.T) {
	d := schedule.D(2026, 3, 5)
	if got := generate.Number(42, d); got != "PM-42-20260305" {
		t.Errorf("Number = %s", got)
	}
	if got := generate.IdempotencyKey(42, d); got != "pmgen-plan-42-2026-03-05" {
		t.Errorf("IdempotencyKey = %s", got)
	}
	if errors.Is(errors.New("x"), generate.ErrRefused) {
		t.Error("ErrRefused matches anything")
	}
}

// A run reads and decides the candidates a chunk at a time (a cursor):
// plans over several chunks all get their work order and advance, once, and
// the failures reported are those of the lowest plan ids, in plan order.
func TestGenerateAcrossChunks(t *testing.T) {
	const plans, takenEvery = 45_000, 1_500 // three chunks; 30 numbers taken
	f := newFixture(t)
	f.exec(`INSERT INTO assets (asset_tag, name, vehicle_type, status, commissioned_date)
		SELECT 'VH-' || g, 'Vehicle ' || g, 'van', 'ACTIVE', '2020-01-01' FROM generate_series(1, 1000) g`)
	f.exec(`INSERT INTO maintenance_plans (code, asset_id, name, interval_value, interval_unit, next_due_date)
		SELECT 'P-' || g, (SELECT min(id) FROM assets) + g % 1000, 'Service', 1, 'months', '2026-03-15'
		FROM generate_series(1, $1::int) g`, plans)
	// Numbers of every takenEvery-th plan held by unrelated work orders, the
	// highest ids first.
	f.exec(`INSERT INTO work_orders (wo_number, asset_id, type, title)
		SELECT 'PM-' || p.id || '-20260315', p.asset_id, 'CORRECTIVE', 'imported'
		FROM maintenance_plans p WHERE p.id % $1 = 7 ORDER BY p.id DESC`, takenEvery)
	taken := f.strings(`SELECT code FROM maintenance_plans WHERE id % $1 = 7 ORDER BY id`, takenEvery)

	res := f.run("2026-03-15", "UTC", "run-1")
	if res.Evaluated != plans || res.Created != plans-len(taken) || res.Failed != len(taken) {
		t.Fatalf("evaluated %d, created %d, failed %d; want %d, %d, %d",
			res.Evaluated, res.Created, res.Failed, plans, plans-len(taken), len(taken))
	}
	var codes []string
	for _, f := range res.Failures {
		codes = append(codes, f.PlanCode)
	}
	if want := taken[:20]; !slices.Equal(codes, want) {
		t.Errorf("failures %v, want the 20 lowest plans %v", codes, want)
	}
	if n := f.count(`SELECT count(DISTINCT plan_id) FROM work_orders WHERE run_id = 'run-1'`); n != plans-len(taken) {
		t.Errorf("%d plans got a work order, want %d", n, plans-len(taken))
	}
	if n := f.count(`SELECT count(*) FROM maintenance_plans WHERE next_due_date = '2026-04-15'`); n != plans-len(taken) {
		t.Errorf("%d plans advanced, want %d", n, plans-len(taken))
	}
	if res = f.run("2026-03-15", "UTC", "run-2"); res.Created != 0 {
		t.Errorf("a rerun created %d work orders", res.Created)
	}
}
