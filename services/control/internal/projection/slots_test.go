package projection_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// runsIn lists a pipeline's runs in a state, oldest first.
func (f *fixture) runsIn(t *testing.T, pipeline, state string) []string {
	return f.strings(t, `SELECT run_id FROM runs WHERE pipeline = $1 AND state = $2 ORDER BY queued_at, run_id`, pipeline, state)
}

// startedRuns lists the runs that got a run-started event, in order.
func (f *fixture) startedRuns(t *testing.T) []string {
	var runs []string
	for _, ev := range eventingtest.Events(t, f.pool, events.RunStarted, "") {
		runs = append(runs, ev.RunID)
	}
	return runs
}

func (f *fixture) strings(t *testing.T, q string, args ...any) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// With max_active_runs 1 a second and third trigger wait queued; each run
// that ends, by success or failure, starts the oldest queued one.
func TestMaxActiveRunsQueuesInOrder(t *testing.T) {
	f := newFixtureLimit(t, 1)
	pm := events.PreventiveMaintenance
	for i := range 3 {
		run := fmt.Sprintf("manual__r%d", i)
		eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, run, pm, &eventsv1.PipelineTriggered{Source: "manual", Conf: map[string]string{"as_of": "2026-11-30"}}).Message(), eventing.Handled)
	}
	// Another pipeline has a slot of its own.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.PipelineTriggered, "manual__kpi", events.WeeklyKPIReport, &eventsv1.PipelineTriggered{Source: "manual"}).Message(), eventing.Handled)
	if got := f.runsIn(t, pm, "running"); !reflect.DeepEqual(got, []string{"manual__r0"}) {
		t.Fatalf("running %v", got)
	}
	if got := f.runsIn(t, pm, "queued"); !reflect.DeepEqual(got, []string{"manual__r1", "manual__r2"}) {
		t.Fatalf("queued %v", got)
	}
	if _, _, steps := f.run(t, "manual__r1"); len(steps) != 0 {
		t.Fatalf("a queued run has steps: %v", steps)
	}
	// r0 succeeds: r1 starts, with its conf.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepSucceeded, "manual__r0", pm, &eventsv1.StepSucceeded{Step: "pmgen"}).Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepSucceeded, "manual__r0", pm, &eventsv1.StepSucceeded{Step: "notifier"}).Message(), eventing.Handled)
	if got := f.runsIn(t, pm, "running"); !reflect.DeepEqual(got, []string{"manual__r1"}) {
		t.Fatalf("after r0 ended, running %v", got)
	}
	started := eventingtest.Emitted(t, f.pool, events.RunStarted, "manual__r1", func() *eventsv1.RunStarted { return &eventsv1.RunStarted{} })
	if len(started) != 1 || !reflect.DeepEqual(started[0].GetConf(), map[string]string{"as_of": "2026-11-30"}) {
		t.Fatalf("r1's run-started: %v", started)
	}
	// r1 fails: r2 starts.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepFailed, "manual__r1", pm, &eventsv1.StepFailed{Step: "pmgen", Error: "boom"}).Message(), eventing.Handled)
	if got := f.runsIn(t, pm, "running"); !reflect.DeepEqual(got, []string{"manual__r2"}) {
		t.Fatalf("after r1 failed, running %v", got)
	}
	want := []string{"manual__r0", "manual__kpi", "manual__r1", "manual__r2"}
	if got := f.startedRuns(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("started %v, want %v", got, want)
	}
}

// Concurrent triggers, each in its own transaction, never start more runs
// than the limit.
func TestMaxActiveRunsHoldsUnderConcurrentTriggers(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			f := newFixtureLimit(t, limit)
			pm := events.PreventiveMaintenance
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					m := eventingtest.Event(t, events.PipelineTriggered, fmt.Sprintf("manual__c%02d", i), pm, &eventsv1.PipelineTriggered{Source: "manual"}).Message()
					// A deadlock would be retried by Pub/Sub: here it fails.
					if out, err := f.router.Process(context.Background(), m); out != eventing.Handled {
						t.Errorf("trigger %d: %s %v", i, out, err)
					}
				})
			}
			wg.Wait()
			if got := len(f.runsIn(t, pm, "running")); got != limit {
				t.Fatalf("%d running, want %d", got, limit)
			}
			if got := len(f.runsIn(t, pm, "queued")); got != 20-limit {
				t.Fatalf("%d queued, want %d", got, 20-limit)
			}
		})
	}
}
