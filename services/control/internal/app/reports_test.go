package app_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// insertReport adds a reports row as the reporter writes it: the files
// first, then the charts, in objects.
func (f *fixture) insertReport(t *testing.T, week, monday, runID string, generated time.Time, kpis string) {
	t.Helper()
	dir := "gs://bkt/reports/" + week + "/"
	objects := `[{"name": "reports/` + week + `/report.pdf", "uri": "` + dir + `report.pdf", "bytes": 10, "content_type": "application/pdf"},
		{"name": "reports/` + week + `/report.html", "uri": "` + dir + `report.html", "bytes": 10, "content_type": "text/html; charset=utf-8"},
		{"name": "reports/` + week + `/kpis.csv", "uri": "` + dir + `kpis.csv", "bytes": 10, "content_type": "text/csv; charset=utf-8"},
		{"name": "reports/` + week + `/trend.png", "uri": "` + dir + `trend.png", "bytes": 10, "content_type": "image/png"},
		{"name": "reports/` + week + `/backlog.png", "uri": "` + dir + `backlog.png", "bytes": 10, "content_type": "image/png"}]`
	f.exec(t, `INSERT INTO reports (iso_week, week_start, run_id, generated_at, pdf_uri, html_uri, csv_uri, objects, kpis)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		week, monday, runID, generated, dir+"report.pdf", dir+"report.html", dir+"kpis.csv", objects, kpis)
}

func TestListReports(t *testing.T) {
	f := newFixture(t)

	// No report yet: an empty list, over both transports.
	resp, err := f.client.ListReports(rpc(t, viewerToken), &controlv1.ListReportsRequest{})
	if err != nil || len(resp.GetReports()) != 0 || resp.GetNextPageToken() != "" {
		t.Fatalf("empty: %v %v", resp, err)
	}
	code, body := f.do(t, "GET", "/v1/reports", viewerToken, nil)
	if code != 200 || len(body["reports"].([]any)) != 0 || body["next_page_token"] != "" {
		t.Fatalf("GET /v1/reports, empty: %d %v", code, body)
	}

	// Five weeks across a year end; 2025-W50 was regenerated last, which
	// does not move it: the order is by week.
	gen := time.Date(2026, 1, 19, 8, 0, 0, 0, time.UTC)
	f.insertReport(t, "2026-W02", "2026-01-05", "scheduled__2026-01-12T08:00:00+00:00", gen.AddDate(0, 0, -7), `{"wo_completed": 41, "mttr_hours": 5.25}`)
	f.insertReport(t, "2025-W51", "2025-12-15", "r51", gen.AddDate(0, 0, -28), `{}`)
	f.insertReport(t, "2026-W03", "2026-01-12", "r03", gen, `{"pm_compliance_pct": 87.5}`)
	f.insertReport(t, "2025-W50", "2025-12-08", "manual__2026-01-19T09:00:00+00:00", gen.Add(time.Hour), `{"wo_opened": 3}`)
	f.insertReport(t, "2026-W01", "2025-12-29", "r01", gen.AddDate(0, 0, -14), `{"wo_overdue": 0}`)
	want := []string{"2026-W03", "2026-W02", "2026-W01", "2025-W51", "2025-W50"}

	// gRPC: pages of two, newest week first.
	var weeks []string
	req := &controlv1.ListReportsRequest{PageSize: 2}
	for page := 0; ; page++ {
		resp, err := f.client.ListReports(rpc(t, viewerToken), req)
		if err != nil {
			t.Fatal(err)
		}
		if page < 2 && len(resp.GetReports()) != 2 || page == 2 && len(resp.GetReports()) != 1 || page > 2 {
			t.Fatalf("page %d: %d reports", page, len(resp.GetReports()))
		}
		for _, r := range resp.GetReports() {
			weeks = append(weeks, r.GetIsoWeek())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if !slices.Equal(weeks, want) {
		t.Fatalf("weeks %v, want %v", weeks, want)
	}

	resp, err = f.client.ListReports(rpc(t, viewerToken), &controlv1.ListReportsRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	w02 := resp.GetReports()[1]
	if w02.GetIsoWeek() != "2026-W02" || w02.GetWeekStart() != "2026-01-05" || w02.GetRunId() != "scheduled__2026-01-12T08:00:00+00:00" ||
		!w02.GetGeneratedAt().AsTime().Equal(gen.AddDate(0, 0, -7)) ||
		w02.GetPdfUri() != "gs://bkt/reports/2026-W02/report.pdf" || w02.GetHtmlUri() != "gs://bkt/reports/2026-W02/report.html" ||
		w02.GetCsvUri() != "gs://bkt/reports/2026-W02/kpis.csv" ||
		!slices.Equal(w02.GetChartUris(), []string{"gs://bkt/reports/2026-W02/trend.png", "gs://bkt/reports/2026-W02/backlog.png"}) ||
		len(w02.GetKpis()) != 2 || w02.GetKpis()["wo_completed"] != 41 || w02.GetKpis()["mttr_hours"] != 5.25 {
		t.Fatalf("2026-W02: %v", w02)
	}

	// HTTP: the same pages, snake_case fields.
	code, body = f.do(t, "GET", "/v1/reports?page_size=3", viewerToken, nil)
	if code != 200 || len(body["reports"].([]any)) != 3 || body["next_page_token"] == "" {
		t.Fatalf("GET /v1/reports page 1: %d %v", code, body)
	}
	first := body["reports"].([]any)[0].(map[string]any)
	if first["iso_week"] != "2026-W03" || first["week_start"] != "2026-01-12" || first["run_id"] != "r03" ||
		first["generated_at"] != "2026-01-19T08:00:00Z" || first["pdf_uri"] != "gs://bkt/reports/2026-W03/report.pdf" ||
		len(first["chart_uris"].([]any)) != 2 || first["kpis"].(map[string]any)["pm_compliance_pct"] != 87.5 {
		t.Fatalf("GET /v1/reports first report: %v", first)
	}
	code, body = f.do(t, "GET", "/v1/reports?page_size=3&page_token="+url.QueryEscape(body["next_page_token"].(string)), viewerToken, nil)
	if code != 200 || body["next_page_token"] != "" {
		t.Fatalf("GET /v1/reports page 2: %d %v", code, body)
	}
	var rest []string
	for _, r := range body["reports"].([]any) {
		rest = append(rest, r.(map[string]any)["iso_week"].(string))
	}
	if !slices.Equal(rest, want[3:]) {
		t.Fatalf("page 2: %v, want %v", rest, want[3:])
	}

	// Bad paging input is INVALID_ARGUMENT / 400.
	for _, q := range []string{"page_size=-1", "page_token=nope", "page_token=eyJ0IjoxLCJpIjoiMjAyNi1XMDEiLCJmIjoieCJ9"} {
		if code, body := f.do(t, "GET", "/v1/reports?"+q, viewerToken, nil); code != 400 || body["code"] != float64(codes.InvalidArgument) {
			t.Errorf("GET /v1/reports?%s: %d %v", q, code, body)
		}
	}
	_, err = f.client.ListReports(rpc(t, viewerToken), &controlv1.ListReportsRequest{PageToken: "nope"})
	wantCode(t, err, codes.InvalidArgument)
}

// ListReports is a viewer read: no or a bad token is refused, viewer and
// admin tokens are accepted.
func TestListReportsAuth(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, token string
		http        int
		grpc        codes.Code
	}{
		{"no token", "", 401, codes.Unauthenticated},
		{"bad token", badToken, 401, codes.Unauthenticated},
		{"viewer", viewerToken, 200, codes.OK},
		{"admin", adminToken, 200, codes.OK},
	} {
		if code, _ := f.do(t, "GET", "/v1/reports", c.token, nil); code != c.http {
			t.Errorf("%s: GET /v1/reports %d, want %d", c.name, code, c.http)
		}
		_, err := f.client.ListReports(rpc(t, c.token), &controlv1.ListReportsRequest{})
		if got := status.Code(err); got != c.grpc {
			t.Errorf("%s: ListReports %s (%v), want %s", c.name, got, err, c.grpc)
		}
	}
}
