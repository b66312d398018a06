package eventing_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// TestBadPushInput is the bad-input table of the push endpoint: every body
// no retry can fix is POSTed through the real Router over HTTP on a fresh
// database. Each is acked (200, outcome dead-lettered) with a dead_letters
// row naming the reason; none has an effect; the router keeps serving.
// (router_test.go's TestPermanentlyBadEventsAreDeadLettered also checks the
// step-failed reports and the dedupe of redelivered poison.)
func TestBadPushInput(t *testing.T) {
	h := newHarness(t, time.Minute) // MaxBody 64 KiB
	h.handleStep(effect)
	good := runStarted(t).Message()

	// msg is the good event with a fresh ce-id and the attributes mutated.
	n := 0
	msg := func(mut func(a map[string]string)) eventing.Message {
		n++
		m := eventing.Message{Attributes: map[string]string{}, Data: good.Data}
		for k, v := range good.Attributes {
			m.Attributes[k] = v
		}
		m.Attributes[eventing.AttrID] = fmt.Sprint("bad-", n)
		mut(m.Attributes)
		return m
	}
	body := func(m eventing.Message) string { return pushBody(m, fmt.Sprint("ps-", n)) }
	const structured = "application/cloudevents+json"
	tests := []struct {
		name        string
		contentType string
		header      map[string]string
		body        string
		reason      string
		runID       bool // the dead letter keeps the event's run id
	}{
		// Not a push body.
		{name: "empty body", body: "", reason: "decode push body: EOF"},
		{name: "garbage", body: "}{ not json", reason: "decode push body: invalid character"},
		{name: "binary garbage", body: "\x00\xff\xfe\x01", reason: "decode push body: invalid character"},
		{name: "JSON array", body: `[1,2,3]`, reason: "decode push body: json: cannot unmarshal array"},
		{name: "JSON null", body: `null`, reason: "push body has no message"},
		{name: "no message", body: `{"subscription":"s"}`, reason: "push body has no message"},
		{name: "message null", body: `{"message":null}`, reason: "push body has no message"},
		{name: "message not an object", body: `{"message":"hello"}`, reason: "decode push body: json: cannot unmarshal string"},
		{name: "trailing data", body: body(good) + `{"message":{}}`, reason: "decode push body: trailing data"},
		{name: "truncated JSON", body: body(good)[:40], reason: "decode push body: unexpected EOF"},
		// Wrong encodings of the fields.
		{name: "wrong base64", body: `{"message":{"data":"!!notbase64","messageId":"b64"}}`, reason: "decode push body: illegal base64 data"},
		{name: "base64url instead of std", body: `{"message":{"data":"_-_-","messageId":"b64u"}}`, reason: "decode push body: illegal base64 data"},
		{name: "data not a string", body: `{"message":{"data":42}}`, reason: "decode push body: json: cannot unmarshal number"},
		{name: "attributes not strings", body: `{"message":{"attributes":{"ce-id":7}}}`, reason: "decode push body: json: cannot unmarshal number"},
		{name: "bad publishTime", body: `{"message":{"publishTime":"yesterday"}}`, reason: "decode push body: parsing time"},
		{name: "deliveryAttempt overflow", body: `{"message":{},"deliveryAttempt":1e99}`, reason: "decode push body: json: cannot unmarshal number 1e99"},
		// Size.
		{name: "huge body", body: `{"message":{"data":"` + strings.Repeat("QUFB", 20000) + `"}}`, reason: "push body exceeds 65536 bytes"},
		{name: "just over the limit", body: strings.Repeat(" ", 64<<10+1), reason: "push body exceeds 65536 bytes"},
		// Eventarc shapes.
		{name: "other Eventarc type (binary)", header: map[string]string{"Ce-Type": "google.cloud.storage.object.v1.finalized"}, body: body(good),
			reason: `unsupported Eventarc event type "google.cloud.storage.object.v1.finalized"`},
		{name: "structured garbage", contentType: structured, body: `{"type":`, reason: "decode structured CloudEvent"},
		{name: "structured other type", contentType: structured, body: `{"type":"x.y","data":` + body(good) + `}`, reason: `unsupported Eventarc event type "x.y"`},
		{name: "structured without data", contentType: structured, body: `{"type":"` + eventing.EventarcPubSubType + `"}`, reason: "decode push body: EOF"},
		// A push body whose message is not a cmmsflow event.
		{name: "no attributes", body: `{"message":{"data":"e30=","messageId":"na"}}`,
			reason: "missing attributes: ce-id, ce-source, ce-specversion, ce-time, ce-type, pipeline, run_id"},
		{name: "missing attributes", body: body(msg(func(a map[string]string) { delete(a, eventing.AttrType); delete(a, eventing.AttrSource) })),
			reason: "missing attributes: ce-source, ce-type", runID: true},
		{name: "blank run_id", body: body(msg(func(a map[string]string) { a[eventing.AttrRunID] = "  " })), reason: "missing attributes: run_id"},
		{name: "wrong spec version", body: body(msg(func(a map[string]string) { a[eventing.AttrSpecVersion] = "0.3" })),
			reason: `unsupported ce-specversion "0.3"`, runID: true},
		{name: "bad ce-time", body: body(msg(func(a map[string]string) { a[eventing.AttrTime] = "2026-02-30T00:00:00Z" })),
			reason: `bad ce-time "2026-02-30T00:00:00Z"`, runID: true},
		{name: "not JSON data", body: body(msg(func(a map[string]string) { a[eventing.AttrContentType] = "application/xml" })),
			reason: `unsupported content-type "application/xml"`, runID: true},
		{name: "bad ce-source", body: body(msg(func(a map[string]string) { a[eventing.AttrSource] = "%zz" })),
			reason: "invalid cloudevent", runID: true},
		{name: "NUL in an attribute", body: body(msg(func(a map[string]string) { a[eventing.AttrID] = "nul\x00id" })),
			reason: "attribute ce-id contains a NUL character", runID: true},
		{name: "NUL in run_id", body: body(msg(func(a map[string]string) { a[eventing.AttrRunID] = "run\x00id" })),
			reason: "attribute run_id contains a NUL character"},
		// A well-formed event the service does not take.
		{name: "unknown event type", body: body(msg(func(a map[string]string) { a[eventing.AttrType] = "cmmsflow.nothing.happened.v1" })),
			reason: `pmgen does not handle event type "cmmsflow.nothing.happened.v1"`, runID: true},
		{name: "wrong schema version", body: body(msg(func(a map[string]string) { a[eventing.AttrType] = "cmmsflow.run.started.v2" })),
			reason: `pmgen does not handle event type "cmmsflow.run.started.v2"`, runID: true},
		{name: "payload of another schema", body: pushBody(eventing.Message{Attributes: msg(func(map[string]string) {}).Attributes, Data: []byte(`{"conf":{"k":"v"},"colour":"red"}`)}, "p1"),
			reason: "decode cmmsflow.run.started.v1 data", runID: true},
		{name: "payload not JSON", body: pushBody(eventing.Message{Attributes: msg(func(map[string]string) {}).Attributes, Data: []byte("\xff\x00binary")}, "p2"),
			reason: "decode cmmsflow.run.started.v1 data", runID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.count(t, `SELECT count(*) FROM dead_letters`)
			req, err := http.NewRequest(http.MethodPost, h.srv.URL, bytes.NewBufferString(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"outcome":"dead-lettered"}` {
				t.Fatalf("got %d %s, want 200 dead-lettered (ack)", resp.StatusCode, b)
			}
			if got := h.count(t, `SELECT count(*) FROM dead_letters`); got != before+1 {
				t.Fatalf("%d dead letters recorded, want 1", got-before)
			}
			var reason, runID string
			if err := h.pool.QueryRow(context.Background(), `SELECT reason, run_id FROM dead_letters ORDER BY id DESC LIMIT 1`).Scan(&reason, &runID); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q, want it to contain %q", reason, tt.reason)
			}
			if wantRun := tt.runID; wantRun != (runID == good.Attributes[eventing.AttrRunID]) {
				t.Fatalf("dead letter run_id %q (keep the event's run id: %v)", runID, wantRun)
			}
			if n := h.count(t, `SELECT count(*) FROM technicians`); n != 0 {
				t.Fatalf("a bad event had an effect: %d rows", n)
			}
		})
	}
	// Not a POST.
	resp, err := http.Get(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
	// Still serving: a good event is handled, once.
	if code, b := h.post(t, pushBody(good, "ok")); code != http.StatusOK || b != `{"outcome":"handled"}` {
		t.Fatalf("after bad input: %d %s", code, b)
	}
	if n := h.count(t, `SELECT count(*) FROM technicians`); n != 1 {
		t.Fatalf("%d effect rows, want 1", n)
	}
	if n := h.count(t, `SELECT count(*) FROM dead_letters`); n != len(tests) {
		t.Fatalf("%d dead letters, want %d", n, len(tests))
	}
}
