package eventing

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// FuzzDecodePush: no push request makes DecodePush panic, every error is
// permanent (a redelivery cannot fix the same bytes), nothing over the limit
// is accepted, and what it accepts survives a re-encoding as a plain push
// body.
func FuzzDecodePush(f *testing.F) {
	const plain = `{"message":{"data":"eyJzdGVwIjoicG1nZW4ifQ==","attributes":{"ce-id":"1","run_id":"r"},"messageId":"42","publishTime":"2026-11-27T06:00:00Z"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}`
	seeds := []struct {
		body, contentType, ceType string
		max                       uint16
	}{
		{plain, "application/json", "", 4096},
		{`{"message":{"data":"e30=","attributes":{"ce-id":"1"},"message_id":"43","publish_time":"2026-11-27T06:00:00Z"}}`, "", "", 4096},
		{plain, "", EventarcPubSubType, 4096},
		{`{"specversion":"1.0","type":"` + EventarcPubSubType + `","id":"x","source":"s","data":` + plain + `}`, "application/cloudevents+json; charset=utf-8", "", 4096},
		{`{"type":"` + EventarcPubSubType + `"}`, "application/cloudevents+json", "", 4096},
		{`{"type":"x","data":` + plain + `}`, "application/cloudevents+json", "", 4096},
		{plain, "", "google.cloud.storage.object.v1.finalized", 4096},
		{plain, "", "", 64},
		{"", "", "", 0},
		{"not json", "", "", 4096},
		{"null", "", "", 4096},
		{`{"message":null}`, "", "", 4096},
		{`{"message":{"data":"!!notbase64"}}`, "", "", 4096},
		{`{"message":{"attributes":{"ce-id":"\u0000"}}}`, "", "", 4096},
		{`{"message":{"publishTime":"0000-01-01T00:00:00+01:00"}}`, "", "", 4096},
		{`{"message":{},"deliveryAttempt":1e99}`, "", "", 4096},
		{plain + `{}`, "", "", 4096},
		{"\xef\xbb\xbf" + plain, "", "", 4096},
		{plain, "application/cloudevents+json", "", 4096},
		{plain, "multipart/form-data; boundary=", "", 4096},
	}
	for _, s := range seeds {
		f.Add(s.body, s.contentType, s.ceType, s.max)
	}
	f.Fuzz(func(t *testing.T, body, contentType, ceType string, max uint16) {
		r := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Ce-Type", ceType)
		m, err := DecodePush(r, int64(max))
		if err != nil {
			if !IsPermanent(err) {
				t.Fatalf("non-permanent error for a body read from memory: %v", err)
			}
			return
		}
		if len(body) > int(max) {
			t.Fatalf("accepted a %d byte body over the %d byte limit", len(body), max)
		}
		// Re-encoded as a plain push body, it decodes to the same message.
		type msg struct {
			Data        []byte            `json:"data"`
			Attributes  map[string]string `json:"attributes"`
			MessageID   string            `json:"messageId"`
			PublishTime time.Time         `json:"publishTime"`
		}
		enc, err := json.Marshal(map[string]any{
			"message":         msg{m.Data, m.Attributes, m.PubSubID, m.PublishTime},
			"deliveryAttempt": m.DeliveryAttempt,
		})
		if err != nil {
			return // a publish time outside years 0-9999 once in UTC
		}
		again, err := DecodePush(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(enc)), int64(len(enc)))
		if err != nil {
			t.Fatalf("re-encoded push body %s does not decode: %v", enc, err)
		}
		if !bytes.Equal(again.Data, m.Data) || !maps.Equal(again.Attributes, m.Attributes) || again.PubSubID != m.PubSubID ||
			!again.PublishTime.Equal(m.PublishTime) || again.DeliveryAttempt != m.DeliveryAttempt {
			t.Fatalf("round trip changed the message: %+v → %+v", m, again)
		}
	})
}

// FuzzFromMessage: no attributes and data make FromMessage panic, every
// error is permanent, and an event it accepts is valid (validate()), has
// the identifying attributes non-blank and storable as PostgreSQL text, and
// survives its own encoding (Message) unchanged.
func FuzzFromMessage(f *testing.F) {
	now := "2026-11-27T06:00:00.123456789Z"
	f.Add("id-1", "//cmmsflow/control", events.RunStarted, "1.0", now, "application/json", "run-1", events.PreventiveMaintenance,
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", []byte(`{"conf":{"k":"v"}}`), "", int64(0))
	f.Add("", "//cmmsflow/scheduler", events.PipelineTriggered, "1.0", "", "", "scheduled", events.WeeklyKPIReport, "", []byte(`{}`), "98765", int64(1795000000))
	f.Add("", "//s", "t", "1.0", "", "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "0.3", now, "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "1.0", "yesterday", "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "1.0", "9999-12-31T23:59:59-01:00", "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "1.0", now, "text/xml", "r", "p", "", []byte("<x/>"), "", int64(0))
	f.Add("id", "%zz", "t", "1.0", now, "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add(" ", "//s", "t", "1.0", now, "", "r", " ", "", []byte(nil), "", int64(0))
	f.Add("a\x00b", "//s", "t", "1.0", now, "", "r", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "1.0", now, "", "r\xff", "p", "", []byte(nil), "", int64(0))
	f.Add("id", "//s", "t", "1.0", now, "application/jsonp", "r", "p", "garbage", []byte("\xff"), "", int64(0))
	f.Add("", "//s", "t", "1.0", "", "", "r", "p", "", []byte(nil), "1", int64(-62135596800-86400))
	f.Fuzz(func(t *testing.T, id, source, typ, spec, at, ct, runID, pipeline, traceparent string, data []byte, pubsubID string, publishUnix int64) {
		attrs := map[string]string{}
		for k, v := range map[string]string{AttrID: id, AttrSource: source, AttrType: typ, AttrSpecVersion: spec, AttrTime: at,
			AttrContentType: ct, AttrRunID: runID, AttrPipeline: pipeline, AttrTraceParent: traceparent} {
			if v != "" {
				attrs[k] = v
			}
		}
		m := Message{Attributes: attrs, Data: data, PubSubID: pubsubID}
		if publishUnix != 0 {
			m.PublishTime = time.Unix(publishUnix, 0)
		}
		ev, err := FromMessage(m)
		if err != nil {
			if !IsPermanent(err) {
				t.Fatalf("non-permanent error: %v", err)
			}
			return
		}
		if err := ev.validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		for name, v := range map[string]string{"id": ev.ID(), "type": ev.Type(), "source": ev.Source(), "run_id": ev.RunID, "pipeline": ev.Pipeline} {
			if strings.TrimSpace(v) == "" {
				t.Fatalf("accepted an event with a blank %s", name)
			}
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Fatalf("accepted an event whose %s %q is not storable text", name, v)
			}
		}
		if ev.SpecVersion() != event.CloudEventsVersionV1 || ev.Time().IsZero() || !bytes.Equal(ev.Data(), data) {
			t.Fatalf("accepted event %v", ev)
		}
		again, err := FromMessage(ev.Message())
		if err != nil {
			t.Fatalf("the event's own encoding does not decode: %v", err)
		}
		if again.ID() != ev.ID() || again.Type() != ev.Type() || again.Source() != ev.Source() || !again.Time().Equal(ev.Time()) ||
			again.RunID != ev.RunID || again.Pipeline != ev.Pipeline || again.TraceParent != ev.TraceParent ||
			!bytes.Equal(again.Data(), ev.Data()) || again.DataContentType() != ev.DataContentType() {
			t.Fatalf("round trip changed the event:\n%v\n%v", ev, again)
		}
	})
}
