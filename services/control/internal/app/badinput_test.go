package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

// TestBadAPIInput is the bad-input table of the control API over HTTP (the
// gateway, with an admin token): each request gets its 4xx status and a
// message that says what is wrong, nothing is written (no run, no outbox
// row) and the API keeps serving.
func TestBadAPIInput(t *testing.T) {
	f := newFixture(t)
	f.insertRun(t, "scheduled__2026-01-05T06:00:00+00:00", events.PreventiveMaintenance, "success", time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC))
	const trigger = "/v1/pipelines/" + events.PreventiveMaintenance + ":trigger"
	huge := `{"conf":{"as_of":"` + strings.Repeat("9", 8<<20) + `"}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string // contained in the error's message
	}{
		// Malformed bodies.
		{"malformed JSON", "POST", trigger, `{"conf":`, 400, "unexpected EOF"},
		{"not JSON", "POST", trigger, `conf=as_of`, 400, "invalid character 'c'"},
		{"JSON array", "POST", trigger, `[]`, 400, "unexpected token ["},
		{"unknown field", "POST", trigger, `{"confs":{}}`, 400, `unknown field "confs"`},
		{"conf not an object", "POST", trigger, `{"conf":"as_of=2026-01-01"}`, 400, `unexpected token "as_of=2026-01-01"`},
		{"conf value not a string", "POST", trigger, `{"conf":{"as_of":20260101}}`, 400, "invalid value for string field value"},
		{"trailing data", "POST", trigger, `{} {}`, 400, "request body: data after the JSON value"},
		{"huge body", "POST", trigger, huge, 413, "request body too large: the limit is 1048576 bytes"},
		// Unknown things.
		{"unknown pipeline", "POST", "/v1/pipelines/nope:trigger", `{}`, 404, `pipeline "nope" not found`},
		{"unknown pipeline (get)", "GET", "/v1/pipelines/nope", "", 404, `pipeline "nope" not found`},
		{"unknown run", "GET", "/v1/runs/nope", "", 404, `run "nope" not found`},
		{"cancel unknown run", "POST", "/v1/runs/nope:cancel", `{}`, 404, `run "nope" not found`},
		{"cancel finished run", "POST", "/v1/runs/scheduled__2026-01-05T06:00:00+00:00:cancel", `{}`, 400, "only a queued or running run can be cancelled"},
		{"unknown technician", "GET", "/v1/technicians/999/notifications", "", 404, "technician 999 not found"},
		{"unknown route", "GET", "/v1/nothing", "", 404, "Not Found"},
		// Invalid conf and keys.
		{"invalid conf date", "POST", trigger, `{"conf":{"as_of":"2026-02-30"}}`, 400, `conf: key "as_of": "2026-02-30" is not a calendar day`},
		{"conf_json not an object", "POST", trigger, `{"conf_json":"[1]"}`, 400, `conf_json: not a JSON object`},
		{"conf and conf_json", "POST", trigger, `{"conf":{"a":"b"},"conf_json":"{}"}`, 400, `conf, conf_json: set one of them`},
		{"declared conf key not a string", "POST", trigger, `{"conf_json":"{\"as_of\":20260301}"}`, 400, `conf: key "as_of": the value must be a string (date)`},
		{"conf over 64 KiB", "POST", trigger, `{"conf":{"a":"` + strings.Repeat("x", 70000) + `"}}`, 400, `conf: 70008 bytes as JSON, more than 65536`},
		{"invalid week", "POST", "/v1/pipelines/" + events.WeeklyKPIReport + ":trigger", `{"conf":{"week":"2025-W53"}}`, 400, `2025 has weeks W01 to W52`},
		{"bad idempotency key", "POST", trigger, `{"idempotency_key":"a b"}`, 400, "idempotency_key: must be 1-128 characters"},
		// SQL-looking strings are data: they match nothing and change nothing.
		{"SQL in a conf value", "POST", trigger, `{"conf":{"as_of":"2026-03-01'; DROP TABLE runs; --"}}`, 400, `conf: key "as_of"`},
		{"SQL in an idempotency key", "POST", trigger, `{"idempotency_key":"k'); DELETE FROM runs; --"}`, 400, "idempotency_key"},
		{"SQL in a pipeline name", "POST", "/v1/pipelines/x%27%3B%20DROP%20TABLE%20runs%3B%20--:trigger", `{}`, 404, `pipeline "x'; DROP TABLE runs; --" not found`},
		{"SQL in a run id", "GET", "/v1/runs/x%27%20OR%20%271%27=%271", "", 404, `run "x' OR '1'='1" not found`},
		{"SQL in a state filter", "GET", "/v1/runs?state=success%27%20OR%201=1", "", 400, `state: "success' OR 1=1" is not one of`},
		{"SQL in a pipeline filter", "GET", "/v1/runs?pipeline=x%27--", "", 400, `pipeline: unknown pipeline "x'--"`},
		{"NUL in a run id", "GET", "/v1/runs/a%00b", "", 400, "run_id: must not contain control characters"},
		{"NUL in a cancelled run id", "POST", "/v1/runs/a%00b:cancel", `{}`, 400, "run_id: must not contain control characters"},
		{"invalid UTF-8 in a run id", "GET", "/v1/runs/a%FFb", "", 400, "the request URL is not valid UTF-8"},
		{"invalid UTF-8 in a filter", "GET", "/v1/runs?state=%FF", "", 400, "the request URL is not valid UTF-8"},
		// Pages.
		{"negative page size", "GET", "/v1/runs?page_size=-1", "", 400, "page_size: must not be negative"},
		{"page size over int32", "GET", "/v1/runs?page_size=99999999999", "", 400, "page_size"},
		{"page size not a number", "GET", "/v1/runs?page_size=ten", "", 400, "page_size"},
		{"garbage page token", "GET", "/v1/runs?page_token=%27%3B--", "", 400, "page_token: invalid"},
		{"page token of other filters", "GET", "/v1/runs?state=failed&page_token=" + pageTokenFor(t, f), "", 400, "page_token: issued for other filters"},
		{"technician id not a number", "GET", "/v1/technicians/1%20OR%201=1/notifications", "", 400, "technician_id"},
		{"negative technician id", "GET", "/v1/technicians/-1/notifications", "", 400, "technician_id: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := f.raw(t, tt.method, tt.path, tt.body)
			if code != tt.status || !strings.Contains(msg, tt.message) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tt.method, tt.path, code, msg, tt.status, tt.message)
			}
			if n := f.count(t, `SELECT count(*) FROM runs`); n != 1 {
				t.Fatalf("%d runs, want the 1 inserted: bad input wrote a run", n)
			}
			if n := eventingtest.Count(t, f.pool, "", ""); n != 0 {
				t.Fatalf("%d outbox rows: bad input emitted an event", n)
			}
		})
	}
	// An oversized page is served as the largest page (AIP-158).
	for range 120 {
		f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at)
			SELECT 'r' || (SELECT count(*) FROM runs), $1, 'success', 'scheduled', now(), now()`, events.WeeklyKPIReport)
	}
	code, body := f.do(t, "GET", "/v1/runs?page_size=1000000", adminToken, nil)
	if code != 200 || len(body["runs"].([]any)) != 100 || body["next_page_token"] == "" {
		t.Fatalf("oversized page: %d, %d runs", code, len(body["runs"].([]any)))
	}
	// Still serving, and a good trigger writes its run and event.
	if code, body := f.do(t, "POST", trigger, adminToken, map[string]any{"conf": map[string]string{"as_of": "2026-03-01"}}); code != 200 {
		t.Fatalf("good trigger after bad input: %d %v", code, body)
	}
	if n := eventingtest.Count(t, f.pool, "", ""); n != 1 {
		t.Fatalf("%d outbox rows after one good trigger", n)
	}
}

// pageTokenFor is a valid page token of the unfiltered listing.
func pageTokenFor(t *testing.T, f *fixture) string {
	t.Helper()
	f.insertRun(t, "scheduled__2026-01-06T06:00:00+00:00", events.PreventiveMaintenance, "failed", time.Date(2026, 1, 6, 6, 0, 0, 0, time.UTC))
	_, body := f.do(t, "GET", "/v1/runs?page_size=1", adminToken, nil)
	tok, _ := body["next_page_token"].(string)
	f.exec(t, `DELETE FROM steps WHERE run_id = 'scheduled__2026-01-06T06:00:00+00:00'`)
	f.exec(t, `DELETE FROM runs WHERE run_id = 'scheduled__2026-01-06T06:00:00+00:00'`)
	if tok == "" {
		t.Fatal("no page token")
	}
	return tok
}

// raw sends body as is with the admin token and returns the status and the
// error message of the JSON error body.
func (f *fixture) raw(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Message == "" {
		return resp.StatusCode, strings.TrimSpace(string(raw))
	}
	return resp.StatusCode, e.Message
}
