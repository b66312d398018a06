package eventing

import (
	"context"
	"errors"
	"time"
)

// Lease is the middleware of work routes, which run in three phases:
//
//   - claim: a short transaction checks the event was not processed, takes
//     a lease on it for ttl and runs the delivery's OnClaim functions (the
//     step started report);
//   - work: the rest of the chain runs with no transaction open, while the
//     lease is renewed every ttl/4;
//   - complete: a short transaction ends the lease, marks the event
//     processed, and writes the work's Commit and the OnComplete functions
//     (its output event, the step report).
//
// A delivery of an event whose lease another delivery holds does no work:
// outcome Leased, error ErrLeased (the push is answered 503, retry later).
// When the worker dies its lease expires and the next delivery takes over;
// a worker whose lease was taken over writes nothing (ErrLeaseLost). On a
// failed work the lease is released, so the next delivery starts at once.
func Lease(in *Inbox, ttl time.Duration) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			l, err := in.Claim(ctx, d.Event, ttl, d.claim...)
			switch {
			case errors.Is(err, errDuplicate):
				d.Outcome = Duplicate
				return nil
			case errors.Is(err, ErrLeased):
				d.Outcome = Leased
				return err
			case err != nil:
				return err
			}
			if err := l.hold(ctx, func(ctx context.Context) error { return next(ctx, d) }); err != nil {
				l.Release(ctx)
				return err
			}
			err = l.Complete(ctx, append([]TxFunc{d.Result.Commit}, d.complete...)...)
			switch {
			case errors.Is(err, errDuplicate):
				d.Outcome = Duplicate
				return nil
			case err != nil && !errors.Is(err, ErrLeaseLost):
				l.Release(ctx) // the complete transaction rolled back
			}
			return err
		}
	}
}

// hold runs work while renewing the lease every ttl/4. When a renewal finds
// the lease taken over, work's context is cancelled with ErrLeaseLost. A work
// whose context ended (its run stopped, the timeout, the lost lease) fails
// with the cause, whatever it returned: what it did is not completed.
func (l *Hold) hold(ctx context.Context, work func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(l.ttl / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := l.Renew(ctx); errors.Is(err, ErrLeaseLost) {
				cancel(ErrLeaseLost)
				return
			}
		}
	}()
	err := work(ctx)
	close(done)
	if cause := context.Cause(ctx); cause != nil && (err == nil || errors.Is(cause, ErrLeaseLost)) {
		return cause
	}
	return err
}
