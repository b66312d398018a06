package eventing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
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
