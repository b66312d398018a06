package eventing_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

func TestTransactionWritesWithTheProcessedMark(t *testing.T) {
	in := newInbox(t)
	var calls int
	next := eventing.Transaction(in)(func(ctx context.Context, d *eventing.Delivery) error {
		calls++
		if _, err := d.Tx.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ($1, 'n', 'e@x')`, d.Event.ID()); err != nil {
			return err
		}
		if calls == 1 {
			return errors.New("fails after writing")
		}
		return nil
	})
	d := delivery(t)
	if err := next(context.Background(), d); err == nil {
		t.Fatal("no error")
	}
	if count(t, in, `SELECT count(*) FROM technicians`) != 0 || count(t, in, `SELECT count(*) FROM processed_events`) != 0 {
		t.Fatal("a failed handler's write or processed mark committed")
	}
	for i, want := range []eventing.Outcome{eventing.Handled, eventing.Duplicate} {
		d := &eventing.Delivery{Event: d.Event, Outcome: eventing.Handled}
		if err := next(context.Background(), d); err != nil || d.Outcome != want {
			t.Fatalf("delivery %d: %v %s, want %s", i+2, err, d.Outcome, want)
		}
	}
	if calls != 2 || count(t, in, `SELECT count(*) FROM technicians`) != 1 {
		t.Fatalf("%d calls, want 2 (the duplicate is not handled)", calls)
	}
}
