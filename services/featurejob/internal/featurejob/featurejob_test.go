package featurejob_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

func setup(t *testing.T) (*pgxpool.Pool, *objstore.Store, *eventing.Router) {
	t.Helper()
	pool := pgtest.New(t)
	store, r := router(t, pool)
	return pool, store, r
}

// router is featurejob's step on the local engine over pool, with a fresh
// bucket.
func router(t *testing.T, pool *pgxpool.Pool) (*objstore.Store, *eventing.Router) {
	t.Helper()
	store := objstoretest.New(t)
	env := map[string]string{"LOOKBACK_DAYS": "180", "LABEL_WINDOW_DAYS": "60"}
	return store, stepRouter(t, pool, env, 0, func(ctx context.Context, cfg featurejob.Config) (engine.Engine, error) {
		return featurejob.NewEngine(ctx, cfg, store)
	})
}

// stepRouter loads featurejob's Config from env, builds its engine with
// build and registers the step on a router over pool whose runs are polled
// every watch (0: the default).
func stepRouter(t *testing.T, pool *pgxpool.Pool, env map[string]string, watch time.Duration,
	build func(context.Context, featurejob.Config) (engine.Engine, error)) *eventing.Router {
	t.Helper()
	ctx := context.Background()
	var cfg featurejob.Config
	env["DATABASE_URL"] = "postgres://unused"
	if err := config.LoadFrom(ctx, &cfg, env); err != nil {
		t.Fatal(err)
	}
	eng, err := build(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := featurejob.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Featurejob, Pool: pool,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), RunWatch: watch})
	h.Register(r)
	return r
}

// rawExtracted is the extractor's output for a run of the ETL pipeline.
func rawExtracted(t *testing.T, runID string, p *eventsv1.RawExtracted) eventing.Message {
	return eventingtest.Event(t, events.RawExtracted, runID, events.ETLMLTraining, p).Message()
}

func TestStepBuildsFeatures(t *testing.T) {
	pool, store, r := setup(t)
	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run1/raw/", tables)
	eventingtest.Deliver(t, r, rawExtracted(t, "run1", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}), eventing.Handled)
	var fb eventsv1.FeaturesBuilt
	if !eventingtest.Last(t, pool, events.FeaturesBuilt, &fb) {
		t.Fatal("no features.built")
	}
	if fb.Engine != "local" || fb.SnapshotDate != "2026-03-01" || fb.Training.GetName() != "runs/run1/features/training.parquet" ||
		fb.Training.GetRows() != 21 || fb.Scoring.GetRows() != 3 || fb.Scoring.GetUri() != "gs://test-bucket/runs/run1/features/scoring.parquet" {
		t.Fatalf("features.built %v", &fb)
	}
	if got := rawtest.Read(t, store, fb.Training.Name); len(got) != 21 {
		t.Fatalf("training object has %d rows", len(got))
	}
	var done eventsv1.StepSucceeded
	if !eventingtest.Last(t, pool, events.StepSucceeded, &done) {
		t.Fatal("no step.succeeded")
	}
	if done.Step != events.Featurejob || done.Figures["training_rows"] != 21 || done.Figures["snapshots"] != 5 ||
		!strings.Contains(done.Summary, "21 training rows over 5 monthly snapshots") {
		t.Fatalf("step succeeded %v", &done)
	}
}

// TestBadInputFailsTheStep is the forced failure of the pipeline's
// acceptance: a raw object that is not Parquet dead-letters the event with
// the reason and fails the run's featurejob step (not retrying).
func TestBadInputFailsTheStep(t *testing.T) {
	pool, store, r := setup(t)
	ctx := context.Background()
	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run2/raw/", tables)
	if err := store.Put(ctx, raw[1].Name, "text/csv", []byte("not,parquet\n")); err != nil {
		t.Fatal(err)
	}
	msg := rawExtracted(t, "run2", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw})
	eventingtest.Deliver(t, r, msg, eventing.DeadLettered)
	var reason, runID string
	if err := pool.QueryRow(ctx, `SELECT reason, run_id FROM dead_letters WHERE event_id = $1`, msg.Attributes[eventing.AttrID]).Scan(&reason, &runID); err != nil {
		t.Fatal(err)
	}
	const want = "local engine: raw work_orders object runs/run2/raw/work_orders.parquet is not readable Parquet"
	if !strings.Contains(reason, want) || runID != "run2" {
		t.Fatalf("dead letter %q (run %q), want %q", reason, runID, want)
	}
	var failed eventsv1.StepFailed
	if !eventingtest.Last(t, pool, events.StepFailed, &failed) {
		t.Fatal("no step.failed")
	}
	if failed.Step != events.Featurejob || failed.Retrying || !strings.Contains(failed.Error, want) {
		t.Fatalf("step failed %v", &failed)
	}
	var fb eventsv1.FeaturesBuilt
	if eventingtest.Last(t, pool, events.FeaturesBuilt, &fb) {
		t.Fatal("features.built emitted for bad input")
	}
	// Redelivery of the same event does nothing more.
	eventingtest.Deliver(t, r, msg, eventing.Duplicate)
}

func TestUndecodablePayloadIsDeadLettered(t *testing.T) {
	pool, _, r := setup(t)
	msg := rawExtracted(t, "run3", &eventsv1.RawExtracted{SnapshotDate: "2026-03-01"})
	msg.Data = []byte(`{"snapshot_date": 5}`)
	eventingtest.Deliver(t, r, msg, eventing.DeadLettered)
	var failed eventsv1.StepFailed
	if !eventingtest.Last(t, pool, events.StepFailed, &failed) || failed.Retrying {
		t.Fatalf("step failed %v", &failed)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	var cfg featurejob.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://x"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Engine != "local" || cfg.LookbackDays != 365 || cfg.LabelWindowDays != 90 {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg.Engine = "spark-on-a-toaster"
	if _, err := featurejob.NewEngine(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "want one of") {
		t.Fatalf("unknown engine: %v", err)
	}
	cfg.Engine, cfg.LabelWindowDays = "local", 0
	if _, err := featurejob.New(cfg, nil); err == nil {
		t.Fatal("no engine accepted")
	}
}

// The step's declared edges are the registry's.
func TestRoutesMatchTheRegistry(t *testing.T) {
	_, _, r := setup(t)
	eventingtest.CheckRoutes(t, r, events.Featurejob)
}
