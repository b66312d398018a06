package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// LimitFunc is a pipeline's max_active_runs (scheduler.Table.MaxActiveRuns).
type LimitFunc func(pipeline string) int

// Starter starts queued runs within their pipeline's max_active_runs:
// Airflow's limit on concurrent DAG runs. Whatever ends a run (its last step,
// a failed step, a cancel, the stale-run sweeper) calls StartQueued in the
// same transaction, so a freed slot is taken at once.
type Starter struct {
	limit LimitFunc
}

// NewStarter returns a Starter; a nil limit allows one run at a time.
func NewStarter(limit LimitFunc) *Starter {
	if limit == nil {
		limit = func(string) int { return 1 }
	}
	return &Starter{limit: limit}
}

// StartQueued starts pl's oldest queued runs (queued_at, then run_id) while
// fewer than its limit are running, and returns their ids. It holds the
// pipeline's lock (runstore.LockPipeline), so the limit holds under concurrent
// triggers and several control instances.
func (s *Starter) StartQueued(ctx context.Context, tx pgx.Tx, pl events.Pipeline) ([]string, error) {
	if err := runstore.LockPipeline(ctx, tx, pl.ID); err != nil {
		return nil, err
	}
	running, err := runstore.CountRunning(ctx, tx, pl.ID)
	if err != nil {
		return nil, err
	}
	free := s.limit(pl.ID) - running
	if free <= 0 {
		return nil, nil
	}
	queued, err := runstore.OldestQueued(ctx, tx, pl.ID, free)
	if err != nil {
		return nil, err
	}
	var started []string
	for _, r := range queued {
		if err := start(ctx, tx, pl, r); err != nil {
			return nil, fmt.Errorf("start run %s: %w", r.RunID, err)
		}
		started = append(started, r.RunID)
	}
	return started, nil
}

// start makes a queued run running, creates its steps and emits run-started,
// which starts its first step, with the conf keys the steps read.
func start(ctx context.Context, tx pgx.Tx, pl events.Pipeline, r runstore.QueuedRun) error {
	if err := runstore.Start(ctx, tx, r.RunID, traceID(r.TraceParent), pl.Steps); err != nil {
		return err
	}
	ev, err := RunStarted(pl, r.RunID, r.Conf, r.Logical, r.TraceParent)
	if err != nil {
		return err
	}
	return eventing.Emit(ctx, tx, ev)
}

// RunStarted is the run-started event of a run of pl with the stored conf:
// its logical date and the declared conf keys, which its first step reads.
func RunStarted(pl events.Pipeline, runID string, conf []byte, logical time.Time, traceparent string) (eventing.Event, error) {
	return eventing.New(events.RunStarted, events.Source(events.Control), runID, pl.ID, traceparent,
		&eventsv1.RunStarted{LogicalDate: timestamppb.New(logical), Conf: declaredConf(pl, conf)})
}

// declaredConf is the string values of pl's declared conf keys in a stored
// conf: what the steps read (the trigger checked their formats).
func declaredConf(pl events.Pipeline, conf []byte) map[string]string {
	var obj map[string]any
	_ = json.Unmarshal(conf, &obj)
	out := map[string]string{}
	for _, k := range pl.Conf {
		if v, ok := obj[k.Name].(string); ok {
			out[k.Name] = v
		}
	}
	return out
}

// traceID is the trace id of a W3C traceparent, or "".
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}
