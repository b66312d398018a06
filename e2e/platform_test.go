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
// step's service, and the step's outcome comes back to control.
func TestTriggerReachesServiceOverPushAndRunIsRecorded(t *testing.T) {
	runID := trigger(t, events.PreventiveMaintenance)
	state, steps := waitRun(t, runID, 60*time.Second)
	// pmgen reports a step attempt for every run-started it handles, and
	// records a dead letter for one it cannot.
	var deadLettered int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters WHERE consumer = 'pmgen' AND run_id = $1`,
		runID).Scan(&deadLettered); err != nil {
		t.Fatal(err)
	}
	if reached := steps[events.Pmgen].Attempts + deadLettered; reached != 1 {
		t.Fatalf("run-started reached pmgen %d times, want exactly once (steps %+v)", reached, steps)
	}
	pm, ok := steps[events.Pmgen]
	if !ok || (pm.State != "success" && pm.State != "failed") {
		t.Fatalf("run %s (%s): pmgen step not recorded: %+v", runID, state, steps)
	}
	if _, ok := steps[events.Notifier]; !ok {
		t.Fatalf("notifier step missing: %+v", steps)
	}
}
