package eventing

import (
	"context"
	"time"
)

// NewDeliveryObserver exposes the router's per-delivery telemetry (the
// consumer span, the event's trace context, the metrics) to benchmarks, with
// no handler and no database.
func NewDeliveryObserver(t Telemetry, service string) func(context.Context, Message) {
	ri := newRouterInstruments(t)
	return func(ctx context.Context, m Message) {
		start := time.Now()
		ctx, span := ri.startProcess(ctx, service, m)
		var ev Event
		withEventTrace(ctx, &ev)
		ri.finish(ctx, span, service, m.Attributes[AttrType], Handled, nil, time.Since(start))
	}
}
