package compat

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// etlFailedAtDeployer triggers an ETL run through the Airflow API and plays
// its steps to a failure of the deployer, with the steps' outputs in the
// outbox.
func (f *fixture) etlFailedAtDeployer(t *testing.T, runID string) {
	t.Helper()
	if r := f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"dag_run_id": runID}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, runID)
	for _, step := range []string{events.Extractor, events.Featurejob, events.Trainer} {
		f.deliverStep(t, events.StepStarted, runID, etl, &eventsv1.StepStarted{Step: step})
		f.deliverStep(t, events.StepSucceeded, runID, etl, &eventsv1.StepSucceeded{Step: step})
	}
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.RawExtracted, runID, etl, &eventsv1.RawExtracted{SnapshotDate: "2026-11-01"}))
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.FeaturesBuilt, runID, etl, &eventsv1.FeaturesBuilt{SnapshotDate: "2026-11-01"}))
	eventingtest.Emit(t, f.pool, eventingtest.Event(t, events.ModelTrained, runID, etl, &eventsv1.ModelTrained{ModelVersion: "v1", Promoted: true}))
	f.deliverStep(t, events.StepStarted, runID, etl, &eventsv1.StepStarted{Step: events.Deployer})
	f.deliverStep(t, events.StepFailed, runID, etl, &eventsv1.StepFailed{Step: events.Deployer, Error: "boom"})
}

func (f *fixture) snapshot(t *testing.T) string {
	t.Helper()
	return pgtest.Snapshot(t, f.pool, "runs", "steps", "outbox")
}

// taskIDs lists the task_id of a collection's task_instances.
func taskIDs(t *testing.T, r response) string {
	t.Helper()
	var ids []string
	for _, x := range r.json(t)["task_instances"].([]any) {
		ids = append(ids, x.(map[string]any)["task_id"].(string))
	}
	return strings.Join(ids, ",")
}

func TestClearTaskInstances(t *testing.T) {
	f := newFixture(t)
	f.etlFailedAtDeployer(t, "etl_1")
	const path = "/dags/" + etl + "/clearTaskInstances"
	before := f.snapshot(t)

	// dry_run defaults to true: the failed task and the one after it.
	r := f.airflow(t, "POST", path, adminToken, map[string]any{"dag_run_id": "etl_1"})
	if r.status != 200 || taskIDs(t, r) != "deployer,notifier" {
		t.Fatalf("dry run: %d %s", r.status, r.raw)
	}
	ref := r.json(t)["task_instances"].([]any)[0].(map[string]any)
	if ref["dag_id"] != etl || ref["dag_run_id"] != "etl_1" || ref["execution_date"] == "" {
		t.Fatalf("reference %v", ref)
	}
	if f.snapshot(t) != before {
		t.Fatal("a dry run changed the database")
	}

	bad := []struct {
		name string
		path string
		body map[string]any
		tok  string
		want int
	}{
		{"no dag_run_id", path, map[string]any{"dry_run": false}, adminToken, 400},
		{"date range", path, map[string]any{"dag_run_id": "etl_1", "start_date": "2026-01-01T00:00:00Z", "dry_run": false}, adminToken, 400},
		{"past runs", path, map[string]any{"dag_run_id": "etl_1", "include_past": true, "dry_run": false}, adminToken, 400},
		{"only running", path, map[string]any{"dag_run_id": "etl_1", "only_running": true, "dry_run": false}, adminToken, 400},
		{"no run reset", path, map[string]any{"dag_run_id": "etl_1", "reset_dag_runs": false, "dry_run": false}, adminToken, 400},
		{"unknown task", path, map[string]any{"dag_run_id": "etl_1", "task_ids": []string{"nope"}, "dry_run": false}, adminToken, 400},
		{"a task without the ones after it that ran", path, map[string]any{"dag_run_id": "etl_1", "task_ids": []string{"featurejob"},
			"only_failed": false, "dry_run": false}, adminToken, 400},
		{"an earlier task failed", path, map[string]any{"dag_run_id": "etl_1", "task_ids": []string{"notifier"}, "dry_run": false}, adminToken, 409},
		{"unknown run", path, map[string]any{"dag_run_id": "nope", "dry_run": false}, adminToken, 404},
		{"unknown DAG", "/dags/nope/clearTaskInstances", map[string]any{"dag_run_id": "etl_1", "dry_run": false}, adminToken, 404},
		{"another DAG's run", "/dags/" + pm + "/clearTaskInstances", map[string]any{"dag_run_id": "etl_1", "dry_run": false}, adminToken, 404},
		{"viewer", path, map[string]any{"dag_run_id": "etl_1", "dry_run": false}, viewerToken, 403},
	}
	for _, c := range bad {
		if r := f.airflow(t, "POST", c.path, c.tok, c.body); r.status != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, r.status, c.want, r.raw)
		}
	}
	if r := f.airflow(t, "POST", path, adminToken, map[string]any{"dag_run_id": "etl_1", "task_ids": []string{"nope"}}); !strings.Contains(string(r.raw), "extractor, featurejob, trainer, deployer, notifier") {
		t.Errorf("an unknown task's problem does not name the tasks: %s", r.raw)
	}
	if f.snapshot(t) != before {
		t.Fatal("a refused clear changed the database")
	}

	// Clearing the failed task: the run runs again from it.
	r = f.airflow(t, "POST", path, adminToken, map[string]any{"dag_run_id": "etl_1", "task_ids": []string{"deployer"}, "dry_run": false})
	if r.status != 200 || taskIDs(t, r) != "deployer,notifier" {
		t.Fatalf("clear: %d %s", r.status, r.raw)
	}
	if run := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1", viewerToken, nil).json(t); run["state"] != "running" || run["end_date"] != nil {
		t.Fatalf("cleared run: %v", run)
	}
	if n := eventingtest.Count(t, f.pool, events.ModelTrained, "etl_1"); n != 2 {
		t.Fatalf("%d model.trained events, want the trainer's and its copy", n)
	}
	f.deliverStep(t, events.StepStarted, "etl_1", etl, &eventsv1.StepStarted{Step: events.Deployer})
	tis := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1/taskInstances", viewerToken, nil).json(t)["task_instances"].([]any)
	for i, want := range []float64{1, 1, 1, 2, 0} {
		if ti := tis[i].(map[string]any); ti["try_number"] != want {
			t.Errorf("%s: try_number %v, want %v", ti["task_id"], ti["try_number"], want)
		}
	}
	if ti := tis[3].(map[string]any); ti["state"] != "running" {
		t.Errorf("deployer: %v", ti)
	}
	// A running run is not cleared, whatever is selected.
	if r := f.airflow(t, "POST", path, adminToken, map[string]any{"dag_run_id": "etl_1"}); r.status != 409 {
		t.Fatalf("clear a running run: %d %s", r.status, r.raw)
	}
}

// Nothing failed: only_failed (the default) selects nothing and nothing
// changes, as in Airflow.
func TestClearTaskInstancesOfASuccessfulRun(t *testing.T) {
	f := newFixture(t)
	f.successfulPMRun(t, "pm_1")
	before := f.snapshot(t)
	r := f.airflow(t, "POST", "/dags/"+pm+"/clearTaskInstances", adminToken, map[string]any{"dag_run_id": "pm_1", "dry_run": false})
	if r.status != 200 || taskIDs(t, r) != "" {
		t.Fatalf("clear: %d %s", r.status, r.raw)
	}
	if f.snapshot(t) != before {
		t.Fatal("clearing nothing changed the database")
	}
}

func (f *fixture) successfulPMRun(t *testing.T, runID string) {
	t.Helper()
	if r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"dag_run_id": runID}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, runID)
	for _, step := range []string{events.Pmgen, events.Notifier} {
		f.deliverStep(t, events.StepStarted, runID, pm, &eventsv1.StepStarted{Step: step})
		f.deliverStep(t, events.StepSucceeded, runID, pm, &eventsv1.StepSucceeded{Step: step})
	}
}

// Clearing a DAG run clears all its tasks: it runs again from the first.
func TestClearDagRun(t *testing.T) {
	f := newFixture(t)
	f.successfulPMRun(t, "pm_1")
	const path = "/dags/" + pm + "/dagRuns/pm_1/clear"
	before := f.snapshot(t)

	r := f.airflow(t, "POST", path, adminToken, map[string]any{}) // dry_run defaults to true
	if r.status != 200 || taskIDs(t, r) != "pmgen,notifier" || r.json(t)["total_entries"] != float64(2) {
		t.Fatalf("dry run: %d %s", r.status, r.raw)
	}
	for _, c := range []struct {
		name, path, tok string
		want            int
	}{
		{"unknown run", "/dags/" + pm + "/dagRuns/nope/clear", adminToken, 404},
		{"another DAG's run", "/dags/" + etl + "/dagRuns/pm_1/clear", adminToken, 404},
		{"viewer", path, viewerToken, 403},
	} {
		if r := f.airflow(t, "POST", c.path, c.tok, map[string]any{"dry_run": false}); r.status != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, r.status, c.want, r.raw)
		}
	}
	if f.snapshot(t) != before {
		t.Fatal("a dry run or a refused clear changed the database")
	}

	r = f.airflow(t, "POST", path, adminToken, map[string]any{"dry_run": false})
	if run := r.json(t); r.status != 200 || run["state"] != "running" || run["dag_run_id"] != "pm_1" || run["end_date"] != nil {
		t.Fatalf("clear: %d %s", r.status, r.raw)
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, "pm_1"); n != 2 {
		t.Fatalf("%d run-started events, want the first and the clear's", n)
	}
	if r := f.airflow(t, "POST", path, adminToken, map[string]any{"dry_run": false}); r.status != 409 {
		t.Fatalf("clear a running run: %d %s", r.status, r.raw)
	}
}
