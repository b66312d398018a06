package projection_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore/metricstest"
)

type fixture struct {
	pool    *pgxpool.Pool
	router  *eventing.Router
	metrics *metricstest.Reader
}

// dailyAt6 stands in for the cron table: the latest 06:00 UTC at or before t.
func dailyAt6(_ string, t time.Time) (time.Time, error) {
	tick := time.Date(t.Year(), t.Month(), t.Day(), 6, 0, 0, 0, time.UTC)
	if tick.After(t) {
		tick = tick.AddDate(0, 0, -1)
	}
	return tick, nil
}

// newFixture allows many runs of a pipeline at once; newFixtureLimit sets
// every pipeline's max_active_runs.
func newFixture(t *testing.T) *fixture { return newFixtureLimit(t, 64) }

func newFixtureLimit(t *testing.T, limit int) *fixture {
	pool := pgtest.New(t)
	if err := projection.SyncPipelines(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Log: log})
	m, reader := metricstest.New(t, pool)
	p := projection.New(dailyAt6, projection.NewStarter(func(string) int { return limit }), log)
	p.Instrument(m)
	p.Register(r)
	return &fixture{pool: pool, router: r, metrics: reader}
}

func (f *fixture) run(t *testing.T, runID string) (state, errText string, steps map[string]string) {
	t.Helper()
	ctx := context.Background()
	if err := f.pool.QueryRow(ctx, `SELECT state, error FROM runs WHERE run_id = $1`, runID).Scan(&state, &errText); err != nil {
		t.Fatalf("run %s: %v", runID, err)
	}
	rows, _ := f.pool.Query(ctx, `SELECT step, state || '/' || attempts FROM steps WHERE run_id = $1`, runID)
	steps = map[string]string{}
	for rows.Next() {
		var k, v string
		_ = rows.Scan(&k, &v)
		steps[k] = v
	}
	return state, errText, steps
}

func TestManualRunLifecycle(t *testing.T) {
	f := newFixture(t)
	const run = "manual__2026-11-27T09:00:00+00:00"
	pm := events.PreventiveMaintenance
	trig := eventingtest.Event(t, events.PipelineTriggered, run, pm, &eventsv1.PipelineTriggered{Source: "manual", Conf: map[string]string{"dry": "1"}})
	eventingtest.Deliver(t, f.router, trig.Message(), eventing.Handled)
	// The same trigger again, and a second trigger for the same run id.
	eventingtest.Deliver(t, f.router, trig.Message(), eventing.Duplicate)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, run, pm, &eventsv1.PipelineTriggered{Source: "manual"}).Message(), eventing.Handled)
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 1 {
		t.Fatalf("run started %d times, want once", n)
	}
	state, _, steps := f.run(t, run)
	if state != "running" || steps["pmgen"] != "pending/0" || steps["notifier"] != "pending/0" {
		t.Fatalf("after trigger: %s %v", state, steps)
	}

	step := func(typ string, payload proto.Message) eventing.Message {
		return eventingtest.Event(t, typ, run, pm, payload).Message()
	}
	eventingtest.Deliver(t, f.router, step(events.StepStarted, &eventsv1.StepStarted{Step: "pmgen"}), eventing.Handled)
	eventingtest.Deliver(t, f.router, step(events.StepFailed, &eventsv1.StepFailed{Step: "pmgen", Error: "db down", Retrying: true}), eventing.Handled)
	if _, _, steps = f.run(t, run); steps["pmgen"] != "up_for_retry/1" {
		t.Fatalf("after retryable failure: %v", steps)
	}
	eventingtest.Deliver(t, f.router, step(events.StepStarted, &eventsv1.StepStarted{Step: "pmgen"}), eventing.Handled)
	eventingtest.Deliver(t, f.router, step(events.StepSucceeded, &eventsv1.StepSucceeded{Step: "pmgen", Figures: map[string]float64{"created": 7}}), eventing.Handled)
	// notifier's events arrive out of order: succeeded before started. The
	// run has ended, and the step shows its attempt before the start comes.
	eventingtest.Deliver(t, f.router, step(events.StepSucceeded, &eventsv1.StepSucceeded{Step: "notifier"}), eventing.Handled)
	if state, _, steps = f.run(t, run); state != "success" || steps["notifier"] != "success/1" {
		t.Fatalf("after notifier's end, before its start: %s %v", state, steps)
	}
	eventingtest.Deliver(t, f.router, step(events.StepStarted, &eventsv1.StepStarted{Step: "notifier"}), eventing.Handled)
	state, _, steps = f.run(t, run)
	if state != "success" || steps["pmgen"] != "success/2" || steps["notifier"] != "success/1" {
		t.Fatalf("after both steps: %s %v", state, steps)
	}
	var created float64
	if err := f.pool.QueryRow(context.Background(), `SELECT (figures->>'created')::float FROM steps WHERE run_id = $1 AND step = 'pmgen'`, run).Scan(&created); err != nil || created != 7 {
		t.Fatalf("figures: %v %v", created, err)
	}
}

func TestFailedStepFailsRun(t *testing.T) {
	f := newFixture(t)
	const run = "manual__x"
	etl := events.ETLMLTraining
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, run, etl, &eventsv1.PipelineTriggered{Source: "manual"}).Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepSucceeded, run, etl, &eventsv1.StepSucceeded{Step: "extractor"}).Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepFailed, run, etl, &eventsv1.StepFailed{Step: "featurejob", Error: "bad input: no assets"}).Message(), eventing.Handled)
	// A late retry report must not revive the failed step; it was the end of
	// an earlier attempt, so the step shows two.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepFailed, run, etl, &eventsv1.StepFailed{Step: "featurejob", Error: "late", Retrying: true}).Message(), eventing.Handled)
	state, errText, steps := f.run(t, run)
	if state != "failed" || errText != "featurejob: bad input: no assets" || steps["featurejob"] != "failed/2" || steps["extractor"] != "success/1" || steps["trainer"] != "pending/0" {
		t.Fatalf("%s %q %v", state, errText, steps)
	}
}

func TestScheduledKicks(t *testing.T) {
	f := newFixture(t)
	pm := events.PreventiveMaintenance
	kick := func(id string, at time.Time) eventing.Message {
		return eventing.Message{
			Attributes: map[string]string{"ce-source": "//cmmsflow/scheduler", "ce-type": events.PipelineTriggered, "ce-specversion": "1.0",
				"content-type": "application/json", "pipeline": pm, "run_id": projection.ScheduledRunPlaceholder},
			Data: []byte(`{"source":"scheduled"}`), PubSubID: id, PublishTime: at,
		}
	}
	at := time.Date(2026, 11, 27, 6, 0, 2, 0, time.UTC)
	eventingtest.Deliver(t, f.router, kick("1", at), eventing.Handled)
	eventingtest.Deliver(t, f.router, kick("1", at), eventing.Duplicate)                   // redelivery
	eventingtest.Deliver(t, f.router, kick("2", at.Add(40*time.Second)), eventing.Handled) // a second publish of the same tick
	want := "scheduled__2026-11-27T06:00:00+00:00"
	if state, _, _ := f.run(t, want); state != "running" {
		t.Fatalf("scheduled run %s is %s", want, state)
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 1 {
		t.Fatalf("%d runs started for one tick", n)
	}
	// Paused: the next day's kick creates nothing; a manual trigger still runs.
	if _, err := f.pool.Exec(context.Background(), `UPDATE pipelines SET paused = true WHERE id = $1`, pm); err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.router, kick("3", at.AddDate(0, 0, 1)), eventing.Handled)
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 1 {
		t.Fatal("a paused pipeline started a scheduled run")
	}
	manual := eventingtest.Event(t, events.PipelineTriggered, "manual__y", pm, &eventsv1.PipelineTriggered{Source: "manual", LogicalDate: timestamppb.New(at)})
	eventingtest.Deliver(t, f.router, manual.Message(), eventing.Handled)
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 2 {
		t.Fatal("a manual trigger of a paused pipeline must run")
	}
}

// Model monitoring retrains through a trigger of its own source: it
// creates the run it names, once, and a paused pipeline ignores it.
func TestMonitoringTriggersRetraining(t *testing.T) {
	f := newFixture(t)
	etl := events.ETLMLTraining
	at := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	retrain := func(runID string) eventing.Message {
		return eventingtest.Event(t, events.PipelineTriggered, runID, etl,
			&eventsv1.PipelineTriggered{Source: projection.SourceMonitoring, LogicalDate: timestamppb.New(at)}).Message()
	}
	first := retrain("retrain__2026-12-03")
	eventingtest.Deliver(t, f.router, first, eventing.Handled)
	eventingtest.Deliver(t, f.router, first, eventing.Duplicate)                        // redelivery
	eventingtest.Deliver(t, f.router, retrain("retrain__2026-12-03"), eventing.Handled) // a second trigger of the run: ignored
	if state, _, _ := f.run(t, "retrain__2026-12-03"); state != "running" {
		t.Fatalf("retrain run is %q, want running", state)
	}
	var source string
	if err := f.pool.QueryRow(context.Background(), `SELECT source FROM runs WHERE run_id = 'retrain__2026-12-03'`).Scan(&source); err != nil || source != "monitoring" {
		t.Fatalf("run source %q (%v), want monitoring", source, err)
	}
	if _, err := f.pool.Exec(context.Background(), `UPDATE pipelines SET paused = true WHERE id = $1`, etl); err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.router, retrain("retrain__2026-12-04"), eventing.Handled)
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 1 {
		t.Fatalf("%d runs started, want 1: one per run id, and a paused pipeline ignores monitoring's triggers", n)
	}
}

func TestBadTriggersAndStrayStepsAreRejected(t *testing.T) {
	f := newFixture(t)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, "r", "no_such_dag", &eventsv1.PipelineTriggered{Source: "manual"}).Message(), eventing.DeadLettered)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, "r", events.WeeklyKPIReport, &eventsv1.PipelineTriggered{Source: "cron?"}).Message(), eventing.DeadLettered)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepStarted, "r", events.WeeklyKPIReport, &eventsv1.StepStarted{Step: "trainer"}).Message(), eventing.DeadLettered)
	// A step event for a run not created yet is retried, not dropped.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepStarted, "later", events.WeeklyKPIReport, &eventsv1.StepStarted{Step: "reporter"}).Message(), eventing.Retry)
	var n int
	_ = f.pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters WHERE consumer = 'control'`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
}

// TestRunRecordsItsTrace: a run queued by the API (no trace yet) records
// the trace its trigger carries when it starts, and run-started continues it.
func TestRunRecordsItsTrace(t *testing.T) {
	f := newFixture(t)
	const run = "manual__2026-11-27T10:00:00+00:00"
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `INSERT INTO runs (run_id, pipeline, state, source, conf, logical_date, queued_at)
		VALUES ($1, $2, 'queued', 'manual', '{}', now(), now())`, run, events.PreventiveMaintenance); err != nil {
		t.Fatal(err)
	}
	trig, err := eventing.New(events.PipelineTriggered, "//test", run, events.PreventiveMaintenance,
		"00-"+traceID+"-00f067aa0ba902b7-01", &eventsv1.PipelineTriggered{Source: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.router, trig.Message(), eventing.Handled)
	var got string
	if err := f.pool.QueryRow(ctx, `SELECT trace_id FROM runs WHERE run_id = $1`, run).Scan(&got); err != nil || got != traceID {
		t.Fatalf("run trace_id %q (%v), want %s", got, err, traceID)
	}
	if started := eventingtest.Events(t, f.pool, events.RunStarted, ""); len(started) != 1 || started[0].TraceID() != traceID {
		t.Fatalf("run-started events %v, want one in trace %s", started, traceID)
	}
}

// Control's routes are the registry's subscriptions of control.
func TestRoutesMatchTheRegistry(t *testing.T) {
	eventingtest.CheckRoutes(t, newFixture(t).router, events.Control)
}
