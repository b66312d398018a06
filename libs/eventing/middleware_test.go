package eventing_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// newInbox is pmgen's inbox on a fresh database, with no relay: what the
// middleware emits stays in the outbox, where the tests read it.
func newInbox(t *testing.T) *eventing.Inbox {
	t.Helper()
	return &eventing.Inbox{Pool: pgtest.New(t), Consumer: events.Pmgen, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// delivery is a fresh delivery of a run-started event.
func delivery(t *testing.T) *eventing.Delivery {
	t.Helper()
	ev := runStarted(t)
	return &eventing.Delivery{Event: ev, Message: ev.Message(), Outcome: eventing.Handled}
}

// chain applies mw to next, the first outermost.
func chain(next eventing.Next, mw ...eventing.Middleware) eventing.Next {
	for i := len(mw) - 1; i >= 0; i-- {
		next = mw[i](next)
	}
	return next
}

// outboxTypes lists the event types in the outbox, in order.
func outboxTypes(t *testing.T, in *eventing.Inbox) []string {
	t.Helper()
	var out []string
	for _, ev := range eventingtest.Events(t, in.Pool, "", "") {
		out = append(out, ev.Type())
	}
	return out
}

func count(t *testing.T, in *eventing.Inbox, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := in.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
