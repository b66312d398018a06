package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// expectedDuePlans is an independent statement of which seeded plans are due
// today (UTC, the stack's PM_TIME_ZONE): active plans of ACTIVE assets with
// no open work order, due by calendar (within their lead time) or by meter,
// and not past their end date.
const expectedDuePlans = `
SELECT p.id FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id
WHERE p.active AND a.status = 'ACTIVE'
  AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = p.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
  AND (   (p.next_due_date IS NOT NULL AND p.next_due_date <= (now() AT TIME ZONE 'UTC')::date + p.lead_days
           AND (p.end_date IS NULL OR p.next_due_date <= p.end_date))
       OR (p.meter_unit = 'km'    AND a.meter_reading >= p.next_due_meter AND (p.end_date IS NULL OR (now() AT TIME ZONE 'UTC')::date <= p.end_date))
       OR (p.meter_unit = 'hours' AND a.engine_hours  >= p.next_due_meter AND (p.end_date IS NULL OR (now() AT TIME ZONE 'UTC')::date <= p.end_date)))
ORDER BY p.id`

func ids(t *testing.T, sql string, args ...any) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func outboxFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(sys.StateDir, "outbox", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The preventive maintenance pipeline on the demo fleet: the right work
// orders exactly once, plans advanced, technicians notified once each, the
// summary emailed, and the run a success with its figures.
func TestPreventiveMaintenancePipeline(t *testing.T) {
	want := ids(t, expectedDuePlans)
	if len(want) == 0 {
		t.Fatal("the demo fleet has no due plans: nothing to test")
	}
	t.Logf("%d plans due on the demo fleet", len(want))
	// The same trigger delivered three times is one run.
	ev := publishTrigger(t, events.PreventiveMaintenance, 3)
	runID := ev.RunID
	state, steps := waitRun(t, runID, 60*time.Second)
	if state != "success" || steps["pmgen"].State != "success" || steps["notifier"].State != "success" {
		t.Fatalf("run %s: %s %+v", runID, state, steps)
	}

	got := ids(t, `SELECT plan_id FROM work_orders WHERE run_id = $1 ORDER BY plan_id`, runID)
	if !slices.Equal(got, want) {
		t.Fatalf("work orders for plans %v,\nwant %v (independent query)", got, want)
	}
	if n := count(t, `SELECT count(*) FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id
		WHERE w.run_id = $1 AND (p.next_due_date IS NULL OR p.next_due_date <= w.due_date) AND p.meter_interval IS NULL`, runID); n != 0 {
		t.Fatalf("%d calendar plans not advanced past their new work order", n)
	}
	var created float64
	if err := pool.QueryRow(context.Background(), `SELECT (figures->>'created')::float FROM steps WHERE run_id = $1 AND step = 'pmgen'`, runID).Scan(&created); err != nil || int(created) != len(want) {
		t.Fatalf("pmgen figures: created %v (%v), want %d", created, err, len(want))
	}

	techs := count(t, `SELECT count(DISTINCT w.assigned_technician_id) FROM work_orders w JOIN technicians t ON t.id = w.assigned_technician_id
		WHERE w.run_id = $1 AND t.active`, runID)
	if n := count(t, `SELECT count(*) FROM notifications WHERE run_id = $1 AND channel = 'inbox'`, runID); n != techs || techs == 0 {
		t.Fatalf("%d inbox notifications for %d technicians", n, techs)
	}
	if n := count(t, `SELECT count(*) FROM notifications WHERE run_id = $1 AND channel = 'email' AND status = 'sent' AND kind = 'pm_summary'`, runID); n != 1 {
		t.Fatalf("%d summary emails, want 1", n)
	}
	files := outboxFiles(t)
	if sent := count(t, `SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'sent'`); len(files) != sent {
		t.Fatalf("%d .eml files in the outbox for %d sent emails", len(files), sent)
	}
	var summary bool
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Subject: [cmmsflow] Preventive maintenance") {
			summary = true
		}
	}
	if !summary {
		t.Fatal("no summary email in the outbox")
	}

	// A second trigger the same day creates no work order and notifies no
	// technician again.
	before := count(t, `SELECT count(*) FROM work_orders`)
	notes := count(t, `SELECT count(*) FROM notifications WHERE channel IN ('inbox', 'webhook') OR kind <> 'pm_summary'`)
	second := trigger(t, events.PreventiveMaintenance)
	if state, steps := waitRun(t, second, 60*time.Second); state != "success" {
		t.Fatalf("second run: %s %+v", state, steps)
	}
	if after := count(t, `SELECT count(*) FROM work_orders`); after != before {
		t.Fatalf("second trigger created %d work orders", after-before)
	}
	if n := count(t, `SELECT count(*) FROM notifications WHERE channel IN ('inbox', 'webhook') OR kind <> 'pm_summary'`); n != notes {
		t.Fatalf("second trigger sent %d technician notifications", n-notes)
	}
}
