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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
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
}

// New returns a projection naming scheduled runs with tick and starting
// runs with starter.
func New(tick TickFunc, starter *Starter, log *slog.Logger) *Projection {
	return &Projection{tick: tick, starter: starter, log: log}
}

// Register adds the projection's handlers to the router.
func (p *Projection) Register(r *eventing.Router) {
	r.Handle(events.PipelineTriggered, p.triggered)
	r.Handle(events.StepStarted, p.stepStarted)
	r.Handle(events.StepSucceeded, p.stepSucceeded)
	r.Handle(events.StepFailed, p.stepFailed)
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
	if source != "manual" && source != "scheduled" {
		return eventing.Permanent(fmt.Errorf("unknown trigger source %q", source))
	}
	logical := ev.Time()
	if trig.GetLogicalDate() != nil {
		logical = trig.GetLogicalDate().AsTime()
	}
	runID := ev.RunID
	var paused bool // and the pipeline locked first (see LockPipeline)
	if err := tx.QueryRow(ctx, `SELECT paused FROM pipelines WHERE id = $1 FOR UPDATE`, pl.ID).Scan(&paused); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if source == "scheduled" {
		if paused {
			p.log.Info("scheduled trigger ignored: pipeline paused", "pipeline", pl.ID)
			return nil
		}
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
	tag, err := tx.Exec(ctx, `
		INSERT INTO runs (run_id, pipeline, state, source, conf, logical_date, traceparent)
		VALUES ($1, $2, 'queued', $3, $4, $5, $6)
		ON CONFLICT (run_id) DO UPDATE SET traceparent = EXCLUDED.traceparent, updated_at = now()
		WHERE runs.state = 'queued' AND runs.traceparent = ''`,
		runID, pl.ID, source, conf, logical, ev.TraceParent)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	if tag.RowsAffected() == 0 {
		p.log.Info("trigger for an existing run ignored", "run_id", runID)
		return nil
	}
	started, err := p.starter.StartQueued(ctx, tx, pl)
	if err == nil && !slices.Contains(started, runID) {
		p.log.Info("run queued: the pipeline has max_active_runs running", "run_id", runID, "pipeline", pl.ID)
	}
	return err
}

// stepStarted counts an attempt. Events may arrive out of order: a step that
// already ended keeps its end state, and an attempt whose end came first is
// not counted twice (see countEnd). A step whose state was set by hand
// (steps.state_set_by) keeps it whatever its events say: they are late, from
// work the change stopped.
func (p *Projection) stepStarted(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepStarted
	if err := ev.Decode(&s); err != nil {
		return err
	}
	if err := p.ensureStep(ctx, tx, ev, s.GetStep()); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		UPDATE steps SET
			attempts = attempts + CASE WHEN starts_minus_ends >= 0 THEN 1 ELSE 0 END,
			starts_minus_ends = starts_minus_ends + 1,
			state = CASE WHEN state IN ('success', 'failed') THEN state ELSE 'running' END,
			started_at = LEAST(coalesce(started_at, $3), $3),
			updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''`, ev.RunID, s.GetStep(), ev.Time())
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE runs SET state = 'running', started_at = coalesce(started_at, $2), updated_at = now()
		WHERE run_id = $1 AND state = 'queued'`, ev.RunID, ev.Time())
	return err
}

// countEnd counts the end of an attempt (success, failure, or a failure to be
// retried). Every attempt sends one start and one end, in either order: an
// end whose start has not come counts the attempt, and that start will not
// (steps.starts_minus_ends). A step whose end came first shows its attempt.
func countEnd(ctx context.Context, tx pgx.Tx, runID, step string) error {
	_, err := tx.Exec(ctx, `UPDATE steps SET
			attempts = attempts + CASE WHEN starts_minus_ends <= 0 THEN 1 ELSE 0 END,
			starts_minus_ends = starts_minus_ends - 1
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''`, runID, step)
	return err
}

func (p *Projection) stepSucceeded(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepSucceeded
	if err := ev.Decode(&s); err != nil {
		return err
	}
	pl, err := p.ensureStepOf(ctx, tx, ev, s.GetStep())
	if err != nil {
		return err
	}
	if err := countEnd(ctx, tx, ev.RunID, s.GetStep()); err != nil {
		return err
	}
	figures, err := json.Marshal(orEmptyF(s.GetFigures()))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE steps SET state = 'success', ended_at = $3, figures = $4, summary = $5, error = '',
			started_at = coalesce(started_at, $3), updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''`, ev.RunID, s.GetStep(), ev.Time(), figures, s.GetSummary()); err != nil {
		return err
	}
	if pl.StepIndex(s.GetStep()) != len(pl.Steps)-1 {
		return nil
	}
	if err := LockPipeline(ctx, tx, pl.ID); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE runs SET state = 'success', ended_at = $2, updated_at = now()
		WHERE run_id = $1 AND state IN ('queued', 'running')`, ev.RunID, ev.Time())
	return p.ended(ctx, tx, pl, tag, err)
}

// ended starts the pipeline's next queued runs after a run ended (tag is the
// UPDATE that ended it).
func (p *Projection) ended(ctx context.Context, tx pgx.Tx, pl events.Pipeline, tag pgconn.CommandTag, err error) error {
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	_, err = p.starter.StartQueued(ctx, tx, pl)
	return err
}

func (p *Projection) stepFailed(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	var s eventsv1.StepFailed
	if err := ev.Decode(&s); err != nil {
		return err
	}
	pl, err := p.ensureStepOf(ctx, tx, ev, s.GetStep())
	if err != nil {
		return err
	}
	if err := countEnd(ctx, tx, ev.RunID, s.GetStep()); err != nil {
		return err
	}
	if s.GetRetrying() {
		_, err := tx.Exec(ctx, `UPDATE steps SET state = 'up_for_retry', error = $3, updated_at = now()
			WHERE run_id = $1 AND step = $2 AND state_set_by = '' AND state NOT IN ('success', 'failed')`, ev.RunID, s.GetStep(), s.GetError())
		return err
	}
	figures, err := json.Marshal(orEmptyF(s.GetFigures()))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE steps SET state = 'failed', error = $3, ended_at = $4, figures = $5,
			started_at = coalesce(started_at, $4), updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = '' AND state <> 'success'`, ev.RunID, s.GetStep(), s.GetError(), ev.Time(), figures); err != nil {
		return err
	}
	if err := LockPipeline(ctx, tx, pl.ID); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE runs SET state = 'failed', error = $2, ended_at = $3, updated_at = now()
		WHERE run_id = $1 AND state IN ('queued', 'running')`, ev.RunID, s.GetStep()+": "+s.GetError(), ev.Time())
	return p.ended(ctx, tx, pl, tag, err)
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
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $1 AND step = $2)`, ev.RunID, step).Scan(&exists); err != nil {
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
