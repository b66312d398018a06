package pagerduty_test

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

func TestValidate(t *testing.T) {
	ok := pagerduty.Payload{Summary: "s", Source: "cmmsflow", Severity: "warning"}
	for _, tc := range []struct {
		name string
		e    pagerduty.Event
		want string // "" for valid
	}{
		{"trigger", pagerduty.Event{Action: "trigger", DedupKey: "k", Payload: &ok}, ""},
		{"resolve needs no payload", pagerduty.Event{Action: "resolve", DedupKey: "k"}, ""},
		{"no dedup key", pagerduty.Event{Action: "resolve"}, "dedup_key"},
		{"long dedup key", pagerduty.Event{Action: "resolve", DedupKey: strings.Repeat("k", 256)}, "dedup_key"},
		{"unknown action", pagerduty.Event{Action: "ack", DedupKey: "k"}, "event_action"},
		{"trigger without payload", pagerduty.Event{Action: "trigger", DedupKey: "k"}, "payload"},
		{"bad severity", pagerduty.Event{Action: "trigger", DedupKey: "k",
			Payload: &pagerduty.Payload{Summary: "s", Source: "x", Severity: "high"}}, "severity"},
		{"no source", pagerduty.Event{Action: "trigger", DedupKey: "k", Payload: &pagerduty.Payload{Summary: "s", Severity: "info"}}, "source"},
	} {
		err := tc.e.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Send adds the routing key to the stored event; the fake accepts it.
// An event that does not validate is refused before any request.
func TestSend(t *testing.T) {
	fake := pagerdutytest.New(t, "the-key")
	c, err := pagerduty.New(fake.EventsURL(), "the-key", webhook.NewPoster(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), []byte(`{"event_action":"resolve","dedup_key":"k"}`)); err != nil {
		t.Fatal(err)
	}
	err = c.Send(t.Context(), []byte(`{"event_action":"trigger","dedup_key":"k"}`))
	if err == nil || !webhook.IsPermanent(err) || len(fake.Requests()) != 1 {
		t.Fatalf("invalid event: %v (permanent %v), %d requests", err, webhook.IsPermanent(err), len(fake.Requests()))
	}
	if r := fake.Requests()[0]; r.Event.RoutingKey != "the-key" || r.Status != 202 {
		t.Fatalf("request %+v", r)
	}
	if strings.Contains(c.Redacted(), "the-key") {
		t.Fatalf("redacted %q shows the key", c.Redacted())
	}
	if _, err := pagerduty.New("", "", nil); err == nil {
		t.Fatal("no routing key accepted")
	}
}
