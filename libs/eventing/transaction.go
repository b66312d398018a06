package eventing

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Transaction is the middleware of transactional routes (Handle): the rest
// of the chain runs inside one transaction (d.Tx) that also records the
// event as processed, and the outbox is flushed after commit. A processed
// event is acked as Duplicate and its handler not called. For handlers that
// only touch PostgreSQL.
func Transaction(in *Inbox) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			err := in.InTx(ctx, d.Event, func(ctx context.Context, tx pgx.Tx) error {
				d.Tx = tx
				defer func() { d.Tx = nil }()
				return next(ctx, d)
			})
			if errors.Is(err, errDuplicate) {
				d.Outcome = Duplicate
				return nil
			}
			return err
		}
	}
}
