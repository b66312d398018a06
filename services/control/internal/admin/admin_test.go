package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

const (
	secretRun   = "manual__2026-11-20T08:00:00.000001+00:00"
	secretTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
)

type fixture struct {
	pool                *pgxpool.Pool
	url                 string
	admin, viewer, none string
}

func newFixture(t *testing.T, opt admin.Options) *fixture {
	t.Helper()
	pool, dbURL := pgtest.NewWithURL(t)
	// The page reads through control's own login: its grants must suffice.
	control, err := db.Connect(context.Background(), pgtest.ServiceLogin(t, pool, dbURL, events.Control))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(control.Close)
	adminTok, adminEntry, err := auth.NewToken(auth.RoleAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	viewerTok, viewerEntry, err := auth.NewToken(auth.RoleViewer, "look")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens(adminEntry + "," + viewerEntry)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	admin.NewWithOptions(control, tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), opt).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f := &fixture{pool: pool, url: srv.URL, admin: adminTok, viewer: viewerTok, none: "cmf_not-a-token"}
	f.seed(t)
	return f
}

// seed stores one finished run of weekly_kpi_report with its steps, a dead
// letter, deliveries, a report and two models.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	exec(t, f.pool, `INSERT INTO pipelines (id) VALUES ('weekly_kpi_report') ON CONFLICT DO NOTHING`)
	exec(t, f.pool, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at, started_at, ended_at, trace_id)
		VALUES ($1, 'weekly_kpi_report', 'success', 'manual', '2026-11-20T08:00:00Z', '2026-11-20T08:00:00Z',
		        '2026-11-20T08:00:01Z', '2026-11-20T08:00:05Z', $2)`, secretRun, secretTrace)
	exec(t, f.pool, `INSERT INTO steps (run_id, step, position, state, attempts, started_at, ended_at, error, summary, figures) VALUES
		($1, 'reporter', 0, 'success', 2, '2026-11-20T08:00:01Z', '2026-11-20T08:00:03Z', 'bucket timeout (retried)', 'report 2026-W47', '{"work_orders": 412}'),
		($1, 'notifier', 1, 'success', 1, '2026-11-20T08:00:03Z', '2026-11-20T08:00:05Z', '', 'emailed 3', '{}')`, secretRun)
	exec(t, f.pool, `INSERT INTO dead_letters (consumer, event_type, run_id, reason) VALUES ('notifier', 'step.completed', $1, 'undecodable payload')`, secretRun)
	exec(t, f.pool, `INSERT INTO technicians (id, code, name, email) VALUES (7, 'T007', 'Ada Secret', 'ada@example.com')`)
	exec(t, f.pool, `INSERT INTO notifications (dedupe_key, run_id, channel, technician_id, recipient, subject, body, status, kind, pipeline) VALUES
		('k1', $1, 'inbox', 7, 'T007', 'Your work orders this week', 'WO-1 pump', 'sent', 'wo_digest', 'weekly_kpi_report'),
		('k2', $1, 'email', NULL, 'boss@example.com', 'Weekly KPI report 2026-W47', 'see PDF', 'failed', 'report', 'weekly_kpi_report')`, secretRun)
	exec(t, f.pool, `INSERT INTO reports (iso_week, week_start, run_id, pdf_uri, html_uri, csv_uri, kpis) VALUES
		('2026-W47', '2026-11-16', $1, 'gs://fleet-bkt/reports/2026-W47/report.pdf', 'gs://fleet-bkt/reports/2026-W47/report.html',
		 'gs://fleet-bkt/reports/2026-W47/kpis.csv', '{"mttr_hours": 5.25}')`, secretRun)
	exec(t, f.pool, `INSERT INTO models (version, run_id, kind, artifact_name, artifact_uri, training_fingerprint, metrics, champion, promoted, gate_reason, created_at) VALUES
		('v2026-11-01-aaaa', 'r1', 'gbt', 'models/a/model.json', 'gs://b/models/a/model.json', 'sha256:1', '{"roc_auc": 0.81}', false, true, 'first model', '2026-11-01T00:00:00Z'),
		('v2026-11-08-bbbb', 'r2', 'gbt', 'models/b/model.json', 'gs://b/models/b/model.json', 'sha256:2', '{"roc_auc": 0.84, "pr_auc": 0.5}', true, true, 'better roc_auc', '2026-11-08T00:00:00Z')`)
	exec(t, f.pool, `INSERT INTO model_deployments (engine, model_version, artifact_name, run_id) VALUES ('local', 'v2026-11-08-bbbb', 'models/b/model.json', 'r2')`)
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	resp, body := get(t, url, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// The page itself is a shell: without a token it carries no data at all,
// only the login form, and it forbids inline and foreign scripts.
func TestShellHasNoData(t *testing.T) {
	f := newFixture(t, admin.Options{Project: "acme-prod"})
	for _, tok := range []string{"", f.admin} {
		resp, body := get(t, f.url+"/admin", tok)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /admin: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`<form id="login"`, `type="password"`, `src="/admin/static/admin.js"`, "acme-prod"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		for _, leak := range []string{secretRun, "Ada Secret", "2026-W47", "v2026-11-08", "undecodable", "<script>"} {
			if strings.Contains(body, leak) {
				t.Errorf("page leaks %q", leak)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("the page sets a cookie: %s", resp.Header.Get("Set-Cookie"))
		}
	}
	for _, path := range []string{"/", "/admin/"} {
		resp, _ := get(t, f.url+path, "")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/admin" {
			t.Errorf("GET %s: %d → %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t, admin.Options{})
	for path, ct := range map[string]string{"/admin/static/admin.js": "text/javascript", "/admin/static/admin.css": "text/css"} {
		resp, body := get(t, f.url+path, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || len(body) < 100 {
			t.Errorf("GET %s: %d %q (%d bytes)", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	if resp, _ := get(t, f.url+"/admin/static/nope.js", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
	// The script builds the DOM from data with textContent, never as HTML.
	_, js := get(t, f.url+"/admin/static/admin.js", "")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("admin.js uses %s", bad)
		}
	}
}

// Every JSON route wants a configured token: 401 without one or with a bad
// one (saying nothing more), 200 for a viewer and an admin.
func TestAPIAuth(t *testing.T) {
	f := newFixture(t, admin.Options{OutboxDir: t.TempDir()})
	routes := []string{"/admin/api/notifications", "/admin/api/reports", "/admin/api/models", "/admin/api/outbox",
		"/admin/api/runs/" + secretRun + "/logs", "/admin/api/dashboard", "/admin/api/monitoring", "/admin/api/alerts"}
	for _, route := range routes {
		for _, tc := range []struct {
			name, token string
			want        int
		}{{"no token", "", 401}, {"bad token", f.none, 401}, {"viewer", f.viewer, 200}, {"admin", f.admin, 200}} {
			resp, body := get(t, f.url+route, tc.token)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.name, route, resp.StatusCode, tc.want)
			}
			if tc.want == 401 {
				if resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(body, "Secret") || !strings.Contains(body, `"unauthenticated"`) {
					t.Errorf("%s %s: %v %s", tc.name, route, resp.Header, body)
				}
			}
		}
	}
	resp, _ := get(t, f.url+"/admin/api/reports", "")
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("401 Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

func TestNotifications(t *testing.T) {
	f := newFixture(t, admin.Options{})
	var got struct{ Notifications []admin.Notification }
	getJSON(t, f.url+"/admin/api/notifications", f.viewer, &got)
	if len(got.Notifications) != 1 {
		t.Fatalf("want the one inbox notification (not the email), got %+v", got.Notifications)
	}
	n := got.Notifications[0]
	if n.Technician != "Ada Secret" || n.TechnicianID != 7 || n.Subject != "Your work orders this week" || n.RunID != secretRun || n.Kind != "wo_digest" {
		t.Errorf("%+v", n)
	}
	if resp, body := get(t, f.url+"/admin/api/notifications?limit=x", f.viewer); resp.StatusCode != 400 || !strings.Contains(body, "limit") {
		t.Errorf("bad limit: %d %s", resp.StatusCode, body)
	}
}

func TestReportLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  admin.Options
		pdf  string
	}{
		{"emulator", admin.Options{StorageEmulatorHost: "127.0.0.1:4443"},
			"http://127.0.0.1:4443/storage/v1/b/fleet-bkt/o/reports%2F2026-W47%2Freport.pdf?alt=media"},
		{"gcs", admin.Options{}, "https://storage.cloud.google.com/fleet-bkt/reports/2026-W47/report.pdf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opt)
			var got struct{ Reports []admin.Report }
			getJSON(t, f.url+"/admin/api/reports", f.viewer, &got)
			if len(got.Reports) != 1 {
				t.Fatalf("%+v", got)
			}
			r := got.Reports[0]
			if r.ISOWeek != "2026-W47" || r.WeekStart != "2026-11-16" || r.RunID != secretRun || r.KPIs["mttr_hours"] != 5.25 || len(r.Links) != 3 {
				t.Fatalf("%+v", r)
			}
			if r.Links[0].Name != "PDF" || r.Links[0].URL != tc.pdf {
				t.Errorf("PDF link %+v, want %s", r.Links[0], tc.pdf)
			}
		})
	}
}

func TestModels(t *testing.T) {
	f := newFixture(t, admin.Options{})
	var got struct{ Models []admin.Model }
	getJSON(t, f.url+"/admin/api/models", f.viewer, &got)
	if len(got.Models) != 2 {
		t.Fatalf("%+v", got)
	}
	champ, old := got.Models[0], got.Models[1]
	if champ.Version != "v2026-11-08-bbbb" || !champ.Champion || champ.Metrics["roc_auc"] != 0.84 || champ.GateReason != "better roc_auc" {
		t.Errorf("newest first, champion: %+v", champ)
	}
	if len(champ.Deployments) != 1 || champ.Deployments[0].Engine != "local" || !champ.Deployments[0].Active {
		t.Errorf("deployments %+v", champ.Deployments)
	}
	if old.Champion || len(old.Deployments) != 0 || old.Metrics["roc_auc"] != 0.81 {
		t.Errorf("%+v", old)
	}
}

func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	write := func(name, msg string, mod time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(msg, "\n", "\r\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	write("old.eml", "From: cmmsflow <noreply@example.com>\nTo: boss@example.com\nSubject: Weekly KPI report 2026-W46\nDate: Mon, 16 Nov 2026 08:00:00 +0000\n\nbody\n", now.Add(-time.Hour))
	write("new.eml", "From: cmmsflow <noreply@example.com>\nTo: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\nSubject: =?utf-8?q?Wartung_f=C3=A4llig?=\nDate: Mon, 23 Nov 2026 08:00:00 +0000\n\nbody\n", now)
	write(".new.eml.tmp-1", "half", now)
	write("notes.txt", "not mail", now)

	f := newFixture(t, admin.Options{OutboxDir: dir})
	var got struct {
		Configured bool
		Emails     []admin.Email
	}
	getJSON(t, f.url+"/admin/api/outbox", f.viewer, &got)
	if !got.Configured || len(got.Emails) != 2 {
		t.Fatalf("%+v", got)
	}
	if e := got.Emails[0]; e.File != "new.eml" || e.Subject != "Wartung fällig" || e.To != "Jürgen <j@example.com>" ||
		!e.Date.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("newest first, decoded: %+v", e)
	}
	if e := got.Emails[1]; e.File != "old.eml" || e.Subject != "Weekly KPI report 2026-W46" || e.To != "boss@example.com" {
		t.Errorf("%+v", e)
	}
	getJSON(t, f.url+"/admin/api/outbox?limit=1", f.viewer, &got)
	if len(got.Emails) != 1 {
		t.Errorf("limit 1: %d", len(got.Emails))
	}

	f = newFixture(t, admin.Options{})
	getJSON(t, f.url+"/admin/api/outbox", f.viewer, &got)
	if got.Configured || len(got.Emails) != 0 {
		t.Errorf("no outbox dir: %+v", got)
	}
}

func TestRunLogs(t *testing.T) {
	f := newFixture(t, admin.Options{})
	var got admin.RunLogs
	getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs", f.viewer, &got)
	if got.CloudLoggingURL != "" {
		t.Errorf("local mode links to Cloud Logging: %s", got.CloudLoggingURL)
	}
	if got.TraceID != secretTrace || got.TraceURL != "" {
		t.Errorf("local mode: trace %q, link %q; want the id and no link", got.TraceID, got.TraceURL)
	}
	if len(got.Steps) != 2 || got.Steps[0].Step != "reporter" || got.Steps[1].Step != "notifier" || got.Steps[0].CloudLoggingURL != "" {
		t.Errorf("local mode steps: %+v", got.Steps)
	}
	var text []string
	for _, l := range got.Lines {
		text = append(text, l.Level+" ["+l.Step+"] "+l.Message)
	}
	joined := strings.Join(text, "\n")
	for _, want := range []string{
		"info [reporter] started (attempt 2)", "warning [reporter] bucket timeout (retried)",
		"info [reporter] success: report 2026-W47", "info [notifier] success: emailed 3",
		"error [notifier] dead letter (step.completed): undecodable payload",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lacks %q:\n%s", want, joined)
		}
	}
	if len(got.DeadLetters) != 1 || len(got.Deliveries) != 2 || got.Deliveries[1].Status != "failed" {
		t.Errorf("%+v %+v", got.DeadLetters, got.Deliveries)
	}
	if resp, body := get(t, f.url+"/admin/api/runs/nope/logs", f.viewer); resp.StatusCode != 404 || !strings.Contains(body, "not found") {
		t.Errorf("unknown run: %d %s", resp.StatusCode, body)
	}

	f = newFixture(t, admin.Options{OnGCP: true, Project: "acme-prod"})
	getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs", f.viewer, &got)
	want := "https://console.cloud.google.com/logs/query;query=jsonPayload.run_id=%22manual__2026-11-20T08:00:00.000001+00:00%22?project=acme-prod"
	if got.CloudLoggingURL != want {
		t.Errorf("Cloud Logging URL\n got %s\nwant %s", got.CloudLoggingURL, want)
	}
	want = "https://console.cloud.google.com/logs/query;query=jsonPayload.service=%22notifier%22%20AND%20%28jsonPayload.run_id=%22manual__2026-11-20T08:00:00.000001+00:00%22%20OR%20trace=%22projects%2Facme-prod%2Ftraces%2F" + secretTrace + "%22%29?project=acme-prod"
	if len(got.Steps) != 2 || got.Steps[1].CloudLoggingURL != want {
		t.Errorf("step Cloud Logging URL\n got %+v\nwant %s", got.Steps, want)
	}
	if want := "https://console.cloud.google.com/traces/list?project=acme-prod&tid=" + secretTrace; got.TraceURL != want {
		t.Errorf("Cloud Trace URL %q, want %q", got.TraceURL, want)
	}

	f = newFixture(t, admin.Options{TraceLink: "http://127.0.0.1:16686/trace/{trace_id}"})
	getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs", f.viewer, &got)
	if want := "http://127.0.0.1:16686/trace/" + secretTrace; got.TraceURL != want {
		t.Errorf("TRACE_LINK URL %q, want %q", got.TraceURL, want)
	}
}

// failingReader is a log reader that always fails.
type failingReader struct{}

func (failingReader) Read(context.Context, steplogs.Query) (steplogs.Result, error) {
	return steplogs.Result{}, errors.New("quota exceeded")
}
func (failingReader) Backend() string { return "cloudlogging" }

// With a log reader, each step carries its own lines of the run (every try,
// every level unless ?level=), the newest ?limit.
func TestRunStepLogLines(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	log := logging.New(&b, logging.Options{Format: "json", Level: "debug"}).With("service", "reporter")
	mine := log.With("run_id", secretRun, "step", "reporter")
	mine.Info(eventing.StepStartedLog)
	mine.Debug("computing KPIs", "week", "2026-W47")
	log.With("run_id", "other_run").Info("KPI report stored", "week", "2026-W01")
	mine.Warn("event failed, will be retried", "error", "bucket timeout")
	mine.Info(eventing.StepStartedLog)
	mine.Info("KPI report stored", "week", "2026-W47")
	if err := os.WriteFile(filepath.Join(dir, "reporter.log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, admin.Options{Logs: steplogs.Files{Dir: dir}})
	lines := func(query string) (admin.RunLogs, string) {
		var got admin.RunLogs
		getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs"+query, f.viewer, &got)
		var text []string
		for _, l := range got.Steps[0].Lines {
			text = append(text, fmt.Sprintf("%d %s %s week=%v", l.Try, l.Level, l.Message, l.Attrs["week"]))
		}
		return got, strings.Join(text, "; ")
	}
	got, text := lines("")
	want := "1 INFO step started week=<nil>; 1 DEBUG computing KPIs week=2026-W47; 1 WARNING event failed, will be retried week=<nil>; " +
		"2 INFO step started week=<nil>; 2 INFO KPI report stored week=2026-W47"
	if got.LogsBackend != "files" || text != want || len(got.Steps[1].Lines) != 0 || got.Steps[0].Dropped != 0 {
		t.Fatalf("backend %q, reporter lines\n got %s\nwant %s\nnotifier %+v", got.LogsBackend, text, want, got.Steps[1])
	}
	if len(got.Lines) == 0 {
		t.Fatal("the transitions are gone")
	}
	if got, text = lines("?level=warn"); text != "1 WARNING event failed, will be retried week=<nil>" {
		t.Fatalf("level warn: %s", text)
	}
	if got, text = lines("?level=info&limit=1"); text != "2 INFO KPI report stored week=2026-W47" || got.Steps[0].Dropped != 3 {
		t.Fatalf("limit 1: %s, dropped %d", text, got.Steps[0].Dropped)
	}
	if resp, body := get(t, f.url+"/admin/api/runs/"+secretRun+"/logs?level=loud", f.viewer); resp.StatusCode != 400 {
		t.Fatalf("bad level: %d %s", resp.StatusCode, body)
	}

	f = newFixture(t, admin.Options{Logs: failingReader{}})
	getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs", f.viewer, &got)
	if got.Steps[0].Error == "" || strings.Contains(got.Steps[0].Error, "quota") || len(got.Lines) == 0 {
		t.Fatalf("a failing reader: %+v", got.Steps[0])
	}
}

// The page asks who the token is to offer the admin-only controls (Re-run).
func TestWhoAmI(t *testing.T) {
	f := newFixture(t, admin.Options{})
	for tok, want := range map[string]admin.Me{f.admin: {Name: "ops", Role: "admin"}, f.viewer: {Name: "look", Role: "viewer"}} {
		var me admin.Me
		getJSON(t, f.url+"/admin/api/whoami", tok, &me)
		if me != want {
			t.Errorf("whoami: %+v, want %+v", me, want)
		}
	}
	if resp, _ := get(t, f.url+"/admin/api/whoami", f.none); resp.StatusCode != 401 {
		t.Errorf("whoami with a bad token: %d", resp.StatusCode)
	}
}
