package eventing

import (
	"context"
	"errors"
	"time"
)

// ErrRunStopped is the cause with which the router cancels a step handler's
// context when the step's run stops being active (its state leaves queued
// and running: cancelled, failed, success…) while the handler is at work.
// An engine that started external work for the step stops it when
// context.Cause(ctx) is ErrRunStopped: no redelivery will come back for it,
// since the router acks the delivery (outcome Cancelled).
var ErrRunStopped = errors.New("run is no longer active")

// defaultRunWatch is how often a step's run is polled when the
// RouterConfig sets no RunWatch.
const defaultRunWatch = 5 * time.Second

// runActive reports whether a run in state may still perform steps; ""
// (no runs row) is active.
func runActive(state string) bool {
	return state == "" || state == "queued" || state == "running"
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
// retries, and a database that stays down fails the handler anyway.
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
