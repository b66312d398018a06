package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// stepStates lists a run's step states in order.
func stepStates(run *controlv1.Run) []string {
	var out []string
	for _, s := range run.GetSteps() {
		out = append(out, s.GetState())
	}
	return out
}

func (f *fixture) getRun(t *testing.T, runID string) *controlv1.Run {
	t.Helper()
	run, err := f.client.GetRun(rpc(t, viewerToken), &controlv1.GetRunRequest{RunId: runID})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// runningETLRun adds an ETL run at work in its feature job, with the
// extractor's output in the outbox, and a second ETL run queued behind it
// (max_active_runs 1).
func (f *fixture) runningETLRun(t *testing.T, runID string) {
	t.Helper()
	f.insertRun(t, runID, events.ETLMLTraining, "running", time.Now().Add(-time.Minute))
	f.exec(t, `UPDATE runs SET started_at = now() WHERE run_id = $1`, runID)
	f.exec(t, `UPDATE steps SET state = 'success', attempts = 1 WHERE run_id = $1 AND step = 'extractor'`, runID)
	f.exec(t, `UPDATE steps SET state = 'running', attempts = 1, started_at = now() WHERE run_id = $1 AND step = 'featurejob'`, runID)
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.RawExtracted, runID, events.ETLMLTraining, &eventsv1.RawExtracted{SnapshotDate: "2026-11-01"}))
	f.insertRun(t, runID+"-next", events.ETLMLTraining, "queued", time.Now())
}

// Marking a running run failed stops it as Airflow's "mark failed" does:
// the step at work failed, the pending ones skipped, the slot taken by the
// queued run; the stopped step's late events change nothing; the run can
// be retried from the stopped step and is not marked by hand any more.
func TestSetRunStateFailedStopsARunningRun(t *testing.T) {
	f := newFixture(t)
	f.runningETLRun(t, "etl-1")
	before := f.snapshot(t)
	dry, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "failed", DryRun: true})
	if err != nil || dry.GetState() != "failed" || f.snapshot(t) != before {
		t.Fatalf("dry run: %v %v, or it changed the database", dry, err)
	}

	code, body := f.do(t, "POST", "/v1/runs/etl-1:setState", adminToken, map[string]any{"state": "failed"})
	if code != 200 || body["state"] != "failed" || body["error"] != "marked failed by ops" || body["state_set_by"] != "ops" || body["ended_at"] == nil {
		t.Fatalf("mark failed: %d %v", code, body)
	}
	run := f.getRun(t, "etl-1")
	if want := []string{"success", "failed", "skipped", "skipped", "skipped"}; !slices.Equal(stepStates(run), want) {
		t.Fatalf("steps %v, want %v", stepStates(run), want)
	}
	if s := run.GetSteps()[1]; s.GetStateSetBy() != "ops" || s.GetError() != "marked failed by ops" || s.GetEndedAt() == nil {
		t.Fatalf("featurejob %v", s)
	}
	if next := f.getRun(t, "etl-1-next"); next.GetState() != "running" {
		t.Fatalf("the queued run is %s: the freed slot was not taken", next.GetState())
	}

	// The feature job's work ended before it saw the run stop: its late
	// success is not projected over the state set by hand.
	f.deliverStep(t, events.StepSucceeded, "etl-1", events.Featurejob)
	if s := f.getRun(t, "etl-1").GetSteps()[1]; s.GetState() != "failed" {
		t.Fatalf("a late step-succeeded overwrote the state set by hand: %v", s)
	}

	f.exec(t, `UPDATE runs SET state = 'success' WHERE run_id = 'etl-1-next'`)
	retried, err := f.client.RetryRun(rpc(t, adminToken), &controlv1.RetryRunRequest{RunId: "etl-1"})
	if err != nil || retried.GetState() != "running" || retried.GetStateSetBy() != "" || retried.GetSteps()[1].GetStateSetBy() != "" {
		t.Fatalf("retry of the run failed by hand: %v %v", retried, err)
	}
}

// Marking a failed run success marks its unsuccessful steps success and
// keeps its end time; marking it success again changes nothing.
func TestSetRunStateSuccessOfAFailedRun(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	ended := f.getRun(t, "etl-1").GetEndedAt().AsTime()
	run, err := f.client.SetRunState(rpc(t, admin2Token), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "success"})
	if err != nil {
		t.Fatal(err)
	}
	if run.GetState() != "success" || run.GetError() != "" || run.GetStateSetBy() != "ops2" || !run.GetEndedAt().AsTime().Equal(ended) {
		t.Fatalf("run %v", run)
	}
	if want := []string{"success", "success", "success", "success", "success"}; !slices.Equal(stepStates(run), want) {
		t.Fatalf("steps %v", stepStates(run))
	}
	steps := stepsOf(run)
	if steps[events.Trainer].GetStateSetBy() != "" || steps[events.Deployer].GetStateSetBy() != "ops2" || steps[events.Deployer].GetError() != "" {
		t.Fatalf("only the steps that had not succeeded are marked: %v", run.GetSteps())
	}
	before := f.snapshot(t)
	if _, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "success"}); err != nil || f.snapshot(t) != before {
		t.Fatalf("success again: %v, or it changed the database", err)
	}
}

// Queuing a finished run again resets it to its first step and waits for a
// free slot: it starts when the run holding the slot is marked success.
func TestSetRunStateQueuedWaitsForASlot(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	f.insertRun(t, "etl-busy", events.ETLMLTraining, "running", time.Now())
	run, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "queued"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pending", "pending", "pending", "pending", "pending"}; run.GetState() != "queued" || run.GetError() != "" ||
		run.GetEndedAt() != nil || !slices.Equal(stepStates(run), want) || run.GetSteps()[3].GetAttempts() != 1 {
		t.Fatalf("queued run %v", run)
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, "etl-1"); n != 0 {
		t.Fatal("the queued run started while the pipeline's slot was taken")
	}
	if _, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-busy", State: "success"}); err != nil {
		t.Fatal(err)
	}
	if run := f.getRun(t, "etl-1"); run.GetState() != "running" {
		t.Fatalf("after the slot freed the run is %s", run.GetState())
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, "etl-1"); n != 1 ||
		f.count(t, `SELECT retries FROM runs WHERE run_id = 'etl-1'`) != 1 {
		t.Fatal("the re-queued run did not start from its first step as a retry")
	}
}

// A step of a finished run takes the state set, and the run follows its
// steps; in a running run a step can only be failed, which fails the run.
func TestSetStepState(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	set := func(run, step, state string) *controlv1.Run {
		t.Helper()
		r, err := f.client.SetStepState(rpc(t, adminToken), &controlv1.SetStepStateRequest{RunId: run, Step: step, State: state})
		if err != nil {
			t.Fatalf("%s %s → %s: %v", run, step, state, err)
		}
		return r
	}
	// The deployer success: the notifier never ran, so the run stays failed.
	run := set("etl-1", events.Deployer, "success")
	if run.GetState() != "failed" || run.GetError() != "notifier: not performed" || stepsOf(run)[events.Deployer].GetStateSetBy() != "ops" {
		t.Fatalf("after deployer success: %v", run)
	}
	run = set("etl-1", events.Notifier, "skipped")
	if run.GetState() != "success" || run.GetError() != "" || run.GetStateSetBy() != "ops" {
		t.Fatalf("after notifier skipped: %v", run)
	}
	run = set("etl-1", events.Trainer, "failed")
	if run.GetState() != "failed" || run.GetError() != "trainer: marked failed by ops" {
		t.Fatalf("after trainer failed: %v", run)
	}

	f.runningETLRun(t, "etl-2")
	_, err := f.client.SetStepState(rpc(t, adminToken), &controlv1.SetStepStateRequest{RunId: "etl-2", Step: events.Featurejob, State: "success"})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "mark it failed, or cancel the run") {
		t.Fatalf("success of a running run's step: %v", err)
	}
	run = set("etl-2", events.Featurejob, "failed")
	if want := []string{"success", "failed", "skipped", "skipped", "skipped"}; run.GetState() != "failed" ||
		run.GetError() != "featurejob: marked failed by ops" || !slices.Equal(stepStates(run), want) {
		t.Fatalf("after featurejob failed: %v", run)
	}
	if next := f.getRun(t, "etl-2-next"); next.GetState() != "running" {
		t.Fatalf("the queued run is %s: the freed slot was not taken", next.GetState())
	}
}

// Bad input gets a clear error and changes nothing.
func TestSetStateRefusals(t *testing.T) {
	f := newFixture(t)
	f.failedETLRun(t, "etl-1")
	f.insertRun(t, "running", events.PreventiveMaintenance, "running", time.Now())
	before := f.snapshot(t)
	for _, c := range []struct {
		name, path, token string
		body              map[string]any
		http              int
		msg               string
	}{
		{"bad run state", "/v1/runs/etl-1:setState", adminToken, map[string]any{"state": "running"}, 400, "not one of success, failed, queued"},
		{"queue a running run", "/v1/runs/running:setState", adminToken, map[string]any{"state": "queued"}, 409, "only a finished run"},
		{"unknown run", "/v1/runs/nope:setState", adminToken, map[string]any{"state": "failed"}, 404, "not found"},
		{"viewer", "/v1/runs/etl-1:setState", viewerToken, map[string]any{"state": "failed"}, 403, ""},
		{"bad step state", "/v1/runs/etl-1/steps/deployer:setState", adminToken, map[string]any{"state": "running"}, 400, "not one of success, failed, skipped"},
		{"unknown step", "/v1/runs/etl-1/steps/nope:setState", adminToken, map[string]any{"state": "failed"}, 400,
			"want one of extractor, featurejob, trainer, deployer, notifier"},
		{"skip a running run's step", "/v1/runs/running/steps/pmgen:setState", adminToken, map[string]any{"state": "skipped"}, 400, "only once the run has ended"},
	} {
		for _, dry := range []bool{false, true} {
			c.body["dry_run"] = dry
			code, body := f.do(t, "POST", c.path, c.token, c.body)
			if msg, _ := body["message"].(string); code != c.http || !strings.Contains(msg, c.msg) {
				t.Errorf("%s (dry %v): %d %v, want %d with %q", c.name, dry, code, body, c.http, c.msg)
			}
		}
	}
	if f.snapshot(t) != before {
		t.Fatal("a refused change changed the database")
	}
}
