package compat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

// logRun starts preventive-maintenance run pm_1 with two tries of pmgen
// and writes pmgen's log: try 1 fails, try 2 logs extra lines, and another
// run's lines come in between. It returns the logs' folder.
func logRun(t *testing.T, f *fixture, extra int) string {
	t.Helper()
	if r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"dag_run_id": "pm_1"}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, "pm_1")
	for range 2 {
		f.deliverStep(t, events.StepStarted, "pm_1", pm, &eventsv1.StepStarted{Step: events.Pmgen})
	}
	var b bytes.Buffer
	log := logging.New(&b, logging.Options{Format: "json", Level: "debug", ProjectID: "p"}).With("service", events.Pmgen)
	mine, other := log.With("run_id", "pm_1", "step", events.Pmgen), log.With("run_id", "pm_2", "step", events.Pmgen)
	mine.Info(eventing.StepStartedLog)
	mine.Debug("evaluating maintenance plans")
	other.Info("work orders generated", "run", "other")
	mine.Warn("event failed, will be retried", "error", "backend answered 503")
	mine.Info(eventing.StepStartedLog)
	for i := range extra {
		mine.Info(fmt.Sprintf("progress %04d", i))
	}
	mine.Info("work orders generated", "created", 3)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, events.Pmgen+".log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f.srv.WithLogs(steplogs.Files{Dir: dir})
	return dir
}

type logPage struct {
	Token   string `json:"continuation_token"`
	Content string `json:"content"`
}

func (f *fixture) logPage(t *testing.T, path string) (logPage, logToken) {
	t.Helper()
	r := f.airflow(t, "GET", path, viewerToken, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: %d %s %s", path, r.status, r.header.Get("Content-Type"), r.raw)
	}
	var p logPage
	if err := json.Unmarshal(r.raw, &p); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.Token)
	var tok logToken
	if err == nil {
		err = json.Unmarshal(raw, &tok)
	}
	if err != nil {
		t.Fatalf("continuation token %q: %v", p.Token, err)
	}
	return p, tok
}

func TestTaskLogIsTheStepsLinesOfOneTry(t *testing.T) {
	f := newFixture(t)
	logRun(t, f, 0)
	base := "/dags/" + pm + "/dagRuns/pm_1/taskInstances/" + events.Pmgen + "/logs/"

	p, tok := f.logPage(t, base+"1")
	lines := strings.Split(strings.TrimSuffix(p.Content, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], " INFO step started") || !strings.Contains(lines[1], " DEBUG evaluating maintenance plans") ||
		!strings.Contains(lines[2], ` WARNING event failed, will be retried error="backend answered 503"`) || !strings.Contains(lines[2], "run_id=pm_1") {
		t.Fatalf("try 1:\n%s", p.Content)
	}
	if tok.LogPos != 3 || !tok.EndOfLog {
		t.Fatalf("try 1 token %+v: a later try began, its log is complete", tok)
	}

	// text/plain when Accept prefers it (and for */*, as Airflow answers).
	for _, accept := range []string{"text/plain", "*/*", "application/json;q=0.5, text/*"} {
		r := f.airflowWith(t, "GET", base+"2", viewerToken, nil, http.Header{"Accept": {accept}})
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
			!strings.Contains(string(r.raw), "work orders generated created=3") || strings.Contains(string(r.raw), "other") ||
			strings.Contains(string(r.raw), "evaluating") {
			t.Fatalf("Accept %s: try 2: %d %s\n%s", accept, r.status, r.header.Get("Content-Type"), r.raw)
		}
	}
	r := f.airflowWith(t, "GET", base+"2", viewerToken, nil, http.Header{"Accept": {"application/json, text/plain;q=0.9"}})
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("Accept preferring JSON: %s", r.header.Get("Content-Type"))
	}
	if _, tok := f.logPage(t, base+"2?map_index=-1"); tok.LogPos != 2 || tok.EndOfLog {
		t.Fatalf("try 2 token %+v: the step still runs", tok)
	}

	for path, want := range map[string]int{
		base + "3": 404, base + "0": 404, base + "1?map_index=0": 404, base + "1?token=bm9wZQ": 400,
		base + "1?full_content=maybe":                                                400,
		"/dags/" + pm + "/dagRuns/pm_1/taskInstances/reporter/logs/1":                404,
		"/dags/" + pm + "/dagRuns/pm_9/taskInstances/" + events.Pmgen + "/logs/1":    404,
		"/dags/" + kpi + "/dagRuns/pm_1/taskInstances/" + events.Pmgen + "/logs/1":   404,
		"/dags/" + pm + "/dagRuns/pm_1/taskInstances/" + events.Notifier + "/logs/1": 200, // not started: no lines yet
		"/dags/" + pm + "/dagRuns/pm_1/taskInstances/" + events.Notifier + "/logs/2": 404,
	} {
		if strings.Contains(path, "full_content=maybe") {
			// Not a boolean: the contract refuses the request itself.
			if r := send(t, newRequest(t, "GET", f.url+"/api/v1"+path, viewerToken, nil)); r.status != want {
				t.Errorf("%s: %d, want %d", path, r.status, want)
			}
			continue
		}
		if r := f.airflow(t, "GET", path, viewerToken, nil); r.status != want {
			t.Errorf("%s: %d, want %d: %s", path, r.status, want, r.raw)
		}
	}
	if r := f.airflow(t, "GET", base+"1", "", nil); r.status != 401 {
		t.Fatalf("without credentials: %d", r.status)
	}
}

func TestTaskLogPages(t *testing.T) {
	f := newFixture(t)
	logRun(t, f, logPageLines+5)
	base := "/dags/" + pm + "/dagRuns/pm_1/taskInstances/" + events.Pmgen + "/logs/2"
	p, tok := f.logPage(t, base)
	if n := strings.Count(p.Content, "\n"); n != logPageLines || tok.LogPos != logPageLines || tok.EndOfLog {
		t.Fatalf("first fragment: %d lines, token %+v", n, tok)
	}
	p, tok = f.logPage(t, base+"?token="+tok.String())
	if n := strings.Count(p.Content, "\n"); n != 7 || !strings.Contains(p.Content, "progress 1004") || tok.LogPos != logPageLines+7 {
		t.Fatalf("second fragment: %d lines, token %+v\n%s", n, tok, p.Content)
	}
	p, tok = f.logPage(t, base+"?token="+tok.String())
	if p.Content != "" || tok.LogPos != logPageLines+7 {
		t.Fatalf("past the end: %q, token %+v", p.Content, tok)
	}
	p, _ = f.logPage(t, base+"?full_content=true")
	if n := strings.Count(p.Content, "\n"); n != logPageLines+7 {
		t.Fatalf("full content: %d lines", n)
	}
}

func TestTaskLogWithoutReaderIs404(t *testing.T) {
	f := newFixture(t)
	if r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"dag_run_id": "pm_1"}); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	f.deliverTrigger(t, "pm_1")
	r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/pm_1/taskInstances/"+events.Pmgen+"/logs/1", viewerToken, nil)
	if r.status != 404 || !strings.Contains(string(r.raw), "no log reader") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestPrefersText(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "application/json": false, "text/plain": true, "*/*": true, "text/*": true,
		"application/json, text/plain": true, "text/plain;q=0.5, application/json": false,
		"application/*, text/plain;q=0.1": false, "text/html": false, "text/plain;q=0": false,
	} {
		if got := prefersText(accept); got != want {
			t.Errorf("Accept %q: text %v, want %v", accept, got, want)
		}
	}
}

// A fragment holds at most logPageBytes, full_content at most logFullBytes;
// the position after the last line sent continues from there, and a line
// longer than the bound is still sent alone (no fragment is empty while
// lines are left).
func TestLogContentBytesBounded(t *testing.T) {
	var res steplogs.Result
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	for i := range 200 {
		res.Lines = append(res.Lines, steplogs.Line{Time: at, Level: "INFO", Message: fmt.Sprintf("%03d %s", i, strings.Repeat("x", 100<<10))})
	}
	content, next := logContent(res, 0, false)
	if len(content) > logPageBytes || next != 10 || !strings.HasPrefix(content, "2026-12-02T06:00:00.000Z INFO 000 ") {
		t.Fatalf("first fragment: %d bytes, next %d", len(content), next)
	}
	content, next = logContent(res, next, false)
	if len(content) > logPageBytes || next != 20 || !strings.Contains(content, " INFO 010 ") {
		t.Fatalf("second fragment: %d bytes, next %d", len(content), next)
	}
	content, next = logContent(res, 0, true)
	if len(content) > logFullBytes || next != 81 {
		t.Fatalf("full content: %d bytes, next %d", len(content), next)
	}
	huge := steplogs.Result{Lines: []steplogs.Line{{Time: at, Level: "INFO", Message: strings.Repeat("y", logPageBytes+1)}}}
	if content, next = logContent(huge, 0, false); next != 1 || len(content) <= logPageBytes {
		t.Fatalf("an oversize line: %d bytes, next %d", len(content), next)
	}
}
