package compat

import (
	"strings"
	"testing"
)

// A caller-chosen dag_run_id is checked before anything is written: not "."
// or "..", no "/" or control characters, 1-250 characters; 400 with the
// reason. Looking up such an id finds no run.
func TestDAGRunIDValidated(t *testing.T) {
	f := newFixture(t)
	for id, want := range map[string]string{
		".":                      `dag_run_id: "." is not a run id: a URL path cannot name it`,
		"..":                     `dag_run_id: ".." is not a run id: a URL path cannot name it`,
		"a/b":                    `dag_run_id: must not contain "/"`,
		"../..":                  `dag_run_id: must not contain "/"`,
		"a\x01b":                 "dag_run_id: must not contain control characters",
		"line\nbreak":            "dag_run_id: must not contain control characters",
		strings.Repeat("r", 251): "dag_run_id: 251 characters, more than 250",
		"":                       "dag_run_id: required",
	} {
		r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"dag_run_id": id})
		if r.status != 400 || r.json(t)["detail"] != want {
			t.Errorf("dag_run_id %q: %d %s, want 400 %q", id, r.status, r.raw, want)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 0 {
		t.Fatalf("refused triggers made %d runs", n)
	}
	if n := f.count(t, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("refused triggers wrote %d events", n)
	}
	longest := strings.Repeat("r", 250)
	if r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", adminToken, map[string]any{"dag_run_id": longest}); r.status != 200 || r.json(t)["dag_run_id"] != longest {
		t.Fatalf("a 250-character dag_run_id: %d %s", r.status, r.raw)
	}
	// An id no run can have names none: 404 where the contract has it, an
	// empty list on the task instances.
	if r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/a%01b", viewerToken, nil); r.status != 404 {
		t.Errorf("get a%%01b: %d %s", r.status, r.raw)
	}
	r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns/a%0Ab/taskInstances", viewerToken, nil)
	if r.status != 200 || r.json(t)["total_entries"] != float64(0) {
		t.Errorf("task instances of a%%0Ab: %d %s", r.status, r.raw)
	}
}
