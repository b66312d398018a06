package eventing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
)

// work is a Lease'd innermost call that writes one technician row in the
// complete transaction.
func work(calls *atomic.Int32) eventing.Next {
	return func(_ context.Context, d *eventing.Delivery) error {
		calls.Add(1)
		d.Result.Commit = func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ($1, 'n', 'e@x')`, d.Event.ID())
			return err
		}
		return nil
	}
}

func TestLeaseClaimsWorksAndCompletes(t *testing.T) {
	in := newInbox(t)
	var calls atomic.Int32
	next := eventing.Lease(in, time.Minute)(work(&calls))
	d := delivery(t)
	var order []string
	d.OnClaim(func(context.Context, pgx.Tx) error { order = append(order, "claim"); return nil })
	d.OnComplete(func(context.Context, pgx.Tx) error { order = append(order, "complete"); return nil })
	if err := next(context.Background(), d); err != nil || d.Outcome != eventing.Handled {
		t.Fatalf("%v %s", err, d.Outcome)
	}
	if fmt.Sprint(order) != "[claim complete]" || calls.Load() != 1 {
		t.Fatalf("order %v, %d calls", order, calls.Load())
	}
	if count(t, in, `SELECT count(*) FROM technicians`) != 1 || count(t, in, `SELECT count(*) FROM processed_events`) != 1 ||
		count(t, in, `SELECT count(*) FROM event_leases`) != 0 {
		t.Fatal("the complete transaction did not write the effect and the processed mark, or left the lease")
	}
	again := &eventing.Delivery{Event: d.Event, Outcome: eventing.Handled}
	if err := next(context.Background(), again); err != nil || again.Outcome != eventing.Duplicate || calls.Load() != 1 {
		t.Fatalf("redelivery: %v %s, %d calls", err, again.Outcome, calls.Load())
	}
}

// A failed work, or a failed complete transaction, writes nothing and gives
// its lease up: the next delivery works at once.
func TestLeaseFailedWorkReleases(t *testing.T) {
	in := newInbox(t)
	d := delivery(t)
	failing := eventing.Lease(in, time.Minute)(func(context.Context, *eventing.Delivery) error { return errors.New("503") })
	if err := failing(context.Background(), d); err == nil {
		t.Fatal("no error")
	}
	if count(t, in, `SELECT count(*) FROM event_leases`) != 0 || count(t, in, `SELECT count(*) FROM processed_events`) != 0 {
		t.Fatal("a failed work kept its lease or was marked processed")
	}
	// So does a work whose complete transaction fails.
	failingCommit := eventing.Lease(in, time.Minute)(func(_ context.Context, d *eventing.Delivery) error {
		d.Result.Commit = func(context.Context, pgx.Tx) error { return errors.New("serialization failure") }
		return nil
	})
	if err := failingCommit(context.Background(), d); err == nil {
		t.Fatal("no error from a failed commit")
	}
	if count(t, in, `SELECT count(*) FROM event_leases`) != 0 || count(t, in, `SELECT count(*) FROM processed_events`) != 0 {
		t.Fatal("a failed commit kept its lease or was marked processed")
	}
	var calls atomic.Int32
	if err := eventing.Lease(in, time.Minute)(work(&calls))(context.Background(), d); err != nil || calls.Load() != 1 {
		t.Fatalf("retry: %v, %d calls", err, calls.Load())
	}
}

// A delivery whose worker died (its lease not ended) is leased until the
// lease expires; then the next delivery takes over and completes.
func TestLeaseOfADeadWorkerExpires(t *testing.T) {
	in := newInbox(t)
	d := delivery(t)
	if _, err := in.Claim(context.Background(), d.Event, 300*time.Millisecond); err != nil {
		t.Fatal(err) // the worker that dies
	}
	var calls atomic.Int32
	next := eventing.Lease(in, time.Minute)(work(&calls))
	if err := next(context.Background(), d); !errors.Is(err, eventing.ErrLeased) || d.Outcome != eventing.Leased || calls.Load() != 0 {
		t.Fatalf("while leased: %v %s, %d calls", err, d.Outcome, calls.Load())
	}
	time.Sleep(400 * time.Millisecond)
	d2 := &eventing.Delivery{Event: d.Event, Outcome: eventing.Handled}
	if err := next(context.Background(), d2); err != nil || d2.Outcome != eventing.Handled || calls.Load() != 1 {
		t.Fatalf("after expiry: %v %s, %d calls", err, d2.Outcome, calls.Load())
	}
	if n := count(t, in, `SELECT count(*) FROM technicians`); n != 1 {
		t.Fatalf("%d effects", n)
	}
}

// A worker whose lease was taken over while it worked writes nothing.
func TestLeaseLostWritesNothing(t *testing.T) {
	in := newInbox(t)
	d := delivery(t)
	next := eventing.Lease(in, time.Minute)(func(ctx context.Context, d *eventing.Delivery) error {
		// Another delivery takes the lease over (as if it had expired).
		if _, err := in.Pool.Exec(ctx, `UPDATE event_leases SET holder = 'other'`); err != nil {
			return err
		}
		d.Result.Commit = func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ('lost', 'n', 'e@x')`)
			return err
		}
		return nil
	})
	if err := next(context.Background(), d); !errors.Is(err, eventing.ErrLeaseLost) {
		t.Fatalf("%v, want ErrLeaseLost", err)
	}
	if count(t, in, `SELECT count(*) FROM technicians`) != 0 || count(t, in, `SELECT count(*) FROM processed_events`) != 0 {
		t.Fatal("a worker that lost its lease wrote")
	}
}

// TestWorkHoldsNoTransactionOpen is issue 15's acceptance: a step's external
// call is held for 10 s while pg_stat_activity is sampled; no transaction on
// the step's database stays open longer than 1 s, and duplicate deliveries
// during the hold do the work once.
func TestWorkHoldsNoTransactionOpen(t *testing.T) {
	h := newHarness(t, time.Minute)
	hold := 10 * time.Second
	if testing.Short() {
		hold = 2 * time.Second
	}
	var calls atomic.Int32
	at := make(chan struct{})
	h.handleStep(func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		if calls.Add(1) == 1 {
			close(at)
		}
		select { // the external call
		case <-time.After(hold):
		case <-ctx.Done():
			return eventing.StepResult{}, ctx.Err()
		}
		return effect(ctx, ev)
	})
	ev := runStarted(t)
	longest := eventingtest.WatchTransactions(t, h.pool)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, body := h.post(t, pushBody(ev.Message(), "first")); code != http.StatusOK || body != `{"outcome":"handled"}` {
			t.Errorf("first delivery: %d %s", code, body)
		}
	}()
	<-at
	for i := range 3 { // Pub/Sub redelivers while the work is held
		code, body := h.post(t, pushBody(ev.Message(), fmt.Sprint("dup", i)))
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "leased") {
			t.Errorf("duplicate during the hold: %d %s, want 503 leased", code, body)
		}
		time.Sleep(hold / 8)
	}
	wg.Wait()
	if l := longest(); l > time.Second {
		t.Errorf("a transaction stayed open %s while the step worked, want at most 1s", l)
	} else {
		t.Logf("longest transaction seen during a %s hold: %s", hold, l)
	}
	if calls.Load() != 1 || h.count(t, `SELECT count(*) FROM technicians`) != 1 {
		t.Fatalf("%d calls, %d effects: want the work done once", calls.Load(), h.count(t, `SELECT count(*) FROM technicians`))
	}
	if code, body := h.post(t, pushBody(ev.Message(), "after")); code != http.StatusOK || body != `{"outcome":"duplicate"}` {
		t.Fatalf("after: %d %s", code, body)
	}
}
