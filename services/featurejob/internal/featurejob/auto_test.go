package featurejob_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc/dataproctest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

// autoRouter is featurejob's router with FEATURE_ENGINE=auto and
// FEATURE_AUTO_MAX_WORK_ORDERS max, its Dataproc engine talking to fake.
func autoRouter(t *testing.T, pool *pgxpool.Pool, store *objstore.Store, fake *dataproctest.Server, max int) *eventing.Router {
	t.Helper()
	env := map[string]string{
		"FEATURE_ENGINE": "auto", "GOOGLE_CLOUD_PROJECT": "p",
		"FEATURE_AUTO_MAX_WORK_ORDERS": strconv.Itoa(max), "DATAPROC_POLL_INTERVAL": "1ms",
		"LOOKBACK_DAYS": "180", "LABEL_WINDOW_DAYS": "60", // the golden input's windows
	}
	return stepRouter(t, pool, env, 0, func(ctx context.Context, cfg featurejob.Config) (engine.Engine, error) {
		return featurejob.NewAuto(ctx, cfg, store, fake.ClientOptions()...)
	})
}

// autoStep delivers the golden input of runID to featurejob on auto with
// the threshold set off the golden work orders by offset, and returns what
// the step emitted and reported.
func autoStep(t *testing.T, runID string, offset int, before func(*objstore.Store)) (*eventsv1.FeaturesBuilt, *eventsv1.StepSucceeded, *dataproctest.Server, int) {
	t.Helper()
	pool, store, fake := pgtest.New(t), objstoretest.New(t), dataproctest.Start(t)
	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	n := len(tables.WorkOrders)
	r := autoRouter(t, pool, store, fake, n+offset)
	raw := rawtest.Write(t, store, "runs/"+runID+"/raw/", tables)
	if before != nil {
		before(store)
	}
	eventingtest.Deliver(t, r, rawExtracted(t, runID, &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}), eventing.Handled)
	var fb eventsv1.FeaturesBuilt
	var done eventsv1.StepSucceeded
	if !eventingtest.Last(t, pool, events.FeaturesBuilt, &fb) || !eventingtest.Last(t, pool, events.StepSucceeded, &done) {
		t.Fatal("no features.built or step.succeeded")
	}
	return &fb, &done, fake, n
}

// At the threshold (the golden input's work orders exactly) auto builds
// locally, starts no Dataproc batch, and reports its choice.
func TestAutoBuildsLocallyUpToTheThreshold(t *testing.T) {
	fb, done, fake, n := autoStep(t, "run7", 0, nil)
	if fb.Engine != "local" || fb.Training.GetRows() != 21 || fb.Scoring.GetRows() != 3 {
		t.Fatalf("features.built %v", fb)
	}
	if b := fake.CreateBatchRequests(); len(b) != 0 {
		t.Fatalf("%d Dataproc batches created for a run under the threshold", len(b))
	}
	want := "local engine (auto: " + strconv.Itoa(n) + " work orders <= FEATURE_AUTO_MAX_WORK_ORDERS " + strconv.Itoa(n) + "): 21 training rows"
	if f := done.Figures; f["auto_dataproc"] != 0 || f["auto_work_orders"] != float64(n) || f["auto_max_work_orders"] != float64(n) ||
		f["training_rows"] != 21 || !strings.Contains(done.Summary, want) {
		t.Fatalf("step succeeded %v, want %q in the summary", done, want)
	}
}

// One work order above the threshold, auto runs the Dataproc batch and
// reports its objects (written here as the script would write them).
func TestAutoBuildsOnDataprocAboveTheThreshold(t *testing.T) {
	written := func(store *objstore.Store) {
		rows := []features.Row{{AssetID: 1, SnapshotDate: "2026-02-01"}, {AssetID: 2, SnapshotDate: "2026-02-01"}}
		rawtest.Put(t, store, "runs/run8/features/"+features.TrainingObject, slices.Values(rows))
		rawtest.Put(t, store, "runs/run8/features/"+features.ScoringObject, slices.Values(rows[:1]))
	}
	fb, done, fake, n := autoStep(t, "run8", -1, written)
	if fb.Engine != "dataproc" || fb.Training.GetRows() != 2 || fb.Scoring.GetRows() != 1 {
		t.Fatalf("features.built %v", fb)
	}
	if b := fake.CreateBatchRequests(); len(b) != 1 || !strings.Contains(b[0].GetBatch().GetPysparkBatch().GetMainPythonFileUri(), "features") {
		t.Fatalf("batches created: %v", b)
	}
	want := "dataproc engine (auto: " + strconv.Itoa(n) + " work orders > FEATURE_AUTO_MAX_WORK_ORDERS " + strconv.Itoa(n-1) + "): 2 training rows"
	if f := done.Figures; f["auto_dataproc"] != 1 || f["auto_work_orders"] != float64(n) || !strings.Contains(done.Summary, want) {
		t.Fatalf("step succeeded %v, want %q in the summary", done, want)
	}
}

// Without a row count (a producer that does not count), auto bounds the
// work orders by the object's size; without a work_orders object it leaves
// the local engine to fail the step with the reason.
func TestAutoChoice(t *testing.T) {
	a := &featurejob.Auto{MaxWorkOrders: 100}
	wo := func(rows, bytes int64) []*eventsv1.StoredObject {
		return []*eventsv1.StoredObject{{Name: "runs/r/raw/assets.parquet", Rows: 1 << 40},
			{Name: "runs/r/raw/work_orders.parquet", Rows: rows, Bytes: bytes}}
	}
	for _, c := range []struct {
		raw        []*eventsv1.StoredObject
		engine     string
		workOrders int64
		reason     string
	}{
		{wo(100, 1<<30), "local", 100, "100 work orders <= FEATURE_AUTO_MAX_WORK_ORDERS 100"},
		{wo(101, 10), "dataproc", 101, "101 work orders > FEATURE_AUTO_MAX_WORK_ORDERS 100"},
		{wo(0, 0), "local", 0, "0 work orders <="},
		{wo(0, 807), "local", 100, "at most 100 work orders (807 bytes, no row count) <="},
		{wo(0, 808), "dataproc", 101, "at most 101 work orders (808 bytes, no row count) >"},
		{wo(0, 808)[:1], "local", 0, "raw.extracted lists no work_orders object"},
	} {
		got := a.Choose(c.raw)
		if got.Engine != c.engine || got.WorkOrders != c.workOrders || !strings.Contains(got.Reason, c.reason) {
			t.Errorf("Choose(%v) = %+v, want %s, %d, %q", c.raw, got, c.engine, c.workOrders, c.reason)
		}
	}
}

// auto and dataproc need valid Dataproc settings, and Validate says which
// are wrong and why auto needs them; local does not look at them.
func TestValidateAutoNeedsDataproc(t *testing.T) {
	load := func(env map[string]string) featurejob.Config {
		t.Helper()
		var cfg featurejob.Config
		if err := config.LoadFrom(context.Background(), &cfg, env); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := load(map[string]string{"DATABASE_URL": "postgres://x", "FEATURE_ENGINE": "auto"})
	if cfg.AutoMaxWorkOrders != 10_000_000 {
		t.Errorf("FEATURE_AUTO_MAX_WORK_ORDERS default %d", cfg.AutoMaxWorkOrders)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("auto with the default settings: %v", err)
	}
	for _, c := range []struct {
		engine, mode, project string
		max                   int64
		want                  []string // "" = valid
	}{
		{"auto", "serverless", "", 10_000_000, []string{"FEATURE_ENGINE=auto needs valid Dataproc settings",
			"more than FEATURE_AUTO_MAX_WORK_ORDERS=10000000 work orders on Dataproc", "DATAPROC_PROJECT or GOOGLE_CLOUD_PROJECT", "project is required"}},
		{"auto", "yarn", "p", 5, []string{"FEATURE_AUTO_MAX_WORK_ORDERS=5", `mode "yarn": want serverless or cluster`}},
		{"auto", "serverless", "p", -1, []string{"FEATURE_AUTO_MAX_WORK_ORDERS -1 is negative"}},
		{"dataproc", "serverless", "", 0, []string{"FEATURE_ENGINE=dataproc needs valid Dataproc settings: ", "project is required"}},
		{"local", "yarn", "", -1, nil},
		{"spark", "serverless", "p", 1, []string{`FEATURE_ENGINE "spark": want one of auto, dataproc, local`}},
	} {
		cfg.Engine, cfg.Dataproc.Mode, cfg.ProjectID, cfg.AutoMaxWorkOrders = c.engine, c.mode, c.project, c.max
		err := cfg.Validate()
		if (err == nil) != (c.want == nil) {
			t.Errorf("%+v: Validate() = %v", c, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: Validate() = %v, want %q in it", c, err, w)
			}
		}
	}
}
