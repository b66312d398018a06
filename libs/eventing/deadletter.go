package eventing

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// DeadLetter is the middleware that turns a permanent error (Permanent) into
// a dead letter: the event is recorded with the reason and marked
// processed, the run's step fails when the event is one of the consumer's
// steps, and the delivery is acked (outcome DeadLettered, no error).
func DeadLetter(in *Inbox) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) error {
			err := next(ctx, d)
			if !IsPermanent(err) {
				return err
			}
			d.Outcome, err = in.DeadLetter(ctx, d.Message, &d.Event, err)
			return err
		}
	}
}

// DeadLetter records a message no retry can fix, with the reason, marks it
// processed, fails the run step when the event belongs to one of the
// consumer's pipelines, and returns DeadLettered (Duplicate when it was
// recorded before). If the record cannot be written it returns Retry and
// an error, so nothing is dropped silently. ev is nil when the message
// could not be decoded.
func (in *Inbox) DeadLetter(ctx context.Context, msg Message, ev *Event, cause error) (Outcome, error) {
	ctx = context.WithoutCancel(ctx)
	trace.SpanFromContext(ctx).RecordError(cause) // the delivery's span: the reason is on it
	// Bad input may hold NUL or invalid UTF-8, which text columns refuse:
	// what is recorded is made storable, so that the poison is acked.
	key := toText(msg.Attributes[AttrID])
	if key == "" {
		key = "pubsub:" + toText(msg.PubSubID)
	}
	var runID, typ string
	if ev != nil {
		runID, typ = toText(ev.RunID), toText(ev.Type())
	}
	reason := toText(cause.Error())
	outcome := DeadLettered
	err := pgx.BeginFunc(ctx, in.Pool, func(tx pgx.Tx) error {
		if key != "pubsub:" {
			if err := in.markProcessedTx(ctx, tx, key, typ); err == errDuplicate {
				outcome = Duplicate
				return nil
			} else if err != nil {
				return err
			}
		}
		return in.recordDeadLetter(ctx, tx, msg, ev, key, reason)
	})
	if err != nil {
		in.Log.ErrorContext(ctx, "could not record dead letter; message will be retried", "error", err, "reason", cause)
		return Retry, fmt.Errorf("record dead letter: %w", err)
	}
	if outcome == DeadLettered {
		in.Log.ErrorContext(ctx, "event dead-lettered", "reason", reason, "event_id", key, "event_type", typ, "run_id", runID)
		in.Flush(ctx)
	}
	return outcome, nil
}

// recordDeadLetter writes the dead_letters row and, for a step of the
// consumer, the step's failure report.
func (in *Inbox) recordDeadLetter(ctx context.Context, tx pgx.Tx, msg Message, ev *Event, key, reason string) error {
	var runID, pipeline, typ string
	if ev != nil {
		runID, pipeline, typ = toText(ev.RunID), toText(ev.Pipeline), toText(ev.Type())
	}
	attrs := make(map[string]string, len(msg.Attributes))
	for k, v := range msg.Attributes {
		attrs[toText(k)] = toText(v)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO dead_letters (consumer, event_id, event_type, run_id, pipeline, reason, attributes, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		in.Consumer, key, typ, runID, pipeline, reason, attrs, msg.Data); err != nil {
		return err
	}
	if !in.isStep(ev) {
		return nil
	}
	failed, err := ev.Next(events.StepFailed, events.Source(in.Consumer), &eventsv1.StepFailed{Step: in.Consumer, Error: reason})
	if err != nil {
		return err
	}
	return Emit(ctx, tx, failed)
}

// isStep reports whether a failure to handle ev fails the consumer's step:
// the consumer is a step of the event's pipeline and ev is not itself a
// step report (failing on those could loop: a failure report about a
// failure report), nor an event the consumer's subscription filters out
// (the local emulator ignores filters): etl_ml_training's features.built
// reaching the deployer, which takes it in model_monitoring only.
func (in *Inbox) isStep(ev *Event) bool {
	if ev == nil || ev.RunID == "" {
		return false
	}
	switch ev.Type() {
	case events.StepStarted, events.StepSucceeded, events.StepFailed:
		return false
	}
	p, ok := events.LookupPipeline(ev.Pipeline)
	return ok && p.StepIndex(in.Consumer) >= 0 && !filteredOut(ev, in.Consumer)
}

// filteredOut reports whether consumer's subscription to ev's type filters
// out ev's pipeline.
func filteredOut(ev *Event, consumer string) bool {
	t, ok := events.LookupType(ev.Type())
	if !ok {
		return false
	}
	for _, c := range t.Consumers {
		if c.Service == consumer && !c.For(ev.Pipeline) {
			return true
		}
	}
	return false
}

// partialEvent keeps what can be read of an undecodable message's routing
// attributes, so its run step can still be failed.
func partialEvent(msg Message) *Event {
	runID, pipeline := msg.Attributes[AttrRunID], msg.Attributes[AttrPipeline]
	if runID == "" || pipeline == "" || storable(AttrRunID, runID) != nil || storable(AttrPipeline, pipeline) != nil {
		return nil // no run can be named so
	}
	ev := Event{Event: event.New(), RunID: runID, Pipeline: pipeline, TraceParent: toText(msg.Attributes[AttrTraceParent])}
	if t := msg.Attributes[AttrType]; t != "" {
		ev.SetType(t)
	}
	return &ev
}
