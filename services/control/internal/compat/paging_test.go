package compat

import (
	"fmt"
	"testing"
	"time"
)

// The lists' limit is capped at 100 and their offset at maxOffset: past it
// a 400 says how to reach older entries; up to it a page past the end is
// empty, with the total.
func TestListPagingBounds(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2024, 6, 1, 6, 0, 0, 0, time.UTC)
	f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at)
		SELECT 'r' || i, $1, 'success', 'scheduled', $2::timestamptz + i * interval '1 day', $2::timestamptz + i * interval '1 day'
		FROM generate_series(1, 130) i`, pm, base)
	f.exec(t, `INSERT INTO steps (run_id, step, position, state) VALUES ('r1', 'pmgen', 0, 'success')`)

	page := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?limit=1000", viewerToken, nil).json(t)
	if n := len(page["dag_runs"].([]any)); n != 100 || page["total_entries"] != float64(130) {
		t.Fatalf("limit=1000: %d runs of %v, want the first 100 of 130", n, page["total_entries"])
	}
	page = f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?offset=100&limit=100", viewerToken, nil).json(t)
	if n := len(page["dag_runs"].([]any)); n != 30 {
		t.Fatalf("offset=100: %d runs, want the last 30", n)
	}
	for _, path := range []string{
		"/dags?offset=%d",
		"/dags/" + pm + "/dagRuns?offset=%d",
		"/dags/~/dagRuns?offset=%d&limit=5",
		"/dags/" + pm + "/dagRuns/r1/taskInstances?offset=%d",
	} {
		r := f.airflow(t, "GET", fmt.Sprintf(path, maxOffset), viewerToken, nil)
		if r.status != 200 || r.json(t)["total_entries"] == float64(0) {
			t.Errorf("%s at the bound: %d %s", path, r.status, r.raw)
		}
		for _, key := range []string{"dags", "dag_runs", "task_instances"} {
			if items, ok := r.json(t)[key].([]any); ok && len(items) != 0 {
				t.Errorf("%s at the bound: %d %s, want none", path, len(items), key)
			}
		}
		r = f.airflow(t, "GET", fmt.Sprintf(path, maxOffset+1), viewerToken, nil)
		want := "offset: at most 10000; narrow the list with its filters (dates, state) to reach older entries"
		if r.status != 400 || r.json(t)["detail"] != want {
			t.Errorf("%s past the bound: %d %s", path, r.status, r.raw)
		}
	}
	r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns?offset=9223372036854775807", viewerToken, nil)
	if r.status != 400 {
		t.Errorf("offset at int64's maximum: %d %s", r.status, r.raw)
	}
}
