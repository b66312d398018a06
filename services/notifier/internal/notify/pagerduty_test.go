package notify_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
)

const routingKey = "R0UTINGKEY0123456789abcdefABCDEF"

// pdRow is the notification of a PagerDuty event: key <dedup key>:<action>:pagerduty.
func pdRow(dedupKey, action string) string { return dedupKey + ":" + action + ":pagerduty" }

// A failed run triggers one PagerDuty incident (dedup key
// cmmsflow/run/<run>), recorded as an alert of kind run; the run's
// notifier step succeeding later (a retried run that completes) resolves
// it, once. Redeliveries send nothing more, and the routing key is in no
// notification. The trigger is of kind alert, the kind ReconcileAlerts
// looks for, so a run alerted only to PagerDuty counts as alerted.
func TestFailedRunTriggersAndResolvesPagerDuty(t *testing.T) {
	pd := pagerdutytest.New(t, routingKey)
	f := newFixture(t, options{pagerduty: pd})
	dedup := "cmmsflow/run/" + runID

	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "plan 42: boom", false).Message(), eventing.Handled)
	reqs := pd.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d PagerDuty requests, want the trigger", len(reqs))
	}
	e := reqs[0].Event
	if reqs[0].Status != http.StatusAccepted || e.Action != "trigger" || e.DedupKey != dedup || e.RoutingKey != routingKey ||
		e.Payload.Source != "cmmsflow" || e.Payload.Severity != "error" ||
		!strings.Contains(e.Payload.Summary, "preventive_maintenance run "+runID+" failed at step pmgen: plan 42: boom") ||
		e.Payload.CustomDetails["run_id"] != runID {
		t.Fatalf("trigger %d %+v payload %+v", reqs[0].Status, e, e.Payload)
	}
	if n := f.count(`SELECT count(*) FROM alerts WHERE rule = $1 AND kind = 'run' AND status = 'open' AND dedup_key = $2`,
		"run:"+runID, dedup); n != 1 {
		t.Fatalf("%d open run alerts, want 1", n)
	}
	r := f.row(pdRow(dedup, "trigger"))
	if r.Channel != notify.ChannelWebhook || r.Kind != email.KindAlert || r.Status != notify.StatusSent || !strings.HasPrefix(r.Recipient, "pagerduty http://127.0.0.1:") ||
		!strings.Contains(r.Recipient, " key sha256:") {
		t.Errorf("trigger row %+v", r)
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE body LIKE '%' || $1 || '%' OR recipient LIKE '%' || $1 || '%'
		OR subject LIKE '%' || $1 || '%' OR error LIKE '%' || $1 || '%'`, routingKey); n != 0 {
		t.Fatalf("the routing key is stored in %d notifications", n)
	}

	// The same failure reported again triggers nothing.
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "again", false).Message(), eventing.Handled)
	// The run is retried and its notifier step succeeds: resolved, once.
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	reqs = pd.Requests()
	if len(reqs) != 2 || reqs[1].Event.Action != "resolve" || reqs[1].Event.DedupKey != dedup || reqs[1].Status != http.StatusAccepted {
		t.Fatalf("requests %+v, want the trigger and one resolve", reqs)
	}
	if in := pd.Incident(dedup); in.Open || in.Triggers != 1 || in.Resolves != 1 {
		t.Fatalf("incident %+v", in)
	}
	if n := f.count(`SELECT count(*) FROM alerts WHERE dedup_key = $1 AND status = 'resolved' AND resolved_at IS NOT NULL`, dedup); n != 1 {
		t.Fatal("run alert not resolved")
	}
}

// PagerDuty answering 429 or 5xx is retried (the event is redelivered);
// only the PagerDuty event is sent again, and it reaches PagerDuty once.
func TestPagerDutyTemporaryFailuresAreRetried(t *testing.T) {
	pd := pagerdutytest.New(t, routingKey)
	f := newFixture(t, options{pagerduty: pd})
	pd.Fail(http.StatusTooManyRequests, http.StatusServiceUnavailable)
	m := stepFailed(t, runID, events.Pmgen, "boom", false).Message()
	eventingtest.Deliver(t, f.router, m, eventing.Retry)
	eventingtest.Deliver(t, f.router, m, eventing.Retry)
	eventingtest.Deliver(t, f.router, m, eventing.Handled)
	var statuses []int
	for _, r := range pd.Requests() {
		statuses = append(statuses, r.Status)
	}
	if len(statuses) != 3 || statuses[0] != 429 || statuses[1] != 503 || statuses[2] != 202 {
		t.Fatalf("statuses %v, want 429 503 202", statuses)
	}
	if in := pd.Incident("cmmsflow/run/" + runID); in.Triggers != 1 {
		t.Fatalf("incident %+v", in)
	}
	if r := f.row(pdRow("cmmsflow/run/"+runID, "trigger")); r.Status != notify.StatusSent || r.Attempts != 3 {
		t.Fatalf("trigger row %+v, want sent at the 3rd attempt", r)
	}
	if f.mail.count() != 1 {
		t.Fatalf("%d alert emails, want 1 (not resent with PagerDuty's retries)", f.mail.count())
	}
}

// PagerDuty refusing an event (400: invalid, or a wrong routing key) is
// permanent: recorded on its row, not retried, and the alert's other
// channels are unaffected.
func TestPagerDutyInvalidEventIsNotRetried(t *testing.T) {
	pd := pagerdutytest.New(t, "another-key")
	f := newFixture(t, options{pagerduty: pd})
	m := stepFailed(t, runID, events.Pmgen, "boom", false).Message()
	eventingtest.Deliver(t, f.router, m, eventing.Handled)
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "boom", false).Message(), eventing.Handled)
	reqs := pd.Requests()
	if len(reqs) != 1 || reqs[0].Status != http.StatusBadRequest {
		t.Fatalf("requests %+v, want one refused", reqs)
	}
	r := f.row(pdRow("cmmsflow/run/"+runID, "trigger"))
	if r.Status != notify.StatusFailed || !strings.Contains(r.Error, "HTTP 400") || !strings.Contains(r.Error, "Invalid routing key") {
		t.Fatalf("trigger row %+v", r)
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE dedupe_key = $1 AND NOT retryable`, r.Key); n != 1 || f.mail.count() != 1 {
		t.Fatalf("row retryable, or the email was not sent (%d)", f.mail.count())
	}
	if len(pd.Incidents()) != 0 {
		t.Fatalf("incidents %v", pd.Incidents())
	}
}
