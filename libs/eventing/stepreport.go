package eventing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// StepStartedLog is the message of the line logged, through the delivery's
// logger, each time a step is reported started: one line per attempt that
// control counts (steps.attempts), so a step's log lines can be split into
// its tries at these lines.
const StepStartedLog = "step started"

// StepReport is the middleware that reports the consumer's step of a run to
// control, around a Lease: started in the claim transaction; on success, in
// the complete transaction, the step's output event out (with the result's
// Output as payload; out is "" for a step with no output) and succeeded,
// with the result's figures and summary; a transient failure as failed,
// retrying. A permanent failure is reported by DeadLetter. An event of a
// pipeline the consumer is no step of, or that its subscription filters
// out, is a permanent error.
func StepReport(in *Inbox, out string) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			step := in.Consumer
			if !in.isStep(&d.Event) {
				return Permanent(fmt.Errorf("%s takes %s only in %s, not in %q",
					step, d.Event.Type(), strings.Join(pipelinesOf(step, d.Event.Type()), " and "), d.Event.Pipeline))
			}
			d.OnClaim(func(ctx context.Context, tx pgx.Tx) error {
				if err := emitNext(ctx, tx, d.Event, events.StepStarted, step, &eventsv1.StepStarted{Step: step}); err != nil {
					return fmt.Errorf("report step started: %w", err)
				}
				logging.From(ctx).InfoContext(ctx, StepStartedLog)
				return nil
			})
			d.OnComplete(func(ctx context.Context, tx pgx.Tx) error { return emitResult(ctx, tx, d, step, out) })
			err := next(ctx, d)
			if err != nil && !IsPermanent(err) && reportable(ctx, err) {
				reportRetry(ctx, in, d.Event, err)
			}
			return err
		}
	}
}

// pipelinesOf lists the pipelines where step takes eventType.
func pipelinesOf(step, eventType string) []string {
	var out []string
	for _, p := range events.Pipelines {
		if p.Input(step) == eventType {
			out = append(out, p.ID)
		}
	}
	return out
}

// emitResult emits the step's output event and its success report.
func emitResult(ctx context.Context, tx pgx.Tx, d *Delivery, step, out string) error {
	res := d.Result
	switch {
	case out != "" && res.Output == nil:
		return Permanent(fmt.Errorf("step %s returned no %s payload", step, out))
	case out == "" && res.Output != nil:
		return Permanent(fmt.Errorf("step %s declares no output event but returned a payload", step))
	case out != "":
		if err := emitNext(ctx, tx, d.Event, out, step, res.Output); err != nil {
			return err
		}
	}
	return emitNext(ctx, tx, d.Event, events.StepSucceeded, step,
		&eventsv1.StepSucceeded{Step: step, Figures: res.Figures, Summary: res.Summary})
}

func emitNext(ctx context.Context, tx pgx.Tx, ev Event, typ, step string, payload proto.Message) error {
	next, err := ev.Next(typ, events.Source(step), payload)
	if err != nil {
		return err
	}
	return Emit(ctx, tx, next)
}

// reportable: a failure that is the step's own, not a delivery that did no
// work (leased) or a stop (the run's, or a lost lease).
func reportable(ctx context.Context, err error) bool {
	return !errors.Is(err, ErrLeased) && !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrRunStopped) &&
		!errors.Is(context.Cause(ctx), ErrRunStopped)
}

// reportRetry records a transient failure on the step, best effort: the
// database may be what failed.
func reportRetry(ctx context.Context, in *Inbox, ev Event, cause error) {
	failed, err := ev.Next(events.StepFailed, events.Source(in.Consumer),
		&eventsv1.StepFailed{Step: in.Consumer, Error: toText(cause.Error()), Retrying: true})
	if err == nil {
		err = in.EmitNow(context.WithoutCancel(ctx), failed)
	}
	if err != nil {
		logging.From(ctx).WarnContext(ctx, "could not report step retry", "error", err)
	}
}
