package app_test

import (
	"bufio"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// scrape reads the service's /metrics (Prometheus text format) into
// series → value.
func (f *fixture) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	rr := httptest.NewRecorder()
	f.svc.Telemetry.Metrics.ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != 200 {
		t.Fatalf("/metrics: %d", rr.Code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rr.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// runSeries returns the series of the run metrics (no histogram buckets).
func runSeries(all map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range all {
		if (strings.HasPrefix(k, "cmmsflow_runs_") || strings.HasPrefix(k, "cmmsflow_steps_")) && !strings.Contains(k, "_bucket") &&
			!strings.Contains(k, "_sum") {
			out[k] = v
		}
	}
	return out
}

// TestRunMetricsOfAPIChanges: a run marked failed, a run cancelled and a
// run whose step at work is marked failed through the API count once each
// on /metrics, under their Prometheus names, with their stopped steps; a dry run, a refused cancel and marking
// an ended run success count nothing. The outcome counters are exported at
// 0 for every pipeline and final state before any run ends.
func TestRunMetricsOfAPIChanges(t *testing.T) {
	f := newFixture(t)
	f.runningETLRun(t, "etl-1") // and etl-1-next queued behind it
	etl := `pipeline="` + events.ETLMLTraining + `"`
	failed := `cmmsflow_runs_finished_total{` + etl + `,state="failed"}`
	if got := runSeries(f.scrape(t)); got[`cmmsflow_runs_queued{`+etl+`}`] != 1 {
		t.Fatalf("before: %v, want etl-1-next queued", got)
	} else if n, ok := got[failed]; !ok || n != 0 {
		t.Fatalf("before: %v, want %s at 0", got, failed)
	}
	if _, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "failed", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "failed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.CancelRun(rpc(t, adminToken), &controlv1.CancelRunRequest{RunId: "etl-1-next"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.CancelRun(rpc(t, adminToken), &controlv1.CancelRunRequest{RunId: "etl-1-next"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second cancel: %v, want FailedPrecondition", err)
	}
	if _, err := f.client.SetRunState(rpc(t, adminToken), &controlv1.SetRunStateRequest{RunId: "etl-1", State: "success"}); err != nil {
		t.Fatal(err)
	}
	// A step at work marked failed: the step and its run end.
	f.runningETLRun(t, "etl-2")
	if _, err := f.client.SetStepState(rpc(t, adminToken), &controlv1.SetStepStateRequest{RunId: "etl-2", Step: "featurejob", State: "failed"}); err != nil {
		t.Fatal(err)
	}

	got := runSeries(f.scrape(t))
	want := map[string]float64{
		`cmmsflow_runs_finished_total{` + etl + `,state="failed"}`:                            2,
		`cmmsflow_runs_finished_total{` + etl + `,state="cancelled"}`:                         1,
		`cmmsflow_runs_duration_seconds_count{` + etl + `,state="failed"}`:                    2,
		`cmmsflow_runs_duration_seconds_count{` + etl + `,state="cancelled"}`:                 1,
		`cmmsflow_steps_duration_seconds_count{` + etl + `,state="failed",step="featurejob"}`: 2,
	}
	for _, p := range events.Pipelines {
		want[`cmmsflow_runs_queued{pipeline="`+p.ID+`"}`] = 0
		for _, st := range []string{"success", "failed", "cancelled"} { // counters start at 0
			k := `cmmsflow_runs_finished_total{pipeline="` + p.ID + `",state="` + st + `"}`
			if _, set := want[k]; !set {
				want[k] = 0
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("run series %v\nwant %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// A DAG run marked failed through the Airflow API counts like one marked
// through control's own API.
func TestRunMetricsOfAirflowChanges(t *testing.T) {
	f := newFixture(t)
	f.runningETLRun(t, "etl-1")
	code, body := f.do(t, "PATCH", "/api/v1/dags/"+events.ETLMLTraining+"/dagRuns/etl-1", adminToken, map[string]any{"state": "failed"})
	if code != 200 {
		t.Fatalf("PATCH dagRun: %d %v", code, body)
	}
	failed := `cmmsflow_runs_finished_total{pipeline="` + events.ETLMLTraining + `",state="failed"}`
	if got := runSeries(f.scrape(t)); got[failed] != 1 {
		t.Fatalf("%s = %v, want 1", failed, got[failed])
	}
}
