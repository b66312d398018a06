package eventing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// runStates is a RunStates whose answer the test sets.
type runStates struct{ state atomic.Value }

func (r *runStates) RunState(context.Context, string) (string, error) {
	return r.state.Load().(string), nil
}

func TestRunGuardStopsTheStepWithItsRun(t *testing.T) {
	in := newInbox(t)
	runs := &runStates{}
	runs.state.Store("failed")
	var calls atomic.Int32
	next := eventing.RunGuard(runs, in, 5*time.Millisecond)(func(ctx context.Context, _ *eventing.Delivery) error {
		calls.Add(1)
		runs.state.Store("cancelled")
		<-ctx.Done()
		return context.Cause(ctx)
	})
	d := delivery(t)
	if err := next(context.Background(), d); err != nil || d.Outcome != eventing.Cancelled || calls.Load() != 0 {
		t.Fatalf("a failed run's step: %v %s, %d calls", err, d.Outcome, calls.Load())
	}
	d2 := &eventing.Delivery{Event: d.Event, Outcome: eventing.Handled}
	if err := next(context.Background(), d2); err != nil || d2.Outcome != eventing.Duplicate {
		t.Fatalf("redelivery: %v %s, want duplicate", err, d2.Outcome)
	}
	runs.state.Store("running")
	d3 := delivery(t)
	if err := next(context.Background(), d3); err != nil || d3.Outcome != eventing.Cancelled || calls.Load() != 1 {
		t.Fatalf("stopped at work: %v %s, %d calls", err, d3.Outcome, calls.Load())
	}
	if n := count(t, in, `SELECT count(*) FROM processed_events`); n != 2 {
		t.Fatalf("%d processed, want both stopped events", n)
	}
	runs.state.Store("running")
	failing := eventing.RunGuard(runs, in, time.Hour)(func(context.Context, *eventing.Delivery) error { return errors.New("503") })
	if err := failing(context.Background(), delivery(t)); err == nil {
		t.Fatal("an active run's failure was swallowed")
	}
}
