package eventing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// ScopeName is the instrumentation scope of the spans and metrics of the
// event runtime.
const ScopeName = "github.com/cmmsflow/cmmsflow/libs/eventing"

// Telemetry names where the event runtime reports spans and metrics. A nil
// provider means OpenTelemetry's global one (a no-op until a service
// installs a real one).
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

func (t Telemetry) tracer() trace.Tracer {
	tp := t.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

func (t Telemetry) meter() metric.Meter {
	mp := t.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// Trace context travels on Pub/Sub attributes as W3C traceparent and
// tracestate.
var propagator = propagation.TraceContext{}

// attrCarrier reads and writes the trace context on message attributes.
// Reading falls back to the CloudEvents distributed-tracing extension's
// ce-traceparent and ce-tracestate, as a CloudEvents SDK publisher sends them.
type attrCarrier map[string]string

func (c attrCarrier) Get(key string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return c["ce-"+key]
}

func (c attrCarrier) Set(key, value string) { c[key] = value }

func (c attrCarrier) Keys() []string { return []string{AttrTraceParent, AttrTraceState} }

// contextFromAttributes returns ctx with the message's span context as the
// remote parent, when it carries a valid one.
func contextFromAttributes(ctx context.Context, attrs map[string]string) context.Context {
	return propagator.Extract(ctx, attrCarrier(attrs))
}

// traceHeaders formats a span context as traceparent and tracestate, as
// propagation.TraceContext's Inject does (version 00, only the sampled flag).
func traceHeaders(sc trace.SpanContext) (traceparent, tracestate string) {
	if !sc.IsValid() {
		return "", ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:3], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & trace.FlagsSampled)})
	return string(b[:]), sc.TraceState().String()
}

// spanContextOf parses an event's traceparent and tracestate.
func spanContextOf(traceparent, tracestate string) trace.SpanContext {
	c := attrCarrier{AttrTraceParent: traceparent}
	if tracestate != "" {
		c[AttrTraceState] = tracestate
	}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), c))
}

// newRootSpanContext makes a sampled span context of a new trace. It stands
// in for a root span when no tracer records (tracing off), so that a run and
// its log lines still share one trace id.
func newRootSpanContext() trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}

// typeLabel bounds the event_type label to the registry's types: the type of
// a bad message is whatever its sender wrote.
func typeLabel(t string) string {
	if _, ok := events.LookupType(t); ok {
		return t
	}
	return "unknown"
}

// Span and metric attribute keys.
const (
	keyService   = attribute.Key("service")
	keyEventType = attribute.Key("event_type")
	keyOutcome   = attribute.Key("outcome")
	keyKind      = attribute.Key("kind")
	keyTopic     = attribute.Key("topic")
	keyResult    = attribute.Key("result")

	keyMsgSystem  = attribute.Key("messaging.system")
	keyMsgOp      = attribute.Key("messaging.operation.type")
	keyMsgDest    = attribute.Key("messaging.destination.name")
	keyMsgID      = attribute.Key("messaging.message.id")
	keyCEID       = attribute.Key("cloudevents.event_id")
	keyCEType     = attribute.Key("cloudevents.event_type")
	keyCESource   = attribute.Key("cloudevents.event_source")
	keyRunID      = attribute.Key("cmmsflow.run_id")
	keyPipeline   = attribute.Key("cmmsflow.pipeline")
	keyAttempt    = attribute.Key("cmmsflow.delivery_attempt")
	keyOutboxLag  = attribute.Key("cmmsflow.outbox.lag_ms")
	keySpanResult = attribute.Key("cmmsflow.outcome")
)

// durationBuckets (seconds) span a dedupe hit (milliseconds) to a Dataproc
// job (minutes).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// lagBuckets (seconds): commit to publish is milliseconds after a commit,
// up to the relay's poll interval after a failed publish, more when Pub/Sub
// is down.
var lagBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// routerInstruments are the router's metrics.
type routerInstruments struct {
	tracer     trace.Tracer
	handled    metric.Int64Counter
	failures   metric.Int64Counter
	deadLetter metric.Int64Counter
	duration   metric.Float64Histogram
	sets       *sync.Map // labels → metric.MeasurementOption: built once per label combination
}

type labels struct{ service, eventType, outcome, kind string }

// attrs returns the attribute option of l, built once.
func (ri routerInstruments) attrs(l labels) metric.MeasurementOption {
	if o, ok := ri.sets.Load(l); ok {
		return o.(metric.MeasurementOption)
	}
	kv := []attribute.KeyValue{keyService.String(l.service), keyEventType.String(l.eventType)}
	if l.outcome != "" {
		kv = append(kv, keyOutcome.String(l.outcome))
	}
	if l.kind != "" {
		kv = append(kv, keyKind.String(l.kind))
	}
	o, _ := ri.sets.LoadOrStore(l, metric.WithAttributeSet(attribute.NewSet(kv...)))
	return o.(metric.MeasurementOption)
}

// eventCounter is the meter's counter of events (unit {event}) name.
// Instrument creation fails only on invalid names; ours are constants, and
// on error the API returns a working no-op instrument.
func eventCounter(m metric.Meter, name, desc string) metric.Int64Counter {
	c, _ := m.Int64Counter(name, metric.WithUnit("{event}"), metric.WithDescription(desc))
	return c
}

// secondsHistogram is the meter's histogram of durations in seconds name,
// with the bucket boundaries buckets; errors are ignored as by eventCounter.
func secondsHistogram(m metric.Meter, name, desc string, buckets []float64) metric.Float64Histogram {
	h, _ := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	return h
}

func newRouterInstruments(t Telemetry) routerInstruments {
	m := t.meter()
	return routerInstruments{
		tracer: t.tracer(),
		sets:   &sync.Map{},
		handled: eventCounter(m, "cmmsflow.events.handled",
			"Deliveries of pushed events, by outcome: handled, duplicate, cancelled, dead-lettered, retry."),
		failures: eventCounter(m, "cmmsflow.events.failures",
			"Deliveries that failed: kind transient (answered 503, Pub/Sub retries) or permanent (dead-lettered)."),
		deadLetter: eventCounter(m, "cmmsflow.events.dead_letters", "Events recorded in dead_letters and acked."),
		duration: secondsHistogram(m, "cmmsflow.events.handler.duration",
			"Time to process one delivery (dedupe, handler, commit, outbox flush), by outcome.", durationBuckets),
	}
}

// startProcess starts the consumer span of one delivery, continuing the
// trace the message carries. Without a trace on the message, and with no
// tracer recording, it makes one up, so that the run still has a trace id.
func (ri routerInstruments) startProcess(ctx context.Context, service string, msg Message) (context.Context, trace.Span) {
	ctx = contextFromAttributes(ctx, msg.Attributes)
	typ := typeLabel(msg.Attributes[AttrType])
	ctx, span := ri.tracer.Start(ctx, "process "+typ, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		a := msg.Attributes
		span.SetAttributes(keyMsgSystem.String("gcp_pubsub"), keyMsgOp.String("process"),
			keyMsgID.String(msg.PubSubID), keyCEID.String(a[AttrID]), keyCEType.String(a[AttrType]),
			keyCESource.String(a[AttrSource]), keyRunID.String(a[AttrRunID]), keyPipeline.String(a[AttrPipeline]),
			keyService.String(service), keyAttempt.Int(msg.DeliveryAttempt))
		if t, ok := events.LookupType(a[AttrType]); ok {
			span.SetAttributes(keyMsgDest.String(t.Topic))
		}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, newRootSpanContext())
	}
	return ctx, span
}

// finish ends a delivery's span and records its metrics.
func (ri routerInstruments) finish(ctx context.Context, span trace.Span, service, eventType string, out Outcome, err error, took time.Duration) {
	typ := typeLabel(eventType)
	attrs := ri.attrs(labels{service: service, eventType: typ, outcome: string(out)})
	ri.handled.Add(ctx, 1, attrs)
	ri.duration.Record(ctx, took.Seconds(), attrs)
	switch out {
	case Retry:
		ri.failures.Add(ctx, 1, ri.attrs(labels{service: service, eventType: typ, kind: "transient"}))
	case DeadLettered:
		ri.failures.Add(ctx, 1, ri.attrs(labels{service: service, eventType: typ, kind: "permanent"}))
		ri.deadLetter.Add(ctx, 1, ri.attrs(labels{service: service, eventType: typ}))
	}
	if span.IsRecording() {
		span.SetAttributes(keySpanResult.String(string(out)))
		if err != nil {
			span.RecordError(err)
		}
		if out == Retry || out == DeadLettered {
			span.SetStatus(codes.Error, string(out))
		}
	}
	span.End()
}

// withEventTrace sets ev's trace context to the span context in ctx, so that
// what the event's run records (its trace id) and what the handler emits
// continue the delivery's trace.
func withEventTrace(ctx context.Context, ev *Event) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ev.TraceParent, ev.TraceState = traceHeaders(sc)
		ev.rootTrace = false
	}
}

// startEmit starts the producer span of an event written to the outbox and
// sets the event's trace context to it: the consumer's span will be its
// child. The parent is the span in ctx; without one (a trigger from outside
// any span), the event's own trace context, or a new trace when the event
// started one.
func startEmit(ctx context.Context, topic string, ev *Event) trace.Span {
	parent := trace.SpanFromContext(ctx)
	tp := otel.GetTracerProvider()
	if parent.SpanContext().IsValid() {
		if parent.IsRecording() {
			tp = parent.TracerProvider()
		}
	} else if sc := spanContextOf(ev.TraceParent, ev.TraceState); sc.IsValid() && !ev.rootTrace {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	_, span := tp.Tracer(ScopeName).Start(ctx, "create "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(keyMsgSystem.String("gcp_pubsub"), keyMsgOp.String("create"), keyMsgDest.String(topic),
			keyCEID.String(ev.ID()), keyCEType.String(ev.Type()), keyRunID.String(ev.RunID), keyPipeline.String(ev.Pipeline))
	}
	if sc := span.SpanContext(); sc.IsValid() {
		ev.TraceParent, ev.TraceState = traceHeaders(sc)
		ev.rootTrace = false
	}
	return span
}

// relayInstruments are the outbox relay's spans and metrics.
type relayInstruments struct {
	service   string
	tracer    trace.Tracer
	published metric.Int64Counter
	lag       metric.Float64Histogram
}

func newRelayInstruments(service string, t Telemetry) relayInstruments {
	m := t.meter()
	return relayInstruments{
		service:   service,
		tracer:    t.tracer(),
		published: eventCounter(m, "cmmsflow.outbox.published", "Outbox rows the relay tried to publish, by result (ok or error)."),
		lag: secondsHistogram(m, "cmmsflow.outbox.publish.lag",
			"Time from writing an event to the outbox to Pub/Sub accepting it.", lagBuckets),
	}
}

// startSend starts the span of publishing one outbox row: a child of the
// event's producer span, whose context the row's attributes carry.
func (ri relayInstruments) startSend(ctx context.Context, o outboxRow) (context.Context, trace.Span) {
	ctx = contextFromAttributes(ctx, o.msg.Attributes)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(context.Background()) // nothing to continue: no span
	}
	ctx, span := ri.tracer.Start(ctx, "send "+o.topic, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(keyMsgSystem.String("gcp_pubsub"), keyMsgOp.String("send"), keyMsgDest.String(o.topic),
			keyCEID.String(o.msg.Attributes[AttrID]), keyCEType.String(o.msg.Attributes[AttrType]),
			keyOutboxLag.Int64(time.Since(o.created).Milliseconds()))
	}
	return ctx, span
}

func (ri relayInstruments) sent(ctx context.Context, span trace.Span, o outboxRow, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
	} else {
		ri.lag.Record(ctx, max(time.Since(o.created), 0).Seconds(), metric.WithAttributes(keyService.String(ri.service), keyTopic.String(o.topic)))
	}
	ri.published.Add(ctx, 1, metric.WithAttributes(keyService.String(ri.service), keyTopic.String(o.topic), keyResult.String(result)))
	span.End()
}
