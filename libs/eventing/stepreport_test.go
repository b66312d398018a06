package eventing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

func TestStepReportReportsEachPhase(t *testing.T) {
	in := newInbox(t)
	step := func(res eventing.StepResult, err error) eventing.Next {
		return chain(func(_ context.Context, d *eventing.Delivery) error {
			d.Result = res
			return err
		}, eventing.StepReport(in, events.WorkOrdersGenerated), eventing.Lease(in, time.Minute))
	}
	out := eventing.StepResult{Output: &eventsv1.WorkOrdersGenerated{}, Figures: map[string]float64{"created": 2}}
	if err := step(out, nil)(context.Background(), delivery(t)); err != nil {
		t.Fatal(err)
	}
	want := []string{events.StepStarted, events.WorkOrdersGenerated, events.StepSucceeded}
	if got := outboxTypes(t, in); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	// A transient failure: started, then failed (retrying), nothing else.
	if err := step(out, errors.New("503"))(context.Background(), delivery(t)); err == nil {
		t.Fatal("no error")
	}
	want = append(want, events.StepStarted, events.StepFailed)
	if got := outboxTypes(t, in); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	// A step that declares an output must return it.
	err := step(eventing.StepResult{}, nil)(context.Background(), delivery(t))
	if !eventing.IsPermanent(err) || !strings.Contains(err.Error(), "returned no "+events.WorkOrdersGenerated) {
		t.Fatalf("%v, want a permanent error naming the missing output", err)
	}
}
