package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Backfilling three weekly KPI ticks creates their three scheduled runs, the
// first started and the others queued (max_active_runs 1); doing it again
// creates nothing; a dry run creates nothing.
func TestBackfill(t *testing.T) {
	f := newFixture(t)
	path := "/v1/pipelines/" + events.WeeklyKPIReport + ":backfill"
	body := map[string]any{"from_date": "2026-11-02", "to_date": "2026-11-22"}
	want := []string{
		"scheduled__2026-11-02T08:00:00+00:00", "scheduled__2026-11-09T08:00:00+00:00", "scheduled__2026-11-16T08:00:00+00:00",
	}

	dry, err := f.client.BackfillPipeline(rpc(t, adminToken), &controlv1.BackfillPipelineRequest{
		Pipeline: events.WeeklyKPIReport, FromDate: "2026-11-02", ToDate: "2026-11-22", DryRun: true})
	if err != nil || len(dry.GetTicks()) != 3 || len(dry.GetCreatedRunIds()) != 0 || dry.GetExisting() != 0 {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 0 {
		t.Fatalf("a dry run created %d runs", n)
	}
	code, resp := f.do(t, "POST", path, adminToken, body)
	if code != 200 || fmt.Sprint(resp["created_run_ids"]) != fmt.Sprint(want) || resp["existing"] != float64(0) {
		t.Fatalf("backfill: %d %v", code, resp)
	}
	var states []string
	for _, id := range want {
		var st, src string
		if err := f.pool.QueryRow(t.Context(), `SELECT state, source FROM runs WHERE run_id = $1`, id).Scan(&st, &src); err != nil || src != "backfill" {
			t.Fatalf("run %s: %s %s %v", id, st, src, err)
		}
		states = append(states, st)
	}
	if !slices.Equal(states, []string{"running", "queued", "queued"}) {
		t.Fatalf("states %v: want the oldest running, the others queued", states)
	}
	if n := eventingtest.Count(t, f.pool, events.RunStarted, ""); n != 1 {
		t.Fatalf("%d runs started", n)
	}
	code, resp = f.do(t, "POST", path, adminToken, body)
	if created, _ := resp["created_run_ids"].([]any); code != 200 || len(created) != 0 || resp["existing"] != float64(3) {
		t.Fatalf("backfill again: %d %v", code, resp)
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 3 {
		t.Fatalf("%d runs after two backfills, want 3", n)
	}
}

// Bad input gets a clear error and creates nothing.
func TestBackfillRejectsBadInput(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, pipeline, from, to string
		code                     int
		want                     string
	}{
		{"over 366 ticks", events.PreventiveMaintenance, "2025-01-01", "2026-01-02", 400, "more than 366 ticks"},
		{"366 daily ticks", events.PreventiveMaintenance, "2025-01-01", "2026-01-01", 200, ""},
		{"bad from", events.PreventiveMaintenance, "2025-1-1", "2025-02-01", 400, `from_date: "2025-1-1" is not a date`},
		{"bad to", events.PreventiveMaintenance, "2025-01-01", "soon", 400, `to_date: "soon" is not a date`},
		{"reversed", events.PreventiveMaintenance, "2025-02-01", "2025-01-01", 400, "to_date: 2025-01-01 is before from_date 2025-02-01"},
		{"unknown pipeline", "nope", "2025-01-01", "2025-01-02", 404, `pipeline "nope" not found`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, resp := f.do(t, "POST", "/v1/pipelines/"+c.pipeline+":backfill", adminToken,
				map[string]any{"from_date": c.from, "to_date": c.to, "dry_run": true})
			if code != c.code || (c.want != "" && !strings.Contains(fmt.Sprint(resp["message"]), c.want)) {
				t.Fatalf("%d %v, want %d %q", code, resp, c.code, c.want)
			}
		})
	}
	_, err := f.client.BackfillPipeline(rpc(t, viewerToken), &controlv1.BackfillPipelineRequest{
		Pipeline: events.WeeklyKPIReport, FromDate: "2026-11-02", ToDate: "2026-11-22"})
	wantCode(t, err, codes.PermissionDenied)
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 0 {
		t.Fatalf("%d runs created by refused backfills", n)
	}
}

// A pipeline shows its running and queued runs and the last week's missed
// ticks, newest first, each with its run when that exists.
func TestPipelineShowsActiveQueuedAndMissedTicks(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	pm := events.PreventiveMaintenance
	f.insertRun(t, "r-running", pm, "running", now)
	f.insertRun(t, "r-queued-1", pm, "queued", now)
	f.insertRun(t, "r-queued-2", pm, "queued", now)
	f.insertRun(t, "r-done", pm, "success", now)
	caught := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	f.insertRun(t, "scheduled__2026-11-30T06:00:00+00:00", pm, "success", caught)
	f.exec(t, `INSERT INTO missed_ticks (pipeline, tick, caught_up) VALUES ($1, $2, true), ($1, $3, false), ($1, $4, false)`,
		pm, caught, caught.AddDate(0, 0, 1), caught.AddDate(0, 0, -30))
	f.exec(t, `UPDATE missed_ticks SET detected_at = now() - interval '8 days' WHERE tick = $1`, caught.AddDate(0, 0, -30))

	p, err := f.client.GetPipeline(rpc(t, viewerToken), &controlv1.GetPipelineRequest{Pipeline: pm})
	if err != nil || p.GetActiveRuns() != 1 || p.GetQueuedRuns() != 2 || p.GetMaxActiveRuns() != 1 || !p.GetCatchup() {
		t.Fatalf("pipeline: %v, %v", p, err)
	}
	var got []string
	for _, m := range p.GetMissedTicks() {
		got = append(got, fmt.Sprintf("%s %v %q", m.GetTick().AsTime().Format(time.RFC3339), m.GetCaughtUp(), m.GetRunId()))
	}
	want := []string{`2026-12-01T06:00:00Z false ""`, `2026-11-30T06:00:00Z true "scheduled__2026-11-30T06:00:00+00:00"`}
	if !slices.Equal(got, want) {
		t.Fatalf("missed ticks %v, want %v", got, want)
	}
	code, body := f.do(t, "GET", "/v1/pipelines/"+events.WeeklyKPIReport, viewerToken, nil)
	if code != 200 || body["active_runs"] != float64(0) || len(body["missed_ticks"].([]any)) != 0 {
		t.Fatalf("KPI over HTTP: %d %v", code, body)
	}
}
