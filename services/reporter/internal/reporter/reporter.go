// Package reporter is the reporter service's step of the weekly_kpi_report
// pipeline: on run-started it computes the week's KPIs (package kpi), renders
// the charts, HTML, PDF and CSV (package render), stores them under
// reports/<iso-week>/ in the bucket, records the report and emits
// report.generated for the notifier.
//
// The step runs with no transaction open (eventing.Router.HandleStep): the
// KPI queries read through the pool, the files are rendered and uploaded
// (under fixed names, so a retry overwrites them), and only the report's
// row is written in the router's complete transaction, which also emits
// report.generated, the step's output.
package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/render"
)

// Config is the reporter service's configuration, from the environment.
type Config struct {
	config.Common
	// TimeZone is the IANA zone the report's weeks are taken in.
	TimeZone string `env:"REPORT_TIME_ZONE, default=UTC"`
	// MTBFWindowDays is the trailing window of MTBF's operating time.
	MTBFWindowDays int `env:"REPORT_MTBF_WINDOW_DAYS, default=365"`
	// DriftWarn and DriftAlert are the PSI levels the model-health section
	// marks features at: the deployer's settings of the same names.
	DriftWarn  float64 `env:"DRIFT_WARN, default=0.1"`
	DriftAlert float64 `env:"DRIFT_ALERT, default=0.25"`
}

// ConfWeek is the run conf key that picks the week to report on (2026-W47).
const ConfWeek = "week"

// Prefix is where reports are stored: reports/<iso-week>/.
const Prefix = "reports/"

// Object names inside a report's folder; the same every time, so
// regenerating a week overwrites its files.
const (
	FilePDF  = "report.pdf"
	FileHTML = "report.html"
	FileCSV  = "kpis.csv"
)

// Bucket is where the report's files go.
type Bucket interface {
	Put(ctx context.Context, name, contentType string, data []byte) error
	URI(name string) string
}

var _ Bucket = (*objstore.Store)(nil)

// Handler runs the step.
type Handler struct {
	db     kpi.Querier // set by Register
	loc    *time.Location
	window int
	drift  monitor.Thresholds
	bucket Bucket
	now    func() time.Time
}

// Validate implements service.Config.
func (c *Config) Validate() error {
	if _, err := c.location(); err != nil {
		return err
	}
	if c.MTBFWindowDays < 7 || c.MTBFWindowDays > 3660 {
		return fmt.Errorf("reporter: REPORT_MTBF_WINDOW_DAYS must be between 7 and 3660, got %d", c.MTBFWindowDays)
	}
	if err := c.thresholds().Validate(); err != nil {
		return fmt.Errorf("reporter: DRIFT_WARN, DRIFT_ALERT: %w", err)
	}
	return nil
}

func (c *Config) thresholds() monitor.Thresholds {
	return monitor.Thresholds{Warn: c.DriftWarn, Alert: c.DriftAlert}
}

func (c *Config) location() (*time.Location, error) {
	if c.TimeZone == "" || c.TimeZone == "Local" {
		return nil, fmt.Errorf("reporter: REPORT_TIME_ZONE %q: want an IANA time zone such as Europe/Berlin or UTC", c.TimeZone)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("reporter: REPORT_TIME_ZONE: %w", err)
	}
	return loc, nil
}

// Register wires the step into s: it reads through s's pool and writes to
// s's bucket.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	store, err := s.Bucket(ctx)
	if err != nil {
		return err
	}
	h, err := New(cfg, store)
	if err != nil {
		return err
	}
	h.Register(s.Router, s.Pool)
	return nil
}

// New validates cfg and returns the handler writing to bucket.
func New(cfg Config, bucket Bucket) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if bucket == nil {
		return nil, errors.New("reporter: no bucket")
	}
	loc, _ := cfg.location()
	return &Handler{loc: loc, window: cfg.MTBFWindowDays, drift: cfg.thresholds(), bucket: bucket, now: time.Now}, nil
}

// Register adds the step to the service's router; the step reads the
// source through db (the service's pool: no transaction stays open while
// it renders and uploads).
func (h *Handler) Register(r *eventing.Router, db kpi.Querier) {
	h.db = db
	r.HandleStep(events.RunStarted, events.ReportGenerated, h.Step)
}

// Week is the week a run reports on: conf "week" when given, else the ISO
// week before the one containing the logical date (in the configured zone).
func (h *Handler) Week(p *eventsv1.RunStarted) (kpi.Week, error) {
	return eventing.RunParam(p, ConfWeek, kpi.ParseWeek, func(t time.Time) kpi.Week { return kpi.ReportingWeek(t, h.loc) })
}

// Step builds and stores the report, with no transaction open; its Commit
// records the report's row and its output is report.generated. A run of
// another pipeline never gets here: the router fails it for good
// (StepReport).
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	week, err := eventing.FromRunStarted(ev, h.Week)
	if err != nil {
		return eventing.StepResult{}, err
	}
	started := time.Now()
	out, err := h.build(ctx, week)
	if err != nil {
		return eventing.StepResult{}, err
	}
	return eventing.StepResult{
		Output:  out,
		Figures: figures(out, time.Since(started)),
		Summary: fmt.Sprintf("report %s stored at %s", week, h.bucket.URI(Folder(week))),
		Commit:  func(ctx context.Context, tx pgx.Tx) error { return record(ctx, tx, ev.RunID, week, out) },
	}, nil
}

// build computes the week's KPIs through the pool, renders the report and
// stores its files: the report.generated payload.
func (h *Handler) build(ctx context.Context, week kpi.Week) (*eventsv1.ReportGenerated, error) {
	log := logging.From(ctx)
	log.DebugContext(ctx, "computing KPIs", "week", week.String())
	rep, err := kpi.Compute(ctx, h.db, kpi.Params{Week: week, Location: h.loc, MTBFWindowDays: h.window, Now: h.now(), Drift: h.drift})
	if err != nil {
		return nil, err
	}
	files, err := render.All(rep)
	if err != nil {
		return nil, eventing.Permanent(err)
	}
	out, err := h.store(ctx, week, files)
	if err != nil {
		return nil, err
	}
	out.IsoWeek, out.Kpis = week.String(), kpi.Headline(kpi.Rows(rep))
	log.InfoContext(ctx, "KPI report stored", "week", week.String(), "folder", h.bucket.URI(Folder(week)),
		"pdf_bytes", out.Pdf.Bytes)
	return out, nil
}

// figures are the step's figures: the stored objects and the headline KPIs.
func figures(out *eventsv1.ReportGenerated, took time.Duration) map[string]float64 {
	f := map[string]float64{
		"objects":       float64(3 + len(out.Charts)),
		"pdf_bytes":     float64(out.Pdf.Bytes),
		"html_bytes":    float64(out.Html.Bytes),
		"build_seconds": took.Seconds(),
	}
	for _, k := range []string{"wo_opened", "wo_completed", "wo_overdue", "mttr_hours", "pm_compliance_pct"} {
		if v, ok := out.Kpis[k]; ok {
			f[k] = v
		}
	}
	return f
}

// Folder is the bucket folder of a week's report.
func Folder(w kpi.Week) string { return Prefix + w.String() + "/" }

// store writes the report's files. Names are fixed per week: a retried or
// regenerated report replaces its files.
func (h *Handler) store(ctx context.Context, w kpi.Week, f *render.Files) (*eventsv1.ReportGenerated, error) {
	dir := Folder(w)
	put := func(name, ctype string, data []byte) (*eventsv1.StoredObject, error) {
		if err := h.bucket.Put(ctx, dir+name, ctype, data); err != nil {
			return nil, fmt.Errorf("reporter: store %s: %w", name, err)
		}
		return &eventsv1.StoredObject{Name: dir + name, Uri: h.bucket.URI(dir + name), Bytes: int64(len(data)), ContentType: ctype}, nil
	}
	out := &eventsv1.ReportGenerated{}
	var err error
	for _, c := range f.Charts {
		o, err := put(c.Name, "image/png", c.PNG)
		if err != nil {
			return nil, err
		}
		out.Charts = append(out.Charts, o)
	}
	if out.Csv, err = put(FileCSV, "text/csv; charset=utf-8", f.CSV); err != nil {
		return nil, err
	}
	if out.Html, err = put(FileHTML, "text/html; charset=utf-8", f.HTML); err != nil {
		return nil, err
	}
	if out.Pdf, err = put(FilePDF, "application/pdf", f.PDF); err != nil {
		return nil, err
	}
	return out, nil
}

// record upserts the week's row of the reports table (for control's list
// of past reports).
func record(ctx context.Context, tx pgx.Tx, runID string, w kpi.Week, r *eventsv1.ReportGenerated) error {
	type obj struct {
		Name        string `json:"name"`
		URI         string `json:"uri"`
		Bytes       int64  `json:"bytes"`
		ContentType string `json:"content_type"`
	}
	var objs []obj
	for _, o := range append([]*eventsv1.StoredObject{r.Pdf, r.Html, r.Csv}, r.Charts...) {
		objs = append(objs, obj{o.Name, o.Uri, o.Bytes, o.ContentType})
	}
	objJSON, err := json.Marshal(objs)
	if err != nil {
		return err
	}
	kpis, err := json.Marshal(r.Kpis)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO reports (iso_week, week_start, run_id, generated_at, pdf_uri, html_uri, csv_uri, objects, kpis)
		VALUES ($1, $2, $3, now(), $4, $5, $6, $7, $8)
		ON CONFLICT (iso_week) DO UPDATE SET run_id = EXCLUDED.run_id, generated_at = EXCLUDED.generated_at,
			pdf_uri = EXCLUDED.pdf_uri, html_uri = EXCLUDED.html_uri, csv_uri = EXCLUDED.csv_uri,
			objects = EXCLUDED.objects, kpis = EXCLUDED.kpis`,
		w.String(), w.Monday(), runID, r.Pdf.Uri, r.Html.Uri, r.Csv.Uri, objJSON, kpis)
	if err != nil {
		return fmt.Errorf("reporter: record report: %w", err)
	}
	return nil
}
