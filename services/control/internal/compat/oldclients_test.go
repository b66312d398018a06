package compat

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

// The old ComposerClient writes its routes with a trailing slash (Django's
// style); both forms answer the same.
func TestComposerRoutesWithTrailingSlash(t *testing.T) {
	f := newFixture(t)
	for _, slash := range []string{"", "/"} {
		if code, body := f.composer(t, "GET", "list_dags"+slash, viewerToken, nil); code != 200 || body["total_entries"] != float64(len(events.Pipelines)) {
			t.Fatalf("list_dags%s: %d %v", slash, code, body)
		}
		code, body := f.composer(t, "POST", "trigger_report_generation"+slash, adminToken, nil)
		if code != 200 || body["success"] != true || body["dag_id"] != kpi {
			t.Fatalf("trigger_report_generation%s: %d %v", slash, code, body)
		}
		if code, body := f.composer(t, "GET", "dag_status"+slash+"?dag_id="+kpi, viewerToken, nil); code != 200 || body["dag_run_id"] == nil {
			t.Fatalf("dag_status%s: %d %v", slash, code, body)
		}
		if code, body := f.composer(t, "GET", "dag_runs"+slash+"?dag_id="+kpi+"&limit=10", viewerToken, nil); code != 200 || body["count"] == float64(0) {
			t.Fatalf("dag_runs%s: %d %v", slash, code, body)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM runs WHERE pipeline = $1`, kpi); n != 2 {
		t.Fatalf("%d runs after two triggers", n)
	}
	// Nothing below a route.
	for _, path := range []string{"list_dags/x", "dag_runs/x/"} {
		if code, body := f.composer(t, "GET", path, viewerToken, nil); code != 404 || body["success"] != false {
			t.Fatalf("%s: %d %v", path, code, body)
		}
	}
}

// The old DAG id of the PM pipeline names it wherever an id is taken; the DAG
// is listed once, under its own id, with the alias shown.
func TestOldDAGIDIsAnAlias(t *testing.T) {
	f := newFixture(t)
	const old = "preventive_maintenance_generator"

	all := f.airflow(t, "GET", "/dags", viewerToken, nil).json(t)
	var listed []string
	for _, d := range all["dags"].([]any) {
		d := d.(map[string]any)
		listed = append(listed, d["dag_id"].(string))
		if d["dag_id"] == pm && !reflect.DeepEqual(d["tags"], []any{map[string]any{"name": "alias:" + old}}) {
			t.Errorf("PM's tags: %v", d["tags"])
		}
	}
	if !reflect.DeepEqual(listed, []string{etl, events.ModelMonitoring, pm, kpi}) {
		t.Fatalf("listed %v", listed)
	}
	if got := f.airflow(t, "GET", "/dags?dag_id_pattern=generator", viewerToken, nil).json(t); got["total_entries"] != float64(1) {
		t.Fatalf("dag_id_pattern on the alias: %v", got)
	}
	if got := f.airflow(t, "GET", "/dags?tags=alias:"+old, viewerToken, nil).json(t); got["total_entries"] != float64(1) {
		t.Fatalf("tags=alias: %v", got)
	}
	if r := f.airflow(t, "GET", "/dags/"+old, viewerToken, nil); r.status != 200 || r.json(t)["dag_id"] != pm {
		t.Fatalf("GET /dags/%s: %d %s", old, r.status, r.raw)
	}
	r := f.airflow(t, "POST", "/dags/"+old+"/dagRuns", adminToken, map[string]any{"conf": map[string]any{}})
	run := r.json(t)
	if r.status != 200 || run["dag_id"] != pm {
		t.Fatalf("trigger through the alias: %d %s", r.status, r.raw)
	}
	id := run["dag_run_id"].(string)
	if got := f.airflow(t, "GET", "/dags/"+old+"/dagRuns/"+id, viewerToken, nil); got.status != 200 {
		t.Fatalf("the run through the alias: %d %s", got.status, got.raw)
	}
	if got := f.airflow(t, "GET", "/dags/"+old+"/dagRuns", viewerToken, nil).json(t); got["total_entries"] != float64(1) {
		t.Fatalf("runs through the alias: %v", got)
	}
	if code, body := f.composer(t, "GET", "dag_status/?dag_id="+old, viewerToken, nil); code != 200 || body["dag_run_id"] != id {
		t.Fatalf("composer dag_status of the alias: %d %v", code, body)
	}
	if code, body := f.composer(t, "GET", "dag_runs/?dag_id="+old, viewerToken, nil); code != 200 || body["count"] != float64(1) {
		t.Fatalf("composer dag_runs of the alias: %d %v", code, body)
	}
	code, body := f.composer(t, "GET", "list_dags", viewerToken, nil)
	if pmDag := body["dags"].([]any)[1].(map[string]any); code != 200 || !reflect.DeepEqual(pmDag["aliases"], []any{old}) {
		t.Fatalf("composer list_dags: %d %v", code, body)
	}
	// Runs, steps and events carry the pipeline's own id.
	if n := f.count(t, `SELECT count(*) FROM runs WHERE run_id = $1 AND pipeline = $2`, id, pm); n != 1 {
		t.Fatal("the run is not stored under the pipeline's id")
	}
	if trig := eventingtest.Events(t, f.pool, events.PipelineTriggered, id); len(trig) != 1 || trig[0].Pipeline != pm {
		t.Fatal("the trigger is not published under the pipeline's id")
	}
	// A kick published under the old id (an old Cloud Scheduler job) starts a
	// run of the pipeline.
	ev, err := eventing.New(events.PipelineTriggered, "//cloudscheduler", projection.ScheduledRunPlaceholder, old, "",
		&eventsv1.PipelineTriggered{Source: "scheduled"})
	if err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.events, ev.Message(), eventing.Handled)
	if n := f.count(t, `SELECT count(*) FROM runs WHERE pipeline = $1 AND source = 'scheduled'`, pm); n != 1 {
		t.Fatal("a kick under the old id started no run")
	}
}

// Airflow's conf is any JSON object: the declared keys are checked, every
// other key is kept, stored and echoed; the steps get the declared keys.
func TestConfIsAnyJSONObject(t *testing.T) {
	f := newFixture(t)
	conf := map[string]any{
		"as_of": "2026-11-30", "triggered_by": "ComposerClient", "retries": 3.5,
		"nested": map[string]any{"list": []any{1.0, "two", nil, true}},
	}
	for _, body := range []map[string]any{
		{"conf": conf},
		{"conf": conf, "dag_run_id": "from_old_client"},
	} {
		r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, body)
		run := r.json(t)
		if r.status != 200 || !reflect.DeepEqual(run["conf"], conf) {
			t.Fatalf("POST %v: %d %s", body, r.status, r.raw)
		}
		id := run["dag_run_id"].(string)
		if got := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/"+id, viewerToken, nil).json(t); !reflect.DeepEqual(got["conf"], conf) {
			t.Fatalf("GET echoes conf %v", got["conf"])
		}
		var stored map[string]any
		if err := f.pool.QueryRow(context.Background(), `SELECT conf FROM runs WHERE run_id = $1`, id).Scan(&stored); err != nil || !reflect.DeepEqual(stored, conf) {
			t.Fatalf("stored conf %v, %v", stored, err)
		}
		trig := eventingtest.Emitted(t, f.pool, events.PipelineTriggered, id, func() *eventsv1.PipelineTriggered { return &eventsv1.PipelineTriggered{} })
		if len(trig) != 1 || !reflect.DeepEqual(trig[0].GetConf(), map[string]string{"as_of": "2026-11-30"}) {
			t.Fatalf("the steps get %v", trig)
		}
	}
	// gRPC readers see the string values, and the whole conf as JSON.
	ctx := auth.WithIdentity(context.Background(), auth.Identity{Name: "test", Role: auth.RoleViewer})
	run, err := f.srv.api.GetRun(ctx, &controlv1.GetRunRequest{RunId: "from_old_client"})
	if err != nil || !reflect.DeepEqual(run.GetConf(), map[string]string{"as_of": "2026-11-30", "triggered_by": "ComposerClient"}) {
		t.Fatalf("GetRun conf %v, %v", run.GetConf(), err)
	}
	var whole map[string]any
	if err := json.Unmarshal([]byte(run.GetConfJson()), &whole); err != nil || !reflect.DeepEqual(whole, conf) {
		t.Fatalf("GetRun conf_json %s", run.GetConfJson())
	}
	// The composer trigger takes the same conf.
	code, body := f.composer(t, "POST", "trigger_preventive_maintenance/", adminToken, map[string]any{"conf": map[string]any{"triggered_by": "cron-job", "n": 1}})
	if code != 200 || body["success"] != true {
		t.Fatalf("composer trigger with conf: %d %v", code, body)
	}
	// A declared key still has to be right; the answer names it.
	for _, c := range []struct {
		conf map[string]any
		want string
	}{
		{map[string]any{"as_of": "2026-02-30", "x": 1}, `conf: key "as_of": "2026-02-30" is not a calendar day`},
		{map[string]any{"as_of": 20261130}, `conf: key "as_of": the value must be a string (date)`},
	} {
		r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"conf": c.conf})
		if r.status != 400 || r.json(t)["detail"] != c.want {
			t.Errorf("conf %v: %d %s", c.conf, r.status, r.raw)
		}
		if code, body := f.composer(t, "POST", "trigger_preventive_maintenance", adminToken, map[string]any{"conf": c.conf}); code != 400 || body["error"] != c.want {
			t.Errorf("composer conf %v: %d %v", c.conf, code, body)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 3 {
		t.Fatalf("%d runs: a refused trigger created one", n)
	}
}

// GET /health and /version answer without credentials, as Airflow's do.
func TestHealthAndVersion(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f.srv.now = func() time.Time { return now }
	f.exec(t, `UPDATE pipelines SET updated_at = $1`, now.AddDate(0, -1, 0))

	health := func() map[string]any { return f.airflow(t, "GET", "/health", "", nil).json(t) }
	h := health()
	if db := h["metadatabase"].(map[string]any); db["status"] != "healthy" {
		t.Fatalf("metadatabase: %v", h)
	}
	if s := h["scheduler"].(map[string]any); s["status"] != "unhealthy" || s["latest_scheduler_heartbeat"] != nil {
		t.Fatalf("no scheduled run at all: %v", h)
	}
	// Each pipeline's latest tick has its run: healthy, with the heartbeat.
	var last string
	for _, e := range f.srv.table.Entries {
		tick := e.Prev(now.Add(-ticks.DefaultGrace))
		last = projection.RunIDFor("scheduled", tick)
		f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at) VALUES ($1, $2, 'success', 'scheduled', $3, $3)`,
			last, e.Pipeline, tick)
	}
	if s := health()["scheduler"].(map[string]any); s["status"] != "healthy" || s["latest_scheduler_heartbeat"] == nil {
		t.Fatalf("every tick has its run: %v", s)
	}
	f.exec(t, `DELETE FROM runs WHERE run_id = $1`, last)
	if s := health()["scheduler"].(map[string]any); s["status"] != "unhealthy" {
		t.Fatalf("a missed tick: %v", s)
	}
	// A pipeline paused, or unpaused since its tick, misses nothing.
	f.exec(t, `UPDATE pipelines SET updated_at = $1 WHERE id = $2`, now.Add(-time.Minute), f.srv.table.Entries[len(f.srv.table.Entries)-1].Pipeline)
	if s := health()["scheduler"].(map[string]any); s["status"] != "healthy" {
		t.Fatalf("unpaused since the tick: %v", s)
	}

	v := f.airflow(t, "GET", "/version", "", nil).json(t)
	if v["version"] != "0.0.0-dev" {
		t.Fatalf("version: %v", v)
	}
	// The other routes still need credentials.
	if r := f.airflow(t, "GET", "/dags", "", nil); r.status != 401 {
		t.Fatalf("GET /dags without a token: %d", r.status)
	}
}
