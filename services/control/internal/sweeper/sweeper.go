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
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Sweeper fails stale runs.
type Sweeper struct {
	pool     *pgxpool.Pool
	timeouts map[string]time.Duration // by pipeline
	starter  *projection.Starter
	relay    *eventing.Relay // nil: the relay's own loop publishes
	log      *slog.Logger
	metrics  *runstore.Metrics // nil: none recorded
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

// Instrument makes the sweeper record the runs and steps it fails to m.
// Call it before Run.
func (s *Sweeper) Instrument(m *runstore.Metrics) { s.metrics = m }

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

// Run sweeps every interval (service.Every's default when not positive)
// until ctx ends. Errors (the database restarting) are logged; the next
// tick tries again.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
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
	ctx, tally := s.metrics.Track(ctx)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		// A queued run whose trigger was lost starts when a slot is free.
		if _, err := s.starter.StartQueued(ctx, tx, pl); err != nil {
			return err
		}
		runs, err := runstore.FailStale(ctx, tx, pipeline, timeout, reason)
		if err != nil {
			return err
		}
		for _, r := range runs {
			step, err := failOpenSteps(ctx, tx, r.RunID, reason)
			if err != nil {
				return err
			}
			ev, err := eventing.New(events.StepFailed, events.Source(events.Control), r.RunID, pipeline, traceParent(r.TraceID),
				&eventsv1.StepFailed{Step: step, Error: reason})
			if err != nil {
				return err
			}
			if err := eventing.Emit(ctx, tx, ev); err != nil {
				return err
			}
			out = append(out, Failed{RunID: r.RunID, Pipeline: pipeline, Step: step, Reason: reason})
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
	tally.Record(ctx)
	return out, nil
}

// failOpenSteps fails the run's running and up-for-retry steps, or, when
// none had started, its first pending step, and returns the first (by
// position) it failed.
func failOpenSteps(ctx context.Context, tx pgx.Tx, runID, reason string) (string, error) {
	step, err := runstore.FailOpenSteps(ctx, tx, runID, reason)
	if err != nil || step != "" {
		return step, err
	}
	step, err = runstore.FailFirstPending(ctx, tx, runID, reason)
	if !errors.Is(err, runstore.ErrNotFound) {
		return step, err
	}
	// No step rows: a queued manual run whose trigger never reached control.
	// Its steps are created, as the trigger would have, and the first fails.
	pipeline, err := runstore.PipelineOf(ctx, tx, runID)
	if err != nil {
		return "", err
	}
	p, ok := events.LookupPipeline(pipeline)
	if !ok {
		return "", fmt.Errorf("run %s: unknown pipeline %q", runID, pipeline)
	}
	if err := runstore.CreateSteps(ctx, tx, runID, p.Steps); err != nil {
		return "", err
	}
	step, err = runstore.FailFirstPending(ctx, tx, runID, reason)
	if !errors.Is(err, runstore.ErrNotFound) {
		return step, err
	}
	// Every step ended but the run did not (not produced by the projection):
	// the alert names the first step that did not succeed, else the last.
	return runstore.FirstUnsucceeded(ctx, tx, runID)
}

var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceParent puts the sweeper's event in the run's trace when it has one.
func traceParent(trace string) string {
	if !traceID.MatchString(trace) {
		return ""
	}
	return "00-" + trace + "-0000000000000001-01"
}
