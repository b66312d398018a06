package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestEveryServiceIsHealthy(t *testing.T) {
	for name, p := range sys.Services {
		resp, err := http.Get(p.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s /healthz: %v %v", name, resp, err)
			continue
		}
		resp.Body.Close()
	}
}

// A trigger published to Pub/Sub reaches control over push, control creates
// the run and starts its first step, the run-started event is pushed to the
// step's service, and the step's outcome comes back to control. (The
// preventive maintenance pipeline has its own test: its runs change the plans.)
func TestTriggerReachesServiceOverPushAndRunIsRecorded(t *testing.T) {
	runID := publishTrigger(t, events.WeeklyKPIReport, 1).RunID
	state, steps := waitRun(t, runID, 60*time.Second)
	// reporter reports a step attempt for every run-started it handles, and
	// records a dead letter for one it cannot.
	var deadLettered int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters WHERE consumer = 'reporter' AND run_id = $1`,
		runID).Scan(&deadLettered); err != nil {
		t.Fatal(err)
	}
	if reached := steps[events.Reporter].Attempts + deadLettered; reached != 1 {
		t.Fatalf("run-started reached reporter %d times, want exactly once (steps %+v)", reached, steps)
	}
	rep, ok := steps[events.Reporter]
	if !ok || (rep.State != "success" && rep.State != "failed") {
		t.Fatalf("run %s (%s): reporter step not recorded: %+v", runID, state, steps)
	}
	if _, ok := steps[events.Notifier]; !ok {
		t.Fatalf("notifier step missing: %+v", steps)
	}
}

// Airflow's clients log in with HTTP Basic on the Airflow-compatible API: the
// stack's admin user (API_USERS) may.
func TestAirflowAPIAcceptsBasicAuth(t *testing.T) {
	req, err := http.NewRequest("GET", sys.Services[events.Control].URL+"/api/v1/dags", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(sys.AdminUser, sys.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/dags as %s with Basic: %d", sys.AdminUser, resp.StatusCode)
	}
}
