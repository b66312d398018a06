package service

import (
	"context"
	"log/slog"
	"time"
)

// Background runs job until the service stops: Stop cancels job's context
// and waits for it to return.
func (s *Service) Background(job func(ctx context.Context)) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		job(ctx)
	}()
	s.OnStop(func() { stop(); <-done })
}

// DefaultEvery is Every's interval when the one given is not positive: a
// Config built in code rather than read from the environment leaves its
// intervals zero, and a ticker would panic on them.
const DefaultEvery = time.Minute

// Every calls job every interval (DefaultEvery when interval ≤ 0) until ctx
// ends. A failed call is logged as what failed, unless ctx ended; the next
// tick tries again.
func Every(ctx context.Context, interval time.Duration, log *slog.Logger, what string, job func(context.Context) error) {
	if interval <= 0 {
		interval = DefaultEvery
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := job(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, what+" failed; will retry", "error", err)
		}
	}
}
