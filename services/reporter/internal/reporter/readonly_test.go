package reporter_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter"
)

// TestStepNeverWritesTheSource runs the step on a demo fleet through a login
// that may only SELECT from the source schema (and write cmmsflow's own):
// it succeeds, so the reporter does not even try to write to, or lock, the
// CMMS relations.
func TestStepNeverWritesTheSource(t *testing.T) {
	ctx := context.Background()
	admin, dbURL := pgtest.NewWithURL(t)
	if _, err := fleet.Seed(ctx, admin, fleet.SeedOptions{Seed: 3, Assets: 40, Now: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Connect(ctx, pgtest.ReadOnlyLogin(t, admin, dbURL, db.OwnSourceSchema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var cfg reporter.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://unused"}); err != nil {
		t.Fatal(err)
	}
	h, err := reporter.New(cfg, objstoretest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Reporter, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	ev := runStarted(t, "scheduled__2026-11-23T08:00:00+00:00", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), nil)
	// The step is done with a read-only source.
	eventingtest.Deliver(t, r, ev.Message(), eventing.Handled)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM reports WHERE iso_week = '2026-W47' AND (kpis->>'wo_opened')::int > 0`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d reports of 2026-W47 with work orders opened (%v), want 1", n, err)
	}
}
