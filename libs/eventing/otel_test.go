package eventing_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	"github.com/cmmsflow/cmmsflow/libs/telemetry"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// TestTraceContinuesThroughOutboxAndPubSub follows one event from a root span
// through the outbox, the relay, Pub/Sub (pstest) and the push router into a
// step handler, whose database work and emitted events must be in the same
// trace, each span the child of the one before.
func TestTraceContinuesThroughOutboxAndPubSub(t *testing.T) {
	pool := pgtest.New(t)
	ps := pubsubtest.New(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel := eventing.Telemetry{TracerProvider: tp, MeterProvider: noop.NewMeterProvider()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := eventing.NewPubSubPublisher(ps.Client)
	t.Cleanup(pub.Close)
	relay := eventing.NewRelay(pool, pub, log, time.Hour)
	if err := relay.Instrument(events.Pmgen, tel); err != nil {
		t.Fatal(err)
	}
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Relay: relay, Log: log, Telemetry: tel})
	var handlerTrace string
	router.HandleStep(events.RunStarted, events.WorkOrdersGenerated, func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		handlerTrace = ev.TraceID()
		return effect(ctx, ev)
	})
	started := ps.Subscribe(t, events.TopicOf(events.RunStarted))
	succeeded := ps.Subscribe(t, events.TopicOf(events.StepSucceeded))

	// The trigger: a root span that emits run-started through the outbox.
	ctx, root := tp.Tracer("test").Start(context.Background(), "trigger")
	ev, err := eventing.New(events.RunStarted, events.Source(events.Control), "manual__trace", events.PreventiveMaintenance, "",
		&eventsv1.RunStarted{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return eventing.Emit(ctx, tx, ev) }); err != nil {
		t.Fatal(err)
	}
	root.End()
	// The relay runs outside any span: the context comes from the row.
	if n, err := relay.Flush(context.Background()); err != nil || n != 1 {
		t.Fatalf("flush: %d %v", n, err)
	}
	m := started.Next(5 * time.Second)
	if m == nil {
		t.Fatal("run-started not published")
	}
	traceID := root.SpanContext().TraceID()
	if tp := m.Attributes[eventing.AttrTraceParent]; !strings.Contains(tp, traceID.String()) {
		t.Fatalf("published traceparent %q, want trace %s", tp, traceID)
	}
	out, err := router.Process(context.Background(), eventing.Message{Attributes: m.Attributes, Data: m.Data, PubSubID: m.ID})
	if out != eventing.Handled || err != nil {
		t.Fatalf("process: %s %v", out, err)
	}
	if handlerTrace != traceID.String() {
		t.Errorf("the handler's event is in trace %q, want %s", handlerTrace, traceID)
	}
	next := succeeded.Next(5 * time.Second)
	if next == nil {
		t.Fatal("step-succeeded not published")
	}
	got, err := eventing.FromMessage(eventing.Message{Attributes: next.Attributes, Data: next.Data})
	if err != nil || got.TraceID() != traceID.String() {
		t.Fatalf("the emitted event is in trace %q (%v), want %s", got.TraceID(), err, traceID)
	}

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		if _, dup := spans[s.Name()]; !dup {
			spans[s.Name()] = s
		}
	}
	span := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		s, ok := spans[name]
		if !ok {
			var names []string
			for n := range spans {
				names = append(names, n)
			}
			t.Fatalf("no span %q among %q", name, names)
		}
		return s
	}
	childOf := func(child, parent string) {
		t.Helper()
		if c, p := span(child), span(parent); c.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("%q's parent is %s, want %q (%s)", child, c.Parent().SpanID(), parent, p.SpanContext().SpanID())
		}
	}
	childOf("create run-started", "trigger")
	childOf("INSERT outbox", "trigger")
	childOf("send run-started", "create run-started")
	childOf("process "+events.RunStarted, "create run-started")
	childOf("handle pmgen", "process "+events.RunStarted)
	// The step's three phases: the claim reports it started, the work
	// holds no transaction, the complete writes its effects and reports.
	childOf("claim pmgen", "process "+events.RunStarted)
	childOf("create step-started", "claim pmgen")
	childOf("complete pmgen", "process "+events.RunStarted)
	childOf("INSERT technicians", "complete pmgen")
	childOf("create workorders-generated", "complete pmgen")
	childOf("create step-succeeded", "complete pmgen")
	childOf("send step-succeeded", "create step-succeeded")
	if k := span("process " + events.RunStarted).SpanKind(); k != trace.SpanKindConsumer {
		t.Errorf("process span kind %s", k)
	}
	if k := span("create run-started").SpanKind(); k != trace.SpanKindProducer {
		t.Errorf("create span kind %s", k)
	}
}

// TestUntracedMessageGetsATrace: with no tracer recording and no trace
// context on the message (a Cloud Scheduler kick), the delivery still gets a
// trace id, which its handler sees and the events it emits carry; a
// CloudEvents SDK publisher's ce-traceparent is continued.
func TestUntracedMessageGetsATrace(t *testing.T) {
	h := newHarness(t, time.Minute)
	var seen []string
	h.router.Handle(events.PipelineTriggered, func(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
		seen = append(seen, ev.TraceID())
		if !trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("handler context has no span context")
		}
		return nil
	})
	msg := func(attrs map[string]string) eventing.Message {
		ev, err := eventing.New(events.PipelineTriggered, events.Source("t"), "scheduled", events.PreventiveMaintenance, "",
			&eventsv1.PipelineTriggered{Source: "scheduled"})
		if err != nil {
			t.Fatal(err)
		}
		m := ev.Message()
		delete(m.Attributes, eventing.AttrTraceParent)
		delete(m.Attributes, eventing.AttrTraceState)
		for k, v := range attrs {
			m.Attributes[k] = v
		}
		return m
	}
	ext := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, m := range []eventing.Message{msg(nil), msg(map[string]string{"ce-traceparent": ext})} {
		eventingtest.Deliver(t, h.router, m, eventing.Handled)
	}
	if len(seen) != 2 || len(seen[0]) != 32 || strings.Trim(seen[0], "0") == "" || seen[1] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace ids seen by the handler: %q", seen)
	}
}

// TestMetricsCountOutcomes drives handled, duplicate, dead-lettered and
// retried deliveries through a router and reads the counters from the
// Prometheus handler a service serves at /metrics.
func TestMetricsCountOutcomes(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{Service: events.Pmgen, Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	pool := pgtest.New(t)
	ps := pubsubtest.New(t)
	pub := eventing.NewPubSubPublisher(ps.Client)
	t.Cleanup(pub.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	evTel := eventing.Telemetry{TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider}
	relay := eventing.NewRelay(pool, pub, log, time.Hour)
	if err := relay.Instrument(events.Pmgen, evTel); err != nil {
		t.Fatal(err)
	}
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Relay: relay, Log: log, Telemetry: evTel})
	var mu sync.Mutex
	failNext := true
	router.HandleStep(events.RunStarted, events.WorkOrdersGenerated, func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if ev.RunID == "flaky" && failNext {
			failNext = false
			return eventing.StepResult{}, errors.New("database hiccup")
		}
		return effect(ctx, ev)
	})
	msg := func(runID string) eventing.Message {
		ev, err := eventing.New(events.RunStarted, events.Source(events.Control), runID, events.PreventiveMaintenance, "", &eventsv1.RunStarted{})
		if err != nil {
			t.Fatal(err)
		}
		return ev.Message()
	}
	good := msg("good")
	bad := msg("bad")
	bad.Data = []byte(`{"no_such_field": 1}`)
	flaky := msg("flaky")
	for i, c := range []struct {
		m    eventing.Message
		want eventing.Outcome
	}{
		{good, eventing.Handled}, {good, eventing.Duplicate}, {bad, eventing.DeadLettered},
		{flaky, eventing.Retry}, {flaky, eventing.Handled},
		{eventing.Message{Attributes: map[string]string{"ce-type": "evil.type"}, PubSubID: "x1"}, eventing.DeadLettered},
	} {
		if out, _ := router.Process(ctx, c.m); out != c.want {
			t.Fatalf("delivery %d: %s, want %s", i, out, c.want)
		}
	}

	metrics := scrape(t, tel)
	rs := `event_type="` + events.RunStarted + `"`
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`cmmsflow_events_handled_total{` + rs + `,outcome="handled",service="pmgen"}`, 2},
		{`cmmsflow_events_handled_total{` + rs + `,outcome="duplicate",service="pmgen"}`, 1},
		{`cmmsflow_events_handled_total{` + rs + `,outcome="dead-lettered",service="pmgen"}`, 1},
		{`cmmsflow_events_handled_total{` + rs + `,outcome="retry",service="pmgen"}`, 1},
		{`cmmsflow_events_handled_total{event_type="unknown",outcome="dead-lettered",service="pmgen"}`, 1},
		{`cmmsflow_events_failures_total{` + rs + `,kind="transient",service="pmgen"}`, 1},
		{`cmmsflow_events_failures_total{` + rs + `,kind="permanent",service="pmgen"}`, 1},
		{`cmmsflow_events_dead_letters_total{` + rs + `,service="pmgen"}`, 1},
		{`cmmsflow_events_dead_letters_total{event_type="unknown",service="pmgen"}`, 1},
		{`cmmsflow_events_handler_duration_seconds_count{` + rs + `,outcome="handled",service="pmgen"}`, 2},
		// step-started ×4 (good, bad, flaky twice), step-failed ×2 (retry,
		// dead letter), step-succeeded ×2.
		{`cmmsflow_outbox_published_total{result="ok",service="pmgen",topic="step-started"}`, 4},
		{`cmmsflow_outbox_published_total{result="ok",service="pmgen",topic="step-failed"}`, 2},
		{`cmmsflow_outbox_published_total{result="ok",service="pmgen",topic="step-succeeded"}`, 2},
		{`cmmsflow_outbox_publish_lag_seconds_count{service="pmgen",topic="step-succeeded"}`, 2},
		{`cmmsflow_outbox_pending`, 0},
	} {
		got, ok := metrics[c.series]
		if !ok {
			t.Errorf("no series %s", c.series)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if t.Failed() {
		for k, v := range metrics {
			if strings.HasPrefix(k, "cmmsflow_") && !strings.Contains(k, "_bucket") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

// scrape reads the Prometheus text exposition into series → value.
func scrape(t *testing.T, tel *telemetry.Telemetry) map[string]float64 {
	t.Helper()
	rr := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != 200 {
		t.Fatalf("/metrics: %d", rr.Code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rr.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
