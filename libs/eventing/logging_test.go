package eventing_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
)

func TestLoggingNamesTheDeliveryAndItsOutcome(t *testing.T) {
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, nil))
	d := delivery(t)
	d.Step, d.Message.DeliveryAttempt = "pmgen", 3
	next := eventing.Logging(log)(func(ctx context.Context, d *eventing.Delivery) error {
		logging.From(ctx).InfoContext(ctx, "inside")
		d.Outcome = eventing.Duplicate
		return nil
	})
	if err := next(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	failing := eventing.Logging(log)(func(context.Context, *eventing.Delivery) error { return errors.New("db down") })
	if err := failing(context.Background(), delivery(t)); err == nil {
		t.Fatal("the error was swallowed")
	}
	lines := sink.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines: %v", len(lines), lines)
	}
	for i, want := range []string{"inside", "event duplicate", "event failed, will be retried"} {
		if lines[i]["msg"] != want {
			t.Errorf("line %d: %v, want %q", i, lines[i]["msg"], want)
		}
	}
	if l := lines[0]; l["run_id"] != d.Event.RunID || l["event_id"] != d.Event.ID() || l["step"] != "pmgen" || l["delivery_attempt"] != float64(3) {
		t.Errorf("the handler's line lacks the delivery's attributes: %v", l)
	}
	if lines[2]["error"] != "db down" || lines[2]["step"] != nil {
		t.Errorf("failure line: %v", lines[2])
	}
}
