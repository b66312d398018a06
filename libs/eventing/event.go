// Package eventing is cmmsflow's one event runtime: CloudEvents carried on
// Pub/Sub in binary mode, the push receiver and its middleware chain, the
// transactional outbox and its relay, and run-step reporting.
package eventing

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Pub/Sub attribute names. The ce-* set is the googleapis/google-cloudevents
// Pub/Sub binary-mode format; run_id, pipeline and the W3C trace context
// (traceparent, tracestate) are ours, as DESIGN.md names them.
const (
	AttrID          = "ce-id"
	AttrSource      = "ce-source"
	AttrType        = "ce-type"
	AttrSpecVersion = "ce-specversion"
	AttrTime        = "ce-time"
	AttrContentType = "content-type"
	AttrRunID       = "run_id"
	AttrPipeline    = "pipeline"
	AttrTraceParent = "traceparent"
	AttrTraceState  = "tracestate"
)

const jsonContentType = "application/json"

// Event is a CloudEvent plus the attributes every cmmsflow event carries.
//
// TraceParent and TraceState are the W3C trace context the event continues.
// Emit replaces them with its producer span's, and the router with the
// delivery's span's, so a handler sees the trace it runs in.
type Event struct {
	event.Event
	RunID       string
	Pipeline    string
	TraceParent string
	TraceState  string
	// rootTrace: TraceParent was made up by New for an event that starts a
	// trace; Emit starts a real root span instead when a tracer records.
	rootTrace bool
}

// Message is what travels on Pub/Sub: attributes and data.
type Message struct {
	Attributes map[string]string
	Data       []byte
	// Set on received messages only.
	PubSubID        string
	PublishTime     time.Time
	DeliveryAttempt int
}

var marshal = protojson.MarshalOptions{UseProtoNames: true}

// New builds an event of type eventType from source for a run, with payload as
// its JSON data, continuing the W3C traceparent given (the caller's span).
// An empty or invalid one starts a new trace.
func New(eventType, source, runID, pipeline, traceparent string, payload proto.Message) (Event, error) {
	data, err := marshal.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("eventing: encode %s payload: %w", eventType, err)
	}
	ce := event.New(event.CloudEventsVersionV1)
	ce.SetID(uuid.NewString())
	ce.SetSource(source)
	ce.SetType(eventType)
	ce.SetTime(time.Now().UTC())
	if err := ce.SetData(jsonContentType, data); err != nil {
		return Event{}, err
	}
	ev := Event{Event: ce, RunID: runID, Pipeline: pipeline}
	ev.continueTrace(traceparent)
	return ev, ev.validate()
}

// continueTrace sets the trace context the event continues: traceparent, or
// a new trace when it is empty or invalid.
func (e *Event) continueTrace(traceparent string) {
	e.rootTrace = !spanContextOf(traceparent, "").IsValid()
	if e.rootTrace {
		traceparent = newTraceParent()
	}
	e.TraceParent, e.TraceState = traceparent, ""
}

// Reissue returns a copy of the event — same type, source, data, run and
// pipeline — under a new id and time, continuing traceparent (a new trace
// when empty). Consumers dedupe on the id, so the copy is processed again
// where the original was: control re-emits a step's input this way to
// perform the step again (a run's retry).
func (e Event) Reissue(traceparent string) (Event, error) {
	c := Event{Event: e.Event.Clone(), RunID: e.RunID, Pipeline: e.Pipeline}
	c.SetID(uuid.NewString())
	c.SetTime(time.Now().UTC())
	c.continueTrace(traceparent)
	return c, c.validate()
}

// Next builds the event that follows ev in the same run and trace.
func (e Event) Next(eventType, source string, payload proto.Message) (Event, error) {
	next, err := New(eventType, source, e.RunID, e.Pipeline, e.TraceParent, payload)
	next.TraceState = e.TraceState
	return next, err
}

// Decode unmarshals the event's data into dst, rejecting unknown fields.
func (e Event) Decode(dst proto.Message) error {
	if err := protojson.Unmarshal(e.Data(), dst); err != nil {
		return Permanent(fmt.Errorf("decode %s data: %w", e.Type(), err))
	}
	return nil
}

// TraceID is the trace id part of the event's traceparent.
func (e Event) TraceID() string {
	parts := strings.Split(e.TraceParent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// Message encodes the event for Pub/Sub in binary mode.
func (e Event) Message() Message {
	attrs := map[string]string{
		AttrID:          e.ID(),
		AttrSource:      e.Source(),
		AttrType:        e.Type(),
		AttrSpecVersion: e.SpecVersion(),
		AttrTime:        e.Time().UTC().Format(time.RFC3339Nano),
		AttrContentType: e.DataContentType(),
		AttrRunID:       e.RunID,
		AttrPipeline:    e.Pipeline,
	}
	if e.TraceParent != "" {
		attrs[AttrTraceParent] = e.TraceParent
	}
	if e.TraceState != "" {
		attrs[AttrTraceState] = e.TraceState
	}
	return Message{Attributes: attrs, Data: e.Data()}
}

// FromMessage decodes a binary-mode CloudEvent. Every error it returns is
// permanent: the same bytes will never decode.
//
// A message without ce-id and ce-time takes the Pub/Sub message id and
// publish time, as Eventarc does when it wraps a Pub/Sub message: Cloud
// Scheduler publishes static attributes, so its kicks carry neither.
func FromMessage(m Message) (Event, error) {
	a := m.Attributes
	id, at := a[AttrID], a[AttrTime]
	if id == "" && at == "" && m.PubSubID != "" && !m.PublishTime.IsZero() {
		id, at = m.PubSubID, m.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	if err := storable(AttrID, id); err != nil {
		return Event{}, Permanent(err) // a Pub/Sub message id (the attributes are checked below)
	}
	var missing []string
	for k, v := range map[string]string{AttrID: id, AttrTime: at, AttrSource: a[AttrSource], AttrType: a[AttrType],
		AttrSpecVersion: a[AttrSpecVersion], AttrRunID: a[AttrRunID], AttrPipeline: a[AttrPipeline]} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return Event{}, Permanent(fmt.Errorf("missing attributes: %s", strings.Join(missing, ", ")))
	}
	// Attributes end up in text and jsonb columns (processed_events,
	// dead_letters, outbox), which take neither NUL nor invalid UTF-8.
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if err := storable(k, a[k]); err != nil {
			return Event{}, Permanent(err)
		}
	}
	if v := a[AttrSpecVersion]; v != event.CloudEventsVersionV1 {
		return Event{}, Permanent(fmt.Errorf("unsupported ce-specversion %q", v))
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Event{}, Permanent(fmt.Errorf("bad ce-time %q: %w", at, err))
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 || t.IsZero() {
		// Message() encodes the time in UTC: it must stay RFC 3339. The zero
		// time would be dropped (an event without a time).
		return Event{}, Permanent(fmt.Errorf("bad ce-time %q: out of range", at))
	}
	ct := a[AttrContentType]
	if ct == "" {
		ct = jsonContentType
	}
	if !strings.HasPrefix(ct, jsonContentType) {
		return Event{}, Permanent(fmt.Errorf("unsupported content-type %q", ct))
	}
	ce := event.New(event.CloudEventsVersionV1)
	ce.SetID(id)
	ce.SetSource(a[AttrSource])
	ce.SetType(a[AttrType])
	ce.SetTime(t)
	if err := ce.SetData(ct, m.Data); err != nil {
		return Event{}, Permanent(err)
	}
	c := attrCarrier(a)
	ev := Event{Event: ce, RunID: a[AttrRunID], Pipeline: a[AttrPipeline], TraceParent: c.Get(AttrTraceParent), TraceState: c.Get(AttrTraceState)}
	if err := ev.validate(); err != nil {
		return Event{}, Permanent(err)
	}
	return ev, nil
}

// storable checks that an attribute can be stored as PostgreSQL text.
func storable(k, v string) error {
	switch {
	case !utf8.ValidString(k) || strings.ContainsRune(k, 0):
		return fmt.Errorf("attribute name %q is not valid UTF-8 text", k)
	case !utf8.ValidString(v):
		return fmt.Errorf("attribute %s is not valid UTF-8", k)
	case strings.ContainsRune(v, 0):
		return fmt.Errorf("attribute %s contains a NUL character", k)
	}
	return nil
}

// toText makes s storable as PostgreSQL text: invalid UTF-8 and NUL become
// U+FFFD.
func toText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (e Event) validate() error {
	if err := e.Event.Validate(); err != nil {
		return fmt.Errorf("invalid cloudevent: %w", err)
	}
	if e.RunID == "" || e.Pipeline == "" {
		return errors.New("invalid event: run_id and pipeline are required")
	}
	return nil
}

// newTraceParent returns the W3C traceparent of a new trace (sampled).
func newTraceParent() string {
	tp, _ := traceHeaders(newRootSpanContext())
	return tp
}
