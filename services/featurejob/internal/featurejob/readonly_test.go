package featurejob_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

// TestStepNeverWritesTheSource runs the step through a login that may only
// SELECT from the source schema (and write cmmsflow's own): it succeeds, so
// featurejob does not even try to write to, or lock, the CMMS relations.
func TestStepNeverWritesTheSource(t *testing.T) {
	ctx := context.Background()
	admin, dbURL := pgtest.NewWithURL(t)
	pool, err := db.Connect(ctx, pgtest.ReadOnlyLogin(t, admin, dbURL, db.OwnSourceSchema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := objstoretest.New(t)
	var cfg featurejob.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://unused", "LOOKBACK_DAYS": "180", "LABEL_WINDOW_DAYS": "60"}); err != nil {
		t.Fatal(err)
	}
	eng, err := featurejob.NewEngine(ctx, cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	h, err := featurejob.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Featurejob, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r)
	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run1/raw/", tables)
	out, err := r.Process(ctx, rawExtracted(t, "run1", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}))
	if out != eventing.Handled || err != nil {
		t.Fatalf("%s, %v; want the step done with a read-only source", out, err)
	}
	var fb eventsv1.FeaturesBuilt
	if !outbox(t, admin, events.FeaturesBuilt, &fb) || fb.Training.GetRows() != 21 {
		t.Fatalf("features.built %v", &fb)
	}
}
