package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// A PM tick whose kick never came (the stack runs no cron publisher): once
// its grace has passed, control alerts it once, by email to the admins, and
// catches it up once with the run scheduled__<tick>, which succeeds.
func TestMissedTickIsAlertedAndCaughtUpOnce(t *testing.T) {
	ctx := context.Background()
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := table.Lookup(events.PreventiveMaintenance)
	tick := e.Prev(time.Now().Add(-10 * time.Minute)) // control's MISSED_TICK_GRACE
	runID := "scheduled__" + tick.UTC().Format("2006-01-02T15:04:05-07:00")
	// The caught-up run must not take today's due plans from the PM test:
	// the plans sleep while it runs.
	plans := ids(t, `UPDATE maintenance_plans SET active = false WHERE active RETURNING id`)
	t.Cleanup(func() {
		if _, err := pool.Exec(ctx, `UPDATE maintenance_plans SET active = true WHERE id = ANY($1)`, plans); err != nil {
			t.Error(err)
		}
	})
	// PM was unpaused just before the tick: the tick was due, with no run.
	if _, err := pool.Exec(ctx, `UPDATE pipelines SET updated_at = $1 WHERE id = $2`, tick.Add(-time.Minute), events.PreventiveMaintenance); err != nil {
		t.Fatal(err)
	}
	state, steps := waitRun(t, runID, time.Minute)
	if state != "success" {
		t.Fatalf("caught-up run %s: %s %+v", runID, state, steps)
	}
	key := "missed:" + events.PreventiveMaintenance + ":" + tick.UTC().Format(time.RFC3339)
	deadline := time.Now().Add(30 * time.Second)
	for count(t, `SELECT count(*) FROM notifications WHERE dedupe_key = $1 AND status = 'sent'`, key) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no alert email %s", key)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Later checks (every second here) change nothing.
	time.Sleep(3 * time.Second)
	if n := count(t, `SELECT count(*) FROM missed_ticks WHERE pipeline = $1 AND tick = $2 AND caught_up`, events.PreventiveMaintenance, tick); n != 1 {
		t.Fatalf("%d missed_ticks rows", n)
	}
	if n := count(t, `SELECT count(*) FROM notifications WHERE dedupe_key LIKE 'missed:%' AND channel = 'email'`); n != 1 {
		t.Fatalf("%d missed-tick emails, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM runs WHERE pipeline = $1 AND source = 'scheduled'`, events.PreventiveMaintenance); n != 1 {
		t.Fatalf("%d scheduled PM runs, want the one caught up", n)
	}
}

// Backfilling three weeks of the weekly KPI report, twice, gives three runs,
// which run one at a time (max_active_runs) and succeed.
func TestBackfillThreeWeeksTwice(t *testing.T) {
	// Three Mondays, well before the week the KPI test reports on.
	monday := time.Now().UTC().AddDate(0, 0, -7*8)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, -1)
	}
	from, to := monday.Format(time.DateOnly), monday.AddDate(0, 0, 14).Format(time.DateOnly)
	var runIDs []string
	for i := range 2 {
		created, existing := backfill(t, events.WeeklyKPIReport, from, to)
		if len(created) != 3-3*i || existing != 3*i {
			t.Fatalf("backfill %d of %s..%s: created %v, %d had their run", i+1, from, to, created, existing)
		}
		runIDs = append(runIDs, created...)
	}
	if len(runIDs) != 3 {
		t.Fatalf("runs %v", runIDs)
	}
	for _, id := range runIDs {
		if state, steps := waitRun(t, id, 2*time.Minute); state != "success" {
			t.Fatalf("backfilled run %s: %s %+v", id, state, steps)
		}
	}
	if n := count(t, `SELECT count(*) FROM runs WHERE source = 'backfill' AND logical_date >= $1 AND logical_date < $2`,
		monday.Truncate(24*time.Hour), monday.Truncate(24*time.Hour).AddDate(0, 0, 15)); n != 3 {
		t.Fatalf("%d backfilled runs in the range, want 3", n)
	}
}

// backfill calls control's BackfillPipeline over HTTP with the admin token.
func backfill(t *testing.T, pipeline, from, to string) (created []string, existing int) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"from_date": from, "to_date": to})
	var out struct {
		Created  []string `json:"created_run_ids"`
		Existing int      `json:"existing"`
	}
	if code, raw := controlCall(t, http.MethodPost, "/v1/pipelines/"+pipeline+":backfill", body, &out); code != http.StatusOK {
		t.Fatalf("backfill: HTTP %d %s", code, raw)
	}
	return out.Created, out.Existing
}
