package featurejob_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc/dataproctest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/spark"
)

// The forced failure on the Dataproc engine: the PySpark job fails
// on bad input, the step and so the run fail with Dataproc's message, and
// the ephemeral cluster is deleted.
func TestDataprocJobFailureFailsStepAndDeletesCluster(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := objstoretest.New(t)
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{FailJob: "features.py: exit 2: no assets in raw input"})

	var cfg featurejob.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{
		"DATABASE_URL": "postgres://unused", "FEATURE_ENGINE": "dataproc", "GOOGLE_CLOUD_PROJECT": "p",
		"DATAPROC_MODE": "cluster", "DATAPROC_POLL_INTERVAL": "1ms",
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := featurejob.NewDataproc(ctx, cfg, store, fake.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	// The script was uploaded, content-addressed.
	if b, err := store.Get(ctx, dataproc.ScriptObject(spark.Script)); err != nil || len(b) != len(spark.Script) {
		t.Fatalf("script in the bucket: %v", err)
	}
	h, err := featurejob.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Featurejob, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r)

	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run3/raw/", tables)
	out, err := r.Process(ctx, rawExtracted(t, "run3", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}))
	if out != eventing.DeadLettered || err != nil {
		t.Fatalf("%s %v, want dead-lettered", out, err)
	}
	var failed eventsv1.StepFailed
	if !outbox(t, pool, events.StepFailed, &failed) || failed.Retrying || !strings.Contains(failed.Error, "no assets in raw input") {
		t.Fatalf("step failed %v", &failed)
	}
	if n, d := len(fake.CreateClusterRequests()), len(fake.DeleteClusterRequests()); n != 1 || d < 1 {
		t.Fatalf("%d clusters created, %d delete requests: the cluster must be deleted", n, d)
	}
	if got, want := fake.DeleteClusterRequests()[0].GetClusterName(), fake.CreateClusterRequests()[0].GetCluster().GetClusterName(); got != want {
		t.Fatalf("deleted %q, created %q", got, want)
	}
}
