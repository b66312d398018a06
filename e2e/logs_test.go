package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// get sends a GET to control as the stack's admin (HTTP Basic on the
// Airflow routes, the bearer token elsewhere) and returns the answer.
func get(t *testing.T, path string, basic bool, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", sys.Services[events.Control].URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if basic {
		req.SetBasicAuth(sys.AdminUser, sys.AdminPassword)
	} else {
		req.Header.Set("Authorization", "Bearer "+sys.AdminToken)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
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

// A step's log, as Airflow's task log route and the admin page serve it, is
// the lines its service logged while handling that run: reporter's own "KPI
// report stored" line of the run, and none of another run's. (KPI runs: a
// preventive-maintenance run would take the due plans
// TestPreventiveMaintenancePipeline needs.)
func TestStepLogsAreTheStepsOwnLines(t *testing.T) {
	runA := trigger(t, events.WeeklyKPIReport)
	runB := trigger(t, events.WeeklyKPIReport)
	for _, run := range []string{runA, runB} {
		if state, steps := waitRun(t, run, 2*time.Minute); state != "success" {
			t.Fatalf("run %s: %s %+v", run, state, steps)
		}
	}
	path := "/api/v1/dags/" + events.WeeklyKPIReport + "/dagRuns/" + url.PathEscape(runA) +
		"/taskInstances/" + events.Reporter + "/logs/1"
	resp, body := get(t, path, true, nil)
	var page struct {
		Token   string `json:"continuation_token"`
		Content string `json:"content"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var own string
	for _, l := range strings.Split(page.Content, "\n") {
		if strings.Contains(l, " INFO KPI report stored ") {
			own = l
		}
	}
	if own == "" || !strings.Contains(own, "run_id="+runA) || !strings.Contains(own, "step="+events.Reporter) ||
		!strings.Contains(page.Content, " INFO step started ") || strings.Contains(page.Content, runB) || page.Token == "" {
		t.Fatalf("reporter's log of %s:\n%s", runA, page.Content)
	}
	resp, text := get(t, path, true, http.Header{"Accept": {"text/plain"}})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(text, own) {
		t.Fatalf("as text/plain: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), text)
	}
	if resp, body := get(t, strings.TrimSuffix(path, "1")+"2", true, nil); resp.StatusCode != 404 {
		t.Fatalf("try 2 of a step tried once: %d %s", resp.StatusCode, body)
	}

	var logs struct {
		Backend string `json:"logs_backend"`
		Steps   []struct {
			Step  string `json:"step"`
			Lines []struct {
				Level, Message string
				Attrs          map[string]any
			} `json:"lines"`
		} `json:"steps"`
	}
	resp, body = get(t, "/admin/api/runs/"+url.PathEscape(runB)+"/logs?level=info", false, nil)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &logs) != nil || logs.Backend != "files" || len(logs.Steps) != 2 {
		t.Fatalf("admin run logs: %d %s", resp.StatusCode, body)
	}
	found := false
	for _, l := range logs.Steps[0].Lines {
		if l.Attrs["run_id"] != runB {
			t.Fatalf("another run's line in %s's log: %+v", runB, l)
		}
		found = found || (l.Level == "INFO" && l.Message == "KPI report stored")
	}
	if logs.Steps[0].Step != events.Reporter || !found {
		t.Fatalf("admin: reporter's lines of %s: %+v", runB, logs.Steps[0])
	}
}
