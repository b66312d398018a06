package api

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
)

type nudges struct{ n atomic.Int32 }

func (c *nudges) Nudge() { c.n.Add(1) }

// Manual runs are named after the trigger's time; two triggers in the same
// microsecond get consecutive ones, and every new run nudges the relay.
func TestTriggerNamesRunsUniquely(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	relay := &nudges{}
	s := New(pool, table, relay, slog.New(slog.NewTextHandler(io.Discard, nil)))
	at := time.Date(2026, 5, 4, 3, 2, 1, 999_999_500, time.UTC)
	s.now = func() time.Time { return at }
	var ids []string
	for range 3 {
		resp, err := s.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{Pipeline: events.PreventiveMaintenance})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetRun().GetRunId())
	}
	want := []string{
		"manual__2026-05-04T03:02:01.999999+00:00",
		"manual__2026-05-04T03:02:02+00:00",
		"manual__2026-05-04T03:02:02.000001+00:00",
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Errorf("run %d: %s, want %s", i, ids[i], want[i])
		}
	}
	if relay.n.Load() != 3 {
		t.Errorf("%d nudges, want 3", relay.n.Load())
	}
	// A repeated idempotency key does not nudge: nothing new to publish.
	for range 2 {
		if _, err := s.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport, IdempotencyKey: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if relay.n.Load() != 4 {
		t.Errorf("%d nudges, want 4", relay.n.Load())
	}
}
