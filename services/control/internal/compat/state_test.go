package compat

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// taskStates is the DAG run's task states by task, as the Airflow API lists them.
func (f *fixture) taskStates(t *testing.T, dagID, runID string) map[string]any {
	t.Helper()
	r := f.airflow(t, "GET", "/dags/"+dagID+"/dagRuns/"+runID+"/taskInstances", adminToken, nil)
	out := map[string]any{}
	for _, x := range r.json(t)["task_instances"].([]any) {
		ti := x.(map[string]any)
		out[ti["task_id"].(string)] = ti["state"]
	}
	return out
}

// PATCH dagRun marks a running DAG run failed (its running task failed, the
// rest skipped), then queues it again; the old DAG id works too.
func TestPatchDagRunState(t *testing.T) {
	f := newFixture(t)
	if r := f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"dag_run_id": "etl_1"}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, "etl_1")
	f.deliverStep(t, events.StepStarted, "etl_1", etl, &eventsv1.StepStarted{Step: events.Extractor})

	r := f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1", adminToken, map[string]any{"state": "failed"})
	if r.status != 200 || r.json(t)["state"] != "failed" || r.json(t)["dag_run_id"] != "etl_1" {
		t.Fatalf("mark failed: %d %s", r.status, r.raw)
	}
	if got := f.taskStates(t, etl, "etl_1"); got[events.Extractor] != "failed" || got[events.Featurejob] != "skipped" {
		t.Fatalf("task states %v", got)
	}
	// Queued again: every task cleared, and (the slot free) started.
	r = f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1", adminToken, map[string]any{"state": "queued"})
	if r.status != 200 || r.json(t)["state"] != "running" {
		t.Fatalf("queue again: %d %s", r.status, r.raw)
	}
	r = f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1", adminToken, map[string]any{"state": "queued"})
	if r.status != 409 || !strings.Contains(r.json(t)["detail"].(string), "only a finished run") {
		t.Fatalf("queue a running run: %d %s", r.status, r.raw)
	}
	r = f.airflow(t, "PATCH", "/dags/preventive_maintenance_generator/dagRuns/etl_1", adminToken, map[string]any{"state": "success"})
	if r.status != 404 {
		t.Fatalf("a run of another DAG: %d %s", r.status, r.raw)
	}
	r = f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1", viewerToken, map[string]any{"state": "success"})
	if r.status != 403 {
		t.Fatalf("viewer: %d %s", r.status, r.raw)
	}
	r = f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1", adminToken, map[string]any{"state": "success"})
	if r.status != 200 || r.json(t)["state"] != "success" || f.taskStates(t, etl, "etl_1")[events.Notifier] != "success" {
		t.Fatalf("mark success: %d %s", r.status, r.raw)
	}
}

// PATCH taskInstance is a dry run unless told otherwise; a task of a
// finished DAG run takes the state and the run follows.
func TestPatchTaskInstanceState(t *testing.T) {
	f := newFixture(t)
	f.etlFailedAtDeployer(t, "etl_1")
	path := "/dags/" + etl + "/dagRuns/etl_1/taskInstances/" + events.Deployer
	before := f.snapshot(t)
	r := f.airflow(t, "PATCH", path, adminToken, map[string]any{"new_state": "success"})
	if ref := r.json(t); r.status != 200 || ref["task_id"] != events.Deployer || ref["dag_run_id"] != "etl_1" || ref["dag_id"] != etl {
		t.Fatalf("dry run: %d %s", r.status, r.raw)
	}
	if f.snapshot(t) != before {
		t.Fatal("a dry run (the default) changed the database")
	}
	for _, step := range []string{events.Deployer, events.Notifier} {
		p := "/dags/" + etl + "/dagRuns/etl_1/taskInstances/" + step
		if r := f.airflow(t, "PATCH", p, adminToken, map[string]any{"new_state": "success", "dry_run": false}); r.status != 200 {
			t.Fatalf("%s success: %d %s", step, r.status, r.raw)
		}
	}
	if r := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1", adminToken, nil); r.json(t)["state"] != "success" {
		t.Fatalf("the DAG run after its tasks were marked success: %s", r.raw)
	}
	if r := f.airflow(t, "PATCH", "/dags/"+etl+"/dagRuns/etl_1/taskInstances/nope", adminToken, map[string]any{"new_state": "failed"}); r.status != 404 {
		t.Fatalf("unknown task: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "PATCH", path, viewerToken, map[string]any{"new_state": "failed"}); r.status != 403 {
		t.Fatalf("viewer: %d %s", r.status, r.raw)
	}
	// A state outside the contract's enum is a 400 naming the valid ones.
	bad := send(t, newRequest(t, "PATCH", f.url+"/api/v1"+path, adminToken, map[string]any{"new_state": "running", "dry_run": false}))
	if bad.status != 400 || !strings.Contains(bad.json(t)["detail"].(string), "success, failed, skipped") {
		t.Fatalf("bad state: %d %s", bad.status, bad.raw)
	}
}

// A task of a running DAG run can be failed, which fails the run; marking
// it success is refused.
func TestPatchTaskInstanceOfARunningRun(t *testing.T) {
	f := newFixture(t)
	if r := f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"dag_run_id": "etl_1"}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, "etl_1")
	path := "/dags/" + etl + "/dagRuns/etl_1/taskInstances/" + events.Extractor
	r := f.airflow(t, "PATCH", path, adminToken, map[string]any{"new_state": "success", "dry_run": false})
	if r.status != 409 || !strings.Contains(r.json(t)["detail"].(string), "only once the run has ended") {
		t.Fatalf("success of a running run's task: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "PATCH", path, adminToken, map[string]any{"new_state": "failed", "dry_run": false}); r.status != 200 {
		t.Fatalf("failed: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1", adminToken, nil); r.json(t)["state"] != "failed" {
		t.Fatalf("the DAG run after its task was marked failed: %s", r.raw)
	}
}
