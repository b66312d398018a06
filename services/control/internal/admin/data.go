package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func asHTTPError(err error, target **httpError) bool { return errors.As(err, target) }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// limit reads ?limit= (default def, at most 200).
func limit(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, badRequest("limit: want a positive integer")
	}
	return min(n, 200), nil
}

// Notification is an in-app notification with its technician.
// Its fields are in the order of the notifications query's columns.
type Notification struct {
	ID           int64      `json:"id"`
	TechnicianID int64      `json:"technician_id"`
	Technician   string     `json:"technician"`
	RunID        string     `json:"run_id"`
	Pipeline     string     `json:"pipeline"`
	Kind         string     `json:"kind"`
	Subject      string     `json:"subject"`
	Body         string     `json:"body"`
	Status       string     `json:"status"`
	CreatedAt    time.Time  `json:"created_at"`
	ReadAt       *time.Time `json:"read_at"`
}

// notifications lists the newest in-app notifications of every technician
// (the API's ListNotifications reads one technician's inbox).
func (h *Handler) notifications(_ http.ResponseWriter, r *http.Request) (any, error) {
	return newest(h, r, 50, "notifications", `
		SELECT n.id, coalesce(n.technician_id, 0), coalesce(t.name, n.recipient), n.run_id, n.pipeline, n.kind,
		       n.subject, n.body, n.status, n.created_at, n.read_at
		FROM notifications n LEFT JOIN technicians t ON t.id = n.technician_id
		WHERE n.channel = 'inbox'
		ORDER BY n.created_at DESC, n.id DESC LIMIT $1`,
		pgx.RowToStructByPos[Notification])
}

// Link is a named link.
type Link struct {
	Name string `json:"name"`
	URI  string `json:"uri"`
	URL  string `json:"url"`
}

// Report is a stored weekly report.
type Report struct {
	ISOWeek     string           `json:"iso_week"`
	WeekStart   string           `json:"week_start"`
	RunID       string           `json:"run_id"`
	GeneratedAt time.Time        `json:"generated_at"`
	Links       []Link           `json:"links"`
	KPIs        map[string]any   `json:"kpis"`
	Objects     []map[string]any `json:"objects"`
	// Headline is the report's KPI tiles against the report before it.
	Headline []Tile `json:"headline"`
}

func (h *Handler) reports(_ http.ResponseWriter, r *http.Request) (any, error) {
	n, err := limit(r, 52)
	if err != nil {
		return nil, err
	}
	got, err := h.loadReports(r.Context(), n+1) // and the one before the last, for its change
	if err != nil {
		return nil, err
	}
	for i := range got {
		prev, against := map[string]float64{}, ""
		if i+1 < len(got) {
			prev, against = figures(got[i+1].KPIs), got[i+1].ISOWeek
		}
		got[i].Headline = tiles(figures(got[i].KPIs), prev, against)
	}
	return map[string]any{"reports": got[:min(n, len(got))]}, nil
}

// loadReports reads the n newest stored reports, newest first.
func (h *Handler) loadReports(ctx context.Context, n int) ([]Report, error) {
	return collect(ctx, h, "reports", `
		SELECT iso_week, week_start::text, run_id, generated_at, pdf_uri, html_uri, csv_uri, kpis, objects
		FROM reports ORDER BY week_start DESC LIMIT $1`,
		func(row pgx.CollectableRow) (Report, error) {
			var (
				v             Report
				pdf, htm, csv string
			)
			if err := row.Scan(&v.ISOWeek, &v.WeekStart, &v.RunID, &v.GeneratedAt, &pdf, &htm, &csv, &v.KPIs, &v.Objects); err != nil {
				return v, err
			}
			for _, l := range []Link{{Name: "PDF", URI: pdf}, {Name: "HTML", URI: htm}, {Name: "CSV", URI: csv}} {
				if l.URI != "" {
					l.URL = h.objectURL(l.URI)
					v.Links = append(v.Links, l)
				}
			}
			return v, nil
		}, n)
}

// objectURL turns gs://bucket/object into a link a browser can open: the
// local GCS emulator's download URL, or the Cloud Storage browser's.
func (h *Handler) objectURL(uri string) string {
	rest, ok := strings.CutPrefix(uri, "gs://")
	if !ok {
		return ""
	}
	bucket, object, ok := strings.Cut(rest, "/")
	if !ok || bucket == "" || object == "" {
		return ""
	}
	if h.opt.StorageEmulatorHost != "" {
		host := h.opt.StorageEmulatorHost
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		return strings.TrimSuffix(host, "/") + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(object) + "?alt=media"
	}
	return "https://storage.cloud.google.com/" + bucket + "/" + (&url.URL{Path: object}).EscapedPath()
}

// Deployment is where a model version is served.
type Deployment struct {
	Engine     string    `json:"engine"`
	Endpoint   string    `json:"endpoint"`
	Active     bool      `json:"active"`
	DeployedAt time.Time `json:"deployed_at"`
}

// Model is a model registry entry.
// Its fields are in the order of the models query's columns.
type Model struct {
	Version         string             `json:"version"`
	RunID           string             `json:"run_id"`
	Kind            string             `json:"kind"`
	ArtifactURI     string             `json:"artifact_uri"`
	Metrics         map[string]float64 `json:"metrics"`
	Champion        bool               `json:"champion"`
	Shadow          bool               `json:"shadow"`
	Promoted        bool               `json:"promoted"`
	GateReason      string             `json:"gate_reason"`
	ComparedWith    string             `json:"compared_with"`
	ChampionMetrics map[string]float64 `json:"champion_metrics"`
	CreatedAt       time.Time          `json:"created_at"`
	PromotedAt      *time.Time         `json:"promoted_at"`
	Deployments     []Deployment       `json:"deployments"`
}

func (h *Handler) models(_ http.ResponseWriter, r *http.Request) (any, error) {
	n, err := limit(r, 50)
	if err != nil {
		return nil, err
	}
	got, err := h.loadModels(r.Context(), n)
	return map[string]any{"models": got}, err
}

// loadModels reads the n newest models with their deployments, newest first.
func (h *Handler) loadModels(ctx context.Context, n int) ([]Model, error) {
	return collect(ctx, h, "models", `
		SELECT m.version, m.run_id, m.kind, m.artifact_uri, m.metrics, m.champion, m.shadow, m.promoted, m.gate_reason,
		       coalesce(m.compared_with, ''), m.champion_metrics, m.created_at, m.promoted_at,
		       coalesce((SELECT json_agg(json_build_object('engine', d.engine, 'endpoint', d.endpoint,
		                   'active', d.active, 'deployed_at', d.deployed_at) ORDER BY d.deployed_at DESC)
		                 FROM model_deployments d WHERE d.model_version = m.version), '[]')
		FROM models m ORDER BY m.created_at DESC, m.version DESC LIMIT $1`,
		pgx.RowToStructByPos[Model], n)
}

// Email is a message in the local outbox.
type Email struct {
	File    string    `json:"file"`
	Subject string    `json:"subject"`
	To      string    `json:"to"`
	From    string    `json:"from"`
	Date    time.Time `json:"date"`
	Bytes   int64     `json:"bytes"`
}

// outbox lists the .eml files of the local email outbox, newest first.
func (h *Handler) outbox(_ http.ResponseWriter, r *http.Request) (any, error) {
	n, err := limit(r, 100)
	if err != nil {
		return nil, err
	}
	if h.opt.OutboxDir == "" {
		return map[string]any{"configured": false, "emails": []Email{}}, nil
	}
	got, err := readOutbox(h.opt.OutboxDir, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{"configured": true, "emails": got}, nil
}

func readOutbox(dir string, n int) ([]Email, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return []Email{}, nil
	}
	if err != nil {
		return nil, err
	}
	type file struct {
		name string
		mod  time.Time
		size int64
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".eml") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files = append(files, file{e.Name(), info.ModTime(), info.Size()})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.After(files[j].mod)
		}
		return files[i].name < files[j].name
	})
	out := []Email{}
	for _, f := range files[:min(n, len(files))] {
		e := Email{File: f.name, Date: f.mod, Bytes: f.size}
		if err := readHeaders(filepath.Join(dir, f.name), &e); err != nil {
			e.Subject = "(unreadable: " + err.Error() + ")"
		}
		out = append(out, e)
	}
	return out, nil
}

var words = &mime.WordDecoder{}

func readHeaders(path string, e *Email) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := mail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return err
	}
	dec := func(s string) string {
		if d, err := words.DecodeHeader(s); err == nil {
			return d
		}
		return s
	}
	e.Subject, e.To, e.From = dec(m.Header.Get("Subject")), dec(m.Header.Get("To")), dec(m.Header.Get("From"))
	if d, err := m.Header.Date(); err == nil {
		e.Date = d
	}
	return nil
}

// DeadLetter is an event a consumer gave up on.
type DeadLetter struct {
	Consumer   string    `json:"consumer"`
	EventType  string    `json:"event_type"`
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
}

// Delivery is a notification a run sent (inbox, email, webhook).
type Delivery struct {
	Channel   string    `json:"channel"`
	Recipient string    `json:"recipient"`
	Subject   string    `json:"subject"`
	Status    string    `json:"status"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
}

// LogLine is one line of a run's log as the page shows it.
type LogLine struct {
	Time    *time.Time `json:"time"`
	Step    string     `json:"step"`
	Level   string     `json:"level"`
	Message string     `json:"message"`
}

// RunLogs is what the page knows of a run's logs: on Google Cloud a Cloud
// Logging query for the run and for each step, and a Cloud Trace link for the
// run's trace; everywhere the run's trace id and the step errors, dead
// letters and notification deliveries recorded in the database.
type RunLogs struct {
	CloudLoggingURL string `json:"cloud_logging_url"`
	// LogsBackend is where the steps' own lines come from: files,
	// cloudlogging, or empty when control has no log reader.
	LogsBackend string `json:"logs_backend"`
	// TraceID is the run's trace (every service's spans and log lines of
	// the run carry it); TraceURL opens it (Cloud Trace on Google Cloud, or
	// TRACE_LINK's viewer), empty when there is none.
	TraceID     string       `json:"trace_id"`
	TraceURL    string       `json:"trace_url"`
	Steps       []StepLogs   `json:"steps"`
	Lines       []LogLine    `json:"lines"`
	DeadLetters []DeadLetter `json:"dead_letters"`
	Deliveries  []Delivery   `json:"deliveries"`
}

// StepLogs is a step's logs: on Google Cloud a Cloud Logging query for the
// step's service's entries of the run (by run_id, or by the run's trace),
// and, when control has a log reader (Options.Logs), the step's own lines.
type StepLogs struct {
	Step            string `json:"step"`
	CloudLoggingURL string `json:"cloud_logging_url"`
	// Lines are the step's own lines of the run, every try, oldest first:
	// the newest ?limit (default 200) at or above ?level.
	Lines []steplogs.Line `json:"lines"`
	// Dropped counts older lines not sent; Partial is set when the reader
	// reached its bound (lines may be missing); Error when it failed.
	Dropped int    `json:"dropped"`
	Partial bool   `json:"partial"`
	Error   string `json:"error,omitempty"`
	// NextOffset, when set, is the ?offset of the page of older lines
	// (absent: no older line can be read).
	NextOffset int `json:"next_offset,omitempty"`
}

// Bounds of the run view's step lines: at most maxLogLimit lines per step
// and page, and runLogBytes of lines (as JSON) per request, shared evenly by
// the steps (a step's newest line of the page is sent whatever its size);
// ?offset pages back through the newest steplogs.MaxLines lines.
const (
	defaultLogLimit = 200
	maxLogLimit     = 200
	runLogBytes     = 1 << 20
)

// linePage is the page of each step's lines a run view asks for: the
// query's newest lines after skipping the offset newest, at most limit lines
// and budget bytes.
type linePage struct {
	q                     steplogs.Query
	offset, limit, budget int
}

func (h *Handler) runLogs(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	runID := r.PathValue("run_id")
	page, err := lineQuery(r)
	if err != nil {
		return nil, err
	}
	traceID, queued, err := runstore.Trace(ctx, h.pool, runID)
	if errors.Is(err, runstore.ErrNotFound) {
		return nil, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("run %q not found", runID)}
	}
	if err != nil {
		return nil, err
	}
	if !traceIDRE.MatchString(traceID) {
		traceID = "" // none recorded (or not a W3C trace id: never put in a link)
	}
	out := RunLogs{CloudLoggingURL: h.cloudLoggingURL(runID), TraceID: traceID, TraceURL: h.traceURL(traceID),
		Steps: []StepLogs{}, Lines: []LogLine{}}
	if h.opt.Logs != nil {
		out.LogsBackend = h.opt.Logs.Backend()
	}
	// Lines a little older than the run's queue time, for the services' clocks.
	page.q.RunID, page.q.Since = runID, queued.Add(-time.Minute)
	steps, err := runstore.Steps(ctx, h.pool, runID)
	if err != nil {
		return nil, err
	}
	page.budget = runLogBytes / max(len(steps), 1)
	for _, s := range steps {
		out.Steps = append(out.Steps, h.stepLogs(ctx, runID, traceID, s, page))
		out.Lines = append(out.Lines, stepLogLines(s)...)
	}
	if err := h.runEvents(ctx, runID, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// stepLogs is a step's logs in a run view: its Cloud Logging query and, once
// it started, its own lines.
func (h *Handler) stepLogs(ctx context.Context, runID, traceID string, s *controlv1.Step, page linePage) StepLogs {
	sl := StepLogs{Step: s.GetStep(), CloudLoggingURL: h.stepLoggingURL(runID, s.GetStep(), traceID), Lines: []steplogs.Line{}}
	if s.GetAttempts() > 0 || s.GetStartedAt() != nil {
		h.stepLines(ctx, &sl, page)
	}
	return sl
}

// stepLogLines are the run view's lines of a step's row: its start, its
// error, its end.
func stepLogLines(s *controlv1.Step) []LogLine {
	var out []LogLine
	started, ended := localTime(s.GetStartedAt()), localTime(s.GetEndedAt())
	state := runstore.State(s.GetState())
	if started != nil {
		out = append(out, LogLine{Time: started, Step: s.GetStep(), Level: "info",
			Message: fmt.Sprintf("started (attempt %d)", max(s.GetAttempts(), 1))})
	}
	if s.GetError() != "" {
		lvl := "error"
		if state == runstore.UpForRetry || state == runstore.Success {
			lvl = "warning"
		}
		out = append(out, LogLine{Time: ended, Step: s.GetStep(), Level: lvl, Message: s.GetError()})
	}
	if ended != nil && (state == runstore.Success || state == runstore.Failed || state == runstore.Skipped) {
		msg := s.GetState()
		if s.GetSummary() != "" {
			msg += ": " + s.GetSummary()
		}
		out = append(out, LogLine{Time: ended, Step: s.GetStep(), Level: "info", Message: msg})
	}
	return out
}

// runEvents adds a run's dead letters (also as lines, then sorted by time)
// and its notification deliveries to its view.
func (h *Handler) runEvents(ctx context.Context, runID string, out *RunLogs) error {
	rows, err := h.pool.Query(ctx, `
		SELECT consumer, event_type, reason, received_at FROM dead_letters WHERE run_id = $1 ORDER BY id`, runID)
	if err != nil {
		return err
	}
	out.DeadLetters, err = pgx.CollectRows(rows, pgx.RowToStructByPos[DeadLetter])
	if err != nil {
		return err
	}
	for _, d := range out.DeadLetters {
		out.Lines = append(out.Lines, LogLine{Time: &d.ReceivedAt, Step: d.Consumer, Level: "error",
			Message: "dead letter (" + d.EventType + "): " + d.Reason})
	}
	sort.SliceStable(out.Lines, func(i, j int) bool {
		a, b := out.Lines[i].Time, out.Lines[j].Time
		return a != nil && (b == nil || a.Before(*b))
	})
	rows, err = h.pool.Query(ctx, `
		SELECT channel, recipient, subject, status, error, attempts, created_at
		FROM notifications WHERE run_id = $1 ORDER BY created_at, id`, runID)
	if err != nil {
		return err
	}
	out.Deliveries, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Delivery])
	if err != nil {
		return err
	}
	out.DeadLetters, out.Deliveries = nonNil(out.DeadLetters), nonNil(out.Deliveries)
	return nil
}

// localTime is a row's time as pgx reads a timestamptz (local), or nil.
func localTime(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	l := t.AsTime().Local()
	return &l
}

// lineQuery is the page of the steps' own lines a run view asks for: the
// newest ?limit (default and at most 200) of each step at or above ?level
// (debug, info, warning, error; default every level), after the ?offset
// (0 to steplogs.MaxLines) newest.
func lineQuery(r *http.Request) (linePage, error) {
	n, err := limit(r, defaultLogLimit)
	if err != nil {
		return linePage{}, err
	}
	offset := 0
	if v := r.URL.Query().Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 || offset > steplogs.MaxLines {
			return linePage{}, badRequest("offset: want an integer from 0 to %d", steplogs.MaxLines)
		}
	}
	level, err := steplogs.ParseLevel(r.URL.Query().Get("level"))
	if err != nil {
		return linePage{}, badRequest("%v", err)
	}
	return linePage{q: steplogs.Query{MinLevel: level}, offset: offset, limit: min(n, maxLogLimit)}, nil
}

// stepLines reads a step's page of own lines of the run into sl; a reader's
// failure is told on the step, the rest of the view stands.
func (h *Handler) stepLines(ctx context.Context, sl *StepLogs, page linePage) {
	if h.opt.Logs == nil {
		return
	}
	q := page.q
	q.Service, q.MaxLines = sl.Step, min(page.offset+page.limit, steplogs.MaxLines)
	res, err := h.opt.Logs.Read(ctx, q)
	if err != nil {
		h.log.WarnContext(ctx, "admin: read step log lines", "step", sl.Step, "error", err)
		sl.Error = "could not read the step's log lines"
		return
	}
	end := max(len(res.Lines)-page.offset, 0)
	start := pageStart(res.Lines[:end], page.limit, page.budget)
	sl.Lines, sl.Dropped, sl.Partial = res.Lines[start:end], res.Dropped+start, res.Partial
	if next := page.offset + end - start; sl.Dropped > 0 && next < steplogs.MaxLines {
		sl.NextOffset = next
	}
}

// pageStart is where the page of lines ending with the newest begins: at
// most limit lines and budget bytes as JSON, and at least one line.
func pageStart(lines []steplogs.Line, limit, budget int) int {
	start, size := len(lines), 0
	for start > 0 && len(lines)-start < limit {
		n := len(lines[start-1].Text())
		if b, err := json.Marshal(lines[start-1]); err == nil {
			n = len(b)
		}
		if size+n > budget && start < len(lines) {
			break
		}
		size += n
		start--
	}
	return start
}

// cloudLoggingURL is the Logs Explorer filtered to the run's entries (every
// service logs run_id in its JSON payload); empty off Google Cloud.
func (h *Handler) cloudLoggingURL(runID string) string {
	if !h.opt.OnGCP || h.opt.Project == "" {
		return ""
	}
	q := fmt.Sprintf("jsonPayload.run_id=%q", runID)
	return "https://console.cloud.google.com/logs/query;query=" + url.PathEscape(q) + "?project=" + url.QueryEscape(h.opt.Project)
}

// stepLoggingURL is the Logs Explorer filtered to one step's entries of the
// run: its service's lines that name the run, or that were written inside
// the run's trace (a handler's own lines); empty off Google Cloud.
func (h *Handler) stepLoggingURL(runID, step, traceID string) string {
	if !h.opt.OnGCP || h.opt.Project == "" {
		return ""
	}
	q := fmt.Sprintf("jsonPayload.service=%q AND jsonPayload.run_id=%q", step, runID)
	if traceID != "" {
		q = fmt.Sprintf("jsonPayload.service=%q AND (jsonPayload.run_id=%q OR trace=%q)", step, runID,
			"projects/"+h.opt.Project+"/traces/"+traceID)
	}
	return "https://console.cloud.google.com/logs/query;query=" + url.PathEscape(q) + "?project=" + url.QueryEscape(h.opt.Project)
}

var traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceURL opens the run's trace: TRACE_LINK's viewer when set (e.g. a local
// Jaeger), Cloud Trace on Google Cloud; empty otherwise.
func (h *Handler) traceURL(traceID string) string {
	switch {
	case traceID == "":
		return ""
	case strings.HasPrefix(h.opt.TraceLink, "http://") || strings.HasPrefix(h.opt.TraceLink, "https://"):
		return strings.ReplaceAll(h.opt.TraceLink, "{trace_id}", traceID)
	case h.opt.OnGCP && h.opt.Project != "":
		return "https://console.cloud.google.com/traces/list?project=" + url.QueryEscape(h.opt.Project) + "&tid=" + traceID
	}
	return ""
}

// newest answers {key: rows} ([] for none): the rows query selects with its
// LIMIT $1 the request's limit (def by default), each read by scan.
func newest[T any](h *Handler, r *http.Request, def int, key, query string, scan func(pgx.CollectableRow) (T, error)) (any, error) {
	n, err := limit(r, def)
	if err != nil {
		return nil, err
	}
	got, err := collect(r.Context(), h, key, query, scan, n)
	return map[string]any{key: got}, err
}

// collect reads the rows of query with args, each by scan ([] for none);
// what names them in an error.
func collect[T any](ctx context.Context, h *Handler, what, query string, scan func(pgx.CollectableRow) (T, error), args ...any) ([]T, error) {
	rows, err := h.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	got, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	return nonNil(got), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
