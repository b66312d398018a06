package sweeper_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore/metricstest"
	"github.com/cmmsflow/cmmsflow/services/control/internal/sweeper"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// addRun inserts a run of pipeline in state, started ago, with its steps in
// the given states (in pipeline order; missing ones pending). ended, when
// set, is how long ago each ended step ended.
func addRun(t *testing.T, pool *pgxpool.Pool, runID, pipeline, state string, ago time.Duration, steps []string, ended time.Duration) {
	t.Helper()
	exec(t, pool, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at, started_at, trace_id)
		VALUES ($1, $2, $3, 'manual', now(), now() - make_interval(secs => $4), now() - make_interval(secs => $4), $5)`,
		runID, pipeline, state, ago.Seconds(), "0123456789abcdef0123456789abcdef")
	p, _ := events.LookupPipeline(pipeline)
	for i, name := range p.Steps {
		st := "pending"
		if i < len(steps) {
			st = steps[i]
		}
		var endedAgo any
		if st == "success" || st == "failed" {
			endedAgo = ended.Seconds()
		}
		exec(t, pool, `INSERT INTO steps (run_id, step, position, state, ended_at)
			VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5::float8))`, runID, name, i, st, endedAgo)
	}
}

func runState(t *testing.T, pool *pgxpool.Pool, runID string) (state, errText string, steps map[string]string) {
	t.Helper()
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT state, error FROM runs WHERE run_id = $1`, runID).Scan(&state, &errText); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT step, state || ':' || error FROM steps WHERE run_id = $1`, runID)
	if err != nil {
		t.Fatal(err)
	}
	steps = map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		steps[k] = v
	}
	return state, errText, steps
}

// stepFailedEvents returns the step-failed events in the outbox, by run.
func stepFailedEvents(t *testing.T, pool *pgxpool.Pool) map[string][]*eventsv1.StepFailed {
	t.Helper()
	out := map[string][]*eventsv1.StepFailed{}
	for _, ev := range eventingtest.Events(t, pool, events.StepFailed, "") {
		var p eventsv1.StepFailed
		if err := ev.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out[ev.RunID] = append(out[ev.RunID], &p)
	}
	return out
}

func TestSweepFailsStaleRunsOnly(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pm, etl := events.PreventiveMaintenance, events.ETLMLTraining
	hour := time.Hour
	// Stale: pmgen running for an hour (PM's timeout is 30m).
	addRun(t, pool, "stuck-running", pm, "running", hour, []string{"running"}, 0)
	// A queued run whose trigger never arrived, no steps at all, and no run
	// of its pipeline running: the sweep starts it (its slot is free).
	exec(t, pool, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at)
		VALUES ('stuck-queued', $1, 'queued', 'manual', now(), now() - interval '1 hour')`, events.WeeklyKPIReport)
	// Stale: first step ended 45m ago, the second up for retry since.
	addRun(t, pool, "stuck-retry", pm, "running", 2*hour, []string{"success", "up_for_retry"}, 45*time.Minute)
	// Not stale: old run whose latest step ended 10 minutes ago.
	addRun(t, pool, "progressing", pm, "running", 2*hour, []string{"success", "running"}, 10*time.Minute)
	// Not stale: ETL's timeout is 2h.
	addRun(t, pool, "etl-slow", etl, "running", hour, []string{"running"}, 0)
	// Finished runs are never touched.
	addRun(t, pool, "done", pm, "success", 5*hour, []string{"success", "success"}, 4*hour)
	addRun(t, pool, "failed-before", pm, "failed", 5*hour, []string{"failed"}, 4*hour)

	s := sweeper.New(pool, nil, projection.NewStarter(nil), nil, quiet)
	failed, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sweeper.Failed{}
	for _, f := range failed {
		got[f.RunID] = f
	}
	if len(got) != 2 || got["stuck-running"].Step != "pmgen" || got["stuck-retry"].Step != "notifier" {
		t.Fatalf("swept %+v", failed)
	}
	if state, _, steps := runState(t, pool, "stuck-queued"); state != "running" || steps["reporter"] != "pending:" {
		t.Fatalf("stuck-queued: %s %v, want started", state, steps)
	}
	if started := eventingtest.Count(t, pool, events.RunStarted, "stuck-queued"); started != 1 {
		t.Fatalf("run-started events for stuck-queued: %d", started)
	}
	reason := "timed out: no step finished within 30m0s"
	for id, step := range map[string]string{"stuck-running": "pmgen", "stuck-retry": "notifier"} {
		state, errText, steps := runState(t, pool, id)
		if state != "failed" || errText != reason || steps[step] != "failed:"+reason {
			t.Fatalf("%s: %s %q %v", id, state, errText, steps)
		}
	}
	if _, _, steps := runState(t, pool, "stuck-retry"); steps["pmgen"] != "success:" {
		t.Fatalf("a finished step was changed: %v", steps)
	}
	for _, id := range []string{"progressing", "etl-slow"} {
		if state, _, _ := runState(t, pool, id); state != "running" {
			t.Fatalf("%s: %s, want still running", id, state)
		}
	}
	// One alert event (step failed, not retrying) per swept run, nothing else.
	evs := stepFailedEvents(t, pool)
	if len(evs) != 2 {
		t.Fatalf("step-failed events for %d runs, want 2: %v", len(evs), evs)
	}
	for id, list := range evs {
		if len(list) != 1 || list[0].Retrying || list[0].Error != reason || list[0].Step != got[id].Step {
			t.Fatalf("%s: events %v", id, list)
		}
	}
	// The events join the run's trace.
	joined := eventingtest.Events(t, pool, "", "stuck-running")
	if len(joined) == 0 {
		t.Fatal("no event of stuck-running")
	}
	for _, ev := range joined {
		if !strings.HasPrefix(ev.TraceParent, "00-0123456789abcdef0123456789abcdef-") {
			t.Fatalf("%s traceparent %q", ev.Type(), ev.TraceParent)
		}
	}
	// A second sweep finds nothing.
	if again, err := s.Sweep(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second sweep: %v %v", again, err)
	}
}

// Several control instances sweeping at once fail each run once and emit
// one alert event per run.
func TestConcurrentSweepersFailEachRunOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	const runs = 40
	for i := range runs {
		addRun(t, pool, "stuck-"+string(rune('A'+i%26))+string(rune('a'+i/26)), events.PreventiveMaintenance, "running", time.Hour, []string{"running"}, 0)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 4 {
		wg.Go(func() {
			// Each instance has its own pool, as separate processes would.
			p2, err := db.Connect(ctx, pool.Config().ConnString())
			if err != nil {
				t.Error(err)
				return
			}
			defer p2.Close()
			failed, err := sweeper.New(p2, nil, projection.NewStarter(nil), nil, quiet).Sweep(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += len(failed)
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != runs {
		t.Fatalf("sweepers reported %d failed runs, want %d", total, runs)
	}
	evs := stepFailedEvents(t, pool)
	for id, list := range evs {
		if len(list) != 1 {
			t.Fatalf("%s: %d step-failed events", id, len(list))
		}
	}
	if len(evs) != runs {
		t.Fatalf("events for %d runs, want %d", len(evs), runs)
	}
}

func TestParseTimeouts(t *testing.T) {
	got, err := sweeper.ParseTimeouts("preventive_maintenance=20s, *=1m")
	if err != nil {
		t.Fatal(err)
	}
	if got[events.PreventiveMaintenance] != 20*time.Second || got[events.ETLMLTraining] != time.Minute || got[events.WeeklyKPIReport] != time.Minute {
		t.Fatalf("%v", got)
	}
	for _, bad := range []string{"nope=1m", "preventive_maintenance", "preventive_maintenance=soon", "preventive_maintenance=-1s"} {
		if _, err := sweeper.ParseTimeouts(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, err := sweeper.ParseTimeouts(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

// RUN_TIMEOUTS overrides the registry.
func TestOverrideTimeout(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	addRun(t, pool, "recent", events.WeeklyKPIReport, "running", 10*time.Second, []string{"running"}, 0)
	failed, err := sweeper.New(pool, map[string]time.Duration{events.WeeklyKPIReport: 5 * time.Second}, projection.NewStarter(nil), nil, quiet).Sweep(ctx)
	if err != nil || len(failed) != 1 || failed[0].Reason != "timed out: no step finished within 5s" {
		t.Fatalf("%+v %v", failed, err)
	}
}

// TestSweepRecordsFailedRuns: each run the sweeper fails counts once as a
// failed run, with its duration from its queueing, and its open step as a
// failed step; a second sweep (nothing stale left) records nothing more.
func TestSweepRecordsFailedRuns(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pm := events.PreventiveMaintenance
	addRun(t, pool, "stuck-1h", pm, "running", time.Hour, []string{"running"}, 0)
	addRun(t, pool, "stuck-2h", pm, "running", 2*time.Hour, []string{"success", "up_for_retry"}, 45*time.Minute)
	addRun(t, pool, "progressing", pm, "running", time.Hour, []string{"success", "running"}, 10*time.Minute)

	m, reader := metricstest.New(t, pool)
	s := sweeper.New(pool, nil, projection.NewStarter(nil), nil, quiet)
	s.Instrument(m)
	for range 2 {
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	key := "pipeline=" + pm + ",state=failed"
	finished, _ := reader.Points(t, "cmmsflow.runs.finished")
	var all float64
	for _, p := range finished {
		all += p.Value
	}
	if finished[key].Value != 2 || all != 2 {
		t.Errorf("runs finished %v, want %s: 2 and no other", finished, key)
	}
	// Queued 1h and 2h ago, failed now: 3h in all (the sweep's own time on
	// top, bounded generously).
	d, _ := reader.Points(t, "cmmsflow.runs.duration")
	if p := d[key]; len(d) != 1 || p.Count != 2 || p.Sum < 3*3600 || p.Sum > 3*3600+600 {
		t.Errorf("runs duration %v, want 2 runs of %s, 3h in all", d, key)
	}
	steps, _ := reader.Points(t, "cmmsflow.steps.duration")
	want := []string{key + ",step=pmgen", key + ",step=notifier"}
	if len(steps) != 2 || steps[want[0]].Count != 1 || steps[want[1]].Count != 1 {
		t.Errorf("steps duration %v, want one each of %v", steps, want)
	}
}
