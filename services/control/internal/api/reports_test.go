package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// ListReports walks every week exactly once at the largest page size, and
// keeps only numeric headline figures.
func TestListReportsPagesAndKPIs(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	s := New(pool, scheduler.Table{}, &nudges{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	monday := time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC) // 2023-W01
	const n = MaxPageSize + 5
	for i := range n {
		d := monday.AddDate(0, 0, 7*i)
		y, w := d.ISOWeek()
		if _, err := pool.Exec(ctx, `INSERT INTO reports (iso_week, week_start, run_id, pdf_uri, html_uri, csv_uri, kpis)
			VALUES ($1, $2, 'r', 'p', 'h', 'c', '{"wo_opened": 4, "note": "x", "none": null}')`,
			fmt.Sprintf("%d-W%02d", y, w), d); err != nil {
			t.Fatal(err)
		}
	}
	req := &controlv1.ListReportsRequest{PageSize: 1000}
	var got []*controlv1.Report
	for {
		resp, err := s.ListReports(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetReports()) > MaxPageSize {
			t.Fatalf("page of %d reports", len(resp.GetReports()))
		}
		got = append(got, resp.GetReports()...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(got) != n {
		t.Fatalf("%d reports, want %d", len(got), n)
	}
	for i, r := range got {
		d := monday.AddDate(0, 0, 7*(n-1-i))
		if r.GetWeekStart() != d.Format(time.DateOnly) {
			t.Fatalf("report %d: week start %s, want %s", i, r.GetWeekStart(), d.Format(time.DateOnly))
		}
		if len(r.GetKpis()) != 1 || r.GetKpis()["wo_opened"] != 4 || r.GetChartUris() != nil {
			t.Fatalf("report %d: kpis %v charts %v", i, r.GetKpis(), r.GetChartUris())
		}
	}
}
