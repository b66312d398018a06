package eventing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// Handler is the one signature of every event handler. It runs inside tx, the
// transaction that also records the event as processed: its database effects
// and the events it Emits commit together or not at all. Return Permanent(err)
// for input no retry can fix; any other error is retried.
type Handler func(ctx context.Context, tx pgx.Tx, ev Event) error

// StepHandler performs a pipeline step. The router reports the step started
// before it runs and succeeded (with the result's figures) in its
// transaction; failures are reported by the receiver.
type StepHandler func(ctx context.Context, tx pgx.Tx, ev Event) (StepResult, error)

// StepResult is what a step reports on success.
type StepResult struct {
	Figures map[string]float64
	Summary string
}

// Next is a handler after the router has resolved the transaction, as seen by
// middleware.
type Next func(ctx context.Context, ev Event) error

// Middleware wraps the processing of one decoded event.
type Middleware func(Next) Next

// Router receives pushed events for one service and dispatches them by type
// through the middleware chain: logging → dead-letter on permanent error →
// recover → timeout → [Use'd middleware] → dedupe and transaction → handler.
type Router struct {
	service string
	pool    *pgxpool.Pool
	relay   *Relay
	log     *slog.Logger
	timeout time.Duration
	watch   time.Duration
	maxBody int64
	routes  map[string]route
	extra   []Middleware
	tel     routerInstruments
}

type route struct {
	handler Handler
	step    bool
}

// RouterConfig configures NewRouter.
type RouterConfig struct {
	Service string
	Pool    *pgxpool.Pool
	Relay   *Relay // flushed after every commit that emitted events
	Log     *slog.Logger
	Timeout time.Duration // per event; 0 means 5 minutes
	MaxBody int64         // push body limit; 0 means 16 MiB
	// RunWatch is how often the run of a step at work is polled, so that the
	// step is stopped when its run is no longer active; 0 means 5 seconds.
	RunWatch time.Duration
	// Telemetry receives a span per delivery and the event metrics; the zero
	// value uses OpenTelemetry's global providers.
	Telemetry Telemetry
}

// NewRouter returns a router with no routes.
func NewRouter(c RouterConfig) *Router {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.RunWatch == 0 {
		c.RunWatch = defaultRunWatch
	}
	if c.MaxBody == 0 {
		c.MaxBody = 16 << 20
	}
	return &Router{
		service: c.Service, pool: c.Pool, relay: c.Relay, log: c.Log,
		timeout: c.Timeout, watch: c.RunWatch, maxBody: c.MaxBody, routes: map[string]route{},
		tel: newRouterInstruments(c.Telemetry),
	}
}

// Handle registers h for eventType.
func (r *Router) Handle(eventType string, h Handler) {
	r.routes[eventType] = route{handler: h}
}

// HandleStep registers the service's pipeline step for eventType.
func (r *Router) HandleStep(eventType string, h StepHandler) {
	r.routes[eventType] = route{step: true, handler: func(ctx context.Context, tx pgx.Tx, ev Event) error {
		res, err := h(ctx, tx, ev)
		if err != nil {
			return err
		}
		done, err := ev.Next(events.StepSucceeded, events.Source(r.service),
			&eventsv1.StepSucceeded{Step: r.service, Figures: res.Figures, Summary: res.Summary})
		if err != nil {
			return err
		}
		return Emit(ctx, tx, done)
	}}
}

// Use appends middleware run inside the built-in chain, just outside the
// transaction.
func (r *Router) Use(mw ...Middleware) { r.extra = append(r.extra, mw...) }

// Outcome of one delivery, for logs and tests.
type Outcome string

const (
	Handled      Outcome = "handled"
	Duplicate    Outcome = "duplicate"
	DeadLettered Outcome = "dead-lettered"
	Retry        Outcome = "retry"
	Cancelled    Outcome = "cancelled" // a step event of a run that is no longer active: acked, not performed
)

// ServeHTTP is the push endpoint. 2xx acks; anything else makes Pub/Sub
// redeliver with backoff.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	out, err := r.Receive(req.Context(), req)
	if out == Retry {
		http.Error(w, "retry: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"outcome": string(out)})
}

// Receive decodes and processes one push request.
func (r *Router) Receive(ctx context.Context, req *http.Request) (Outcome, error) {
	msg, err := DecodePush(req, r.maxBody)
	if err != nil {
		started := time.Now()
		ctx, span := r.tel.startProcess(ctx, r.service, msg)
		out := Retry
		if IsPermanent(err) {
			out, err = r.deadLetter(ctx, msg, nil, err)
		}
		r.tel.finish(ctx, span, r.service, "", out, err, time.Since(started))
		return out, err
	}
	return r.Process(ctx, msg)
}

// Process runs one Pub/Sub message through the chain, in a consumer span that
// continues the trace the message carries.
func (r *Router) Process(ctx context.Context, msg Message) (Outcome, error) {
	started := time.Now()
	ctx, span := r.tel.startProcess(ctx, r.service, msg)
	out, err := r.process(ctx, msg)
	r.tel.finish(ctx, span, r.service, msg.Attributes[AttrType], out, err, time.Since(started))
	return out, err
}

func (r *Router) process(ctx context.Context, msg Message) (Outcome, error) {
	ev, err := FromMessage(msg)
	if err != nil {
		pe := partialEvent(msg)
		if pe != nil {
			withEventTrace(ctx, pe)
		}
		return r.deadLetter(ctx, msg, pe, err)
	}
	withEventTrace(ctx, &ev)
	rt, ok := r.routes[ev.Type()]
	log := r.deliveryLog(ev, msg, ok && rt.step)
	ctx = logging.With(ctx, log)
	if !ok {
		return r.deadLetter(ctx, msg, &ev, Permanent(fmt.Errorf("%s does not handle event type %q", r.service, ev.Type())))
	}
	started := time.Now()
	outcome := Handled
	next := r.transact(rt, &outcome)
	for i := len(r.extra) - 1; i >= 0; i-- {
		next = r.extra[i](next)
	}
	next = withTimeout(r.timeout, next)
	next = withRecover(next)
	err = next(ctx, ev)
	switch {
	case err == nil:
		log.InfoContext(ctx, "event "+string(outcome), "took", time.Since(started))
		return outcome, nil
	case IsPermanent(err):
		log.ErrorContext(ctx, "event dead-lettered", "error", err)
		return r.deadLetter(ctx, msg, &ev, err)
	default:
		log.WarnContext(ctx, "event failed, will be retried", "error", err)
		if rt.step && outcome != Cancelled {
			r.reportRetry(ctx, ev, err)
		}
		return Retry, err
	}
}

// StepStartedLog is the message of the line the router logs, through the
// delivery's logger, each time it reports a step started: one line per
// attempt that control counts (steps.attempts), so a step's log lines can be
// split into its tries at these lines.
const StepStartedLog = "step started"

// deliveryLog is the logger of one delivery, which the handler gets with
// logging.From(ctx): every line names the event, the run and its pipeline,
// the step when the event starts this service's step, and Pub/Sub's delivery
// attempt when the push carries one.
func (r *Router) deliveryLog(ev Event, msg Message, step bool) *slog.Logger {
	attrs := []any{"event_id", ev.ID(), "event_type", ev.Type(), "run_id", ev.RunID, "pipeline", ev.Pipeline}
	if step {
		attrs = append(attrs, "step", r.service)
	}
	if msg.DeliveryAttempt > 0 {
		attrs = append(attrs, "delivery_attempt", msg.DeliveryAttempt)
	}
	return r.log.With(attrs...)
}

// transact is the innermost middleware: it dedupes on the event id in the
// same transaction as the handler's effects and flushes the outbox after
// commit. A step is performed only while its run is active (runActive).
func (r *Router) transact(rt route, outcome *Outcome) Next {
	return func(ctx context.Context, ev Event) error {
		var seen bool
		err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2)`,
			r.service, ev.ID()).Scan(&seen)
		if err != nil {
			return fmt.Errorf("dedupe check: %w", err)
		}
		if seen {
			*outcome = Duplicate
			return nil
		}
		if rt.step {
			if start, err := r.startStep(ctx, ev, outcome); !start || err != nil {
				return err
			}
		}
		stopped, err := r.handleInTx(ctx, rt, ev, outcome)
		switch {
		case errors.Is(err, errDuplicate):
			return nil
		case stopped != "":
			return r.stepStopped(ctx, ev, stopped, outcome)
		case err == nil:
			r.flush(ctx)
		}
		return err
	}
}

// startStep reports ev's step started, unless ev's run is no longer active:
// then the event is recorded as processed, so that the step is never
// performed, with outcome Cancelled, and startStep returns false.
func (r *Router) startStep(ctx context.Context, ev Event, outcome *Outcome) (bool, error) {
	state, err := r.runState(ctx, ev.RunID)
	if err != nil {
		return false, err
	}
	if !runActive(state) {
		*outcome = Cancelled
		return false, r.markProcessed(ctx, ev)
	}
	if err := r.reportStarted(ctx, ev); err != nil {
		return false, err
	}
	logging.From(ctx).InfoContext(ctx, StepStartedLog)
	return true, nil
}

// handleInTx runs the handler in a transaction that also records ev as
// processed. A step handler runs under watchRun: if its run stops meanwhile,
// the transaction is rolled back whatever the handler returned, and
// handleInTx returns the state the run was found in.
func (r *Router) handleInTx(ctx context.Context, rt route, ev Event, outcome *Outcome) (stopped string, err error) {
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, insertProcessed, r.service, ev.ID(), ev.Type())
		if err != nil {
			return fmt.Errorf("dedupe: %w", err)
		}
		if tag.RowsAffected() == 0 {
			*outcome = Duplicate
			return errDuplicate
		}
		if !rt.step {
			return r.handle(ctx, rt, tx, ev)
		}
		poll := func(ctx context.Context) (string, error) { return r.runState(ctx, ev.RunID) }
		stopped, err = watchRun(ctx, r.watch, poll, func(ctx context.Context) error { return r.handle(ctx, rt, tx, ev) })
		if stopped != "" {
			return ErrRunStopped // roll back
		}
		return err
	})
	return stopped, err
}

// stepStopped acks a step stopped because its run stopped being active: the
// handler's transaction was rolled back, and nothing is reported; the event
// is recorded as processed, with a context the stop did not cancel, so that
// no redelivery performs the step.
func (r *Router) stepStopped(ctx context.Context, ev Event, state string, outcome *Outcome) error {
	*outcome = Cancelled
	logging.From(ctx).InfoContext(ctx, "step stopped: run is no longer active", "run_state", state)
	return r.markProcessed(context.WithoutCancel(ctx), ev)
}

const insertProcessed = `INSERT INTO processed_events (consumer, event_id, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`

var errDuplicate = errors.New("duplicate delivery")

// handle runs the handler in a span of its own, the parent of its database
// work and of the events it emits.
func (r *Router) handle(ctx context.Context, rt route, tx pgx.Tx, ev Event) error {
	ctx, span := r.tel.tracer.Start(ctx, "handle "+r.service)
	defer span.End()
	withEventTrace(ctx, &ev)
	err := rt.handler(ctx, tx, ev)
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
	}
	return err
}

// runState is the state of a run, "" when there is no runs row for it.
func (r *Router) runState(ctx context.Context, runID string) (string, error) {
	var state string
	err := r.pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("run state: %w", err)
	}
	return state, nil
}

// markProcessed records ev as processed outside a handler's transaction.
func (r *Router) markProcessed(ctx context.Context, ev Event) error {
	_, err := r.pool.Exec(ctx, insertProcessed, r.service, ev.ID(), ev.Type())
	return err
}

// flushTimeout bounds the publish after commit: when Pub/Sub is slow the
// request returns and the relay's loop publishes later.
const flushTimeout = 5 * time.Second

func (r *Router) flush(ctx context.Context) {
	if r.relay == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if _, err := r.relay.Flush(ctx); err != nil {
		r.log.WarnContext(ctx, "outbox flush after commit failed; the relay will retry", "error", err)
		r.relay.Nudge()
	}
}

// emitNow writes ev in its own transaction and flushes.
func (r *Router) emitNow(ctx context.Context, ev Event) error {
	if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return Emit(ctx, tx, ev) }); err != nil {
		return err
	}
	r.flush(ctx)
	return nil
}

// isStep reports whether a failure to handle ev fails this service's step:
// the service is a step of the event's pipeline and ev is not itself a
// step report (failing on those could loop: a failure report about a
// failure report).
func (r *Router) isStep(ev *Event) bool {
	if ev == nil || ev.RunID == "" {
		return false
	}
	switch ev.Type() {
	case events.StepStarted, events.StepSucceeded, events.StepFailed:
		return false
	}
	p, ok := events.LookupPipeline(ev.Pipeline)
	return ok && p.StepIndex(r.service) >= 0
}

func (r *Router) reportStarted(ctx context.Context, ev Event) error {
	started, err := ev.Next(events.StepStarted, events.Source(r.service), &eventsv1.StepStarted{Step: r.service})
	if err != nil {
		return err
	}
	if err := r.emitNow(ctx, started); err != nil {
		return fmt.Errorf("report step started: %w", err)
	}
	return nil
}

// reportRetry records a transient failure on the step, best effort: the
// database may be what failed.
func (r *Router) reportRetry(ctx context.Context, ev Event, cause error) {
	failed, err := ev.Next(events.StepFailed, events.Source(r.service),
		&eventsv1.StepFailed{Step: r.service, Error: toText(cause.Error()), Retrying: true})
	if err == nil {
		err = r.emitNow(context.WithoutCancel(ctx), failed)
	}
	if err != nil {
		r.log.WarnContext(ctx, "could not report step retry", "error", err)
	}
}

// deadLetter records a message no retry can fix, with the reason, marks it
// processed, fails the run step when the event belongs to one of this
// service's pipelines, and acks. If the record cannot be written the message
// is retried instead, so nothing is dropped silently.
func (r *Router) deadLetter(ctx context.Context, msg Message, ev *Event, cause error) (Outcome, error) {
	ctx = context.WithoutCancel(ctx)
	trace.SpanFromContext(ctx).RecordError(cause) // the delivery's span: the reason is on it
	// Bad input may hold NUL or invalid UTF-8, which text columns refuse:
	// what is recorded is made storable, so that the poison is acked.
	key := toText(msg.Attributes[AttrID])
	if key == "" {
		key = "pubsub:" + toText(msg.PubSubID)
	}
	var runID, pipeline, typ string
	if ev != nil {
		runID, pipeline, typ = toText(ev.RunID), toText(ev.Pipeline), toText(ev.Type())
	}
	reason := toText(cause.Error())
	outcome := DeadLettered
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if key != "pubsub:" {
			tag, err := tx.Exec(ctx, insertProcessed, r.service, key, typ)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				outcome = Duplicate
				return nil
			}
		}
		attrs := make(map[string]string, len(msg.Attributes))
		for k, v := range msg.Attributes {
			attrs[toText(k)] = toText(v)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO dead_letters (consumer, event_id, event_type, run_id, pipeline, reason, attributes, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.service, key, typ, runID, pipeline, reason, attrs, msg.Data); err != nil {
			return err
		}
		if !r.isStep(ev) {
			return nil
		}
		failed, err := ev.Next(events.StepFailed, events.Source(r.service),
			&eventsv1.StepFailed{Step: r.service, Error: reason})
		if err != nil {
			return err
		}
		return Emit(ctx, tx, failed)
	})
	if err != nil {
		r.log.ErrorContext(ctx, "could not record dead letter; message will be retried", "error", err, "reason", cause)
		return Retry, fmt.Errorf("record dead letter: %w", err)
	}
	if outcome == DeadLettered {
		r.log.ErrorContext(ctx, "event dead-lettered", "reason", reason, "event_id", key, "event_type", typ, "run_id", runID)
		r.flush(ctx)
	}
	return outcome, nil
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

func withTimeout(d time.Duration, next Next) Next {
	return func(ctx context.Context, ev Event) error {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return next(ctx, ev)
	}
}

// withRecover turns a handler panic into a permanent error: the same input
// would panic again.
func withRecover(next Next) Next {
	return func(ctx context.Context, ev Event) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = Permanent(fmt.Errorf("handler panic: %v\n%s", p, debug.Stack()))
			}
		}()
		return next(ctx, ev)
	}
}
