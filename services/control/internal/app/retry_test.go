package app_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// failedETLRun adds an ETL run that failed at the deployer, with the events
// its steps emitted in the outbox, as the producers left them: the trainer's
// model.trained twice (a redone trainer: the latest is the input).
func (f *fixture) failedETLRun(t *testing.T, runID string) {
	t.Helper()
	f.insertRun(t, runID, events.ETLMLTraining, "failed", time.Now().Add(-time.Hour))
	f.exec(t, `UPDATE runs SET started_at = now() - interval '1 hour', ended_at = now() - interval '50 minutes',
		error = 'deployer: boom', trace_id = 'old' WHERE run_id = $1`, runID)
	f.exec(t, `UPDATE steps SET state = 'success', attempts = 1, started_at = now() - interval '1 hour',
		ended_at = now() - interval '55 minutes', summary = 'done', figures = '{"rows": 3}' WHERE run_id = $1 AND position < 3`, runID)
	f.exec(t, `UPDATE steps SET state = 'failed', attempts = 1, error = 'boom', started_at = now() - interval '51 minutes',
		ended_at = now() - interval '50 minutes' WHERE run_id = $1 AND step = 'deployer'`, runID)
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.RawExtracted, runID, events.ETLMLTraining, &eventsv1.RawExtracted{SnapshotDate: "2026-11-01"}))
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.FeaturesBuilt, runID, events.ETLMLTraining, &eventsv1.FeaturesBuilt{SnapshotDate: "2026-11-01"}))
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.ModelTrained, runID, events.ETLMLTraining, &eventsv1.ModelTrained{ModelVersion: "v0"}))
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.ModelTrained, runID, events.ETLMLTraining, &eventsv1.ModelTrained{ModelVersion: "v1", Promoted: true}))
}

// snapshot is every row a retry may change, as text.
func (f *fixture) snapshot(t *testing.T) string {
	t.Helper()
	return pgtest.Snapshot(t, f.pool, "runs", "steps", "outbox")
}

func (f *fixture) deliverStep(t *testing.T, typ, runID, step string) {
	t.Helper()
	var payload proto.Message = &eventsv1.StepStarted{Step: step}
	if typ == events.StepSucceeded {
		payload = &eventsv1.StepSucceeded{Step: step}
	}
	eventingtest.Deliver(t, f.svc.Router, eventingtest.Event(t, typ, runID, events.ETLMLTraining, payload).Message(), eventing.Handled)
}

func stepsOf(run *controlv1.Run) map[string]*controlv1.Step {
	m := map[string]*controlv1.Step{}
	for _, s := range run.GetSteps() {
		m[s.GetStep()] = s
	}
	return m
}

// A run failed at the deployer, retried from there: a dry run changes
// nothing; the retry resets the deployer and the notifier, sets the run
// running, and re-emits the latest model.trained of the run under a new id;
// the re-run's attempts number on (deployer 2) and the run ends as any run.
func TestRetryRunFromTheFailedStep(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	f.failedETLRun(t, "etl-other")
	before := f.snapshot(t)

	code, body := f.do(t, "POST", "/v1/runs/etl-1:retry", adminToken, map[string]any{"dry_run": true})
	if code != 200 || body["state"] != "running" || body["ended_at"] != nil || body["error"] != "" {
		t.Fatalf("dry run: %d %v", code, body)
	}
	if got := body["steps"].([]any)[3].(map[string]any); got["state"] != "pending" || got["attempts"] != float64(1) {
		t.Fatalf("dry run's deployer: %v", got)
	}
	if f.snapshot(t) != before {
		t.Fatal("a dry run changed the database")
	}

	run, err := f.client.RetryRun(rpc(t, adminToken), &controlv1.RetryRunRequest{RunId: "etl-1"})
	if err != nil {
		t.Fatal(err)
	}
	if run.GetState() != "running" || run.GetEndedAt() != nil || run.GetError() != "" ||
		time.Since(run.GetStartedAt().AsTime()) > time.Minute {
		t.Fatalf("retried run: %v", run)
	}
	steps := stepsOf(run)
	for _, name := range []string{events.Extractor, events.Featurejob, events.Trainer} {
		if s := steps[name]; s.GetState() != "success" || s.GetAttempts() != 1 || s.GetSummary() != "done" {
			t.Errorf("%s before the retried step changed: %v", name, s)
		}
	}
	if s := steps[events.Deployer]; s.GetState() != "pending" || s.GetAttempts() != 1 || s.GetError() != "" ||
		s.GetStartedAt() != nil || s.GetEndedAt() != nil {
		t.Errorf("deployer not reset: %v", s)
	}
	if s := steps[events.Notifier]; s.GetState() != "pending" || s.GetAttempts() != 0 {
		t.Errorf("notifier: %v", s)
	}

	// The input copy: the latest model.trained, a new id, the same run.
	trained := eventingtest.Events(t, f.pool, events.ModelTrained, "etl-1")
	if len(trained) != 3 {
		t.Fatalf("%d model.trained events of the run, want the 2 emitted and the copy", len(trained))
	}
	orig, cp := trained[1], trained[2]
	var p eventsv1.ModelTrained
	if err := cp.Decode(&p); err != nil || p.GetModelVersion() != "v1" || !p.GetPromoted() {
		t.Fatalf("the copy's payload: %v %v", &p, err)
	}
	if cp.ID() == orig.ID() || cp.RunID != "etl-1" || cp.Pipeline != events.ETLMLTraining || cp.Source() != orig.Source() ||
		cp.TraceID() == orig.TraceID() {
		t.Fatalf("the copy %s (trace %s) of %s (trace %s): want a new id and trace, same run", cp.ID(), cp.TraceID(), orig.ID(), orig.TraceID())
	}
	if n := f.count(t, `SELECT count(*) FROM runs WHERE run_id = 'etl-1' AND trace_id = $1 AND retries = 1`, cp.TraceID()); n != 1 {
		t.Error("the run's trace is not the retry's, or its retries were not counted")
	}
	if n := eventingtest.Count(t, f.pool, "", "etl-other"); n != 4 {
		t.Errorf("another run's outbox changed: %d events", n)
	}

	// The re-run as the steps report it: the deployer's second attempt.
	f.deliverStep(t, events.StepStarted, "etl-1", events.Deployer)
	f.deliverStep(t, events.StepSucceeded, "etl-1", events.Deployer)
	f.deliverStep(t, events.StepStarted, "etl-1", events.Notifier)
	f.deliverStep(t, events.StepSucceeded, "etl-1", events.Notifier)
	run, err = f.client.GetRun(rpc(t, viewerToken), &controlv1.GetRunRequest{RunId: "etl-1"})
	if err != nil {
		t.Fatal(err)
	}
	steps = stepsOf(run)
	if run.GetState() != "success" || steps[events.Deployer].GetAttempts() != 2 || steps[events.Notifier].GetAttempts() != 1 ||
		steps[events.Trainer].GetAttempts() != 1 {
		t.Fatalf("after the re-run: %v", run)
	}
}

// Retrying from the first step rebuilds run-started from the run row: its
// logical date and the pipeline's declared conf keys.
func TestRetryRunFromTheFirstStep(t *testing.T) {
	f := newFixture(t)
	logical := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	f.insertRun(t, "pm-1", events.PreventiveMaintenance, "success", logical)
	f.exec(t, `UPDATE runs SET conf = '{"as_of": "2026-11-29", "note": 7}' WHERE run_id = 'pm-1'`)
	f.exec(t, `UPDATE steps SET state = 'success', attempts = 1 WHERE run_id = 'pm-1'`)

	// A run without a failed step needs the step named.
	_, err := f.client.RetryRun(rpc(t, adminToken), &controlv1.RetryRunRequest{RunId: "pm-1"})
	wantCode(t, err, codes.InvalidArgument)
	run, err := f.client.RetryRun(rpc(t, adminToken), &controlv1.RetryRunRequest{RunId: "pm-1", FromStep: events.Pmgen})
	if err != nil {
		t.Fatal(err)
	}
	if run.GetState() != "running" || stepsOf(run)[events.Pmgen].GetState() != "pending" || stepsOf(run)[events.Pmgen].GetAttempts() != 1 {
		t.Fatalf("retried run: %v", run)
	}
	started := eventingtest.Events(t, f.pool, events.RunStarted, "pm-1")
	if len(started) != 1 || started[0].Pipeline != events.PreventiveMaintenance || started[0].Source() != events.Source(events.Control) {
		t.Fatalf("run-started events: %v", started)
	}
	var p eventsv1.RunStarted
	if err := started[0].Decode(&p); err != nil || !p.GetLogicalDate().AsTime().Equal(logical) ||
		len(p.GetConf()) != 1 || p.GetConf()["as_of"] != "2026-11-29" {
		t.Fatalf("run-started %v (%v): want the run's logical date and as_of only", &p, err)
	}
}

// Bad input gets a clear error and changes nothing.
func TestRetryRunRefusals(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	f.insertRun(t, "running", events.PreventiveMaintenance, "running", time.Now())
	f.insertRun(t, "queued", events.WeeklyKPIReport, "queued", time.Now())
	// A cancelled run whose running step has not ended yet.
	f.insertRun(t, "cancelled", events.ETLMLTraining, "cancelled", time.Now())
	f.exec(t, `UPDATE steps SET state = 'running' WHERE run_id = 'cancelled' AND step = 'extractor'`)
	// A run failed at the trainer whose input (features.built) the outbox no
	// longer keeps.
	f.insertRun(t, "pruned", events.ETLMLTraining, "failed", time.Now())
	f.exec(t, `UPDATE steps SET state = 'success' WHERE run_id = 'pruned' AND position < 2`)
	f.exec(t, `UPDATE steps SET state = 'failed' WHERE run_id = 'pruned' AND step = 'trainer'`)
	// A failed KPI run while another KPI run takes the pipeline's one slot
	// (max_active_runs 1).
	f.insertRun(t, "kpi-failed", events.WeeklyKPIReport, "failed", time.Now().Add(-time.Hour))
	f.exec(t, `UPDATE steps SET state = 'success' WHERE run_id = 'kpi-failed' AND step = 'reporter'`)
	f.exec(t, `UPDATE steps SET state = 'failed' WHERE run_id = 'kpi-failed' AND step = 'notifier'`)
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.ReportGenerated, "kpi-failed", events.WeeklyKPIReport, &eventsv1.ReportGenerated{IsoWeek: "2026-W47"}))
	f.insertRun(t, "kpi-running", events.WeeklyKPIReport, "running", time.Now())
	before := f.snapshot(t)

	for _, c := range []struct {
		name, run, from, token string
		code                   codes.Code
		http                   int
		msg                    string
	}{
		{"unknown step", "etl-1", "nope", adminToken, codes.InvalidArgument, 400, "want one of extractor, featurejob, trainer, deployer, notifier"},
		{"running run", "running", "pmgen", adminToken, codes.Aborted, 409, "is running"},
		{"no free slot", "kpi-failed", "", adminToken, codes.Aborted, 409, "weekly_kpi_report already runs 1 of its max_active_runs 1"},
		{"queued run", "queued", "", adminToken, codes.Aborted, 409, "is queued"},
		{"unknown run", "nope", "", adminToken, codes.NotFound, 404, "not found"},
		{"step still running", "cancelled", "featurejob", adminToken, codes.Aborted, 409, "still running"},
		{"an earlier step failed", "etl-1", "notifier", adminToken, codes.FailedPrecondition, 400, "retry from deployer"},
		{"input no longer kept", "pruned", "", adminToken, codes.FailedPrecondition, 400, "no longer available"},
		{"viewer", "etl-1", "", viewerToken, codes.PermissionDenied, 403, ""},
	} {
		for _, dry := range []bool{false, true} {
			_, err := f.client.RetryRun(rpc(t, c.token), &controlv1.RetryRunRequest{RunId: c.run, FromStep: c.from, DryRun: dry})
			if st := status.Convert(err); st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
				t.Errorf("%s (dry %v): %v, want %s with %q", c.name, dry, err, c.code, c.msg)
			}
			code, body := f.do(t, "POST", "/v1/runs/"+c.run+":retry", c.token, map[string]any{"from_step": c.from, "dry_run": dry})
			if code != c.http {
				t.Errorf("%s (dry %v) over HTTP: %d %v, want %d", c.name, dry, code, body, c.http)
			}
		}
	}
	if f.snapshot(t) != before {
		t.Fatal("a refused retry changed the database")
	}
	// Retrying from the first step needs no stored input.
	if _, err := f.client.RetryRun(rpc(t, adminToken), &controlv1.RetryRunRequest{RunId: "pruned", FromStep: events.Extractor}); err != nil {
		t.Fatalf("retry from the first step: %v", err)
	}
}
