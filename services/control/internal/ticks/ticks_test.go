package ticks_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore/metricstest"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T) (*pgxpool.Pool, scheduler.Table) {
	t.Helper()
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	return pool, table
}

func exec(t *testing.T, pool *pgxpool.Pool, q string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func strs(t *testing.T, pool *pgxpool.Pool, q string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Control notices ticks with no run once their grace has passed: each is
// recorded and reported once; a pipeline with catchup (PM, KPI) gets the run
// scheduled__<tick>, ETL (catchup off) only the alert. Ticks before a
// pipeline's pause state last changed, ticks in their grace, ticks that have
// their run and paused pipelines are left alone.
func TestWatcherAlertsAndCatchesUpMissedTicks(t *testing.T) {
	pool, table := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 6, 5, 0, 0, time.UTC) // Wednesday, 5 minutes after PM's tick
	// Unpaused since Sunday 01:00: ETL's Sunday 02:00 and Monday's KPI tick
	// are due, and PM's Sunday, Monday and Tuesday 06:00 (today's is in its
	// grace).
	exec(t, pool, `UPDATE pipelines SET updated_at = $1`, time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC))
	// Model monitoring is paused: its daily ticks are left alone.
	exec(t, pool, `UPDATE pipelines SET paused = true WHERE id = $1`, events.ModelMonitoring)
	// Monday's PM run came.
	exec(t, pool, `INSERT INTO runs (run_id, pipeline, state, source, logical_date) VALUES ('scheduled__2026-11-30T06:00:00+00:00', $1, 'success', 'scheduled', '2026-11-30T06:00:00Z')`,
		events.PreventiveMaintenance)
	w := ticks.NewWatcher(pool, table, projection.NewStarter(table.MaxActiveRuns), nil, 10*time.Minute, quiet)
	ticks.SetNow(w, func() time.Time { return now })
	metrics, reader := metricstest.New(t, pool)
	w.Instrument(metrics)

	missed, err := w.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ticks.Missed{
		{Pipeline: events.ETLMLTraining, Tick: time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC), CaughtUp: false},
		{Pipeline: events.PreventiveMaintenance, Tick: time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC), CaughtUp: true},
		{Pipeline: events.PreventiveMaintenance, Tick: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC), CaughtUp: true},
		{Pipeline: events.WeeklyKPIReport, Tick: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), CaughtUp: true},
	}
	for i := range missed {
		missed[i].Tick = missed[i].Tick.UTC()
	}
	if !reflect.DeepEqual(missed, want) {
		t.Fatalf("missed %+v\nwant %+v", missed, want)
	}
	// The caught-up runs exist and start in order within max_active_runs
	// (1); ETL's does not exist.
	runs := strs(t, pool, `SELECT run_id || ' ' || state || ' ' || source FROM runs WHERE run_id NOT LIKE '%2026-11-30T06%' ORDER BY run_id`)
	if want := []string{
		"scheduled__2026-11-29T06:00:00+00:00 running scheduled",
		"scheduled__2026-11-30T08:00:00+00:00 running scheduled",
		"scheduled__2026-12-01T06:00:00+00:00 queued scheduled",
	}; !reflect.DeepEqual(runs, want) {
		t.Fatalf("runs %v, want %v", runs, want)
	}
	var alerts []string
	for _, ev := range eventingtest.Events(t, pool, events.ScheduleMissed, "") {
		alerts = append(alerts, ev.RunID)
	}
	if len(alerts) != 4 || alerts[0] != "scheduled__2026-11-29T02:00:00+00:00" {
		t.Fatalf("schedule-missed events %v, want 4 (ETL's first)", alerts)
	}
	if n := eventingtest.Count(t, pool, events.RunStarted, ""); n != 2 {
		t.Fatalf("%d runs started, want 2", n)
	}

	// Checked again (another instance, a minute later): nothing new.
	ticks.SetNow(w, func() time.Time { return now.Add(time.Minute) })
	if again, err := w.Check(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second check: %+v, %v", again, err)
	}
	// Past today's grace PM's 06:00 tick is missed too; a paused KPI is not
	// looked at.
	exec(t, pool, `UPDATE pipelines SET paused = true WHERE id = $1`, events.WeeklyKPIReport)
	ticks.SetNow(w, func() time.Time { return now.Add(10 * time.Minute) })
	later, err := w.Check(ctx)
	if err != nil || len(later) != 1 || later[0].Pipeline != events.PreventiveMaintenance || !later[0].Tick.Equal(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("after today's grace: %+v, %v", later, err)
	}
	// PM's first caught-up run still runs: today's waits queued.
	if state := strs(t, pool, `SELECT state FROM runs WHERE run_id = 'scheduled__2026-12-02T06:00:00+00:00'`); !reflect.DeepEqual(state, []string{"queued"}) {
		t.Fatalf("today's caught-up run: %v", state)
	}
	checkTickMetrics(t, reader)
}

// checkTickMetrics checks what TestWatcherAlertsAndCatchesUpMissedTicks
// recorded: each missed tick counted once, by pipeline, and the schedule
// lag of each run caught up (ETL has no catchup).
func checkTickMetrics(t *testing.T, reader *metricstest.Reader) {
	t.Helper()
	pm, kpi, etl := "pipeline="+events.PreventiveMaintenance, "pipeline="+events.WeeklyKPIReport, "pipeline="+events.ETLMLTraining
	missed, unit := reader.Points(t, "cmmsflow.schedule.missed")
	// Model monitoring, paused, missed none.
	want := map[string]metricstest.Point{pm: {Value: 3}, kpi: {Value: 1}, etl: {Value: 1}, "pipeline=" + events.ModelMonitoring: {Value: 0}}
	if !reflect.DeepEqual(missed, want) || unit != "{tick}" {
		t.Errorf("schedule missed %v (unit %q), want %v", missed, unit, want)
	}
	lag, _ := reader.Points(t, "cmmsflow.schedule.lag")
	if len(lag) != 2 || lag[pm].Count != 3 || lag[kpi].Count != 1 {
		t.Errorf("schedule lag %v, want 3 PM runs and 1 KPI run", lag)
	}
}

func TestBetween(t *testing.T) {
	_, table := setup(t)
	pm, _ := table.Lookup(events.PreventiveMaintenance)
	from := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	got := ticks.Between(pm, from, from.AddDate(0, 0, 3), 10)
	if len(got) != 3 || !got[0].Equal(from.AddDate(0, 0, 1)) || !got[2].Equal(from.AddDate(0, 0, 3)) {
		t.Fatalf("(from, from+3d]: %v", got)
	}
	if got := ticks.Between(pm, from, from.AddDate(1, 0, 0), 5); len(got) != 5 {
		t.Fatalf("limit 5: %d ticks", len(got))
	}
}
