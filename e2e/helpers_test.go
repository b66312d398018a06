package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// trigger publishes a manual trigger of pipeline, as control's API does, and
// returns the run id.
func trigger(t *testing.T, pipeline string) string {
	t.Helper()
	runID := "manual__" + time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00")
	ev, err := eventing.New(events.PipelineTriggered, events.Source("e2e"), runID, pipeline, "",
		&eventsv1.PipelineTriggered{Source: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	pub := eventing.NewPubSubPublisher(sys.PubSub)
	defer pub.Close()
	if err := pub.Publish(context.Background(), events.TopicOf(events.PipelineTriggered), ev.Message()); err != nil {
		t.Fatal(err)
	}
	return runID
}

type stepRow struct {
	State, Error string
	Attempts     int
}

// waitRun waits until the run reaches a final state and returns it with its
// steps.
func waitRun(t *testing.T, runID string, timeout time.Duration) (string, map[string]stepRow) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		err := pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state)
		if err == nil && (state == "success" || state == "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not finished after %s (state %q, err %v)", runID, timeout, state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := pool.Query(ctx, `SELECT step, state, error, attempts FROM steps WHERE run_id = $1`, runID)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]stepRow{}
	for rows.Next() {
		var name string
		var s stepRow
		if err := rows.Scan(&name, &s.State, &s.Error, &s.Attempts); err != nil {
			t.Fatal(err)
		}
		steps[name] = s
	}
	return state, steps
}
