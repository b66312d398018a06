package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// trigger starts a manual run of pipeline through control's HTTP API, as a
// user (or the old backend) does, and returns the run id.
func trigger(t *testing.T, pipeline string) string {
	t.Helper()
	return triggerWith(t, pipeline, nil)
}

// triggerWith is trigger with a run conf.
func triggerWith(t *testing.T, pipeline string, conf map[string]string) string {
	t.Helper()
	runID, created, err := sys.Trigger(t.Context(), pipeline, conf)
	if err != nil || !created {
		t.Fatalf("trigger %s: run %q created %v: %v", pipeline, runID, created, err)
	}
	return runID
}

// publishTrigger publishes a manual trigger event straight to Pub/Sub, as
// control's API does through its outbox, and returns it.
func publishTrigger(t *testing.T, pipeline string, times int) eventing.Event {
	t.Helper()
	ev, err := eventing.New(events.PipelineTriggered, events.Source("e2e"),
		"manual__"+time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00"), pipeline, "", &eventsv1.PipelineTriggered{Source: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	pub := eventing.NewPubSubPublisher(sys.PubSub)
	defer pub.Close()
	for range times {
		if err := pub.Publish(context.Background(), events.TopicOf(events.PipelineTriggered), ev.Message()); err != nil {
			t.Fatal(err)
		}
	}
	return ev
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

// bucket is the run bucket on the stack's GCS emulator.
func bucket(t *testing.T) *objstore.Store {
	t.Helper()
	t.Setenv("STORAGE_EMULATOR_HOST", sys.GCSHost)
	store, closeStore, err := objstore.Connect(context.Background(), sys.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	return store
}
