package eventing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/logging"
)

// ErrRunStopped is the cause with which RunGuard cancels a step's context
// when the step's run stops being active (its state leaves queued and
// running: cancelled, failed, success…) while the step is at work. An engine
// that started external work for the step stops it when context.Cause(ctx)
// is ErrRunStopped: no redelivery will come back for it, since the delivery
// is acked (outcome Cancelled).
var ErrRunStopped = errors.New("run is no longer active")

// RunStates tells the state of a run: "" when the run is not known.
type RunStates interface {
	RunState(ctx context.Context, runID string) (string, error)
}

// SQLRunStates reads a run's state from the runs relation control keeps.
type SQLRunStates struct{ Pool *pgxpool.Pool }

// RunState implements RunStates.
func (s SQLRunStates) RunState(ctx context.Context, runID string) (string, error) {
	var state string
	err := s.Pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("run state: %w", err)
	}
	return state, nil
}

// runActive reports whether a run in state may still perform steps; ""
// (no runs row) is active.
func runActive(state string) bool {
	return state == "" || state == "queued" || state == "running"
}

// RunGuard is the middleware that performs a step only while its run is
// active. A processed event is acked as Duplicate at once. A step event of a run that is no longer active is recorded as
// processed and acked (outcome Cancelled) without being performed. While
// the step is at work its run is polled every interval; when it stops, the
// work's context is cancelled with cause ErrRunStopped, and a work that
// ends with an error then is acked as Cancelled too.
func RunGuard(runs RunStates, in *Inbox, every time.Duration) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			if seen, err := in.Seen(ctx, d.Event); err != nil || seen {
				if seen {
					d.Outcome = Duplicate
				}
				return err
			}
			state, err := runs.RunState(ctx, d.Event.RunID)
			if err != nil {
				return err
			}
			if !runActive(state) {
				d.Outcome = Cancelled
				return in.MarkProcessed(ctx, d.Event)
			}
			poll := func(ctx context.Context) (string, error) { return runs.RunState(ctx, d.Event.RunID) }
			stopped, err := watchRun(ctx, every, poll, func(ctx context.Context) error { return next(ctx, d) })
			if stopped == "" || err == nil {
				return err
			}
			d.Outcome = Cancelled
			logging.From(ctx).InfoContext(ctx, "step stopped: run is no longer active", "run_state", stopped)
			return in.MarkProcessed(context.WithoutCancel(ctx), d.Event)
		}
	}
}

// watchRun calls handle with a context that is cancelled with cause
// ErrRunStopped as soon as poll, called every interval, returns a state that
// is not active. It returns handle's error and the state that stopped the
// run, "" if it did not.
func watchRun(ctx context.Context, every time.Duration, poll func(context.Context) (string, error),
	handle func(context.Context) error) (string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	quit, stopped := make(chan struct{}), make(chan string, 1)
	go func() { stopped <- pollRun(ctx, every, poll, quit, cancel) }()
	err := handle(ctx)
	close(quit)
	state := <-stopped
	if !errors.Is(context.Cause(ctx), ErrRunStopped) {
		state = "" // the delivery's own context ended first
	}
	return state, err
}

// pollRun polls the run's state every interval until it is not active, then
// cancels ctx with ErrRunStopped and returns the state; it returns "" when
// ctx ends or quit is closed first. Poll errors are ignored: the next poll
// retries, and a database that stays down fails the step anyway.
func pollRun(ctx context.Context, every time.Duration, poll func(context.Context) (string, error),
	quit <-chan struct{}, cancel context.CancelCauseFunc) string {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-quit:
			return ""
		case <-t.C:
		}
		if state, err := poll(ctx); err == nil && !runActive(state) {
			cancel(ErrRunStopped)
			return state
		}
	}
}
