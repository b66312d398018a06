// Package sweeper is control's stale-run sweeper: a periodic job that fails
// the runs that went quiet — queued or running with no step finished within
// their pipeline's timeout (a lost event, a step dead-lettered by Pub/Sub
// before its service could report, a service that never came back). Such a
// run would otherwise show as running for ever.
//
// For each stale run the sweeper, in one transaction:
//
//  1. fails the run with the reason ("timed out: no step finished within
//     30m0s"), by an UPDATE that re-checks the run is still queued or
//     running, on rows locked FOR UPDATE SKIP LOCKED;
//  2. fails its open steps (running or up for retry; the first pending step
//     when none had started) with the same reason;
//  3. emits the step-failed event a failed step emits (not retrying) into the
//     outbox, so notifier alerts the admins once, as for any failed run.
//
// Several control instances may sweep at once: a run is claimed by exactly
// one UPDATE, and its event is written in the same transaction, so a run is
// failed, and alerted, once.
package sweeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
)

// DefaultInterval is how often the sweeper looks for stale runs.
const DefaultInterval = time.Minute

// Sweeper fails stale runs.
type Sweeper struct {
	pool     *pgxpool.Pool
	timeouts map[string]time.Duration // by pipeline
	starter  *projection.Starter
	relay    *eventing.Relay // nil: the relay's own loop publishes
	log      *slog.Logger
}

// New returns a sweeper using each pipeline's registry Timeout, overridden
// by timeouts (by pipeline id; ParseTimeouts reads control's RUN_TIMEOUTS).
// starter starts queued runs as the sweep frees slots (and any a lost event
// left queued with a slot free); relay, when set, is flushed after a sweep
// that emitted events.
func New(pool *pgxpool.Pool, timeouts map[string]time.Duration, starter *projection.Starter, relay *eventing.Relay, log *slog.Logger) *Sweeper {
	all := map[string]time.Duration{}
	for _, p := range events.Pipelines {
		all[p.ID] = p.Timeout
		if d, ok := timeouts[p.ID]; ok {
			all[p.ID] = d
		}
	}
	return &Sweeper{pool: pool, timeouts: all, starter: starter, relay: relay, log: log}
}

// ParseTimeouts reads "pipeline=duration,…"; the pipeline "*" sets every
// pipeline not named. Empty is no override.
func ParseTimeouts(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	var all time.Duration
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, v, ok := strings.Cut(item, "=")
		id = strings.TrimSpace(id)
		if !ok {
			return nil, fmt.Errorf("%q: want pipeline=duration", item)
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q: want a positive duration such as 30m", item)
		}
		if id == "*" {
			all = d
			continue
		}
		if _, ok := events.LookupPipeline(id); !ok {
			return nil, fmt.Errorf("%q: unknown pipeline %q", item, id)
		}
		out[id] = d
	}
	if all > 0 {
		for _, p := range events.Pipelines {
			if _, ok := out[p.ID]; !ok {
				out[p.ID] = all
			}
		}
	}
	return out, nil
}

// Reason is the error recorded on a run (and its open steps) failed for
// going quiet for d.
func Reason(d time.Duration) string {
	return fmt.Sprintf("timed out: no step finished within %s", d)
}

// Run sweeps every interval until ctx ends. Errors (the database restarting)
// are logged; the next tick tries again.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	service.Every(ctx, interval, s.log, "stale-run sweep", func(ctx context.Context) error {
		_, err := s.Sweep(ctx)
		return err
	})
}

// Failed is a run the sweeper failed.
type Failed struct {
	RunID, Pipeline, Step, Reason string
}

// Sweep fails every stale run now and returns them.
func (s *Sweeper) Sweep(ctx context.Context) ([]Failed, error) {
	var all []Failed
	var errs []error
	for _, p := range events.Pipelines {
		failed, err := s.sweepPipeline(ctx, p.ID, s.timeouts[p.ID])
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", p.ID, err))
		}
		all = append(all, failed...)
	}
	for _, f := range all {
		s.log.Warn("stale run failed", "run_id", f.RunID, "pipeline", f.Pipeline, "step", f.Step, "reason", f.Reason)
	}
	if len(all) > 0 && s.relay != nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.relay.Flush(fctx); err != nil {
			s.log.Warn("outbox flush after sweep failed; the relay will retry", "error", err)
			s.relay.Nudge()
		}
	}
	return all, errors.Join(errs...)
}

func (s *Sweeper) sweepPipeline(ctx context.Context, pipeline string, timeout time.Duration) ([]Failed, error) {
	if timeout <= 0 {
		return nil, nil
	}
	pl, _ := events.LookupPipeline(pipeline)
	reason := Reason(timeout)
	var out []Failed
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		// A queued run whose trigger was lost starts when a slot is free.
		if _, err := s.starter.StartQueued(ctx, tx, pl); err != nil {
			return err
		}
		// Quiet since the later of the run's start and its latest step end;
		// a queued run waiting for a slot (another run is running) is not.
		rows, err := tx.Query(ctx, `
			WITH stale AS (
				SELECT r.run_id FROM runs r
				WHERE r.pipeline = $1 AND r.state IN ('queued', 'running')
				  AND (r.state = 'running' OR NOT EXISTS (SELECT 1 FROM runs o WHERE o.pipeline = r.pipeline AND o.state = 'running'))
				  AND greatest(coalesce(r.started_at, r.queued_at),
				               (SELECT max(s.ended_at) FROM steps s WHERE s.run_id = r.run_id))
				      < now() - make_interval(secs => $2)
				ORDER BY r.run_id
				FOR UPDATE OF r SKIP LOCKED
			)
			UPDATE runs r SET state = 'failed', error = $3, ended_at = now(), updated_at = now()
			FROM stale
			WHERE r.run_id = stale.run_id AND r.state IN ('queued', 'running')
			RETURNING r.run_id, r.trace_id`, pipeline, timeout.Seconds(), reason)
		if err != nil {
			return err
		}
		type run struct{ id, trace string }
		runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
			var x run
			return x, r.Scan(&x.id, &x.trace)
		})
		if err != nil {
			return err
		}
		for _, r := range runs {
			step, err := failOpenSteps(ctx, tx, r.id, reason)
			if err != nil {
				return err
			}
			ev, err := eventing.New(events.StepFailed, events.Source(events.Control), r.id, pipeline, traceParent(r.trace),
				&eventsv1.StepFailed{Step: step, Error: reason})
			if err != nil {
				return err
			}
			if err := eventing.Emit(ctx, tx, ev); err != nil {
				return err
			}
			out = append(out, Failed{RunID: r.id, Pipeline: pipeline, Step: step, Reason: reason})
		}
		if len(runs) == 0 {
			return nil
		}
		_, err = s.starter.StartQueued(ctx, tx, pl) // the failed runs freed their slots
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// failOpenSteps fails the run's running and up-for-retry steps, or, when
// none had started, its first pending step, and returns the first (by
// position) it failed.
func failOpenSteps(ctx context.Context, tx pgx.Tx, runID, reason string) (string, error) {
	rows, err := tx.Query(ctx, `
		UPDATE steps SET state = 'failed', error = $2, ended_at = now(),
			started_at = coalesce(started_at, now()), updated_at = now()
		WHERE run_id = $1 AND state IN ('running', 'up_for_retry')
		RETURNING step, position`, runID, reason)
	if err != nil {
		return "", err
	}
	type st struct {
		name string
		pos  int
	}
	steps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (st, error) {
		var x st
		return x, r.Scan(&x.name, &x.pos)
	})
	if err != nil {
		return "", err
	}
	if len(steps) > 0 {
		first := steps[0]
		for _, s := range steps[1:] {
			if s.pos < first.pos {
				first = s
			}
		}
		return first.name, nil
	}
	failFirstPending := func() (string, error) {
		var step string
		err := tx.QueryRow(ctx, `
			UPDATE steps SET state = 'failed', error = $2, ended_at = now(),
				started_at = coalesce(started_at, now()), updated_at = now()
			WHERE (run_id, step) = (SELECT run_id, step FROM steps WHERE run_id = $1 AND state = 'pending' ORDER BY position LIMIT 1)
			RETURNING step`, runID, reason).Scan(&step)
		return step, err
	}
	step, err := failFirstPending()
	if !errors.Is(err, pgx.ErrNoRows) {
		return step, err
	}
	// No step rows: a queued manual run whose trigger never reached control.
	// Its steps are created, as the trigger would have, and the first fails.
	var pipeline string
	if err := tx.QueryRow(ctx, `SELECT pipeline FROM runs WHERE run_id = $1`, runID).Scan(&pipeline); err != nil {
		return "", err
	}
	p, ok := events.LookupPipeline(pipeline)
	if !ok {
		return "", fmt.Errorf("run %s: unknown pipeline %q", runID, pipeline)
	}
	for i, name := range p.Steps {
		if _, err := tx.Exec(ctx, `INSERT INTO steps (run_id, step, position, state) VALUES ($1, $2, $3, 'pending') ON CONFLICT DO NOTHING`,
			runID, name, i); err != nil {
			return "", err
		}
	}
	step, err = failFirstPending()
	if !errors.Is(err, pgx.ErrNoRows) {
		return step, err
	}
	// Every step ended but the run did not (not produced by the projection):
	// the alert names the first step that did not succeed, else the last.
	err = tx.QueryRow(ctx, `SELECT step FROM steps WHERE run_id = $1
		ORDER BY (state = 'success'), CASE WHEN state = 'success' THEN -position ELSE position END LIMIT 1`, runID).Scan(&step)
	return step, err
}

var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceParent puts the sweeper's event in the run's trace when it has one.
func traceParent(trace string) string {
	if !traceID.MatchString(trace) {
		return ""
	}
	return "00-" + trace + "-0000000000000001-01"
}
