// Package pmgen is the pmgen service's step of the preventive_maintenance
// pipeline: on run-started it turns the plans due on the run's logical date
// into work orders (package generate), emits workorders.generated for the
// notifier, and reports the figures with the step.
//
// The work orders go to the system of record: cmmsflow's own tables by
// default, or the CMMS backend's API with PM_BACKEND_URL. A mapped source
// (SOURCE_SCHEMA other than cmms) is read-only: pmgen then requires
// PM_BACKEND_URL, refusing to start without it, and keeps the plans' next
// occurrences in its ledger (cmmsflow.plan_ledger, plan_occurrences).
//
// On its own tables the step only touches PostgreSQL and runs in the
// router's complete transaction. In backend mode it runs with no
// transaction open while it calls the backend: the plans are read and
// decided through the pool, the work orders POSTed, and the plans (or the
// ledger) advanced in the complete transaction, in which the router also
// emits workorders.generated, the step's output.
package pmgen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/backend"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

// Config is the pmgen service's configuration, from the environment.
type Config struct {
	config.Common
	// TimeZone is the IANA zone "today" is taken in: the run's logical date
	// becomes a calendar day there.
	TimeZone string `env:"PM_TIME_ZONE, default=UTC"`
	// BackendURL, when set, switches to backend mode: work orders are POSTed
	// to this work-order endpoint of an existing CMMS backend instead of
	// being inserted. Required with a mapped SOURCE_SCHEMA.
	BackendURL string `env:"PM_BACKEND_URL"`
	// BackendToken is the bearer token for BackendURL (required with it).
	BackendToken string `env:"PM_BACKEND_TOKEN"`
}

// ConfAsOf is the run conf key that overrides the logical date (YYYY-MM-DD).
const ConfAsOf = "as_of"

// Handler runs the step.
type Handler struct {
	loc     *time.Location
	backend generate.Backend
	// ledger: the source is mapped, read-only (see generate.Request).
	ledger bool
	// pool is what a backend run plans through (set by Register).
	pool generate.Beginner
}

// Validate implements service.Config.
func (c *Config) Validate() error {
	if _, err := LoadZone(c.TimeZone); err != nil {
		return err
	}
	if c.BackendURL == "" && c.BackendToken != "" {
		return errors.New("pmgen: PM_BACKEND_TOKEN is set without PM_BACKEND_URL")
	}
	if Mapped(c.SourceSchema) && c.BackendURL == "" {
		return fmt.Errorf("pmgen: SOURCE_SCHEMA %q is a mapped CMMS, which pmgen never writes to: "+
			"set PM_BACKEND_URL and PM_BACKEND_TOKEN so that work orders are created through the CMMS backend's API", c.SourceSchema)
	}
	return nil
}

// Register wires the step into s, reading through s's pool.
func Register(_ context.Context, s *service.Service, cfg Config) error {
	h, err := New(cfg)
	if err != nil {
		return err
	}
	h.Register(s.Router, s.Pool)
	return nil
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := LoadZone(cfg.TimeZone)
	if err != nil {
		return nil, err
	}
	h := &Handler{loc: loc, ledger: Mapped(cfg.SourceSchema)}
	if cfg.BackendURL != "" {
		c, err := backend.New(backend.Config{URL: cfg.BackendURL, Token: cfg.BackendToken})
		if err != nil {
			return nil, fmt.Errorf("pmgen: PM_BACKEND_URL: %w", err)
		}
		h.backend = c
	}
	return h, nil
}

// Mapped says whether source (SOURCE_SCHEMA) is a mapped CMMS rather than
// cmmsflow's own tables: then it is read-only, work orders go to the
// backend and the plans' schedules to the ledger.
func Mapped(source string) bool {
	return source != "" && source != db.OwnSourceSchema
}

// LoadZone loads an IANA time zone by name. "Local" is refused: the zone must
// mean the same on every machine and in PostgreSQL.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("pmgen: PM_TIME_ZONE %q: want an IANA time zone such as Europe/Berlin or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("pmgen: PM_TIME_ZONE: %w", err)
	}
	return loc, nil
}

// Register adds the step to the service's router. On cmmsflow's own tables
// it only touches PostgreSQL and runs in the complete transaction
// (HandleStepTx); in backend mode it runs with no transaction open while it
// calls the backend (HandleStep), reading the plans through pool.
func (h *Handler) Register(r *eventing.Router, pool generate.Beginner) {
	if h.backend == nil {
		r.HandleStepTx(events.RunStarted, events.WorkOrdersGenerated, h.StepTx)
		return
	}
	h.pool = pool
	r.HandleStep(events.RunStarted, events.WorkOrdersGenerated, h.Step)
}

// StepTx generates the work orders of the run's day in tx (no backend).
func (h *Handler) StepTx(ctx context.Context, tx pgx.Tx, ev eventing.Event) (eventing.StepResult, error) {
	req, err := h.request(ctx, ev)
	if err != nil {
		return eventing.StepResult{}, err
	}
	res, err := generate.Run(ctx, tx, req)
	if err != nil {
		return eventing.StepResult{}, err
	}
	return h.result(ctx, res), nil
}

// Step creates the work orders of the run's day through the backend with no
// transaction open: it plans through the pool and POSTs; the result's
// Commit advances the plans (or the ledger).
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	req, err := h.request(ctx, ev)
	if err != nil {
		return eventing.StepResult{}, err
	}
	p, err := generate.Plan(ctx, h.pool, req)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := p.Post(ctx); err != nil {
		return eventing.StepResult{}, err
	}
	res := h.result(ctx, p.Result())
	res.Commit = p.Commit
	return res, nil
}

// request is the generation run an event asks for. A run of another
// pipeline never gets here: the router fails it for good (StepReport).
func (h *Handler) request(ctx context.Context, ev eventing.Event) (generate.Request, error) {
	asOf, err := eventing.FromRunStarted(ev, h.AsOf)
	if err != nil {
		return generate.Request{}, err
	}
	logging.From(ctx).DebugContext(ctx, "evaluating maintenance plans", "as_of", asOf.String(), "backend", h.backend != nil, "ledger", h.ledger)
	return generate.Request{AsOf: asOf, Location: h.loc, RunID: ev.RunID, Backend: h.backend, Ledger: h.ledger}, nil
}

// result is the step's result for a run's outcome: its output is the
// workorders.generated payload.
func (h *Handler) result(ctx context.Context, res generate.Result) eventing.StepResult {
	logging.From(ctx).InfoContext(ctx, "work orders generated", "as_of", res.AsOf.String(), "evaluated", res.Evaluated,
		"created", res.Created, "skipped_open", res.SkippedOpen, "failed", res.Failed)
	byType := map[string]int32{}
	for k, v := range res.CreatedByVehicleType {
		byType[k] = int32(v)
	}
	out := &eventsv1.WorkOrdersGenerated{
		AsOf:                 res.AsOf.String(),
		Created:              int32(res.Created),
		SkippedOpen:          int32(res.SkippedOpen),
		Failed:               int32(res.Failed),
		MissedOccurrences:    int32(res.MissedOccurrences),
		CreatedByVehicleType: byType,
	}
	return eventing.StepResult{Output: out, Figures: figures(res), Summary: h.summary(res)}
}

// AsOf is the day a run evaluates plans for: conf as_of when given, else the
// logical date as a calendar day in the configured zone.
func (h *Handler) AsOf(p *eventsv1.RunStarted) (schedule.Date, error) {
	return eventing.RunParam(p, ConfAsOf, schedule.ParseDate, func(t time.Time) schedule.Date { return schedule.Today(t, h.loc) })
}

func figures(r generate.Result) map[string]float64 {
	f := map[string]float64{
		"evaluated":          float64(r.Evaluated),
		"created":            float64(r.Created),
		"skipped_open":       float64(r.SkippedOpen),
		"missed_occurrences": float64(r.MissedOccurrences),
		"failed":             float64(r.Failed),
		"already_generated":  float64(r.AlreadyGenerated),
		"reanchored":         float64(r.Reanchored),
	}
	for t, n := range r.CreatedByVehicleType {
		f["created."+t] = float64(n)
	}
	return f
}

func (h *Handler) summary(r generate.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "As of %s (%s): %d work orders created, %d skipped (work order still open), %d failed",
		r.AsOf, h.loc, r.Created, r.SkippedOpen, r.Failed)
	if r.MissedOccurrences > 0 {
		fmt.Fprintf(&b, "; %d missed occurrences folded in", r.MissedOccurrences)
	}
	if len(r.CreatedByVehicleType) > 0 {
		var parts []string
		for _, t := range slices.Sorted(maps.Keys(r.CreatedByVehicleType)) {
			parts = append(parts, fmt.Sprintf("%s %d", t, r.CreatedByVehicleType[t]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	b.WriteString(".")
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\nfailed: plan %s: %s", f.PlanCode, f.Reason)
	}
	return b.String()
}
