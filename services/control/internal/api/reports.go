package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// storedObject is an entry of reports.objects, as the reporter writes it.
type storedObject struct {
	URI         string `json:"uri"`
	ContentType string `json:"content_type"`
}

// ListReports pages through the stored weekly KPI reports, newest ISO week
// first (week_start, then iso_week).
func (s *Server) ListReports(ctx context.Context, req *controlv1.ListReportsRequest) (*controlv1.ListReportsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	tok, err := decodeToken(req.GetPageToken(), "")
	if err != nil {
		return nil, err
	}
	var (
		after   *time.Time
		afterID string
	)
	if tok != nil {
		t := tok.time().UTC()
		after, afterID = &t, tok.ID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT iso_week, week_start, run_id, generated_at, pdf_uri, html_uri, csv_uri, objects, kpis
		FROM reports
		WHERE $1::date IS NULL OR (week_start, iso_week) < ($1::date, $2)
		ORDER BY week_start DESC, iso_week DESC LIMIT $3`, after, afterID, size+1)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	type row struct {
		report    *controlv1.Report
		weekStart time.Time
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var (
			rep       controlv1.Report
			weekStart time.Time
			generated time.Time
			objects   []storedObject
			kpis      map[string]any
		)
		if err := r.Scan(&rep.IsoWeek, &weekStart, &rep.RunId, &generated, &rep.PdfUri, &rep.HtmlUri, &rep.CsvUri,
			&objects, &kpis); err != nil {
			return row{}, err
		}
		rep.WeekStart = weekStart.Format(time.DateOnly)
		rep.GeneratedAt = ts(&generated)
		for _, o := range objects {
			if strings.HasPrefix(o.ContentType, "image/") {
				rep.ChartUris = append(rep.ChartUris, o.URI)
			}
		}
		// The reporter writes numbers only; anything else is left out.
		rep.Kpis = make(map[string]float64, len(kpis))
		for k, v := range kpis {
			if f, ok := v.(float64); ok {
				rep.Kpis[k] = f
			}
		}
		return row{&rep, weekStart}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	resp := &controlv1.ListReportsResponse{Reports: make([]*controlv1.Report, 0, min(len(got), size))}
	for _, g := range got[:min(len(got), size)] {
		resp.Reports = append(resp.Reports, g.report)
	}
	if len(got) > size {
		last := got[size-1]
		resp.NextPageToken = encodeToken(last.weekStart, last.report.GetIsoWeek(), "")
	}
	return resp, nil
}
