package eventingtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// Querier is what the outbox reader needs of a database: a *pgxpool.Pool,
// a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// The outbox rows of a type and a run, oldest first; "" matches any.
const outboxWhere = `FROM outbox WHERE ($1 = '' OR event_type = $1) AND ($2 = '' OR attributes->>'run_id' = $2)`

// Messages returns the outbox rows of eventType and runID ("" for any) as
// the relay publishes them, oldest first.
func Messages(t testing.TB, db Querier, eventType, runID string) []eventing.Message {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT attributes, data `+outboxWhere+` ORDER BY id`, eventType, runID)
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventing.Message, error) {
		var m eventing.Message
		err := row.Scan(&m.Attributes, &m.Data)
		return m, err
	})
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	return out
}

// Events decodes the outbox rows of eventType and runID ("" for any) as
// their consumers will, oldest first.
func Events(t testing.TB, db Querier, eventType, runID string) []eventing.Event {
	t.Helper()
	var out []eventing.Event
	for _, m := range Messages(t, db, eventType, runID) {
		ev, err := eventing.FromMessage(m)
		if err != nil {
			t.Fatalf("outbox row %s: %v", m.Attributes[eventing.AttrID], err)
		}
		out = append(out, ev)
	}
	return out
}

// Emitted decodes the payloads of the outbox rows of eventType and runID
// ("" for any run), oldest first, each into a new newT().
func Emitted[T proto.Message](t testing.TB, db Querier, eventType, runID string, newT func() T) []T {
	t.Helper()
	var out []T
	for _, ev := range Events(t, db, eventType, runID) {
		p := newT()
		if err := ev.Decode(p); err != nil {
			t.Fatalf("outbox event %s: %v", ev.ID(), err)
		}
		out = append(out, p)
	}
	return out
}

// Last decodes the payload of the newest outbox row of eventType into dst
// and reports whether there is one.
func Last(t testing.TB, db Querier, eventType string, dst proto.Message) bool {
	t.Helper()
	evs := Events(t, db, eventType, "")
	if len(evs) == 0 {
		return false
	}
	if err := evs[len(evs)-1].Decode(dst); err != nil {
		t.Fatalf("outbox event %s: %v", evs[len(evs)-1].ID(), err)
	}
	return true
}

// Count counts the outbox rows of eventType and runID ("" for any), without
// decoding them.
func Count(t testing.TB, db Querier, eventType, runID string) int {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT count(*) `+outboxWhere, eventType, runID)
	if err != nil {
		t.Fatalf("count the outbox: %v", err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("count the outbox: %v", err)
	}
	return n
}

// Emit writes ev to the outbox in a transaction of its own, as a step that
// emitted it would have.
func Emit(t testing.TB, db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}, ev eventing.Event) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return eventing.Emit(ctx, tx, ev) }); err != nil {
		t.Fatalf("emit %s: %v", ev.Type(), err)
	}
}

// Source is the source of the events Event builds.
const Source = "//cmmsflow/test"

// Event builds an event of eventType for a run of pipeline, with payload as
// its data, starting a new trace; its source is Source.
func Event(t testing.TB, eventType, runID, pipeline string, payload proto.Message) eventing.Event {
	t.Helper()
	ev, err := eventing.New(eventType, Source, runID, pipeline, "", payload)
	if err != nil {
		t.Fatalf("new %s event: %v", eventType, err)
	}
	return ev
}

// Deliver processes m through r, as a push of it would be, and fails the
// test unless the outcome is want; an outcome that comes without an error
// (any but Retry and Leased) must come without one. It returns the error.
func Deliver(t testing.TB, r *eventing.Router, m eventing.Message, want eventing.Outcome) error {
	t.Helper()
	got, err := r.Process(context.Background(), m)
	if got != want || (err != nil && want != eventing.Retry && want != eventing.Leased) {
		t.Fatalf("deliver %s of %s: %s (%v), want %s", m.Attributes[eventing.AttrType], m.Attributes[eventing.AttrRunID], got, err, want)
	}
	return err
}
