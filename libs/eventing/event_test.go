package eventing

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

func TestEventRoundTrip(t *testing.T) {
	payload := &eventsv1.StepSucceeded{Step: "pmgen", Figures: map[string]float64{"created": 3}, Summary: "ok"}
	ev, err := New(events.StepSucceeded, events.Source("pmgen"), "manual__x", events.PreventiveMaintenance, "", payload)
	if err != nil {
		t.Fatal(err)
	}
	m := ev.Message()
	for _, k := range []string{AttrID, AttrSource, AttrType, AttrSpecVersion, AttrTime, AttrContentType, AttrRunID, AttrPipeline, AttrTraceParent} {
		if m.Attributes[k] == "" {
			t.Errorf("attribute %s missing from %v", k, m.Attributes)
		}
	}
	if !strings.Contains(string(m.Data), `"figures"`) {
		t.Errorf("data is not proto-named JSON: %s", m.Data)
	}
	got, err := FromMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != ev.ID() || got.Type() != ev.Type() || got.RunID != "manual__x" || got.Pipeline != events.PreventiveMaintenance || got.TraceParent != ev.TraceParent {
		t.Fatalf("round trip changed the event: %+v", got)
	}
	var back eventsv1.StepSucceeded
	if err := got.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&back, payload) {
		t.Fatalf("payload %v, want %v", &back, payload)
	}
	next, err := got.Next(events.StepStarted, events.Source("notifier"), &eventsv1.StepStarted{Step: "notifier"})
	if err != nil {
		t.Fatal(err)
	}
	if next.TraceID() != ev.TraceID() || next.TraceParent != ev.TraceParent || next.RunID != ev.RunID {
		t.Fatalf("Next must keep run and trace context (Emit makes the span): %q vs %q", next.TraceParent, ev.TraceParent)
	}
}

func TestFromMessageRejects(t *testing.T) {
	good := func() Message {
		ev, err := New(events.StepStarted, "//t", "r1", events.PreventiveMaintenance, "", &eventsv1.StepStarted{Step: "pmgen"})
		if err != nil {
			t.Fatal(err)
		}
		return ev.Message()
	}
	tests := []struct {
		name   string
		mutate func(*Message)
		want   string
	}{
		{"missing id and type", func(m *Message) { delete(m.Attributes, AttrID); delete(m.Attributes, AttrType) }, "missing attributes: ce-id, ce-type"},
		{"missing run_id", func(m *Message) { delete(m.Attributes, AttrRunID) }, "missing attributes: run_id"},
		{"missing pipeline", func(m *Message) { m.Attributes[AttrPipeline] = " " }, "missing attributes: pipeline"},
		{"no attributes", func(m *Message) { m.Attributes = nil }, "missing attributes"},
		{"wrong spec version", func(m *Message) { m.Attributes[AttrSpecVersion] = "0.3" }, `unsupported ce-specversion "0.3"`},
		{"bad time", func(m *Message) { m.Attributes[AttrTime] = "yesterday" }, `bad ce-time "yesterday"`},
		{"not json", func(m *Message) { m.Attributes[AttrContentType] = "text/xml" }, `unsupported content-type "text/xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.mutate(&m)
			_, err := FromMessage(m)
			if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want permanent error containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRejectsWrongSchema(t *testing.T) {
	m := Message{Attributes: map[string]string{AttrID: "1", AttrSource: "//t", AttrType: events.StepFailed, AttrSpecVersion: "1.0",
		AttrTime: time.Now().Format(time.RFC3339), AttrRunID: "r", AttrPipeline: "p"}, Data: []byte(`{"step":"x","colour":"red"}`)}
	ev, err := FromMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	err = ev.Decode(&eventsv1.StepFailed{})
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown field must be a permanent decode error, got %v", err)
	}
}

// A Cloud Scheduler kick has static attributes: no ce-id or ce-time. It takes
// the Pub/Sub message id and publish time, as Eventarc does.
func TestFromMessageKickFallback(t *testing.T) {
	pt := time.Date(2026, 11, 23, 6, 0, 1, 0, time.UTC)
	m := Message{
		Attributes: map[string]string{AttrSource: "//cmmsflow/scheduler", AttrType: events.PipelineTriggered, AttrSpecVersion: "1.0",
			AttrContentType: "application/json", AttrRunID: "scheduled", AttrPipeline: events.PreventiveMaintenance},
		Data: []byte(`{"source":"scheduled"}`), PubSubID: "98765", PublishTime: pt,
	}
	ev, err := FromMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID() != "98765" || !ev.Time().Equal(pt) {
		t.Fatalf("id %q time %v, want the Pub/Sub message id and publish time", ev.ID(), ev.Time())
	}
	m.PubSubID = ""
	if _, err := FromMessage(m); err == nil {
		t.Fatal("a kick without a Pub/Sub message id must be rejected")
	}
}

func pushRequest(body string, header map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/events", bytes.NewBufferString(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestDecodePushShapes(t *testing.T) {
	const plain = `{"message":{"data":"eyJzdGVwIjoicG1nZW4ifQ==","attributes":{"ce-id":"1"},"messageId":"42","publishTime":"2026-11-27T06:00:00Z"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}`
	const snake = `{"message":{"data":"e30=","attributes":{"ce-id":"1"},"message_id":"43","publish_time":"2026-11-27T06:00:00Z"},"subscription":"s"}`
	tests := []struct {
		name    string
		body    string
		header  map[string]string
		wantID  string
		wantErr string
	}{
		{name: "plain push", body: plain, wantID: "42"},
		{name: "snake_case ids", body: snake, wantID: "43"},
		{name: "eventarc binary", body: plain, header: map[string]string{"Ce-Type": EventarcPubSubType, "Ce-Id": "x", "Ce-Specversion": "1.0"}, wantID: "42"},
		{name: "eventarc structured", body: `{"specversion":"1.0","type":"` + EventarcPubSubType + `","id":"x","source":"s","data":` + plain + `}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"}, wantID: "42"},
		{name: "garbage", body: `not json`, wantErr: "decode push body"},
		{name: "bad base64", body: `{"message":{"data":"***","messageId":"1"}}`, wantErr: "decode push body"},
		{name: "no message", body: `{"subscription":"s"}`, wantErr: "no message"},
		{name: "trailing data", body: plain + `{}`, wantErr: "trailing data"},
		{name: "other eventarc type", body: plain, header: map[string]string{"Ce-Type": "google.cloud.storage.object.v1.finalized"}, wantErr: "unsupported Eventarc event type"},
		{name: "too big", body: `{"message":{"data":"` + strings.Repeat("A", 2048) + `"}}`, wantErr: "exceeds 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodePush(pushRequest(tt.body, tt.header), 1024)
			if tt.wantErr != "" {
				if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want permanent %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.PubSubID != tt.wantID || m.Attributes["ce-id"] != "1" || m.PublishTime.IsZero() {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
	m, _ := DecodePush(pushRequest(plain, nil), 1024)
	if string(m.Data) != `{"step":"pmgen"}` || m.DeliveryAttempt != 3 {
		t.Fatalf("data %q attempt %d", m.Data, m.DeliveryAttempt)
	}
}

// A reissued event is the same event under a new id, time and trace: what
// control re-emits to perform a step again.
func TestReissue(t *testing.T) {
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	orig, err := New(events.ModelTrained, events.Source(events.Trainer), "manual__x", events.ETLMLTraining, "",
		&eventsv1.ModelTrained{ModelVersion: "v1", Promoted: true})
	if err != nil {
		t.Fatal(err)
	}
	orig.TraceState = "vendor=1"
	received, err := FromMessage(orig.Message()) // as read back from the outbox
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{"", caller} {
		c, err := received.Reissue(tp)
		if err != nil {
			t.Fatal(err)
		}
		m, o := c.Message(), orig.Message()
		if c.ID() == orig.ID() || !c.Time().After(orig.Time()) || c.TraceState != "" {
			t.Errorf("traceparent %q: id %s time %s tracestate %q: want a new id, a later time, no tracestate", tp, c.ID(), c.Time(), c.TraceState)
		}
		for _, k := range []string{AttrType, AttrSource, AttrRunID, AttrPipeline, AttrContentType, AttrSpecVersion} {
			if m.Attributes[k] != o.Attributes[k] {
				t.Errorf("%s: %q, want %q", k, m.Attributes[k], o.Attributes[k])
			}
		}
		if !bytes.Equal(m.Data, o.Data) {
			t.Errorf("data %s, want %s", m.Data, o.Data)
		}
		switch {
		case tp == "" && (c.TraceID() == "" || c.TraceID() == orig.TraceID()):
			t.Errorf("no traceparent: trace %q, want a new trace (not %s)", c.TraceID(), orig.TraceID())
		case tp != "" && c.TraceParent != caller:
			t.Errorf("traceparent %q, want the caller's", c.TraceParent)
		}
	}
}
