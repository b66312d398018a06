package notify_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

const mlRun = "manual__2026-11-29T02:00:00+00:00"

func modelDeployed(t *testing.T, p *eventsv1.ModelDeployed) eventing.Event {
	t.Helper()
	return eventingtest.Event(t, events.ModelDeployed, mlRun, events.ETLMLTraining, p)
}

func promoted() *eventsv1.ModelDeployed {
	return &eventsv1.ModelDeployed{
		ModelVersion: "v20261129-0123456789", Promoted: true, Endpoint: "http://127.0.0.1:8085/v1/models/failure-risk:predict",
		ScoredAssets: 120, RiskLevels: map[string]int32{"low": 80, "medium": 25, "high": 12, "critical": 3},
		Metrics: map[string]float64{
			"roc_auc": 0.83456, "pr_auc": 0.41234, "brier": 0.112, "ece": 0.0213, "holdout_rows": 480, "holdout_positives": 37,
			"train_seconds": 1.5, "champion_roc_auc": 0.8012, "champion_pr_auc": 0.39, "champion_brier": 0.118,
		},
		GateReason: "holdout ROC AUC 0.8346 >= champion v20261122-aaaaaaaaaa's 0.8012 − margin 0.0050 on the same 480 rows",
	}
}

func TestModelDeployedEmailsAdminsOnce(t *testing.T) {
	slack, generic := newHook(t, 200), newHook(t, 204)
	f := newFixture(t, options{webhooks: "slack={slack}/services/T/B/secret,json={generic}/hook",
		hooks: map[string]*hookServer{"slack": slack, "generic": generic}})
	ev := modelDeployed(t, promoted())

	// Three deliveries of the same event, as Pub/Sub push requests.
	var outcomes []string
	for i := range 3 {
		code, body := f.push(ev, fmt.Sprint("m", i))
		if code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
		outcomes = append(outcomes, body)
	}
	if want := `[{"outcome":"handled"} {"outcome":"duplicate"} {"outcome":"duplicate"}]`; fmt.Sprint(outcomes) != want {
		t.Fatalf("outcomes %v, want %s", outcomes, want)
	}

	files := f.outboxFiles()
	k := mlRun + ":email:admins:" + email.KindModelDeployed
	m, ok := files[email.FileName(k)]
	if len(files) != 1 || f.mail.count() != 1 || !ok {
		t.Fatalf("outbox %v (%d sends), want the model email once", files, f.mail.count())
	}
	const subject = "[cmmsflow] Failure-risk model v20261129-0123456789: promoted — 120 assets scored"
	if fmt.Sprint(m.to) != "[ops@fleet.test chief@fleet.test]" || m.subject != subject {
		t.Errorf("email to %v subject %q", m.to, m.subject)
	}
	// The text as sent (the outbox file holds it quoted-printable).
	r := f.row(k)
	if r.Kind != email.KindModelDeployed || r.Status != "sent" || r.Subject != subject {
		t.Errorf("row %+v", r)
	}
	contains(t, "email text", m.text, "Failure-risk model training run "+mlRun, "Gate decision: PROMOTED")
	contains(t, "text", r.Body, "Failure-risk model training run "+mlRun,
		"Gate decision: PROMOTED", "Reason: holdout ROC AUC 0.8346 >= champion v20261122-aaaaaaaaaa's 0.8012",
		"Model serving:   v20261129-0123456789", "Endpoint:        http://127.0.0.1:8085/v1/models/failure-risk:predict",
		"(480 rows, 37 positive)",
		"ROC AUC                        0.8346     0.8012", "PR AUC                         0.4123     0.3900",
		"Brier score                    0.1120     0.1180", "Calibration error (ECE)        0.0213          —",
		"Assets scored: 120", "low        80", "medium     25", "high       12", "critical   3",
		"pipeline etl_ml_training · run "+mlRun)
	lacks(t, "text", r.Body, "KEPT CHAMPION", "train_seconds", "1.5")
	contains(t, "html", m.html, "<!DOCTYPE html>", "<strong>Promoted</strong>", "v20261129-0123456789", "0.8346", "0.8012",
		"Champion</th>", "Assets by risk level", ">critical<", ">3<", "480 rows, 37 positive")

	// Webhooks: once each.
	if s, g := slack.received(), generic.received(); len(s) != 1 || len(g) != 1 {
		t.Fatalf("webhook posts: slack %d, generic %d, want 1 each", len(s), len(g))
	}
	contains(t, "slack payload", string(slack.received()[0]), `"text":"`+subject+`"`, "ROC AUC", "0.8346 (champion 0.8012)")
	var g map[string]any
	if err := json.Unmarshal(generic.received()[0], &g); err != nil || g["kind"] != email.KindModelDeployed || g["run_id"] != mlRun {
		t.Fatalf("generic payload %s (%v)", generic.received()[0], err)
	}
	data := g["data"].(map[string]any)
	if data["model_version"] != "v20261129-0123456789" || data["promoted"] != true || data["scored_assets"] != 120.0 ||
		data["risk_levels"].(map[string]any)["critical"] != 3.0 || data["metrics"].(map[string]any)["roc_auc"] != 0.83456 {
		t.Errorf("generic payload data %v", data)
	}

	// The step's figures, reported once.
	figs := f.succeeded()
	want := map[string]float64{"notifications_written": 0, "emails_sent": 1, "webhooks_sent": 2, "failures": 0}
	if len(figs) != 1 || fmt.Sprint(figs[0]) != fmt.Sprint(want) {
		t.Errorf("step figures %v, want one report of %v", figs, want)
	}

	// The run's event published again under a new id sends nothing.
	eventingtest.Deliver(t, f.router, modelDeployed(t, promoted()).Message(), eventing.Handled)
	if f.mail.count() != 1 || len(slack.received()) != 1 || len(generic.received()) != 1 {
		t.Fatalf("a second event for the run sent again: %d emails, %d slack, %d generic",
			f.mail.count(), len(slack.received()), len(generic.received()))
	}
	if n := f.count(`SELECT count(*) FROM notifications`); n != 3 {
		t.Fatalf("%d notifications, want 3 (1 email, 2 webhook)", n)
	}
}

func TestModelDeployedKeptChampion(t *testing.T) {
	f := newFixture(t, options{})
	p := promoted()
	p.Promoted = false
	p.ModelVersion = "v20261122-aaaaaaaaaa" // the champion, which scored the fleet
	p.GateReason = "holdout ROC AUC 0.7900 < champion v20261122-aaaaaaaaaa's 0.8012 − margin 0.0050 on the same 480 rows"
	p.Metrics["roc_auc"] = 0.79
	eventingtest.Deliver(t, f.router, modelDeployed(t, p).Message(), eventing.Handled)
	files := f.outboxFiles()
	m, ok := files[email.FileName(mlRun+":email:admins:"+email.KindModelDeployed)]
	if len(files) != 1 || !ok {
		t.Fatalf("outbox %v", files)
	}
	if m.subject != "[cmmsflow] Failure-risk model v20261122-aaaaaaaaaa: kept champion — 120 assets scored" {
		t.Errorf("subject %q", m.subject)
	}
	text := f.row(mlRun + ":email:admins:" + email.KindModelDeployed).Body
	contains(t, "text", text, "Gate decision: KEPT CHAMPION — the model trained in this run was not promoted.",
		"Reason: holdout ROC AUC 0.7900 < champion", "Model serving:   v20261122-aaaaaaaaaa", "ROC AUC                        0.7900     0.8012")
	lacks(t, "text", text, "PROMOTED")
	contains(t, "html", m.html, "<strong>Kept champion</strong>", "0.7900 &lt; champion")
	lacks(t, "html", m.html, "<strong>Promoted</strong>")

	// The first model of all: no champion, no endpoint (nothing deployed
	// remotely), one asset, a metric missing.
	run2 := "manual__2026-11-30T02:00:00+00:00"
	ev := eventingtest.Event(t, events.ModelDeployed, run2, events.ETLMLTraining,
		&eventsv1.ModelDeployed{ModelVersion: "v20261130-bbbbbbbbbb", Promoted: true, ScoredAssets: 1,
			RiskLevels: map[string]int32{"high": 1}, Metrics: map[string]float64{"roc_auc": 0.9, "brier": 0.05},
			GateReason: "no champion yet: the first model is promoted"})
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	first := f.outboxFiles()[email.FileName(run2+":email:admins:"+email.KindModelDeployed)]
	if first.subject != "[cmmsflow] Failure-risk model v20261130-bbbbbbbbbb: promoted — 1 asset scored" {
		t.Errorf("subject %q", first.subject)
	}
	firstText := f.row(run2 + ":email:admins:" + email.KindModelDeployed).Body
	contains(t, "first text", firstText, "ROC AUC                    0.9000", "Brier score                0.0500",
		"low        0", "high       1", "critical   0")
	lacks(t, "first text", firstText, "champion\n", "PR AUC", "Endpoint:", "positive")
	lacks(t, "first html", first.html, "Champion</th>", "Endpoint")
}

func TestModelDeployedWithoutVersionIsDeadLettered(t *testing.T) {
	f := newFixture(t, options{})
	p := promoted()
	p.ModelVersion = ""
	eventingtest.Deliver(t, f.router, modelDeployed(t, p).Message(), eventing.DeadLettered)
	if n := f.count(`SELECT count(*) FROM dead_letters WHERE consumer = 'notifier' AND reason LIKE '%without model_version%'`); n != 1 {
		t.Fatalf("%d dead letters", n)
	}
	if f.mail.count() != 0 || f.count(`SELECT count(*) FROM notifications`) != 0 {
		t.Fatal("a model.deployed without a version sent something")
	}
}

// A scoring's metrics are observed for its run's logical date.
func TestScoringRuleObservesTheLogicalDate(t *testing.T) {
	f := newFixture(t, options{rules: []rules.Rule{{Name: "critical", Metric: "model.critical_risk_vehicles", Comparator: ">=",
		Threshold: 3, For: 1, Severity: "error", Channels: []string{rules.ChannelEmail}}}})
	f.exec(`INSERT INTO pipelines (id) VALUES ('etl_ml_training') ON CONFLICT DO NOTHING`)
	f.exec(`INSERT INTO runs (run_id, pipeline, state, source, logical_date) VALUES ($1, 'etl_ml_training', 'running', 'manual', '2026-11-29T02:00:00Z')`, mlRun)
	eventingtest.Deliver(t, f.router, modelDeployed(t, promoted()).Message(), eventing.Handled)
	if n := f.count(`SELECT count(*) FROM alerts WHERE dedup_key = 'cmmsflow/rule/critical/2026-11-29' AND value = 3`); n != 1 {
		t.Fatal("no alert for the run's logical date")
	}
	if r := f.row("cmmsflow/rule/critical/2026-11-29:trigger:email"); r.Kind != email.KindIncident || r.Status != notify.StatusSent {
		t.Fatalf("alert email %+v", r)
	}
}
