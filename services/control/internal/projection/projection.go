// Package projection is control's view of every run: it accepts pipeline
// triggers (creating the run and starting its first step) and projects the
// steps' started/succeeded/failed events into the runs and steps tables, the
// equivalent of Airflow's DAG runs and task instances.
package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// ScheduledRunPlaceholder is the run_id a cron kick carries: Cloud Scheduler
// publishes static attributes, so control names the run from the tick.
const ScheduledRunPlaceholder = "scheduled"

// TickFunc returns the cron tick of pipeline at or before t: the logical date
// of a scheduled run.
type TickFunc func(pipeline string, t time.Time) (time.Time, error)

// Projection handles control's events.
type Projection struct {
	tick    TickFunc
	starter *Starter
	log     *slog.Logger
	metrics *runstore.Metrics // nil: none recorded
}

// New returns a projection naming scheduled runs with tick and starting
// runs with starter.
func New(tick TickFunc, starter *Starter, log *slog.Logger) *Projection {
	return &Projection{tick: tick, starter: starter, log: log}
}

// Instrument makes the projection record the run metrics of the
// transitions it makes (run and step ends, schedule lag) to m. Call it
// before Register.
func (p *Projection) Instrument(m *runstore.Metrics) { p.metrics = m }

// Register adds the projection's handlers to the router.
func (p *Projection) Register(r *eventing.Router) {
	r.Handle(events.PipelineTriggered, p.triggered, p.record)
	r.Handle(events.StepStarted, p.stepStarted, p.record)
	r.Handle(events.StepSucceeded, p.stepSucceeded, p.record)
	r.Handle(events.StepFailed, p.stepFailed, p.record)
}

// record is the middleware, outside the route's transaction, that records
// the run metrics of what the handler changed once the transaction has
// committed: an event processed before (a redelivery) is not handled again
// and a transaction that rolls back records nothing, so each transition is
// recorded once.
func (p *Projection) record(next eventing.Next) eventing.Next {
	return func(ctx context.Context, d *eventing.Delivery) error {
		ctx, tally := p.metrics.Track(ctx)
		err := next(ctx, d)
		if err == nil {
			tally.Record(ctx)
		}
		return err
	}
}

// SyncPipelines makes sure every registered pipeline has its row (pause state).
func SyncPipelines(ctx context.Context, pool *pgxpool.Pool) error {
	for _, pl := range events.Pipelines {
		if _, err := pool.Exec(ctx, `INSERT INTO pipelines (id) VALUES ($1) ON CONFLICT DO NOTHING`, pl.ID); err != nil {
			return fmt.Errorf("sync pipelines: %w", err)
		}
	}
	return nil
}

// Trigger sources (PipelineTriggered.source). A paused pipeline ignores all
// but manual triggers.
const (
	SourceManual    = "manual"    // control's API, CLI, admin page
	SourceScheduled = "scheduled" // a cron kick
	// SourceMonitoring: the deployer's model monitoring retraining the model
	// (etl_ml_training) on drift or decay.
	SourceMonitoring = "monitoring"
)

var triggerSources = []string{SourceManual, SourceScheduled, SourceMonitoring}

// RunIDFor is the Airflow-style run id: manual__<iso> or scheduled__<iso>.
func RunIDFor(source string, logical time.Time) string {
	return source + "__" + logical.UTC().Format("2006-01-02T15:04:05.999999-07:00")
}

// triggered creates the run (unless it exists: a duplicate trigger, or a
// manual run control already queued) and starts its first step.
func (p *Projection) triggered(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	pl, ok := events.LookupPipeline(ev.Pipeline)
	if !ok {
		return eventing.Permanent(fmt.Errorf("unknown pipeline %q", ev.Pipeline))
	}
	var trig eventsv1.PipelineTriggered
	if err := ev.Decode(&trig); err != nil {
		return err
	}
	source := trig.GetSource()
	if !slices.Contains(triggerSources, source) {
		return eventing.Permanent(fmt.Errorf("unknown trigger source %q (known: %s)", source, strings.Join(triggerSources, ", ")))
	}
	logical := ev.Time()
	if trig.GetLogicalDate() != nil {
		logical = trig.GetLogicalDate().AsTime()
	}
	runID := ev.RunID
	var paused bool // and the pipeline locked first (see runstore.LockPipeline)
	if err := tx.QueryRow(ctx, `SELECT paused FROM pipelines WHERE id = $1 FOR UPDATE`, pl.ID).Scan(&paused); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if paused && source != SourceManual {
		p.log.Info(source+" trigger ignored: pipeline paused", "pipeline", pl.ID, "run_id", runID)
		return nil
	}
	if source == SourceScheduled {
		if runID == ScheduledRunPlaceholder {
			tick, err := p.tick(pl.ID, ev.Time())
			if err != nil {
				return eventing.Permanent(err)
			}
			logical = tick
			runID = RunIDFor(source, tick)
		}
	}
	conf, err := json.Marshal(orEmpty(trig.GetConf()))
	if err != nil {
		return err
	}
	// A manual run is inserted as queued by control's API before its trigger
	// is published; a scheduled one is inserted here. Either way it waits
	// queued for a slot (max_active_runs) and keeps the trigger's trace.
	changed, err := runstore.InsertTriggered(ctx, tx,
		runstore.NewRun{RunID: runID, Pipeline: pl.ID, Source: source, Conf: conf, Logical: logical}, ev.TraceParent)
	if err != nil {
		return err
	}
	if !changed {
		p.log.Info("trigger for an existing run ignored", "run_id", runID)
		return nil
	}
	started, err := p.starter.StartQueued(ctx, tx, pl)
	if err == nil && !slices.Contains(started, runID) {
		p.log.Info("run queued: the pipeline has max_active_runs running", "run_id", runID, "pipeline", pl.ID)
	}
	return err
}

// stepStarted counts an attempt (runstore.StartStep: events may arrive out
// of order). A step whose state was set by hand (steps.state_set_by) keeps it
// whatever its events say: they are late, from work the change stopped.
func (p *Projection) stepStarted(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepStarted
	if err := ev.Decode(&s); err != nil {
		return err
	}
	if err := p.ensureStep(ctx, tx, ev, s.GetStep()); err != nil {
		return err
	}
	if err := runstore.StartStep(ctx, tx, ev.RunID, s.GetStep(), ev.Time()); err != nil {
		return err
	}
	return runstore.MarkStarted(ctx, tx, ev.RunID, ev.Time())
}

// stepEvent is a step's ending event: StepSucceeded or StepFailed.
type stepEvent interface {
	proto.Message
	GetStep() string
}

// endStep decodes ev into s and ends s's step of the run (ensuring the step's
// row first); it returns the run's pipeline.
func (p *Projection) endStep(ctx context.Context, tx pgx.Tx, ev eventing.Event, s stepEvent) (events.Pipeline, error) {
	if err := ev.Decode(s); err != nil {
		return events.Pipeline{}, err
	}
	pl, err := p.ensureStepOf(ctx, tx, ev, s.GetStep())
	if err != nil {
		return pl, err
	}
	return pl, runstore.EndStep(ctx, tx, ev.RunID, s.GetStep())
}

func (p *Projection) stepSucceeded(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepSucceeded
	pl, err := p.endStep(ctx, tx, ev, &s)
	if err != nil {
		return err
	}
	figures, err := json.Marshal(orEmptyF(s.GetFigures()))
	if err != nil {
		return err
	}
	if err := runstore.StepSucceeded(ctx, tx, ev.RunID, s.GetStep(), ev.Time(), figures, s.GetSummary()); err != nil {
		return err
	}
	if pl.StepIndex(s.GetStep()) != len(pl.Steps)-1 {
		return nil
	}
	if err := runstore.LockPipeline(ctx, tx, pl.ID); err != nil {
		return err
	}
	ended, err := runstore.Succeed(ctx, tx, ev.RunID, ev.Time())
	return p.ended(ctx, tx, pl, ended, err)
}

// ended starts the pipeline's next queued runs after a run ended (ended:
// the event ended it).
func (p *Projection) ended(ctx context.Context, tx pgx.Tx, pl events.Pipeline, ended bool, err error) error {
	if err != nil || !ended {
		return err
	}
	_, err = p.starter.StartQueued(ctx, tx, pl)
	return err
}

func (p *Projection) stepFailed(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepFailed
	pl, err := p.endStep(ctx, tx, ev, &s)
	if err != nil {
		return err
	}
	if s.GetRetrying() {
		return runstore.StepRetrying(ctx, tx, ev.RunID, s.GetStep(), s.GetError())
	}
	figures, err := json.Marshal(orEmptyF(s.GetFigures()))
	if err != nil {
		return err
	}
	if err := runstore.StepFailed(ctx, tx, ev.RunID, s.GetStep(), s.GetError(), ev.Time(), figures); err != nil {
		return err
	}
	if err := runstore.LockPipeline(ctx, tx, pl.ID); err != nil {
		return err
	}
	ended, err := runstore.Fail(ctx, tx, ev.RunID, s.GetStep()+": "+s.GetError(), ev.Time())
	return p.ended(ctx, tx, pl, ended, err)
}

func (p *Projection) ensureStep(ctx context.Context, tx pgx.Tx, ev eventing.Event, step string) error {
	_, err := p.ensureStepOf(ctx, tx, ev, step)
	return err
}

// ensureStepOf checks the step belongs to the event's pipeline and that its
// run exists. A step event for an unknown run is retried: the trigger that
// creates the run may still be on its way.
func (p *Projection) ensureStepOf(ctx context.Context, tx pgx.Tx, ev eventing.Event, step string) (events.Pipeline, error) {
	pl, ok := events.LookupPipeline(ev.Pipeline)
	if !ok {
		return pl, eventing.Permanent(fmt.Errorf("unknown pipeline %q", ev.Pipeline))
	}
	if pl.StepIndex(step) < 0 {
		return pl, eventing.Permanent(fmt.Errorf("pipeline %s has no step %q", pl.ID, step))
	}
	exists, err := runstore.StepExists(ctx, tx, ev.RunID, step)
	if err != nil {
		return pl, err
	}
	if !exists {
		return pl, fmt.Errorf("run %s not known yet", ev.RunID)
	}
	return pl, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptyF(m map[string]float64) map[string]float64 {
	if m == nil {
		return map[string]float64{}
	}
	return m
}
