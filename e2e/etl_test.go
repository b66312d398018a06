package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The ETL and ML pipeline on the demo fleet: all five steps succeed, the
// bucket holds the raw tables, the features and the model, every active
// vehicle has a prediction from this run, and the success email is out.
func TestETLMLTrainingPipeline(t *testing.T) {
	runID := trigger(t, events.ETLMLTraining)
	state, steps := waitRun(t, runID, 3*time.Minute)
	for _, step := range []string{events.Extractor, events.Featurejob, events.Trainer, events.Deployer, events.Notifier} {
		if steps[step].State != "success" {
			t.Fatalf("run %s is %s; step %s: %+v (all: %+v)", runID, state, step, steps[step], steps)
		}
	}
	if state != "success" {
		t.Fatalf("run %s: %s", runID, state)
	}

	store := bucket(t)
	objs, err := store.List(context.Background(), "runs/"+runID+"/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, strings.TrimPrefix(o.Name, "runs/"+runID+"/"))
	}
	for _, want := range []string{"raw/assets.parquet", "raw/work_orders.parquet", "raw/maintenance_plans.parquet",
		"features/training.parquet", "features/scoring.parquet", "model/model.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("runs/%s/ lacks %s (has %v)", runID, want, names)
		}
	}
	var version string
	if err := pool.QueryRow(context.Background(), `SELECT version FROM models WHERE run_id = $1`, runID).Scan(&version); err != nil {
		t.Fatalf("model registry: %v", err)
	}
	if _, err := store.Get(context.Background(), "models/"+version+"/model.json"); err != nil {
		t.Fatalf("registered model artifact: %v", err)
	}

	if n := count(t, `SELECT count(*) FROM assets a WHERE a.status = 'ACTIVE'
		AND NOT EXISTS (SELECT 1 FROM ml_predictions p WHERE p.asset_id = a.id AND p.run_id = $1)`, runID); n != 0 {
		t.Fatalf("%d active assets without a prediction from this run", n)
	}
	if n := count(t, `SELECT count(*) FROM ml_predictions WHERE run_id = $1`, runID); n == 0 {
		t.Fatal("no predictions")
	}
	if n := count(t, `SELECT count(*) FROM notifications WHERE run_id = $1 AND channel = 'email' AND status = 'sent' AND kind = 'model_deployed'`, runID); n != 1 {
		t.Fatalf("%d success emails sent, want 1", n)
	}
}

// A forced failure in featurejob: a snapshot date before the fleet's history
// leaves nothing to learn from. The featurejob step and the run fail with the
// reason, later steps never run, and the admins get one alert email.
func TestETLFeaturejobFailureAlerts(t *testing.T) {
	runID := triggerWith(t, events.ETLMLTraining, map[string]string{"snapshot_date": "2001-01-01"})
	state, steps := waitRun(t, runID, 2*time.Minute)
	if state != "failed" || steps[events.Extractor].State != "success" || steps[events.Featurejob].State != "failed" ||
		steps[events.Trainer].State != "pending" {
		t.Fatalf("run %s: %s %+v", runID, state, steps)
	}
	var runErr string
	if err := pool.QueryRow(context.Background(), `SELECT error FROM runs WHERE run_id = $1`, runID).Scan(&runErr); err != nil ||
		!strings.HasPrefix(runErr, "featurejob: ") {
		t.Fatalf("run error %q (%v): want the featurejob step's reason", runErr, err)
	}
	t.Logf("run failed as expected: %s", runErr)
	deadline := time.Now().Add(30 * time.Second)
	for count(t, `SELECT count(*) FROM notifications WHERE run_id = $1 AND kind = 'alert' AND channel = 'email' AND status = 'sent'`, runID) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no alert email for the failed run")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
