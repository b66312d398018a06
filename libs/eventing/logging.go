package eventing

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/logging"
)

// Logging is the middleware that gives the delivery its logger, which the
// handler gets with logging.From(ctx): every line names the event, the run
// and its pipeline, the step when the event starts the consumer's step, and
// Pub/Sub's delivery attempt when the push carries one. It logs the delivery's outcome and how long it took.
func Logging(log *slog.Logger) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			ev := d.Event
			attrs := []any{"event_id", ev.ID(), "event_type", ev.Type(), "run_id", ev.RunID, "pipeline", ev.Pipeline}
			if d.Step != "" {
				attrs = append(attrs, "step", d.Step)
			}
			if d.Message.DeliveryAttempt > 0 {
				attrs = append(attrs, "delivery_attempt", d.Message.DeliveryAttempt)
			}
			l := log.With(attrs...)
			ctx = logging.With(ctx, l)
			started := time.Now()
			err := next(ctx, d)
			switch {
			case err == nil:
				l.InfoContext(ctx, "event "+string(d.Outcome), "took", time.Since(started))
			case errors.Is(err, ErrLeased):
				l.InfoContext(ctx, "event leased by another delivery: retry later", "took", time.Since(started))
			default:
				l.WarnContext(ctx, "event failed, will be retried", "error", err, "took", time.Since(started))
			}
			return err
		}
	}
}
