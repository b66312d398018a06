package featurejob_test

import (
	"context"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
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
	store, r := router(t, pool)
	tables, p := rawtest.LoadGolden(t, "../../testdata/golden")
	raw := rawtest.Write(t, store, "runs/run1/raw/", tables)
	eventingtest.Deliver(t, r, rawExtracted(t, "run1", &eventsv1.RawExtracted{SnapshotDate: p.SnapshotDate, Objects: raw}), eventing.Handled)
	var fb eventsv1.FeaturesBuilt
	if !eventingtest.Last(t, admin, events.FeaturesBuilt, &fb) || fb.Training.GetRows() != 21 {
		t.Fatalf("features.built %v", &fb)
	}
}
