package compat

import (
	"context"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/api"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
)

const (
	etl = events.ETLMLTraining
	pm  = events.PreventiveMaintenance
	kpi = events.WeeklyKPIReport
)

var manualRunID = regexp.MustCompile(`^manual__[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?\+00:00$`)

func TestDAGs(t *testing.T) {
	f := newFixture(t)

	all := f.airflow(t, "GET", "/dags", viewerToken, nil).json(t)
	dags := float64(len(events.Pipelines))
	if all["total_entries"] != dags || len(all["dags"].([]any)) != len(events.Pipelines) {
		t.Fatalf("GET /dags: %v", all)
	}
	first := all["dags"].([]any)[0].(map[string]any)
	if first["dag_id"] != etl || first["is_paused"] != false || first["is_active"] != true {
		t.Fatalf("first DAG (by dag_id): %v", first)
	}
	if si := first["schedule_interval"].(map[string]any); si["__type"] != "CronExpression" || si["value"] == "" {
		t.Fatalf("schedule_interval: %v", si)
	}
	if first["next_dagrun"] == nil {
		t.Fatal("next_dagrun missing")
	}
	if first["max_active_runs"] != float64(1) {
		t.Fatalf("max_active_runs %v, want the cron table's 1", first["max_active_runs"])
	}

	// By dag_id: etl_ml_training, model_monitoring, preventive_maintenance, …
	pg := f.airflow(t, "GET", "/dags?limit=1&offset=2&only_active=true", viewerToken, nil).json(t)
	if page := pg["dags"].([]any); pg["total_entries"] != dags || len(page) != 1 || page[0].(map[string]any)["dag_id"] != pm {
		t.Fatalf("page 2 of 1: %v", pg)
	}
	if got := f.airflow(t, "GET", "/dags?offset=5", viewerToken, nil).json(t); len(got["dags"].([]any)) != 0 || got["total_entries"] != dags {
		t.Fatalf("past the end: %v", got)
	}
	if got := f.airflow(t, "GET", "/dags?dag_id_pattern=KPI", viewerToken, nil).json(t); got["total_entries"] != float64(1) {
		t.Fatalf("dag_id_pattern: %v", got)
	}

	// Pause through PATCH (admin), with and without update_mask.
	if r := f.airflow(t, "PATCH", "/dags/"+kpi+"?update_mask=is_paused", adminToken, map[string]any{"is_paused": true}); r.status != 200 || r.json(t)["is_paused"] != true {
		t.Fatalf("PATCH pause: %d %s", r.status, r.raw)
	}
	if f.count(t, `SELECT count(*) FROM pipelines WHERE id = $1 AND paused`, kpi) != 1 {
		t.Fatal("PATCH did not pause the pipeline")
	}
	paused := f.airflow(t, "GET", "/dags?paused=true", viewerToken, nil).json(t)
	if paused["total_entries"] != float64(1) || paused["dags"].([]any)[0].(map[string]any)["dag_id"] != kpi {
		t.Fatalf("paused=true: %v", paused)
	}
	if got := f.airflow(t, "GET", "/dags?paused=false", viewerToken, nil).json(t); got["total_entries"] != dags-1 {
		t.Fatalf("paused=false: %v", got)
	}
	if r := f.airflow(t, "PATCH", "/dags/"+kpi, adminToken, map[string]any{"is_paused": false}); r.status != 200 || r.json(t)["is_paused"] != false {
		t.Fatalf("PATCH unpause: %d %s", r.status, r.raw)
	}

	if r := f.airflow(t, "GET", "/dags/"+pm, viewerToken, nil); r.status != 200 || r.json(t)["dag_id"] != pm {
		t.Fatalf("GET /dags/pm: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/nope", viewerToken, nil); r.status != 404 {
		t.Fatalf("unknown DAG: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "PATCH", "/dags/nope", adminToken, map[string]any{"is_paused": true}); r.status != 404 {
		t.Fatalf("PATCH unknown DAG: %d %s", r.status, r.raw)
	}
}

func TestAuthMatrix(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		method, path string
		body         any
		token        string
		want         int
	}{
		{"GET", "/dags", nil, "", 401},
		{"GET", "/dags", nil, badToken, 401},
		{"GET", "/dags", nil, viewerToken, 200},
		{"GET", "/dags/" + pm, nil, "", 401},
		{"GET", "/dags/" + pm + "/dagRuns", nil, badToken, 401},
		{"GET", "/dags/" + pm + "/dagRuns/x", nil, "", 401},
		{"GET", "/dags/" + pm + "/dagRuns/x/taskInstances", nil, "", 401},
		{"PATCH", "/dags/" + pm, map[string]any{"is_paused": true}, "", 401},
		{"PATCH", "/dags/" + pm, map[string]any{"is_paused": true}, viewerToken, 403},
		{"PATCH", "/dags/" + pm, map[string]any{"is_paused": true}, adminToken, 200},
		{"POST", "/dags/" + pm + "/dagRuns", map[string]any{}, "", 401},
		{"POST", "/dags/" + pm + "/dagRuns", map[string]any{}, badToken, 401},
		{"POST", "/dags/" + pm + "/dagRuns", map[string]any{}, viewerToken, 403},
		{"POST", "/dags/" + pm + "/dagRuns", map[string]any{}, adminToken, 200},
	} {
		r := f.airflow(t, c.method, c.path, c.token, c.body)
		if r.status != c.want {
			t.Errorf("%s %s (token %q): %d, want %d: %s", c.method, c.path, c.token, r.status, c.want, r.raw)
			continue
		}
		if c.want == 401 || c.want == 403 {
			p := r.json(t)
			if _, leaked := p["detail"]; leaked {
				t.Errorf("%s %s: the refusal says why: %s", c.method, c.path, r.raw)
			}
			if c.want == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without a challenge", c.method, c.path)
			}
		}
	}
	// Routes outside the subset: 401 before routing, then a 404 problem.
	if r := send(t, newRequest(t, "GET", f.url+"/api/v1/variables", "", nil)); r.status != 401 {
		t.Fatalf("unknown route without a token: %d", r.status)
	}
	if r := send(t, newRequest(t, "GET", f.url+"/api/v1/variables", viewerToken, nil)); r.status != 404 || r.json(t)["status"] != float64(404) {
		t.Fatalf("unknown route: %d %s", r.status, r.raw)
	}
}

func TestTrigger(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// Default: exactly TriggerPipeline, named manual__<iso>.
	r := f.airflow(t, "POST", "/dags/"+kpi+"/dagRuns", adminToken, map[string]any{"conf": map[string]any{"week": "2024-W10"}})
	if r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	run := r.json(t)
	id := run["dag_run_id"].(string)
	if !manualRunID.MatchString(id) || run["state"] != "queued" || run["run_type"] != "manual" ||
		run["external_trigger"] != true || run["dag_id"] != kpi || run["conf"].(map[string]any)["week"] != "2024-W10" {
		t.Fatalf("triggered run: %s", r.raw)
	}
	if f.count(t, `SELECT count(*) FROM runs WHERE run_id = $1 AND state = 'queued' AND source = 'manual'`, id) != 1 ||
		eventingtest.Count(t, f.pool, events.PipelineTriggered, id) != 1 {
		t.Fatal("the trigger did not queue the run with its outbox event")
	}
	// The same run through the ControlService.
	got, err := f.srv.api.GetRun(ctx, &controlv1.GetRunRequest{RunId: id})
	if err != nil || got.GetPipeline() != kpi {
		t.Fatalf("GetRun(%s): %v %v", id, got, err)
	}

	// A caller-chosen dag_run_id: same row, same event; twice is 409.
	body := map[string]any{"dag_run_id": "nightly_backfill.1", "conf": map[string]any{"as_of": "2024-05-01"}}
	r = f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, body)
	if r.status != 200 || r.json(t)["dag_run_id"] != "nightly_backfill.1" || r.json(t)["state"] != "queued" {
		t.Fatalf("custom run id: %d %s", r.status, r.raw)
	}
	if r = f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, body); r.status != 409 {
		t.Fatalf("duplicate run id: %d %s", r.status, r.raw)
	}
	// A run id is unique across DAGs too.
	if r = f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"dag_run_id": "nightly_backfill.1"}); r.status != 409 {
		t.Fatalf("run id of another DAG: %d %s", r.status, r.raw)
	}
	if n := eventingtest.Count(t, f.pool, events.PipelineTriggered, "nightly_backfill.1"); n != 1 {
		t.Fatalf("%d trigger events for the custom run", n)
	}

	// A logical_date names the run manual__<logical_date>; twice is 409.
	body = map[string]any{"logical_date": "2024-03-04T05:06:07Z"}
	r = f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, body)
	if r.status != 200 || r.json(t)["dag_run_id"] != "manual__2024-03-04T05:06:07+00:00" || r.json(t)["logical_date"] != "2024-03-04T05:06:07Z" {
		t.Fatalf("logical_date: %d %s", r.status, r.raw)
	}
	if r = f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"execution_date": "2024-03-04T05:06:07Z"}); r.status != 409 {
		t.Fatalf("same logical_date: %d %s", r.status, r.raw)
	}

	for name, c := range map[string]struct {
		dag  string
		body map[string]any
		want int
	}{
		"bad conf format":              {pm, map[string]any{"conf": map[string]any{"as_of": "May 1st"}}, 400},
		"bad conf with custom id":      {pm, map[string]any{"dag_run_id": "x1", "conf": map[string]any{"as_of": "2024-02-30"}}, 400},
		"conf value not a string":      {kpi, map[string]any{"conf": map[string]any{"week": 10}}, 400},
		"run id with a space":          {pm, map[string]any{"dag_run_id": "bad id"}, 400},
		"reserved scheduled__ prefix":  {pm, map[string]any{"dag_run_id": "scheduled__2024-01-01T00:00:00+00:00"}, 400},
		"logical and execution differ": {pm, map[string]any{"logical_date": "2024-01-01T00:00:00Z", "execution_date": "2024-01-02T00:00:00Z"}, 400},
		"unknown DAG":                  {"nope", map[string]any{}, 404},
	} {
		if r := f.airflow(t, "POST", "/dags/"+c.dag+"/dagRuns", adminToken, c.body); r.status != c.want {
			t.Errorf("%s: %d, want %d: %s", name, r.status, c.want, r.raw)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM runs WHERE run_id IN ('x1', 'bad id')`); n != 0 {
		t.Fatalf("a refused trigger made %d runs", n)
	}
}

func TestDAGRunsPagingAndStates(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2024, 6, 1, 6, 0, 0, 0, time.UTC)
	states := []string{"success", "failed", "cancelled", "running", "queued", "skipped"}
	for i, st := range states {
		f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at) VALUES ($1, $2, $3, 'scheduled', $4, $4)`,
			"r"+string(rune('0'+i)), pm, st, base.Add(time.Duration(i)*time.Hour))
	}
	f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date) VALUES ('other', $1, 'success', 'manual', now())`, kpi)

	all := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns", viewerToken, nil).json(t)
	runs := all["dag_runs"].([]any)
	if all["total_entries"] != float64(6) || len(runs) != 6 {
		t.Fatalf("runs: %v", all)
	}
	want := map[string]string{"r0": "success", "r1": "failed", "r2": "failed", "r3": "running", "r4": "queued", "r5": "success"}
	for i, x := range runs {
		run := x.(map[string]any)
		if wantID := "r" + string(rune('0'+5-i)); run["dag_run_id"] != wantID {
			t.Fatalf("run %d is %v, want %s (newest first)", i, run["dag_run_id"], wantID)
		}
		if run["state"] != want[run["dag_run_id"].(string)] || run["run_type"] != "scheduled" {
			t.Fatalf("run %v: state %v, want %s", run["dag_run_id"], run["state"], want[run["dag_run_id"].(string)])
		}
	}
	pg := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?limit=2&offset=2", viewerToken, nil).json(t)
	if got := pg["dag_runs"].([]any); pg["total_entries"] != float64(6) || len(got) != 2 ||
		got[0].(map[string]any)["dag_run_id"] != "r3" || got[1].(map[string]any)["dag_run_id"] != "r2" {
		t.Fatalf("page: %v", pg)
	}
	failed := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?state=failed", viewerToken, nil).json(t)
	if failed["total_entries"] != float64(2) {
		t.Fatalf("state=failed (failed and cancelled): %v", failed)
	}
	multi := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?state=queued&state=running", viewerToken, nil).json(t)
	if multi["total_entries"] != float64(2) {
		t.Fatalf("state=queued&state=running: %v", multi)
	}
	since := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?execution_date_gte="+url.QueryEscape(base.Add(4*time.Hour).Format(time.RFC3339))+"&order_by=execution_date", viewerToken, nil).json(t)
	if got := since["dag_runs"].([]any); len(got) != 2 || got[0].(map[string]any)["dag_run_id"] != "r4" {
		t.Fatalf("execution_date_gte, oldest first: %v", since)
	}
	if every := f.airflow(t, "GET", "/dags/~/dagRuns", viewerToken, nil).json(t); every["total_entries"] != float64(7) {
		t.Fatalf("~: %v", every)
	}
	if none := f.airflow(t, "GET", "/dags/nope/dagRuns", viewerToken, nil).json(t); none["total_entries"] != float64(0) {
		t.Fatalf("unknown DAG: %v", none)
	}

	if r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/r1", viewerToken, nil); r.status != 200 || r.json(t)["state"] != "failed" {
		t.Fatalf("GET run: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/nope", viewerToken, nil); r.status != 404 {
		t.Fatalf("unknown run: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/"+kpi+"/dagRuns/r1", viewerToken, nil); r.status != 404 {
		t.Fatalf("another DAG's run: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/nope/dagRuns/r1", viewerToken, nil); r.status != 404 {
		t.Fatalf("unknown DAG's run: %d %s", r.status, r.raw)
	}
}

func TestTaskInstancesFollowTheProjection(t *testing.T) {
	f := newFixture(t)
	r := f.airflow(t, "POST", "/dags/"+etl+"/dagRuns", adminToken, map[string]any{"dag_run_id": "etl_1"})
	if r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	tis := func() []map[string]any {
		t.Helper()
		c := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1/taskInstances", viewerToken, nil).json(t)
		var out []map[string]any
		for _, x := range c["task_instances"].([]any) {
			out = append(out, x.(map[string]any))
		}
		if c["total_entries"] != float64(len(out)) {
			t.Fatalf("total_entries %v for %d", c["total_entries"], len(out))
		}
		return out
	}
	if got := tis(); len(got) != 0 {
		t.Fatalf("a queued run has no steps yet: %v", got)
	}

	f.deliverTrigger(t, "etl_1") // the event the trigger wrote, as Pub/Sub delivers it
	got := tis()
	if len(got) != 5 || got[0]["task_id"] != events.Extractor || got[0]["state"] != nil || got[4]["task_id"] != events.Notifier {
		t.Fatalf("steps of a started run: %v", got)
	}
	if run := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1", viewerToken, nil).json(t); run["state"] != "running" || run["start_date"] == nil {
		t.Fatalf("started run: %v", run)
	}

	f.deliverStep(t, events.StepStarted, "etl_1", etl, &eventsv1.StepStarted{Step: events.Extractor})
	f.deliverStep(t, events.StepSucceeded, "etl_1", etl, &eventsv1.StepSucceeded{Step: events.Extractor})
	f.deliverStep(t, events.StepStarted, "etl_1", etl, &eventsv1.StepStarted{Step: events.Featurejob})
	f.deliverStep(t, events.StepFailed, "etl_1", etl, &eventsv1.StepFailed{Step: events.Featurejob, Error: "cluster busy", Retrying: true})
	got = tis()
	if got[0]["state"] != "success" || got[0]["try_number"] != float64(1) || got[0]["duration"] == nil || got[0]["end_date"] == nil {
		t.Fatalf("extractor: %v", got[0])
	}
	if got[1]["state"] != "up_for_retry" || got[1]["try_number"] != float64(1) || got[1]["start_date"] == nil {
		t.Fatalf("featurejob retrying: %v", got[1])
	}
	if got[2]["state"] != nil {
		t.Fatalf("trainer: %v", got[2])
	}
	if c := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1/taskInstances?state=none&limit=1&offset=1", viewerToken, nil).json(t); c["total_entries"] != float64(3) || len(c["task_instances"].([]any)) != 1 {
		t.Fatalf("state=none paged: %v", c)
	}

	f.deliverStep(t, events.StepStarted, "etl_1", etl, &eventsv1.StepStarted{Step: events.Featurejob})
	f.deliverStep(t, events.StepFailed, "etl_1", etl, &eventsv1.StepFailed{Step: events.Featurejob, Error: "bad input"})
	got = tis()
	if got[1]["state"] != "failed" || got[1]["try_number"] != float64(2) || got[2]["state"] != "upstream_failed" {
		t.Fatalf("after the failure: %v", got)
	}
	if run := f.airflow(t, "GET", "/dags/"+etl+"/dagRuns/etl_1", viewerToken, nil).json(t); run["state"] != "failed" || run["end_date"] == nil {
		t.Fatalf("failed run: %v", run)
	}
	// Unknown runs and other DAGs' runs have no task instances.
	for _, p := range []string{"/dags/" + etl + "/dagRuns/nope/taskInstances", "/dags/" + pm + "/dagRuns/etl_1/taskInstances"} {
		if c := f.airflow(t, "GET", p, viewerToken, nil).json(t); c["total_entries"] != float64(0) {
			t.Fatalf("%s: %v", p, c)
		}
	}
}

func TestStateMapping(t *testing.T) {
	for run, want := range map[string]string{"queued": "queued", "running": "running", "success": "success",
		"failed": "failed", "cancelled": "failed", "skipped": "success"} {
		if got := dagState(run); got != want {
			t.Errorf("dagState(%s) = %s, want %s", run, got, want)
		}
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	for _, c := range []struct{ step, run, want string }{
		{"pending", "queued", "null"}, {"pending", "running", "null"}, {"pending", "failed", "upstream_failed"},
		{"pending", "cancelled", "upstream_failed"}, {"pending", "success", "skipped"},
		{"running", "running", "running"}, {"up_for_retry", "running", "up_for_retry"},
		{"success", "running", "success"}, {"failed", "failed", "failed"}, {"skipped", "cancelled", "skipped"},
	} {
		if got := str(taskState(c.step, c.run)); got != c.want {
			t.Errorf("taskState(%s in a %s run) = %s, want %s", c.step, c.run, got, c.want)
		}
	}
}

// TestConfRulesMatchAPI: a trigger with a custom run id (inserted here) and
// the ControlService's TriggerPipeline reject the same conf with the same
// message (both use api.ParseConf, the registry's Pipeline.ValidateConf).
func TestConfRulesMatchAPI(t *testing.T) {
	f := newFixture(t)
	ctx := auth.WithIdentity(context.Background(), auth.Identity{Name: "test", Role: auth.RoleAdmin})
	for _, c := range []struct {
		pipeline string
		conf     map[string]string
	}{
		{pm, nil}, {pm, map[string]string{"as_of": "2024-05-01"}}, {pm, map[string]string{"as_of": "2024-02-30"}},
		{pm, map[string]string{"as_of": "05/01/2024"}}, {pm, map[string]string{"week": "2024-W01"}},
		{kpi, map[string]string{"week": "2024-W10"}}, {kpi, map[string]string{"week": "2020-W53"}},
		{kpi, map[string]string{"week": "2021-W53"}}, {kpi, map[string]string{"week": "2024-10"}},
		{etl, map[string]string{"snapshot_date": "2024-01-31"}}, {etl, map[string]string{"snapshot_date": "x", "b": "y"}},
	} {
		pl, _ := events.LookupPipeline(c.pipeline)
		obj := map[string]any{}
		for k, v := range c.conf {
			obj[k] = v
		}
		_, mine := api.ParseConf(pl, obj)
		_, theirs := call(ctx, f.srv, methodTrigger, func(ctx context.Context) (*controlv1.TriggerPipelineResponse, error) {
			return f.srv.api.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{Pipeline: c.pipeline, Conf: c.conf})
		})
		switch {
		case (mine == nil) != (theirs == nil):
			t.Errorf("%s %v: compat says %v, the API says %v", c.pipeline, c.conf, mine, theirs)
		case mine != nil && message(mine) != message(theirs):
			t.Errorf("%s %v: compat says %q, the API says %q", c.pipeline, c.conf, mine, message(theirs))
		}
	}
}

// A TaskInstance is its TaskInstanceReference and the contract's other
// fields, with the same values.
func TestTaskInstanceReference(t *testing.T) {
	run := &controlv1.Run{RunId: "r1", Pipeline: etl, LogicalDate: timestamppb.New(time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC))}
	got, ref := jsonKeys(t, toTaskInstanceReference(run, events.Extractor))
	if want := []string{"dag_id", "dag_run_id", "execution_date", "task_id"}; !slices.Equal(got, want) {
		t.Fatalf("TaskInstanceReference keys %v, want %v", got, want)
	}
	if ref["task_id"] != events.Extractor || ref["dag_id"] != etl || ref["dag_run_id"] != "r1" || ref["execution_date"] != "2024-03-04T05:06:07Z" {
		t.Fatalf("TaskInstanceReference %v", ref)
	}
	got, ti := jsonKeys(t, toTaskInstance(run, &controlv1.Step{Step: events.Extractor}))
	if want := []string{"dag_id", "dag_run_id", "duration", "end_date", "execution_date", "executor", "hostname",
		"map_index", "max_tries", "note", "operator", "pid", "pool", "pool_slots", "priority_weight", "queue", "queued_when",
		"rendered_fields", "start_date", "state", "task_display_name", "task_id", "try_number", "unixname"}; !slices.Equal(got, want) {
		t.Fatalf("TaskInstance keys %v, want %v", got, want)
	}
	for k, v := range ref {
		if !reflect.DeepEqual(ti[k], v) {
			t.Errorf("%s: TaskInstance %v, reference %v", k, ti[k], v)
		}
	}
}
