package compat

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth/authtest"
)

// Airflow's clients log in with HTTP Basic (Airflow's basic_auth backend):
// the users of API_USERS may, on every compat route, with their role.
func TestBasicAuth(t *testing.T) {
	f := newFixture(t)
	admin := authtest.Basic("airflow", airflowPassword)
	viewer := authtest.Basic("reader", readerPassword)

	if r := f.airflow(t, "GET", "/dags", admin, nil); r.status != 200 || r.json(t)["total_entries"] != float64(len(events.Pipelines)) {
		t.Fatalf("GET /dags as a Basic admin: %d %s", r.status, r.raw)
	}
	if r := f.airflow(t, "GET", "/dags/"+pm+"/dagRuns", viewer, nil); r.status != 200 {
		t.Fatalf("GET dagRuns as a Basic viewer: %d %s", r.status, r.raw)
	}
	if code, body := f.composer(t, "GET", "list_dags", viewer, nil); code != 200 || body["success"] != true {
		t.Fatalf("list_dags as a Basic viewer: %d %v", code, body)
	}
	if code, body := f.composer(t, "GET", "list_dags", admin, nil); code != 200 || body["total_entries"] != float64(len(events.Pipelines)) {
		t.Fatalf("list_dags as a Basic admin: %d %v", code, body)
	}

	// The role applies as for tokens: a viewer may not trigger, an admin may.
	if r := f.airflow(t, "POST", "/dags/"+pm+"/dagRuns", viewer, map[string]any{}); r.status != 403 {
		t.Fatalf("trigger as a Basic viewer: %d %s", r.status, r.raw)
	}
	if code, body := f.composer(t, "POST", "trigger_preventive_maintenance", viewer, nil); code != 403 || body["error"] != "permission denied" {
		t.Fatalf("composer trigger as a Basic viewer: %d %v", code, body)
	}
	r := f.airflow(t, "POST", "/dags/"+kpi+"/dagRuns", admin, map[string]any{})
	if r.status != 200 {
		t.Fatalf("trigger as a Basic admin: %d %s", r.status, r.raw)
	}
	if id := r.json(t)["dag_run_id"].(string); f.count(t, `SELECT count(*) FROM runs WHERE run_id = $1 AND source = 'manual'`, id) != 1 {
		t.Fatal("the Basic admin's trigger queued no run")
	}
}

// A refused Basic login learns nothing but 401 and the schemes to retry with.
func TestBasicAuthRefusals(t *testing.T) {
	f := newFixture(t)
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range []struct{ name, authz string }{
		{"scheme only", "Basic"},
		{"not base64", "Basic !!!"},
		{"no colon", "Basic " + b64([]byte("airflow"+airflowPassword))},
		{"empty user", "Basic " + b64([]byte(":"+airflowPassword))},
		{"wrong password", authtest.Basic("airflow", airflowPassword+"x")},
		{"another user's password", authtest.Basic("airflow", readerPassword)},
		{"unknown user", authtest.Basic("nobody", airflowPassword)},
		{"a token's name", authtest.Basic("ops", adminToken)},
		{"a token as password", authtest.Basic("airflow", adminToken)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.airflow(t, "GET", "/dags", c.authz, nil)
			if r.status != 401 {
				t.Fatalf("GET /dags: %d %s", r.status, r.raw)
			}
			if _, leaked := r.json(t)["detail"]; leaked {
				t.Errorf("the refusal says why: %s", r.raw)
			}
			wantBasicChallenge(t, r.header["Www-Authenticate"])
			resp := send(t, newRequest(t, "GET", f.url+"/api/v1/core/composer/list_dags", c.authz, nil))
			if resp.status != 401 || resp.json(t)["error"] != "unauthenticated" || resp.json(t)["success"] != false {
				t.Fatalf("list_dags: %d %s", resp.status, resp.raw)
			}
			wantBasicChallenge(t, resp.header["Www-Authenticate"])
		})
	}
}

func wantBasicChallenge(t *testing.T, got []string) {
	t.Helper()
	if !slices.Contains(got, `Basic realm="cmmsflow"`) || !slices.Contains(got, `Bearer realm="cmmsflow"`) {
		t.Errorf("WWW-Authenticate %q, want the Basic and Bearer challenges", got)
	}
}

// After 10 failed logins in a minute a name is refused, even with the right
// password, until the minute has passed.
func TestBasicAuthFailureLimit(t *testing.T) {
	f := newFixture(t)
	right := authtest.Basic("airflow", airflowPassword)
	for i := range 10 {
		if r := f.airflow(t, "GET", "/dags", authtest.Basic("airflow", "guess"), nil); r.status != 401 {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	if r := f.airflow(t, "GET", "/dags", right, nil); r.status != 401 {
		t.Fatalf("the right password while locked out: %d", r.status)
	}
	if code, _ := f.composer(t, "GET", "list_dags", right, nil); code != 401 {
		t.Fatalf("the right password on a composer route while locked out: %d", code)
	}
	// Other callers are not locked out.
	if r := f.airflow(t, "GET", "/dags", authtest.Basic("reader", readerPassword), nil); r.status != 200 {
		t.Fatalf("another user: %d", r.status)
	}
	if r := f.airflow(t, "GET", "/dags", viewerToken, nil); r.status != 200 {
		t.Fatalf("a token: %d", r.status)
	}
	f.clock.add(time.Minute)
	if r := f.airflow(t, "GET", "/dags", right, nil); r.status != 200 {
		t.Fatalf("the right password after the window: %d %s", r.status, r.raw)
	}
}
