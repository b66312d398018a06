package eventing_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// discardPublisher accepts every message: the benchmark measures the
// router, the database and telemetry, not Pub/Sub.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, string, eventing.Message) error { return nil }

// telemetryModes are what a service runs with: nothing (no-op providers),
// metrics only (the default: /metrics, no trace exporter), and metrics plus
// tracing (an SDK tracer provider with a batch processor, exporting to a
// discarding exporter).
func telemetryModes(b *testing.B) []struct {
	name string
	tel  eventing.Telemetry
} {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	return []struct {
		name string
		tel  eventing.Telemetry
	}{
		{"off", eventing.Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}},
		{"metrics", eventing.Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: mp}},
		{"metrics+tracing", eventing.Telemetry{TracerProvider: tp, MeterProvider: mp}},
	}
}

// BenchmarkRouterTelemetry delivers step events through the router (dedupe,
// step started, handler with one insert, step succeeded through the outbox,
// relay flush) on PostgreSQL, with telemetry off, metrics only, and metrics
// plus tracing. One op is 100 deliveries; ns/event is per delivery.
func BenchmarkRouterTelemetry(b *testing.B) {
	pool := pgtest.New(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, mode := range telemetryModes(b) {
		b.Run(mode.name, func(b *testing.B) {
			relay := eventing.NewRelay(pool, discardPublisher{}, log, time.Hour)
			if err := relay.Instrument(events.Pmgen, mode.tel); err != nil {
				b.Fatal(err)
			}
			router := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Relay: relay, Log: log, Telemetry: mode.tel})
			router.HandleStep(events.RunStarted, events.WorkOrdersGenerated, effect)
			const perOp = 100
			msgs := make([]eventing.Message, 0, b.N*perOp)
			for range b.N * perOp {
				ev, err := eventing.New(events.RunStarted, events.Source(events.Control), "bench", events.PreventiveMaintenance, "", &eventsv1.RunStarted{})
				if err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, ev.Message())
			}
			ctx := context.Background()
			b.ResetTimer()
			for i, m := range msgs {
				if out, err := router.Process(ctx, m); out != eventing.Handled {
					b.Fatalf("delivery %d: %s %v", i, out, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(msgs)), "ns/event")
		})
	}
}

// BenchmarkTelemetryOverhead isolates what telemetry adds to one delivery
// without the database: the consumer span, the event's trace context and the
// metrics of one delivery. One op is 10,000 deliveries; ns/event is per
// delivery, and the difference between modes is what telemetry costs.
func BenchmarkTelemetryOverhead(b *testing.B) {
	ev, err := eventing.New(events.RunStarted, events.Source(events.Control), "bench", events.PreventiveMaintenance, "", &eventsv1.RunStarted{})
	if err != nil {
		b.Fatal(err)
	}
	m := ev.Message()
	const perOp = 10000 // make bench runs -benchtime 1x
	for _, mode := range telemetryModes(b) {
		b.Run(mode.name, func(b *testing.B) {
			observe := eventing.NewDeliveryObserver(mode.tel, events.Pmgen)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				for range perOp {
					observe(ctx, m)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/event")
		})
	}
}
