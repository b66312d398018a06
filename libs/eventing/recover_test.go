package eventing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
)

func TestRecoverMakesAPanicPermanent(t *testing.T) {
	next := eventing.Recover()(func(context.Context, *eventing.Delivery) error { panic("boom") })
	err := next(context.Background(), delivery(t))
	if !eventing.IsPermanent(err) || !strings.Contains(err.Error(), "handler panic: boom") {
		t.Fatalf("%v, want a permanent handler panic", err)
	}
	ok := eventing.Recover()(func(context.Context, *eventing.Delivery) error { return nil })
	if err := ok(context.Background(), delivery(t)); err != nil {
		t.Fatal(err)
	}
}

// stackMarks are what a Go stack trace has and a panic's message has not.
var stackMarks = []string{"goroutine ", "runtime/debug.Stack", "recover_test.go:", ".go:"}

// TestRecoverLogsTheStackOnly: the error (which becomes the step's error)
// names the panic without its stack; the delivery's logger gets the stack.
func TestRecoverLogsTheStackOnly(t *testing.T) {
	var sink bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&sink, nil)).With("event_id", "ev-1")
	next := eventing.Recover()(func(context.Context, *eventing.Delivery) error { panic("boom") })
	err := next(logging.With(context.Background(), log), delivery(t))
	for _, mark := range stackMarks {
		if strings.Contains(err.Error(), mark) {
			t.Fatalf("error %q contains %q: a stack trace", err, mark)
		}
	}
	logged := sink.String()
	if !strings.Contains(logged, `"event_id":"ev-1"`) || !strings.Contains(logged, `"panic":"boom"`) ||
		!strings.Contains(logged, "goroutine ") || !strings.Contains(logged, "recover_test.go:") {
		t.Fatalf("log %s: want the panic and its stack on the delivery's logger", logged)
	}
}

// TestPanickingStepReportsNoStackTrace: through the router, a step that
// panics is dead-lettered and reported failed; neither the dead letter's
// reason nor the step-failed error (what alerts and the admin page show)
// carries the stack trace, which the service log does.
func TestPanickingStepReportsNoStackTrace(t *testing.T) {
	var sink syncBuffer
	h := newLoggingHarness(t, time.Minute, slog.New(slog.NewJSONHandler(&sink, nil)))
	failedTopic := h.ps.Subscribe(t, "step-failed")
	h.handleStep(func(context.Context, eventing.Event) (eventing.StepResult, error) {
		noCounts()["x"]++ // a nil map write: a runtime panic
		return eventing.StepResult{}, nil
	})
	ev := h.runIn(t, "running")
	code, body := h.post(t, pushBody(ev.Message(), "panic-1"))
	if code != http.StatusOK || body != `{"outcome":"dead-lettered"}` {
		t.Fatalf("got %d %s, want 200 dead-lettered", code, body)
	}
	var reason string
	if err := h.pool.QueryRow(context.Background(), `SELECT reason FROM dead_letters WHERE run_id = $1`, ev.RunID).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	failed := expectMessages(t, failedTopic, 1)
	for _, text := range []string{reason, failed[0].Error} {
		if !strings.Contains(text, "handler panic: assignment to entry in nil map") {
			t.Fatalf("%q: want the panic named", text)
		}
		for _, mark := range stackMarks {
			if strings.Contains(text, mark) {
				t.Fatalf("%q contains %q: a stack trace", text, mark)
			}
		}
	}
	for _, l := range sink.lines(t) {
		if stack, _ := l["stack"].(string); l["msg"] == "handler panic" && l["event_id"] == ev.ID() &&
			strings.Contains(stack, "recover_test.go:") {
			return
		}
	}
	t.Fatalf("service log %v: want the stack trace on the delivery's logger", sink.lines(t))
}

// noCounts returns a nil map.
func noCounts() map[string]int { return nil }
