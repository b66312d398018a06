package eventing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/codes"
)

// Router receives pushed events for one service and dispatches them by type
// through a chain of middleware values. Every route has
//
//	Logging → DeadLetter → Recover → Timeout → [Use'd] → [the route's own]
//
// then, by kind of route:
//
//	Handle:      → Transaction → handler(ctx, tx, ev)
//	HandleWork:  → Lease → work(ctx, ev)
//	HandleStep:  → RunGuard → StepReport → Lease → step(ctx, ev)
//	HandleStepTx: the same, with the step run in the complete transaction
//
// so that no transaction stays open while a work or a step calls out.
type Router struct {
	service string
	log     *slog.Logger
	inbox   *Inbox
	runs    RunStates
	timeout time.Duration
	watch   time.Duration
	lease   time.Duration
	maxBody int64
	routes  map[string]Route
	extra   []Middleware
	tel     routerInstruments
}

// Route is one registered event type: what it consumes, what it emits (a
// step's output event), and its chain.
type Route struct {
	In   string
	Out  string // a step's output event type; "" for none
	Step bool
	run  Next
	mw   []Middleware
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
	// Runs tells a run's state to RunGuard; nil reads control's runs relation
	// (SQLRunStates on Pool).
	Runs RunStates
	// Lease is how long a work's lease on its event lasts without renewal
	// (it is renewed every quarter of it); 0 means 1 minute.
	Lease time.Duration
	// Telemetry receives a span per delivery and the event metrics; the zero
	// value uses OpenTelemetry's global providers.
	Telemetry Telemetry
}

// NewRouter returns a router with no routes.
func NewRouter(c RouterConfig) *Router {
	c.Timeout = orDefault(c.Timeout, 5*time.Minute)
	c.RunWatch = orDefault(c.RunWatch, 5*time.Second)
	c.Lease = orDefault(c.Lease, time.Minute)
	if c.MaxBody == 0 {
		c.MaxBody = 16 << 20
	}
	if c.Runs == nil {
		c.Runs = SQLRunStates{Pool: c.Pool}
	}
	tel := newRouterInstruments(c.Telemetry)
	return &Router{
		service: c.Service, log: c.Log, runs: c.Runs,
		inbox:   &Inbox{Pool: c.Pool, Consumer: c.Service, Relay: c.Relay, Log: c.Log, Tracer: tel.tracer},
		timeout: c.Timeout, watch: c.RunWatch, lease: c.Lease, maxBody: c.MaxBody, routes: map[string]Route{},
		tel: tel,
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Inbox is the router's record of the events it received.
func (r *Router) Inbox() *Inbox { return r.inbox }

// Handle registers h for eventType: it runs inside the transaction that
// records the event as processed. For handlers that only touch PostgreSQL.
func (r *Router) Handle(eventType string, h Handler, mw ...Middleware) {
	run := func(ctx context.Context, d *Delivery) error {
		return r.span(ctx, d, func(ctx context.Context) error { return h(ctx, d.Tx, d.Event) })
	}
	r.add(Route{In: eventType, run: run, mw: append(mw, Transaction(r.inbox))})
}

// HandleWork registers w for eventType: a work that may call out, with no
// transaction open, under a lease on the event (Lease).
func (r *Router) HandleWork(eventType string, w Work, mw ...Middleware) {
	run := func(ctx context.Context, d *Delivery) error {
		return r.span(ctx, d, func(ctx context.Context) error {
			commit, err := w(ctx, d.Event)
			d.Result.Commit = commit
			return err
		})
	}
	r.add(Route{In: eventType, run: run, mw: append(mw, Lease(r.inbox, r.lease))})
}

// HandleStep registers the service's pipeline step: it consumes in and, on
// success, emits out with the result's Output as payload (out is "" for the
// last step of a pipeline). The step runs in three phases (Lease) under
// RunGuard and StepReport.
func (r *Router) HandleStep(in, out string, h StepFunc, mw ...Middleware) {
	run := func(ctx context.Context, d *Delivery) error {
		return r.span(ctx, d, func(ctx context.Context) (err error) {
			d.Result, err = h(ctx, d.Event)
			return err
		})
	}
	r.addStep(in, out, run, mw)
}

// HandleStepTx registers a step that only touches PostgreSQL: h runs inside
// the complete transaction (there is no work phase), which also emits out
// with the result's Output and reports the step succeeded; the claim
// reports it started. The result's Commit is not used.
func (r *Router) HandleStepTx(in, out string, h StepTxFunc, mw ...Middleware) {
	run := func(_ context.Context, d *Delivery) error {
		d.Result.Commit = func(ctx context.Context, tx pgx.Tx) error {
			return r.span(ctx, d, func(ctx context.Context) (err error) {
				d.Result, err = h(ctx, tx, d.Event) // read by StepReport after this
				return err
			})
		}
		return nil
	}
	r.addStep(in, out, run, mw)
}

func (r *Router) addStep(in, out string, run Next, mw []Middleware) {
	mw = append(mw, RunGuard(r.runs, r.inbox, r.watch), StepReport(r.inbox, out), Lease(r.inbox, r.lease))
	r.add(Route{In: in, Out: out, Step: true, run: run, mw: mw})
}

func (r *Router) add(rt Route) {
	if _, dup := r.routes[rt.In]; dup {
		panic(fmt.Sprintf("eventing: %s handles %s twice", r.service, rt.In))
	}
	r.routes[rt.In] = rt
}

// Routes lists the registered routes, for checks against the registry.
func (r *Router) Routes() []Route {
	out := make([]Route, 0, len(r.routes))
	for _, rt := range r.routes {
		out = append(out, rt)
	}
	return out
}

// Use appends middleware to every route, inside the router's own (Logging,
// DeadLetter, Recover, Timeout) and outside the route's.
func (r *Router) Use(mw ...Middleware) { r.extra = append(r.extra, mw...) }

// chain is the route's full chain around its innermost call.
func (r *Router) chain(rt Route) Next {
	all := []Middleware{Logging(r.log), DeadLetter(r.inbox), Recover(), Timeout(r.timeout)}
	all = append(append(all, r.extra...), rt.mw...)
	next := rt.run
	for i := len(all) - 1; i >= 0; i-- {
		next = all[i](next)
	}
	return next
}

// ServeHTTP is the push endpoint. 2xx acks; anything else makes Pub/Sub
// redeliver with backoff.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	out, err := r.Receive(req.Context(), req)
	if out == Retry || out == Leased {
		http.Error(w, string(out)+": "+err.Error(), http.StatusServiceUnavailable)
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
			out, err = r.inbox.DeadLetter(ctx, msg, nil, err)
		}
		r.tel.finish(ctx, span, r.service, "", out, err, time.Since(started))
		return out, err
	}
	return r.Process(ctx, msg)
}

// Process runs one Pub/Sub message through its route's chain, in a consumer
// span that continues the trace the message carries.
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
		return r.inbox.DeadLetter(ctx, msg, pe, err)
	}
	withEventTrace(ctx, &ev)
	rt, ok := r.routes[ev.Type()]
	if !ok {
		rt = Route{In: ev.Type(), run: func(context.Context, *Delivery) error {
			return Permanent(fmt.Errorf("%s does not handle event type %q", r.service, ev.Type()))
		}}
	}
	d := &Delivery{Event: ev, Message: msg, Outcome: Handled}
	if rt.Step {
		d.Step = r.service
	}
	err = r.chain(rt)(ctx, d)
	switch {
	case err == nil:
		return d.Outcome, nil
	case errors.Is(err, ErrLeased):
		return Leased, err
	default:
		return Retry, err
	}
}

// span runs the route's handler in a span of its own, the parent of its
// database work and of the events it emits.
func (r *Router) span(ctx context.Context, d *Delivery, h func(context.Context) error) error {
	ctx, span := r.tel.tracer.Start(ctx, "handle "+r.service)
	defer span.End()
	withEventTrace(ctx, &d.Event)
	err := h(ctx)
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
	}
	return err
}
