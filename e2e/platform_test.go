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
	var reached int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM processed_events WHERE consumer = 'pmgen' AND event_type = $1)
		     + (SELECT count(*) FROM dead_letters WHERE consumer = 'pmgen' AND run_id = $2)`,
		events.RunStarted, runID).Scan(&reached); err != nil {
		t.Fatal(err)
	}
	if reached != 1 {
		t.Fatalf("run-started reached pmgen %d times, want exactly once", reached)
	}
	pm, ok := steps[events.Pmgen]
	if !ok || (pm.State != "success" && pm.State != "failed") {
		t.Fatalf("run %s (%s): pmgen step not recorded: %+v", runID, state, steps)
	}
	if _, ok := steps[events.Notifier]; !ok {
		t.Fatalf("notifier step missing: %+v", steps)
	}
}
