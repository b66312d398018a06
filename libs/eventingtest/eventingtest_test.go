package eventingtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

func TestOutboxReader(t *testing.T) {
	pool := pgtest.New(t)
	pm := events.PreventiveMaintenance
	a1 := eventingtest.Event(t, events.StepSucceeded, "a", pm, &eventsv1.StepSucceeded{Step: "pmgen"})
	b := eventingtest.Event(t, events.StepSucceeded, "b", pm, &eventsv1.StepSucceeded{Step: "notifier"})
	a2 := eventingtest.Event(t, events.StepFailed, "a", pm, &eventsv1.StepFailed{Step: "notifier", Error: "boom"})
	a3 := eventingtest.Event(t, events.StepSucceeded, "a", pm, &eventsv1.StepSucceeded{Step: "reporter"})
	for _, ev := range []eventing.Event{a1, b, a2, a3} {
		eventingtest.Emit(t, pool, ev)
	}
	if a1.Source() != eventingtest.Source {
		t.Errorf("source %q", a1.Source())
	}

	ids := func(evs []eventing.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.ID())
		}
		return out
	}
	for _, c := range []struct {
		typ, run string
		want     []eventing.Event
	}{
		{events.StepSucceeded, "", []eventing.Event{a1, b, a3}},
		{events.StepSucceeded, "a", []eventing.Event{a1, a3}},
		{"", "a", []eventing.Event{a1, a2, a3}},
		{"", "", []eventing.Event{a1, b, a2, a3}},
		{events.StepFailed, "b", nil},
		{events.RunStarted, "", nil},
	} {
		got := eventingtest.Events(t, pool, c.typ, c.run)
		if !reflect.DeepEqual(ids(got), ids(c.want)) {
			t.Errorf("Events(%q, %q) = %v, want %v", c.typ, c.run, ids(got), ids(c.want))
		}
		if n := eventingtest.Count(t, pool, c.typ, c.run); n != len(c.want) {
			t.Errorf("Count(%q, %q) = %d, want %d", c.typ, c.run, n, len(c.want))
		}
		if n := len(eventingtest.Messages(t, pool, c.typ, c.run)); n != len(c.want) {
			t.Errorf("Messages(%q, %q): %d, want %d", c.typ, c.run, n, len(c.want))
		}
	}

	// The events are decoded with their attributes, as consumers see them.
	got := eventingtest.Events(t, pool, events.StepFailed, "")[0]
	if got.RunID != "a" || got.Pipeline != pm || got.Type() != events.StepFailed || got.TraceParent == "" {
		t.Errorf("event %v", got)
	}
	m := eventingtest.Messages(t, pool, events.StepFailed, "")[0]
	if m.Attributes[eventing.AttrID] != a2.ID() || m.Attributes[eventing.AttrRunID] != "a" || string(m.Data) != string(a2.Data()) {
		t.Errorf("message %v %s", m.Attributes, m.Data)
	}

	steps := eventingtest.Emitted(t, pool, events.StepSucceeded, "", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} })
	if len(steps) != 3 || steps[0].Step != "pmgen" || steps[1].Step != "notifier" || steps[2].Step != "reporter" {
		t.Errorf("Emitted: %v", steps)
	}
	steps = eventingtest.Emitted(t, pool, events.StepSucceeded, "b", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} })
	if len(steps) != 1 || steps[0].Step != "notifier" {
		t.Errorf("Emitted of run b: %v", steps)
	}

	var last eventsv1.StepSucceeded
	if !eventingtest.Last(t, pool, events.StepSucceeded, &last) || last.Step != "reporter" {
		t.Errorf("Last: %v", &last)
	}
	if eventingtest.Last(t, pool, events.RunStarted, &eventsv1.RunStarted{}) {
		t.Error("Last found a run.started")
	}
}

// A payload of another type than the row's fails the test.
func TestEmittedFailsOnAnUndecodablePayload(t *testing.T) {
	pool := pgtest.New(t)
	eventingtest.Emit(t, pool, eventingtest.Event(t, events.StepFailed, "a", events.PreventiveMaintenance,
		&eventsv1.StepFailed{Step: "pmgen", Error: "boom"}))
	msg := fails(t, func(tb testing.TB) {
		eventingtest.Emitted(tb, pool, events.StepFailed, "", func() *eventsv1.RunStarted { return &eventsv1.RunStarted{} })
	})
	if msg == "" {
		t.Fatal("decoding step.failed as run.started passed")
	}
}

func TestDeliver(t *testing.T) {
	pool := pgtest.New(t)
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var handled []string
	r.Handle(events.StepSucceeded, func(_ context.Context, _ pgx.Tx, ev eventing.Event) error {
		if ev.RunID == "transient" {
			return errors.New("db down")
		}
		handled = append(handled, ev.RunID)
		return nil
	})
	m := eventingtest.Event(t, events.StepSucceeded, "r", events.PreventiveMaintenance, &eventsv1.StepSucceeded{Step: "pmgen"}).Message()
	if err := eventingtest.Deliver(t, r, m, eventing.Handled); err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, r, m, eventing.Duplicate)
	if !reflect.DeepEqual(handled, []string{"r"}) {
		t.Fatalf("handled %v", handled)
	}
	transient := eventingtest.Event(t, events.StepSucceeded, "transient", events.PreventiveMaintenance, &eventsv1.StepSucceeded{}).Message()
	if err := eventingtest.Deliver(t, r, transient, eventing.Retry); err == nil {
		t.Fatal("a retry without its error")
	}
	// Any other outcome fails the test.
	other := eventingtest.Event(t, events.StepSucceeded, "other", events.PreventiveMaintenance, &eventsv1.StepSucceeded{}).Message()
	if msg := fails(t, func(tb testing.TB) { eventingtest.Deliver(tb, r, other, eventing.Duplicate) }); msg == "" {
		t.Fatal("handled passed as duplicate")
	}
	if msg := fails(t, func(tb testing.TB) { eventingtest.Deliver(tb, r, transient, eventing.Handled) }); msg == "" {
		t.Fatal("retry passed as handled")
	}
}

// fails runs f with a testing.TB that records a failure, and returns the
// failure's message ("" when f passed).
func fails(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	tb := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb.msg
}

type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) { r.msg += fmt.Sprintf(format, args...) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
