package eventing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestDeadLetterRecordsPermanentErrorsOnly(t *testing.T) {
	in := newInbox(t)
	transient := eventing.DeadLetter(in)(func(context.Context, *eventing.Delivery) error { return errors.New("503") })
	if err := transient(context.Background(), delivery(t)); err == nil || count(t, in, `SELECT count(*) FROM dead_letters`) != 0 {
		t.Fatalf("a transient error: %v, or recorded", err)
	}
	permanent := eventing.DeadLetter(in)(func(context.Context, *eventing.Delivery) error {
		return eventing.Permanent(errors.New("no such asset"))
	})
	d := delivery(t)
	for i, want := range []eventing.Outcome{eventing.DeadLettered, eventing.Duplicate} {
		d := &eventing.Delivery{Event: d.Event, Message: d.Message, Outcome: eventing.Handled}
		if err := permanent(context.Background(), d); err != nil || d.Outcome != want {
			t.Fatalf("delivery %d: %v %s, want %s", i+1, err, d.Outcome, want)
		}
	}
	var reason, runID string
	if err := in.Pool.QueryRow(context.Background(), `SELECT reason, run_id FROM dead_letters`).Scan(&reason, &runID); err != nil ||
		reason != "no such asset" || runID != d.Event.RunID {
		t.Fatalf("dead letter %q %q %v", reason, runID, err)
	}
	// pmgen is a step of the event's pipeline: its step fails, once.
	if got := outboxTypes(t, in); fmt.Sprint(got) != fmt.Sprint([]string{events.StepFailed}) {
		t.Fatalf("outbox %v, want one step failure", got)
	}
}
