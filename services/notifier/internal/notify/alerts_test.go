package notify_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

// monitored is a monitoring run's step input for day.
func monitored(t *testing.T, run, day string, critical int32, drift string) eventing.Event {
	return eventingtest.Event(t, events.ModelMonitored, run, events.ModelMonitoring, &eventsv1.ModelMonitored{
		ModelVersion: "v7", SnapshotDate: day, ScoredAssets: 50,
		RiskLevels: map[string]int32{"low": 30, "critical": critical}, Psi: map[string]float64{"age": 0.05, "score": 0.02},
		Drift: drift,
	})
}

func drifted(t *testing.T, day string) eventing.Event {
	return eventingtest.Event(t, events.DriftDetected, "scheduled__"+day+"T05:00:00+00:00", events.ModelMonitoring,
		&eventsv1.DriftDetected{ModelVersion: "v7", SnapshotDate: day, Psi: map[string]float64{"age": 0.41, "mileage": 0.3}, Threshold: 0.25})
}

// requests counts the fake's accepted requests by "<action> <dedup key>".
func accepted(pd *pagerdutytest.Server) map[string]int {
	out := map[string]int{}
	for _, r := range pd.Requests() {
		if r.Status == http.StatusAccepted {
			out[r.Event.Action+" "+r.Event.DedupKey]++
		}
	}
	return out
}

// A rule opens its alert once its condition held for `for` periods, and
// notifies its channels once; a second run or a redelivery for the same
// period notifies nothing more; the first period that clears resolves it,
// once: one trigger and one resolve at PagerDuty.
func TestAlertRuleOpensAfterItsPeriodsAndResolvesOnce(t *testing.T) {
	pd := pagerdutytest.New(t, routingKey)
	slack := newHook(t, 200)
	f := newFixture(t, options{pagerduty: pd, webhooks: "slack={slack}/x", hooks: map[string]*hookServer{"slack": slack},
		rules: []rules.Rule{{Name: "critical-risk", Metric: "model.critical_risk_vehicles", Comparator: ">", Threshold: 5, For: 2,
			Severity: "critical", Channels: []string{rules.ChannelEmail, rules.ChannelWebhook, rules.ChannelPagerDuty}}}})
	deliver := func(ev eventing.Event) { eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled) }
	open := func() int {
		return f.count(`SELECT count(*) FROM alerts WHERE rule = 'critical-risk' AND status = 'open'`)
	}
	const dedup = "cmmsflow/rule/critical-risk/2026-11-03"

	deliver(monitored(t, "scheduled__1", "2026-11-02", 7, "ok"))
	if open() != 0 || len(pd.Requests()) != 0 || f.mail.count() != 0 {
		t.Fatalf("one breach of two opened an alert")
	}
	deliver(monitored(t, "scheduled__2", "2026-11-03", 8, "ok"))
	if open() != 1 || f.count(`SELECT count(*) FROM alerts WHERE dedup_key = $1 AND kind = 'rule' AND severity = 'critical'
		AND opened_period = '2026-11-03' AND value = 8 AND threshold = 5`, dedup) != 1 {
		t.Fatal("two breaches in a row did not open the alert")
	}
	ev := monitored(t, "manual__2", "2026-11-03", 9, "ok") // a second run for the same day
	deliver(ev)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	deliver(monitored(t, "scheduled__3", "2026-11-04", 6, "ok")) // still breached
	if got := accepted(pd); len(got) != 1 || got["trigger "+dedup] != 1 || f.mail.count() != 1 || len(slack.received()) != 1 {
		t.Fatalf("PagerDuty %v, %d emails, %d slack posts; want one trigger, one email, one post", got, f.mail.count(), len(slack.received()))
	}
	trigger := pd.Requests()[0].Event
	if trigger.Payload.Severity != "critical" || trigger.Payload.Component != "model.critical_risk_vehicles" ||
		!strings.Contains(trigger.Payload.Summary, "model.critical_risk_vehicles = 8 > 5") {
		t.Errorf("trigger payload %+v", trigger.Payload)
	}
	files := f.outboxFiles()
	if e, ok := files[email.FileName(dedup+":trigger:email")]; !ok || e.subject != "[cmmsflow] critical: critical-risk" {
		t.Fatalf("alert email %+v in %v", e, files)
	}

	clear := monitored(t, "scheduled__4", "2026-11-05", 2, "ok")
	deliver(clear)
	deliver(monitored(t, "manual__4", "2026-11-05", 1, "ok"))
	eventingtest.Deliver(t, f.router, clear.Message(), eventing.Duplicate)
	if open() != 0 || f.count(`SELECT count(*) FROM alerts WHERE dedup_key = $1 AND status = 'resolved' AND resolved_period = '2026-11-05'`, dedup) != 1 {
		t.Fatal("the alert was not resolved on the clear day")
	}
	if got := accepted(pd); len(got) != 2 || got["resolve "+dedup] != 1 {
		t.Fatalf("PagerDuty %v, want one trigger and one resolve", got)
	}
	if in := pd.Incident(dedup); in.Open || in.Triggers != 1 || in.Resolves != 1 {
		t.Fatalf("incident %+v", in)
	}
	resolved, ok := f.outboxFiles()[email.FileName(dedup+":resolve:email")]
	if !ok || resolved.subject != "[cmmsflow] RESOLVED: critical-risk" || !strings.Contains(resolved.text, "model.critical_risk_vehicles = 2 in 2026-11-05") {
		t.Fatalf("resolution email %+v", resolved)
	}
	if f.mail.count() != 2 || len(slack.received()) != 2 {
		t.Fatalf("%d emails and %d slack posts, want the alert's and its resolution's", f.mail.count(), len(slack.received()))
	}
	if n := f.count(`SELECT count(*) FROM alert_observations WHERE rule = 'critical-risk'`); n != 4 {
		t.Fatalf("%d observations, want one per day (4)", n)
	}
}

// A rule only notifies the channels it names; with for 1 a single breach
// opens it.
func TestAlertRuleNotifiesOnlyItsChannels(t *testing.T) {
	pd := pagerdutytest.New(t, routingKey)
	f := newFixture(t, options{pagerduty: pd, rules: []rules.Rule{{Name: "psi", Metric: "model.drift_psi_max", Comparator: ">=",
		Threshold: 0.05, For: 1, Severity: "warning", Channels: []string{rules.ChannelEmail}}}})
	eventingtest.Deliver(t, f.router, monitored(t, "scheduled__1", "2026-11-02", 0, "ok").Message(), eventing.Handled)
	if f.mail.count() != 1 || len(pd.Requests()) != 0 {
		t.Fatalf("%d emails, %d PagerDuty requests; want the email only", f.mail.count(), len(pd.Requests()))
	}
}

// A model's drift is alerted once per model per day, to the admins, the
// webhooks and PagerDuty; while its alert is open, a later day's drift
// continues the same incident; the monitoring run that finds the drift
// below the alert band resolves it; a drift after that is a new incident.
// The monitoring email goes out only on an eventful day.
func TestDriftAlertedOncePerModelPerDay(t *testing.T) {
	pd := pagerdutytest.New(t, routingKey)
	slack := newHook(t, 200)
	f := newFixture(t, options{pagerduty: pd, webhooks: "slack={slack}/x", hooks: map[string]*hookServer{"slack": slack}})
	deliver := func(ev eventing.Event) { eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled) }

	deliver(drifted(t, "2026-11-02"))
	deliver(drifted(t, "2026-11-02"))
	deliver(drifted(t, "2026-11-03"))
	deliver(monitored(t, "scheduled__3", "2026-11-03", 0, "alert"))
	if got := accepted(pd); len(got) != 1 || got["trigger cmmsflow/drift/v7/2026-11-02"] != 1 {
		t.Fatalf("PagerDuty %v, want one trigger", got)
	}
	e := pd.Requests()[0].Event
	if e.Payload.Severity != "error" || !strings.Contains(e.Payload.Summary, "Model v7 drifted on 2026-11-02: PSI of age 0.4100 (alert at 0.25); 2 inputs drifted") {
		t.Errorf("drift trigger %+v", e.Payload)
	}
	if n := f.count(`SELECT count(*) FROM alerts WHERE rule = 'drift:v7' AND kind = 'drift'`); n != 1 || len(slack.received()) != 1 {
		t.Fatalf("%d drift alerts, %d slack posts; want 1 each", n, len(slack.received()))
	}
	if n := len(f.rows("kind = $1", email.KindModelMonitored)); n != 1 {
		t.Fatalf("%d monitoring emails on a drifting day, want 1", n)
	}

	deliver(monitored(t, "scheduled__4", "2026-11-04", 0, "ok"))
	deliver(monitored(t, "manual__4", "2026-11-04", 0, "warn"))
	if in := pd.Incident("cmmsflow/drift/v7/2026-11-02"); in.Open || in.Triggers != 1 || in.Resolves != 1 {
		t.Fatalf("incident %+v, want resolved once", in)
	}
	if n := len(f.rows("kind = $1", email.KindModelMonitored)); n != 2 {
		t.Fatalf("%d monitoring emails, want the drift day's and the warn run's (the quiet run sends none)", n)
	}
	deliver(drifted(t, "2026-11-05"))
	if got := accepted(pd); len(got) != 3 || got["trigger cmmsflow/drift/v7/2026-11-05"] != 1 {
		t.Fatalf("PagerDuty %v, want a new incident for the new drift", got)
	}
	var emails int
	for _, r := range f.rows("kind IN ($1, $2)", email.KindIncident, email.KindIncidentResolved) {
		if r.Channel == "email" {
			emails++
		}
	}
	if emails != 3 {
		t.Fatalf("%d drift emails, want trigger, resolve, trigger", emails)
	}
}

// A monitoring run without model_version or a valid date is dead-lettered.
func TestModelMonitoredWithoutDateIsDeadLettered(t *testing.T) {
	f := newFixture(t, options{})
	ev := eventingtest.Event(t, events.ModelMonitored, "scheduled__1", events.ModelMonitoring,
		&eventsv1.ModelMonitored{ModelVersion: "v7", SnapshotDate: "yesterday"})
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.DeadLettered)
	var reason string
	if err := f.pool.QueryRow(t.Context(), `SELECT reason FROM dead_letters`).Scan(&reason); err != nil || !strings.Contains(reason, `snapshot_date "yesterday"`) {
		t.Fatalf("dead letter %q (%v)", reason, err)
	}
}
