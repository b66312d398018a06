package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

func TestComposerRoutes(t *testing.T) {
	f := newFixture(t)

	// Auth: a token for every route, admin for triggers; refusals say nothing more.
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "list_dags", "", 401},
		{"GET", "list_dags", badToken, 401},
		{"GET", "dag_status?dag_id=" + pm, "", 401},
		{"GET", "dag_runs?dag_id=" + pm, badToken, 401},
		{"POST", "trigger_etl_ml_training", "", 401},
		{"POST", "trigger_etl_ml_training", viewerToken, 403},
		{"POST", "trigger_preventive_maintenance", viewerToken, 403},
		{"POST", "trigger_report_generation", viewerToken, 403},
		{"GET", "nope", "", 401},
		{"GET", "nope", viewerToken, 404},
	} {
		code, body := f.composer(t, c.method, c.path, c.token, nil)
		if code != c.want || body["success"] != false || body["error"] == "" {
			t.Errorf("%s %s (token %q): %d %v, want %d", c.method, c.path, c.token, code, body, c.want)
		}
		if c.want == 403 && body["error"] != "permission denied" || c.want == 401 && body["error"] != "unauthenticated" {
			t.Errorf("%s %s: the refusal says too much: %v", c.method, c.path, body)
		}
	}

	code, body := f.composer(t, "GET", "list_dags", viewerToken, nil)
	if code != 200 || body["success"] != true || body["total_entries"] != float64(len(events.Pipelines)) {
		t.Fatalf("list_dags: %d %v", code, body)
	}
	d := body["dags"].([]any)[0].(map[string]any)
	if d["dag_id"] != etl || d["schedule"] == "" || d["last_run"] != nil || d["next_run"] == nil {
		t.Fatalf("list_dags entry: %v", d)
	}
	if code, body = f.composer(t, "GET", "dag_status?dag_id="+kpi, viewerToken, nil); code != 200 || body["state"] != nil || body["dag_run_id"] != nil {
		t.Fatalf("dag_status before any run: %d %v", code, body)
	}

	runs := map[string]string{}
	for route, dag := range map[string]string{
		"trigger_etl_ml_training": etl, "trigger_preventive_maintenance": pm, "trigger_report_generation": kpi,
	} {
		code, body := f.composer(t, "POST", route, adminToken, nil)
		if code != 200 || body["success"] != true || body["dag_id"] != dag || body["state"] != "queued" ||
			!manualRunID.MatchString(body["dag_run_id"].(string)) {
			t.Fatalf("%s: %d %v", route, code, body)
		}
		runs[dag] = body["dag_run_id"].(string)
		if trig := eventingtest.Events(t, f.pool, events.PipelineTriggered, runs[dag]); len(trig) != 1 || trig[0].Pipeline != dag {
			t.Fatalf("%s: no trigger event", route)
		}
	}
	// conf and idempotency key, as TriggerPipeline takes them.
	code, body = f.composer(t, "POST", "trigger_report_generation", adminToken, map[string]any{"conf": map[string]string{"week": "2024-W10"}, "idempotency_key": "k1"})
	if code != 200 || body["created"] != true {
		t.Fatalf("trigger with conf: %d %v", code, body)
	}
	again, body2 := f.composer(t, "POST", "trigger_report_generation", adminToken, map[string]any{"conf": map[string]string{"week": "2024-W10"}, "idempotency_key": "k1"})
	if again != 200 || body2["created"] != false || body2["dag_run_id"] != body["dag_run_id"] {
		t.Fatalf("idempotent trigger: %d %v", again, body2)
	}
	if code, body = f.composer(t, "POST", "trigger_report_generation", adminToken, map[string]any{"conf": map[string]string{"week": "W10"}}); code != 400 || body["success"] != false {
		t.Fatalf("bad conf: %d %v", code, body)
	}

	if code, body = f.composer(t, "GET", "dag_status?dag_id="+pm, viewerToken, nil); code != 200 || body["state"] != "queued" || body["dag_run_id"] != runs[pm] || body["is_paused"] != false {
		t.Fatalf("dag_status: %d %v", code, body)
	}
	if code, _ = f.composer(t, "GET", "dag_status", viewerToken, nil); code != 400 {
		t.Fatalf("dag_status without dag_id: %d", code)
	}
	if code, _ = f.composer(t, "GET", "dag_status?dag_id=nope", viewerToken, nil); code != 404 {
		t.Fatalf("dag_status of an unknown DAG: %d", code)
	}

	if code, body = f.composer(t, "GET", "dag_runs?dag_id="+kpi+"&limit=1", viewerToken, nil); code != 200 || body["count"] != float64(1) {
		t.Fatalf("dag_runs limit=1: %d %v", code, body)
	}
	if code, body = f.composer(t, "GET", "dag_runs?dag_id="+kpi, viewerToken, nil); code != 200 || body["count"] != float64(2) ||
		body["dag_runs"].([]any)[1].(map[string]any)["dag_run_id"] != runs[kpi] {
		t.Fatalf("dag_runs, newest first: %d %v", code, body)
	}
	for _, q := range []string{"dag_runs", "dag_runs?dag_id=" + pm + "&limit=0", "dag_runs?dag_id=nope"} {
		if code, _ = f.composer(t, "GET", q, viewerToken, nil); code != 400 && code != 404 {
			t.Fatalf("%s: %d", q, code)
		}
	}
}

// TestValidatorRejectsNonConformingResponses proves the contract check has
// teeth: responses that break the contract fail validation.
func TestValidatorRejectsNonConformingResponses(t *testing.T) {
	ctx := context.Background()
	req, err := http.NewRequest("GET", "/api/v1/dags/d/dagRuns/r", nil)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := contract(t).FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	for name, c := range map[string]struct {
		status int
		body   string
	}{
		"state outside DagState": {200, `{"dag_run_id":"r","state":"cancelled"}`},
		"conf not an object":     {200, `{"dag_run_id":"r","conf":"x"}`},
		"problem without title":  {404, `{"type":"about:blank","status":404}`},
		"status not in contract": {418, `{"type":"about:blank","title":"teapot","status":418}`},
	} {
		h := http.Header{"Content-Type": {"application/json"}}
		err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: c.status, Header: h, Body: io.NopCloser(bytes.NewReader([]byte(c.body))),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A composer run is the README's run; an Airflow DAGRun is that and the
// contract's other fields, with the same values.
func TestDAGRunSummary(t *testing.T) {
	d := toDAGRun(&controlv1.Run{RunId: "r1", Pipeline: kpi, Source: "scheduled", ConfJson: `{"week":"2024-W10"}`})
	got, summary := jsonKeys(t, d.dagRunSummary)
	if want := []string{"conf", "dag_id", "dag_run_id", "end_date", "logical_date", "run_type", "start_date", "state"}; !slices.Equal(got, want) {
		t.Fatalf("composer run keys %v, want %v", got, want)
	}
	got, full := jsonKeys(t, d)
	if want := []string{"conf", "dag_id", "dag_run_id", "data_interval_end", "data_interval_start", "end_date", "execution_date",
		"external_trigger", "last_scheduling_decision", "logical_date", "note", "run_type", "start_date", "state"}; !slices.Equal(got, want) {
		t.Fatalf("DAGRun keys %v, want %v", got, want)
	}
	for k, v := range summary {
		if !reflect.DeepEqual(full[k], v) {
			t.Errorf("%s: DAGRun %v, composer run %v", k, full[k], v)
		}
	}
}

// jsonKeys is v as a JSON object: its keys, sorted, and the object.
func jsonKeys(t *testing.T, v any) ([]string, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(m)), m
}
