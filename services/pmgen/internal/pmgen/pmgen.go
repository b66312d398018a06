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
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	loc, err := LoadZone(cfg.TimeZone)
	if err != nil {
		return nil, err
	}
	h := &Handler{loc: loc, ledger: Mapped(cfg.SourceSchema)}
	switch {
	case cfg.BackendURL != "":
		c, err := backend.New(backend.Config{URL: cfg.BackendURL, Token: cfg.BackendToken})
		if err != nil {
			return nil, fmt.Errorf("pmgen: PM_BACKEND_URL: %w", err)
		}
		h.backend = c
	case cfg.BackendToken != "":
		return nil, errors.New("pmgen: PM_BACKEND_TOKEN is set without PM_BACKEND_URL")
	}
	if h.ledger && h.backend == nil {
		return nil, fmt.Errorf("pmgen: SOURCE_SCHEMA %q is a mapped CMMS, which pmgen never writes to: "+
			"set PM_BACKEND_URL and PM_BACKEND_TOKEN so that work orders are created through the CMMS backend's API", cfg.SourceSchema)
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

// Register adds the step to the service's router.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStepTx(events.RunStarted, events.WorkOrdersGenerated, h.Step)
}

// Step generates the work orders of the run's day in tx; its output is the
// workorders.generated payload, which the router emits in the same
// transaction.
func (h *Handler) Step(ctx context.Context, tx pgx.Tx, ev eventing.Event) (eventing.StepResult, error) {
	if ev.Pipeline != events.PreventiveMaintenance {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("pmgen runs the %s pipeline, not %q", events.PreventiveMaintenance, ev.Pipeline))
	}
	var p eventsv1.RunStarted
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	asOf, err := h.AsOf(&p)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(err)
	}
	log := logging.From(ctx)
	log.DebugContext(ctx, "evaluating maintenance plans", "as_of", asOf.String(), "backend", h.backend != nil, "ledger", h.ledger)
	res, err := generate.Run(ctx, tx, generate.Request{AsOf: asOf, Location: h.loc, RunID: ev.RunID, Backend: h.backend, Ledger: h.ledger})
	if err != nil {
		return eventing.StepResult{}, err
	}
	log.InfoContext(ctx, "work orders generated", "as_of", asOf.String(), "evaluated", res.Evaluated,
		"created", res.Created, "skipped_open", res.SkippedOpen, "failed", res.Failed)
	byType := map[string]int32{}
	for k, v := range res.CreatedByVehicleType {
		byType[k] = int32(v)
	}
	out := &eventsv1.WorkOrdersGenerated{
		AsOf:                 asOf.String(),
		Created:              int32(res.Created),
		SkippedOpen:          int32(res.SkippedOpen),
		Failed:               int32(res.Failed),
		MissedOccurrences:    int32(res.MissedOccurrences),
		CreatedByVehicleType: byType,
	}
	return eventing.StepResult{Output: out, Figures: figures(res), Summary: h.summary(res)}, nil
}

// AsOf is the day a run evaluates plans for: conf as_of when given, else the
// logical date as a calendar day in the configured zone.
func (h *Handler) AsOf(p *eventsv1.RunStarted) (schedule.Date, error) {
	if s, ok := p.GetConf()[ConfAsOf]; ok {
		d, err := schedule.ParseDate(strings.TrimSpace(s))
		if err != nil {
			return schedule.Date{}, fmt.Errorf("conf %s: %w", ConfAsOf, err)
		}
		return d, nil
	}
	if p.GetLogicalDate() == nil {
		return schedule.Date{}, errors.New("run-started without a logical_date")
	}
	if err := p.GetLogicalDate().CheckValid(); err != nil {
		return schedule.Date{}, fmt.Errorf("logical_date: %w", err)
	}
	return schedule.Today(p.GetLogicalDate().AsTime(), h.loc), nil
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
