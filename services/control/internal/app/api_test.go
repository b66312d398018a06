package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("gRPC code %s (%v), want %s", got, err, want)
	}
}

func TestListAndGetPipelines(t *testing.T) {
	f := newFixture(t)
	f.insertRun(t, "scheduled__2026-01-05T06:00:00+00:00", events.PreventiveMaintenance, "success", time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC))
	f.insertRun(t, "scheduled__2026-01-06T06:00:00+00:00", events.PreventiveMaintenance, "failed", time.Date(2026, 1, 6, 6, 0, 0, 0, time.UTC))

	resp, err := f.client.ListPipelines(rpc(t, viewerToken), &controlv1.ListPipelinesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range resp.GetPipelines() {
		ids = append(ids, p.GetId())
		if p.GetSchedule() == "" || p.GetTimeZone() != "UTC" || p.GetNextRun() == nil || !p.GetNextRun().AsTime().After(time.Now()) {
			t.Errorf("%s: schedule %q zone %q next %v", p.GetId(), p.GetSchedule(), p.GetTimeZone(), p.GetNextRun())
		}
		if len(p.GetConfKeys()) != 1 || len(p.GetSteps()) < 2 {
			t.Errorf("%s: conf keys %v steps %v", p.GetId(), p.GetConfKeys(), p.GetSteps())
		}
	}
	if want := []string{events.ETLMLTraining, events.PreventiveMaintenance, events.WeeklyKPIReport, events.ModelMonitoring}; !slices.Equal(ids, want) {
		t.Fatalf("pipelines %v, want %v", ids, want)
	}
	pm := resp.GetPipelines()[1]
	if pm.GetLastRun().GetRunId() != "scheduled__2026-01-06T06:00:00+00:00" || pm.GetLastRun().GetState() != "failed" {
		t.Errorf("last run %v", pm.GetLastRun())
	}
	if resp.GetPipelines()[0].GetLastRun() != nil {
		t.Errorf("a pipeline that never ran has last run %v", resp.GetPipelines()[0].GetLastRun())
	}

	code, body := f.do(t, "GET", "/v1/pipelines", viewerToken, nil)
	if code != 200 || len(body["pipelines"].([]any)) != len(events.Pipelines) {
		t.Fatalf("GET /v1/pipelines: %d %v", code, body)
	}
	code, body = f.do(t, "GET", "/v1/pipelines/weekly_kpi_report", viewerToken, nil)
	if code != 200 || body["id"] != "weekly_kpi_report" || body["schedule"] != "0 8 * * 1" || body["paused"] != false || body["time_zone"] != "UTC" {
		t.Fatalf("GET pipeline: %d %v", code, body)
	}
	keys := body["conf_keys"].([]any)
	if k := keys[0].(map[string]any); k["name"] != "week" || k["format"] != "iso_week" {
		t.Errorf("conf keys %v", keys)
	}
	code, body = f.do(t, "GET", "/v1/pipelines/nope", viewerToken, nil)
	if code != 404 || body["code"] != float64(codes.NotFound) {
		t.Fatalf("unknown pipeline: %d %v", code, body)
	}
	_, err = f.client.GetPipeline(rpc(t, viewerToken), &controlv1.GetPipelineRequest{Pipeline: "nope"})
	wantCode(t, err, codes.NotFound)
}

func TestTriggerQueuesRunAndEmitsOneEvent(t *testing.T) {
	for _, via := range []string{"http", "grpc"} {
		t.Run(via, func(t *testing.T) {
			f := newFixture(t)
			var run *controlv1.Run
			conf := map[string]string{"as_of": "2026-03-01"}
			if via == "http" {
				code, body := f.do(t, "POST", "/v1/pipelines/preventive_maintenance:trigger", adminToken, map[string]any{"conf": conf})
				if code != 200 || body["created"] != true {
					t.Fatalf("trigger: %d %v", code, body)
				}
				raw, _ := json.Marshal(body["run"])
				run = &controlv1.Run{}
				if err := protojson.Unmarshal(raw, run); err != nil {
					t.Fatal(err)
				}
			} else {
				resp, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.PreventiveMaintenance, Conf: conf})
				if err != nil || !resp.GetCreated() {
					t.Fatalf("trigger: %v %v", resp, err)
				}
				run = resp.GetRun()
			}
			if !strings.HasPrefix(run.GetRunId(), "manual__") || run.GetState() != "queued" || run.GetSource() != "manual" ||
				run.GetPipeline() != events.PreventiveMaintenance || run.GetConf()["as_of"] != "2026-03-01" {
				t.Fatalf("run %v", run)
			}
			var state, confJSON string
			if err := f.pool.QueryRow(context.Background(), `SELECT state, conf::text FROM runs WHERE run_id = $1`, run.GetRunId()).Scan(&state, &confJSON); err != nil {
				t.Fatal(err)
			}
			if state != "queued" || confJSON != `{"as_of": "2026-03-01"}` {
				t.Fatalf("runs row: %s %s", state, confJSON)
			}
			msgs := eventingtest.Messages(t, f.pool, events.PipelineTriggered, "")
			if len(msgs) != 1 || eventingtest.Count(t, f.pool, "", "") != 1 {
				t.Fatalf("%d pipeline-triggered outbox rows, want exactly one", len(msgs))
			}
			a := msgs[0].Attributes
			if a["ce-type"] != events.PipelineTriggered || a["pipeline"] != events.PreventiveMaintenance ||
				a["run_id"] != run.GetRunId() || a["ce-source"] != "//cmmsflow/control" || a[eventing.AttrTraceParent] == "" {
				t.Fatalf("attributes %v", a)
			}
			ev, err := eventing.FromMessage(msgs[0])
			if err != nil {
				t.Fatal(err)
			}
			var pt eventsv1.PipelineTriggered
			if err := ev.Decode(&pt); err != nil || pt.GetSource() != "manual" || pt.GetConf()["as_of"] != "2026-03-01" ||
				!pt.GetLogicalDate().AsTime().Equal(run.GetLogicalDate().AsTime()) {
				t.Fatalf("data %s: %v", msgs[0].Data, err)
			}
			// The relay publishes it; the projection then starts the run,
			// exactly as it starts a scheduled one.
			if n, err := f.svc.Relay.Flush(context.Background()); err != nil || n != 1 {
				t.Fatalf("flush: %d %v", n, err)
			}
			if got := f.pub.got; len(got) != 1 || got[0].topic != "pipeline-triggered" {
				t.Fatalf("published %v", got)
			}
			eventingtest.Deliver(t, f.svc.Router, f.pub.got[0].msg, eventing.Handled)
			got, err := f.client.GetRun(rpc(t, viewerToken), &controlv1.GetRunRequest{RunId: run.GetRunId()})
			if err != nil || got.GetState() != "running" || len(got.GetSteps()) != 2 || got.GetSteps()[0].GetState() != "pending" {
				t.Fatalf("after the projection: %v %v", got, err)
			}
		})
	}
}

func TestTriggerIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	first, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{
		Pipeline: events.WeeklyKPIReport, Conf: map[string]string{"week": "2026-W10"}, IdempotencyKey: "ci-build-42"})
	if err != nil || !first.GetCreated() {
		t.Fatal(first, err)
	}
	// A repeat over HTTP returns the first run, 200, created false.
	code, body := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:trigger", adminToken,
		map[string]any{"conf": map[string]string{"week": "2026-W10"}, "idempotency_key": "ci-build-42"})
	if code != 200 || body["created"] != false || body["run"].(map[string]any)["run_id"] != first.GetRun().GetRunId() ||
		body["run"].(map[string]any)["idempotency_key"] != "ci-build-42" {
		t.Fatalf("repeat: %d %v", code, body)
	}
	again, err := f.client.TriggerPipeline(rpc(t, admin2Token), &controlv1.TriggerPipelineRequest{
		Pipeline: events.WeeklyKPIReport, Conf: map[string]string{"week": "2026-W10"}, IdempotencyKey: "ci-build-42"})
	if err != nil || again.GetCreated() || again.GetRun().GetRunId() != first.GetRun().GetRunId() {
		t.Fatalf("repeat over gRPC: %v %v", again, err)
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 1 {
		t.Fatalf("%d runs", n)
	}
	if n := len(eventingtest.Messages(t, f.pool, events.PipelineTriggered, "")); n != 1 {
		t.Fatalf("%d events", n)
	}
	// The same key with another conf is a conflict.
	code, body = f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:trigger", adminToken,
		map[string]any{"conf": map[string]string{"week": "2026-W11"}, "idempotency_key": "ci-build-42"})
	if code != http.StatusConflict || !strings.Contains(body["message"].(string), "different conf") {
		t.Fatalf("same key, other conf: %d %v", code, body)
	}
	// Keys are per pipeline.
	other, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{
		Pipeline: events.PreventiveMaintenance, IdempotencyKey: "ci-build-42"})
	if err != nil || !other.GetCreated() || other.GetRun().GetRunId() == first.GetRun().GetRunId() {
		t.Fatalf("same key, other pipeline: %v %v", other, err)
	}
	// Without a key every trigger is a new run.
	a, err1 := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport})
	b, err2 := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport})
	if err1 != nil || err2 != nil || a.GetRun().GetRunId() == b.GetRun().GetRunId() {
		t.Fatalf("two keyless triggers: %v %v / %v %v", a, err1, b, err2)
	}
	for _, bad := range []string{strings.Repeat("k", 129), "has space", "semi;colon", "é"} {
		_, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport, IdempotencyKey: bad})
		wantCode(t, err, codes.InvalidArgument)
	}
}

func TestTriggerConfValidation(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		pipeline string
		conf     map[string]string
		ok       bool
		mention  string // the error names the key
	}{
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-02-28"}, true, ""},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2024-02-29"}, true, ""},
		{events.PreventiveMaintenance, nil, true, ""},
		{events.WeeklyKPIReport, map[string]string{"week": "2026-W01"}, true, ""},
		{events.WeeklyKPIReport, map[string]string{"week": "2026-W53"}, true, ""}, // 2026 has 53 ISO weeks
		{events.ETLMLTraining, map[string]string{"snapshot_date": "2026-01-31"}, true, ""},
		// Undeclared keys are kept for the run (Airflow's conf), whatever they say.
		{events.PreventiveMaintenance, map[string]string{"week": "2026-W01"}, true, ""},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-02-30"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-2-3"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": "yesterday"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-03-01T00:00:00Z"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": " 2026-03-01"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-03-01'; DROP TABLE runs; --"}, false, `"as_of"`},
		{events.PreventiveMaintenance, map[string]string{"as_of": "2026-03-01", "x": "1"}, true, ""},
		{events.PreventiveMaintenance, map[string]string{"as_of) VALUES ('x": "2026-03-01"}, true, ""},
		{events.WeeklyKPIReport, map[string]string{"week": "2025-W53"}, false, `"week"`}, // 2025 has 52
		{events.WeeklyKPIReport, map[string]string{"week": "2026-W00"}, false, `"week"`},
		{events.WeeklyKPIReport, map[string]string{"week": "2026-10"}, false, `"week"`},
		{events.WeeklyKPIReport, map[string]string{"week": "1 OR 1=1"}, false, `"week"`},
		{events.ETLMLTraining, map[string]string{"snapshot_date": ""}, false, `"snapshot_date"`},
		{events.ETLMLTraining, map[string]string{"as_of": "2026-01-31"}, true, ""},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: c.pipeline, Conf: c.conf})
			code, body := f.do(t, "POST", "/v1/pipelines/"+c.pipeline+":trigger", admin2Token, map[string]any{"conf": c.conf})
			if c.ok {
				if err != nil || code != 200 {
					t.Fatalf("%v: gRPC %v, HTTP %d %v", c.conf, err, code, body)
				}
				return
			}
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(status.Convert(err).Message(), c.mention) {
				t.Errorf("message %q does not name %s", status.Convert(err).Message(), c.mention)
			}
			if code != 400 || !strings.Contains(body["message"].(string), c.mention) {
				t.Errorf("HTTP %d %v", code, body)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 20 {
		t.Errorf("%d runs, want 20 (the 10 valid cases, twice)", n)
	}
	if n := eventingtest.Count(t, f.pool, "", ""); n != 20 {
		t.Errorf("%d outbox rows, want 20", n)
	}
	// Unknown pipeline, unknown body field.
	_, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: "nope"})
	wantCode(t, err, codes.NotFound)
	if code, body := f.do(t, "POST", "/v1/pipelines/nope:trigger", adminToken, map[string]any{}); code != 404 {
		t.Errorf("unknown pipeline: %d %v", code, body)
	}
	if code, body := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:trigger", adminToken, map[string]any{"confs": map[string]string{}}); code != 400 {
		t.Errorf("unknown field: %d %v", code, body)
	}
}

// runIDs lists every run id of the pages of ListRuns over HTTP.
func (f *fixture) pagesHTTP(t *testing.T, query url.Values) (ids []string, pages int) {
	t.Helper()
	for {
		code, body := f.do(t, "GET", "/v1/runs?"+query.Encode(), viewerToken, nil)
		if code != 200 {
			t.Fatalf("list runs %v: %d %v", query, code, body)
		}
		pages++
		for _, r := range body["runs"].([]any) {
			ids = append(ids, r.(map[string]any)["run_id"].(string))
		}
		next := body["next_page_token"].(string)
		if next == "" {
			return ids, pages
		}
		query.Set("page_token", next)
	}
}

func TestListRunsPaging(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 130 runs across the pipelines; pairs share a queued_at, so the run id
	// breaks ties.
	f.exec(t, `
		INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at)
		SELECT format('r%s', lpad(i::text, 3, '0')),
			(ARRAY['etl_ml_training', 'preventive_maintenance', 'weekly_kpi_report'])[1 + i % 3],
			(ARRAY['success', 'failed'])[1 + i % 2], 'scheduled',
			$1::timestamptz + (i / 2) * interval '1 hour', $1::timestamptz + (i / 2) * interval '1 hour'
		FROM generate_series(0, 129) i`, base)

	ids, pages := f.pagesHTTP(t, url.Values{"page_size": {"7"}})
	if len(ids) != 130 || pages != 19 {
		t.Fatalf("%d runs in %d pages", len(ids), pages)
	}
	want := make([]string, 130)
	for i := range want {
		want[i] = fmt.Sprintf("r%03d", 129-i)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("order/duplicates: got %v", ids)
	}
	// A page_size above 100 is treated as 100; 0 means 20.
	code, body := f.do(t, "GET", "/v1/runs?page_size=1000", viewerToken, nil)
	if code != 200 || len(body["runs"].([]any)) != 100 || body["next_page_token"] == "" {
		t.Fatalf("page_size 1000: %d, %d runs", code, len(body["runs"].([]any)))
	}
	resp, err := f.client.ListRuns(rpc(t, viewerToken), &controlv1.ListRunsRequest{})
	if err != nil || len(resp.GetRuns()) != 20 {
		t.Fatalf("default page: %d runs, %v", len(resp.GetRuns()), err)
	}
	// Filters, over gRPC, every page.
	var got []string
	req := &controlv1.ListRunsRequest{Pipeline: events.PreventiveMaintenance, State: "failed", PageSize: 4}
	for {
		resp, err := f.client.ListRuns(rpc(t, viewerToken), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetRuns() {
			if r.GetPipeline() != events.PreventiveMaintenance || r.GetState() != "failed" {
				t.Fatalf("filtered list has %v", r)
			}
			got = append(got, r.GetRunId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	// i % 3 == 1 and i odd: i = 1, 7, 13, ... < 130.
	if len(got) != 22 || got[0] != "r127" || got[21] != "r001" {
		t.Fatalf("filtered: %v", got)
	}
	// A token only continues the listing it came from.
	first, _ := f.client.ListRuns(rpc(t, viewerToken), &controlv1.ListRunsRequest{PageSize: 5})
	_, err = f.client.ListRuns(rpc(t, viewerToken), &controlv1.ListRunsRequest{PageSize: 5, State: "success", PageToken: first.GetNextPageToken()})
	wantCode(t, err, codes.InvalidArgument)
	for _, q := range []string{"page_token=garbage", "page_size=-1", "state=bogus", "pipeline=nope", "page_size=abc"} {
		if code, body := f.do(t, "GET", "/v1/runs?"+q, viewerToken, nil); code != 400 {
			t.Errorf("%s: %d %v", q, code, body)
		}
	}
}

func TestGetRun(t *testing.T) {
	f := newFixture(t)
	runID := "manual__2026-03-01T10:11:12.123456+00:00"
	f.insertRun(t, runID, events.WeeklyKPIReport, "running", time.Now())
	f.exec(t, `UPDATE steps SET state = 'success', attempts = 2, started_at = now() - interval '1 minute', ended_at = now(),
		summary = 'report built', figures = '{"pages": 7, "kpis": 12.5}' WHERE run_id = $1 AND step = 'reporter'`, runID)
	f.exec(t, `UPDATE steps SET state = 'up_for_retry', attempts = 1, error = 'smtp: 451' WHERE run_id = $1 AND step = 'notifier'`, runID)

	run, err := f.client.GetRun(rpc(t, viewerToken), &controlv1.GetRunRequest{RunId: runID})
	if err != nil {
		t.Fatal(err)
	}
	steps := run.GetSteps()
	if len(steps) != 2 || steps[0].GetStep() != "reporter" || steps[0].GetAttempts() != 2 || steps[0].GetFigures()["pages"] != 7 ||
		steps[0].GetSummary() != "report built" || steps[0].GetEndedAt() == nil || steps[1].GetError() != "smtp: 451" ||
		steps[1].GetState() != "up_for_retry" || steps[1].GetPosition() != 1 {
		t.Fatalf("steps %v", steps)
	}
	// Run ids carry ':' and '+' in the path, also before a ":cancel" verb.
	code, body := f.do(t, "GET", "/v1/runs/"+runID, viewerToken, nil)
	if code != 200 || body["run_id"] != runID || len(body["steps"].([]any)) != 2 {
		t.Fatalf("GET run: %d %v", code, body)
	}
	if st := body["steps"].([]any)[0].(map[string]any); st["figures"].(map[string]any)["kpis"] != 12.5 || st["attempts"] != float64(2) {
		t.Errorf("step JSON %v", st)
	}
	if code, _ := f.do(t, "GET", "/v1/runs/"+url.PathEscape(runID), viewerToken, nil); code != 200 {
		t.Errorf("escaped run id: %d", code)
	}
	if code, body := f.do(t, "GET", "/v1/runs/nope", viewerToken, nil); code != 404 || !strings.Contains(body["message"].(string), "not found") {
		t.Fatalf("unknown run: %d %v", code, body)
	}
}

func TestPauseUnpause(t *testing.T) {
	f := newFixture(t)
	paused := func() bool {
		return f.count(t, `SELECT count(*) FROM pipelines WHERE id = 'weekly_kpi_report' AND paused`) == 1
	}
	code, body := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:pause", adminToken, map[string]any{})
	if code != 200 || body["paused"] != true || !paused() {
		t.Fatalf("pause: %d %v", code, body)
	}
	// Idempotent.
	if p, err := f.client.PausePipeline(rpc(t, adminToken), &controlv1.PausePipelineRequest{Pipeline: events.WeeklyKPIReport}); err != nil || !p.GetPaused() {
		t.Fatal(p, err)
	}
	p, err := f.client.UnpausePipeline(rpc(t, adminToken), &controlv1.UnpausePipelineRequest{Pipeline: events.WeeklyKPIReport})
	if err != nil || p.GetPaused() || paused() {
		t.Fatal(p, err)
	}
	if code, _ := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:pause", adminToken, nil); code != 200 || !paused() {
		t.Fatalf("pause without a body: %d", code)
	}
	if code, body := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:unpause", adminToken, map[string]any{}); code != 200 || body["paused"] != false || paused() {
		t.Fatalf("unpause: %d %v", code, body)
	}
	_, err = f.client.PausePipeline(rpc(t, adminToken), &controlv1.PausePipelineRequest{Pipeline: "nope"})
	wantCode(t, err, codes.NotFound)
}

func TestCancelRun(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.insertRun(t, "queued-run", events.PreventiveMaintenance, "queued", now)
	f.insertRun(t, "running-run", events.ETLMLTraining, "running", now)
	f.exec(t, `UPDATE steps SET state = 'success' WHERE run_id = 'running-run' AND step = 'extractor'`)
	f.exec(t, `UPDATE steps SET state = 'running' WHERE run_id = 'running-run' AND step = 'featurejob'`)
	f.insertRun(t, "done-run", events.PreventiveMaintenance, "success", now)
	// Waits for running-run's slot (max_active_runs 1).
	f.insertRun(t, "next-etl", events.ETLMLTraining, "queued", now.Add(time.Second))

	code, body := f.do(t, "POST", "/v1/runs/queued-run:cancel", adminToken, map[string]any{})
	if code != 200 || body["state"] != "cancelled" || body["error"] != "cancelled by ops" || body["ended_at"] == nil {
		t.Fatalf("cancel queued: %d %v", code, body)
	}
	run, err := f.client.CancelRun(rpc(t, admin2Token), &controlv1.CancelRunRequest{RunId: "running-run"})
	if err != nil || run.GetState() != "cancelled" {
		t.Fatal(run, err)
	}
	var states []string
	for _, s := range run.GetSteps() {
		states = append(states, s.GetState())
	}
	// Done steps stay; the running one is failed (its service stops its
	// work, eventing.ErrRunStopped); the pending ones are skipped.
	if want := []string{"success", "failed", "skipped", "skipped", "skipped"}; !slices.Equal(states, want) {
		t.Fatalf("steps %v, want %v", states, want)
	}
	if s := run.GetSteps()[1]; s.GetError() != "cancelled by ops2" || s.GetStateSetBy() != "ops2" || run.GetStateSetBy() != "ops2" {
		t.Fatalf("the stopped step %v of run %v: want it failed by ops2", s, run)
	}
	// The cancel freed running-run's slot: the queued ETL run started.
	if n := f.count(t, `SELECT count(*) FROM runs WHERE run_id = 'next-etl' AND state = 'running'`); n != 1 {
		t.Fatal("cancelling the running run did not start the queued one")
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, "next-etl"); n != 1 {
		t.Fatalf("%d run-started events for the queued run", n)
	}
	_, err = f.client.CancelRun(rpc(t, adminToken), &controlv1.CancelRunRequest{RunId: "done-run"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = f.client.CancelRun(rpc(t, adminToken), &controlv1.CancelRunRequest{RunId: "queued-run"})
	wantCode(t, err, codes.FailedPrecondition)
	if code, body := f.do(t, "POST", "/v1/runs/done-run:cancel", adminToken, nil); code != 400 || !strings.Contains(body["message"].(string), "is success") {
		t.Fatalf("cancel finished: %d %v", code, body)
	}
	if code, _ := f.do(t, "POST", "/v1/runs/nope:cancel", adminToken, nil); code != 404 {
		t.Fatalf("cancel unknown: %d", code)
	}
	// A cancelled queued run is never started by its trigger.
	if n := f.count(t, `SELECT count(*) FROM runs WHERE run_id = 'done-run' AND state = 'success'`); n != 1 {
		t.Fatal("a finished run changed")
	}
}

func TestListNotifications(t *testing.T) {
	f := newFixture(t)
	f.exec(t, `INSERT INTO technicians (id, code, name, email) VALUES (7, 'T7', 'Ana', 'ana@example.com'), (8, 'T8', 'Bo', 'bo@example.com')`)
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	f.exec(t, `
		INSERT INTO notifications (dedupe_key, run_id, channel, technician_id, recipient, subject, body, status, kind, pipeline, created_at)
		SELECT 'k' || i, 'run-' || i, CASE WHEN i % 5 = 0 THEN 'email' ELSE 'inbox' END, CASE WHEN i % 7 = 0 THEN 8 ELSE 7 END,
			'ana', 'subject ' || i, 'body', 'sent', 'wo_digest', 'preventive_maintenance', $1::timestamptz + (i / 3) * interval '1 minute'
		FROM generate_series(1, 60) i`, base)
	want := f.count(t, `SELECT count(*) FROM notifications WHERE channel = 'inbox' AND technician_id = 7`)

	var got []int64
	var last time.Time
	req := &controlv1.ListNotificationsRequest{TechnicianId: 7, PageSize: 6}
	for {
		resp, err := f.client.ListNotifications(rpc(t, viewerToken), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range resp.GetNotifications() {
			if n.GetTechnicianId() != 7 || slices.Contains(got, n.GetId()) {
				t.Fatalf("notification %v (dup or other technician)", n)
			}
			if c := n.GetCreatedAt().AsTime(); !last.IsZero() && c.After(last) {
				t.Fatalf("not newest first: %v after %v", c, last)
			}
			last = n.GetCreatedAt().AsTime()
			got = append(got, n.GetId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(got) != want {
		t.Fatalf("%d notifications, want %d", len(got), want)
	}
	code, body := f.do(t, "GET", "/v1/technicians/7/notifications?page_size=3", viewerToken, nil)
	if code != 200 || len(body["notifications"].([]any)) != 3 || body["next_page_token"] == "" {
		t.Fatalf("HTTP: %d %v", code, body)
	}
	if n := body["notifications"].([]any)[0].(map[string]any); n["subject"] != "subject 59" || n["kind"] != "wo_digest" {
		t.Errorf("newest %v", n)
	}
	if code, _ := f.do(t, "GET", "/v1/technicians/99/notifications", viewerToken, nil); code != 404 {
		t.Errorf("unknown technician: %d", code)
	}
	if code, _ := f.do(t, "GET", "/v1/technicians/0/notifications", viewerToken, nil); code != 400 {
		t.Errorf("technician 0: %d", code)
	}
	if code, _ := f.do(t, "GET", "/v1/technicians/8/notifications?page_token="+url.QueryEscape(body["next_page_token"].(string)), viewerToken, nil); code != 400 {
		t.Errorf("another technician's token: %d", code)
	}
}

func TestHealthReflectionAndOpenAPI(t *testing.T) {
	f := newFixture(t)
	// gRPC health and /healthz need no token.
	h, err := healthpb.NewHealthClient(f.conn).Check(rpc(t, ""), &healthpb.HealthCheckRequest{Service: "cmmsflow.control.v1.ControlService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatal(h, err)
	}
	if code, _ := f.do(t, "GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	// Reflection needs a token.
	list := func(token string) ([]string, error) {
		stream, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(rpc(t, token))
		if err != nil {
			return nil, err
		}
		// A refused stream may fail Send with io.EOF; the status comes from Recv.
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		return names, nil
	}
	_, err = list("")
	wantCode(t, err, codes.Unauthenticated)
	names, err := list(viewerToken)
	if err != nil || !slices.Contains(names, "cmmsflow.control.v1.ControlService") || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Fatalf("reflection: %v %v", names, err)
	}

	resp, err := http.Get(f.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Swagger string                                     `json:"swagger"`
		Paths   map[string]map[string]json.RawMessage      `json:"paths"`
		Defs    map[string]json.RawMessage                 `json:"definitions"`
		Sec     map[string]struct{ Type, In, Name string } `json:"securityDefinitions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || doc.Swagger != "2.0" {
		t.Fatalf("openapi: %d %v %q", resp.StatusCode, err, doc.Swagger)
	}
	routes := map[string]string{
		"/v1/pipelines": "get", "/v1/pipelines/{pipeline}": "get", "/v1/pipelines/{pipeline}:trigger": "post",
		"/v1/pipelines/{pipeline}:pause": "post", "/v1/pipelines/{pipeline}:unpause": "post", "/v1/runs": "get",
		"/v1/runs/{run_id}": "get", "/v1/runs/{run_id}:cancel": "post", "/v1/runs/{run_id}:retry": "post", "/v1/technicians/{technician_id}/notifications": "get",
		"/v1/reports": "get", "/v1/pipelines/{pipeline}:backfill": "post",
		"/v1/runs/{run_id}:setState": "post", "/v1/runs/{run_id}/steps/{step}:setState": "post",
	}
	for path, method := range routes {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("openapi has no %s %s", method, path)
		}
	}
	if len(doc.Paths) != len(routes) || doc.Defs["v1Run"] == nil || doc.Defs["v1Report"] == nil || doc.Sec["bearer"].In != "header" {
		t.Errorf("openapi paths %d, security %v", len(doc.Paths), doc.Sec)
	}
}
