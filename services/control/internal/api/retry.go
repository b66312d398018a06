package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// RetryRun re-runs a finished run from a step (Airflow's "clear"): by default
// the run's failed step. In one transaction it resets that step and every
// step after it to pending (their attempt counts are kept, so each attempt
// of the re-run numbers on from the last), sets the run running again (its
// start is now, its end and error cleared) and writes to the outbox a copy,
// under a new id, of the event that fed the step in this run: its consumer
// performs the step again and the chain goes on from there. The steps
// before it are not performed again: their outputs in the run's folder are
// what the copy points at. With dry_run the same statements run and are
// rolled back: the answer is the run as the retry would leave it.
func (s *Server) RetryRun(ctx context.Context, req *controlv1.RetryRunRequest) (*controlv1.Run, error) {
	runID := req.GetRunId()
	if err := checkRunID(runID); err != nil {
		return nil, err
	}
	var (
		run  *controlv1.Run
		plan *retryPlan
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if plan, err = s.planRetry(ctx, tx, runID, req.GetFromStep(), traceParent(ctx)); err != nil {
			return err
		}
		if err := plan.apply(ctx, tx, req.GetDryRun()); err != nil {
			return err
		}
		if run, err = loadRun(ctx, tx, runID); err != nil {
			return err
		}
		if req.GetDryRun() {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	if !req.GetDryRun() {
		s.relay.Nudge()
		s.log.InfoContext(ctx, "run retried", "run_id", runID, "pipeline", plan.pipeline.ID, "from_step", plan.from,
			"input", plan.input.Type(), "input_id", plan.input.ID(), "by", caller(ctx))
	}
	return run, nil
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// retryPlan is a checked retry: the run, the step it restarts from and the
// copy of that step's input to emit.
type retryPlan struct {
	runID    string
	pipeline events.Pipeline
	from     string
	position int
	input    eventing.Event
}

// retryRow is what planRetry reads of the run, locked.
type retryRow struct {
	pipeline events.Pipeline
	state    runstore.State
	runstore.RetryInfo
}

// planRetry locks the run (and its pipeline) and checks that it can be
// retried from step from ("" for its failed step) within the pipeline's
// max_active_runs, refusing with the status a caller is told.
func (s *Server) planRetry(ctx context.Context, tx pgx.Tx, runID, from, traceparent string) (*retryPlan, error) {
	r, err := s.lockRunForRetry(ctx, tx, runID)
	if err != nil {
		return nil, err
	}
	pl := r.pipeline
	if r.state.Active() {
		return nil, errorf(codes.Aborted, "run %q is %s: only a finished run can be retried (cancel it first)", runID, r.state)
	}
	if from, err = retryFrom(pl, runID, r.Steps, from); err != nil {
		return nil, err
	}
	if err := s.freeSlot(ctx, tx, pl); err != nil {
		return nil, err
	}
	p := &retryPlan{runID: runID, pipeline: pl, from: from, position: pl.StepIndex(from)}
	if p.input, err = stepInput(ctx, tx, pl, runID, from, r); err != nil {
		return nil, err
	}
	p.input, err = p.input.Reissue(traceparent)
	return p, err
}

func (s *Server) lockRunForRetry(ctx context.Context, tx pgx.Tx, runID string) (retryRow, error) {
	var (
		r   retryRow
		err error
	)
	if r.pipeline, r.state, err = s.lockRun(ctx, tx, runID); err != nil {
		return r, err
	}
	r.RetryInfo, err = runstore.ReadForRetry(ctx, tx, runID)
	return r, err
}

// freeSlot refuses a retry when the pipeline already runs its
// max_active_runs (the caller holds the pipeline's lock).
func (s *Server) freeSlot(ctx context.Context, tx pgx.Tx, pl events.Pipeline) error {
	running, err := runstore.CountRunning(ctx, tx, pl.ID)
	if err != nil {
		return fmt.Errorf("retry: count running runs: %w", err)
	}
	if limit := s.table.MaxActiveRuns(pl.ID); running >= limit {
		return errorf(codes.Aborted, "%s already runs %d of its max_active_runs %d: retry when one ends", pl.ID, running, limit)
	}
	return nil
}

// retryFrom names the step to retry from and checks the steps: every step
// before it succeeded (its output is reused) and none is still at work.
func retryFrom(pl events.Pipeline, runID string, steps []runstore.StepState, from string) (string, error) {
	valid := strings.Join(pl.Steps, ", ")
	if len(steps) == 0 {
		return "", errorf(codes.FailedPrecondition, "run %q never started a step: trigger a new run", runID)
	}
	if from == "" {
		i := slices.IndexFunc(steps, func(s runstore.StepState) bool { return s.State == runstore.Failed })
		if i < 0 {
			return "", invalid("from_step: run %q has no failed step: name the step to retry from, one of %s", runID, valid)
		}
		from = steps[i].Step
	}
	pos := pl.StepIndex(from)
	if pos < 0 {
		return "", invalid("from_step: %q is not a step of %s: want one of %s", from, pl.ID, valid)
	}
	for i, s := range steps {
		if s.State == runstore.Running || s.State == runstore.UpForRetry {
			return "", errorf(codes.Aborted, "step %s of run %q is still %s: wait for it to end", s.Step, runID, s.State)
		}
		if i < pos && s.State != runstore.Success {
			return "", errorf(codes.FailedPrecondition,
				"step %s of run %q is %s, and %s needs its output: retry from %s", s.Step, runID, s.State, from, s.Step)
		}
	}
	return from, nil
}

// stepInput is the event that fed step from in the run: run-started for
// the first step, rebuilt from the run row as the run's start built it; otherwise the latest event of
// the step's input type for the run in the outbox, which keeps published
// events for eventing.PublishedRetention.
func stepInput(ctx context.Context, tx pgx.Tx, pl events.Pipeline, runID, from string, r retryRow) (eventing.Event, error) {
	if pl.StepIndex(from) == 0 {
		return projection.RunStarted(pl, runID, r.Conf, r.Logical, "")
	}
	typ := pl.Input(from)
	var m eventing.Message
	err := tx.QueryRow(ctx, `
		SELECT attributes, data FROM outbox
		WHERE attributes->>'run_id' = $1 AND event_type = $2 AND attributes->>'pipeline' = $3
		ORDER BY id DESC LIMIT 1`, runID, typ, pl.ID).Scan(&m.Attributes, &m.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventing.Event{}, errorf(codes.FailedPrecondition,
			"the %s event that started step %s of run %q is no longer available (published events are kept %s): "+
				"retry from %s, whose input is rebuilt from the run, or trigger a new run",
			typ, from, runID, eventing.PublishedRetention, pl.Steps[0])
	}
	if err != nil {
		return eventing.Event{}, fmt.Errorf("retry: find the input of %s: %w", from, err)
	}
	return eventing.FromMessage(m)
}

// apply resets the steps from the plan's on and the run, and (unless dry)
// emits the input copy, recording its trace as the run's.
func (p *retryPlan) apply(ctx context.Context, tx pgx.Tx, dry bool) error {
	if err := runstore.ResetSteps(ctx, tx, p.runID, p.position); err != nil {
		return err
	}
	trace := p.input.TraceID()
	if !dry {
		var err error
		if trace, err = eventing.EmitTraced(ctx, tx, p.input); err != nil {
			return err
		}
	}
	return runstore.Restart(ctx, tx, p.runID, trace)
}
