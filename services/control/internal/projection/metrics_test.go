package projection_test

import (
	"maps"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore/metricstest"
)

// counts is each data point's counter value or histogram count, leaving out
// the counters' zeros (runstore.NewMetrics starts them at 0).
func counts(t *testing.T, r *metricstest.Reader, name, unit string) map[string]float64 {
	t.Helper()
	points, gotUnit := r.Points(t, name)
	if len(points) > 0 && gotUnit != unit {
		t.Errorf("%s: unit %q, want %q", name, gotUnit, unit)
	}
	out := map[string]float64{}
	for k, p := range points {
		if n := p.Value + float64(p.Count); n != 0 {
			out[k] = n
		}
	}
	return out
}

func wantPoints(t *testing.T, r *metricstest.Reader, name, unit string, want map[string]float64) {
	t.Helper()
	if got := counts(t, r, name, unit); !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// TestRunMetrics drives a successful and a failed run through the projection
// with redeliveries, a late retry report and a second failure report of an
// ended step: each run and step end is recorded once, with its pipeline,
// step and final state.
func TestRunMetrics(t *testing.T) {
	f := newFixture(t)
	pm, etl := events.PreventiveMaintenance, events.ETLMLTraining
	deliver := func(typ, run, pipeline string, payload proto.Message, want ...eventing.Outcome) {
		t.Helper()
		m := eventingtest.Event(t, typ, run, pipeline, payload).Message()
		for _, w := range append([]eventing.Outcome{eventing.Handled}, want...) {
			eventingtest.Deliver(t, f.router, m, w)
		}
	}
	const ok, bad = "manual__ok", "manual__bad"
	deliver(events.PipelineTriggered, ok, pm, &eventsv1.PipelineTriggered{Source: "manual"})
	deliver(events.StepStarted, ok, pm, &eventsv1.StepStarted{Step: "pmgen"})
	deliver(events.StepSucceeded, ok, pm, &eventsv1.StepSucceeded{Step: "pmgen"}, eventing.Duplicate)
	deliver(events.StepStarted, ok, pm, &eventsv1.StepStarted{Step: "notifier"})
	wantPoints(t, f.metrics, "cmmsflow.runs.finished", "{run}", map[string]float64{})
	deliver(events.StepSucceeded, ok, pm, &eventsv1.StepSucceeded{Step: "notifier"}, eventing.Duplicate, eventing.Duplicate)

	deliver(events.PipelineTriggered, bad, etl, &eventsv1.PipelineTriggered{Source: "manual"})
	deliver(events.StepStarted, bad, etl, &eventsv1.StepStarted{Step: "extractor"})
	deliver(events.StepFailed, bad, etl, &eventsv1.StepFailed{Step: "extractor", Error: "db down", Retrying: true})
	deliver(events.StepFailed, bad, etl, &eventsv1.StepFailed{Step: "extractor", Error: "gave up"}, eventing.Duplicate)
	// Another event saying the ended step failed (as the sweeper's report
	// comes back to control): no new end.
	deliver(events.StepFailed, bad, etl, &eventsv1.StepFailed{Step: "extractor", Error: "timed out"})
	if state, _, _ := f.run(t, bad); state != "failed" {
		t.Fatalf("run %s is %s, want failed", bad, state)
	}

	wantPoints(t, f.metrics, "cmmsflow.runs.finished", "{run}", map[string]float64{
		"pipeline=" + pm + ",state=success": 1,
		"pipeline=" + etl + ",state=failed": 1,
	})
	wantPoints(t, f.metrics, "cmmsflow.runs.duration", "s", map[string]float64{
		"pipeline=" + pm + ",state=success": 1,
		"pipeline=" + etl + ",state=failed": 1,
	})
	wantPoints(t, f.metrics, "cmmsflow.steps.duration", "s", map[string]float64{
		"pipeline=" + pm + ",state=success,step=pmgen":     1,
		"pipeline=" + pm + ",state=success,step=notifier":  1,
		"pipeline=" + etl + ",state=failed,step=extractor": 1,
	})
	wantPoints(t, f.metrics, "cmmsflow.schedule.lag", "s", map[string]float64{}) // manual runs have no tick
}

// TestScheduleLagMetric: a scheduled kick records its run's lag, from the
// tick (the run's logical date) to its queueing, once for all the kick's
// deliveries and publishes.
func TestScheduleLagMetric(t *testing.T) {
	f := newFixture(t)
	pm := events.PreventiveMaintenance
	kick := func(id string, at time.Time) eventing.Message {
		return eventing.Message{
			Attributes: map[string]string{"ce-source": "//cmmsflow/scheduler", "ce-type": events.PipelineTriggered, "ce-specversion": "1.0",
				"content-type": "application/json", "pipeline": pm, "run_id": "scheduled"},
			Data: []byte(`{"source":"scheduled"}`), PubSubID: id, PublishTime: at,
		}
	}
	before := time.Now()
	tick, _ := dailyAt6(pm, before)
	eventingtest.Deliver(t, f.router, kick("1", before), eventing.Handled)
	eventingtest.Deliver(t, f.router, kick("1", before), eventing.Duplicate)
	eventingtest.Deliver(t, f.router, kick("2", before.Add(time.Second)), eventing.Handled)
	after := time.Now()

	points, unit := f.metrics.Points(t, "cmmsflow.schedule.lag")
	p, ok := points["pipeline="+pm]
	if len(points) != 1 || !ok || p.Count != 1 || unit != "s" {
		t.Fatalf("schedule lag %v (unit %q), want one run of %s", points, unit, pm)
	}
	// The run was queued between before and after (one clock: the test's
	// PostgreSQL runs on this machine), its tick earlier.
	if lo, hi := before.Sub(tick).Seconds()-1, after.Sub(tick).Seconds()+1; p.Sum < lo || p.Sum > hi {
		t.Errorf("lag %.1fs, want between %.1fs and %.1fs after the tick %s", p.Sum, lo, hi, tick)
	}
}

// TestQueuedRunsGauge: the gauge reports, by pipeline, the runs waiting for
// a slot, read from the database at collection.
func TestQueuedRunsGauge(t *testing.T) {
	f := newFixtureLimit(t, 1)
	pm := events.PreventiveMaintenance
	for _, run := range []string{"manual__1", "manual__2", "manual__3"} {
		m := eventingtest.Event(t, events.PipelineTriggered, run, pm, &eventsv1.PipelineTriggered{Source: "manual"}).Message()
		eventingtest.Deliver(t, f.router, m, eventing.Handled)
	}
	want := map[string]metricstest.Point{}
	for _, p := range events.Pipelines {
		want["pipeline="+p.ID] = metricstest.Point{}
	}
	wantGauge := func(queued float64) {
		t.Helper()
		want["pipeline="+pm] = metricstest.Point{Value: queued}
		if got, unit := f.metrics.Points(t, "cmmsflow.runs.queued"); !maps.Equal(got, want) || unit != "{run}" {
			t.Errorf("runs queued %v (unit %q), want %v", got, unit, want)
		}
	}
	wantGauge(2)
	// manual__1 ends: manual__2 starts, one left waiting.
	eventingtest.Deliver(t, f.router, eventingtest.Event(t, events.StepFailed, "manual__1", pm,
		&eventsv1.StepFailed{Step: "pmgen", Error: "boom"}).Message(), eventing.Handled)
	wantGauge(1)
}
