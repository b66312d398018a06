package featurejob_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc/dataproctest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/spark"
)

// dataprocRouter is featurejob's router on the Dataproc engine in mode,
// talking to fake; its step's run is polled every watch.
func dataprocRouter(t *testing.T, pool *pgxpool.Pool, store *objstore.Store, fake *dataproctest.Server, mode string, watch time.Duration) *eventing.Router {
	t.Helper()
	env := map[string]string{"FEATURE_ENGINE": "dataproc", "GOOGLE_CLOUD_PROJECT": "p", "DATAPROC_MODE": mode, "DATAPROC_POLL_INTERVAL": "1ms"}
	return stepRouter(t, pool, env, watch, func(ctx context.Context, cfg featurejob.Config) (engine.Engine, error) {
		return featurejob.NewDataproc(ctx, cfg, store, fake.ClientOptions()...)
	})
}

// The forced failure on the Dataproc engine: the PySpark job fails
// on bad input, the step and so the run fail with Dataproc's message, and
// the ephemeral cluster is deleted.
func TestDataprocJobFailureFailsStepAndDeletesCluster(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := objstoretest.New(t)
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{FailJob: "features.py: exit 2: no assets in raw input"})
	r := dataprocRouter(t, pool, store, fake, "cluster", 0)
	// The script was uploaded, content-addressed.
	if b, err := store.Get(ctx, dataproc.ScriptObject(spark.Script)); err != nil || len(b) != len(spark.Script) {
		t.Fatalf("script in the bucket: %v", err)
	}

	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run3/raw/", tables)
	eventingtest.Deliver(t, r, rawExtracted(t, "run3", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}), eventing.DeadLettered)
	var failed eventsv1.StepFailed
	if !eventingtest.Last(t, pool, events.StepFailed, &failed) || failed.Retrying || !strings.Contains(failed.Error, "no assets in raw input") {
		t.Fatalf("step failed %v", &failed)
	}
	if n, d := len(fake.CreateClusterRequests()), len(fake.DeleteClusterRequests()); n != 1 || d < 1 {
		t.Fatalf("%d clusters created, %d delete requests: the cluster must be deleted", n, d)
	}
	if got, want := fake.DeleteClusterRequests()[0].GetClusterName(), fake.CreateClusterRequests()[0].GetCluster().GetClusterName(); got != want {
		t.Fatalf("deleted %q, created %q", got, want)
	}
}

// A run stopped (here failed by hand) while its feature batch runs: the
// router's stop reaches the Dataproc engine through the handler, which
// cancels the batch; the delivery is acked as cancelled and the step
// reports nothing. While the batch runs (held 2 s) no transaction is open
// on the database for more than a second.
func TestDataprocRunStoppedCancelsTheBatch(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := objstoretest.New(t)
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	r := dataprocRouter(t, pool, store, fake, "serverless", 5*time.Millisecond)
	for _, q := range []string{
		`INSERT INTO pipelines (id) VALUES ('` + events.ETLMLTraining + `')`,
		`INSERT INTO runs (run_id, pipeline, state, source, logical_date) VALUES ('run4', '` + events.ETLMLTraining + `', 'running', 'manual', now())`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run4/raw/", tables)
	done := make(chan eventing.Outcome, 1)
	go func() {
		out, _ := r.Process(ctx, rawExtracted(t, "run4", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}))
		done <- out
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if b := fake.Batches(); len(b) == 1 && b[0].State == dataprocpb.Batch_RUNNING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no batch running")
		}
	}
	longest := eventingtest.WatchTransactions(t, pool)
	time.Sleep(2 * time.Second) // the Dataproc wait
	if l := longest(); l > time.Second {
		t.Errorf("a transaction stayed open %s while the batch ran", l)
	}
	if _, err := pool.Exec(ctx, `UPDATE runs SET state = 'failed' WHERE run_id = 'run4'`); err != nil {
		t.Fatal(err)
	}
	if out := <-done; out != eventing.Cancelled {
		t.Fatalf("%s, want cancelled", out)
	}
	if b := fake.Batches(); len(b) != 1 || b[0].State != dataprocpb.Batch_CANCELLED {
		t.Fatalf("batches %v, want the run's batch CANCELLED", b)
	}
	var failed eventsv1.StepFailed
	if eventingtest.Last(t, pool, events.StepFailed, &failed) || eventingtest.Last(t, pool, events.FeaturesBuilt, &eventsv1.FeaturesBuilt{}) {
		t.Fatalf("a stopped step reported: %v", &failed)
	}
}
