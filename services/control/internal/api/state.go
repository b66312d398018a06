package api

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// The states a caller may set (Airflow's UpdateDagRunState and
// UpdateTaskState).
var (
	settableRunStates  = []runstore.State{runstore.Success, runstore.Failed, runstore.Queued}
	settableStepStates = []runstore.State{runstore.Success, runstore.Failed, runstore.Skipped}
)

// SetRunState sets a run's state by hand (Airflow's "mark success",
// "mark failed" and "queue up"); see the proto for what each state does.
// Setting the state a run already has changes nothing.
func (s *Server) SetRunState(ctx context.Context, req *controlv1.SetRunStateRequest) (*controlv1.Run, error) {
	state := runstore.State(req.GetState())
	if !slices.Contains(settableRunStates, state) {
		return nil, invalid("state: %q is not one of %s", state, runstore.Join(settableRunStates))
	}
	return s.changeRun(ctx, req.GetRunId(), req.GetDryRun(), func(ctx context.Context, tx pgx.Tx, r lockedRun) error {
		switch {
		case state == r.state && r.state != runstore.Queued:
			return nil
		case state == runstore.Queued:
			return requeue(ctx, tx, r)
		case state == runstore.Success:
			return markSucceeded(ctx, tx, r)
		default:
			return stopRun(ctx, tx, r, runstore.Failed, "marked failed by "+r.by)
		}
	}, "run state set", "state", string(state))
}

// SetStepState sets a step's state by hand (Airflow's PATCH task
// instance); see the proto for how the run follows.
func (s *Server) SetStepState(ctx context.Context, req *controlv1.SetStepStateRequest) (*controlv1.Run, error) {
	state, step := runstore.State(req.GetState()), req.GetStep()
	if !slices.Contains(settableStepStates, state) {
		return nil, invalid("state: %q is not one of %s", state, runstore.Join(settableStepStates))
	}
	return s.changeRun(ctx, req.GetRunId(), req.GetDryRun(), func(ctx context.Context, tx pgx.Tx, r lockedRun) error {
		if r.pipeline.StepIndex(step) < 0 {
			return invalid("step: %q is not a step of %s: want one of %s", step, r.pipeline.ID, strings.Join(r.pipeline.Steps, ", "))
		}
		if !r.state.Active() {
			return setFinishedStep(ctx, tx, r, step, state)
		}
		if state != runstore.Failed {
			return errorf(codes.FailedPrecondition, "run %q is %s: step %s can be marked %s only once the run has ended "+
				"(the steps after it need its output); mark it failed, or cancel the run first", r.id, r.state, step, state)
		}
		if err := runstore.SetStepState(ctx, tx, r.id, step, runstore.Failed, "marked failed by "+r.by, r.by); err != nil {
			return err
		}
		return stopRun(ctx, tx, r, runstore.Failed, step+": marked failed by "+r.by)
	}, "step state set", "step", step, "state", string(state))
}

// lockedRun is a run locked for a change by hand, and who makes it.
type lockedRun struct {
	id, by   string
	state    runstore.State
	pipeline events.Pipeline
}

// changeRun applies change to the locked run in one transaction, starts the
// pipeline's queued runs a change may have made room for, and answers the
// run as it is then. With dry the transaction is rolled back. The runs and
// steps it ended are recorded (Instrument) once it has committed.
func (s *Server) changeRun(ctx context.Context, runID string, dry bool,
	change func(context.Context, pgx.Tx, lockedRun) error, msg string, attrs ...any) (*controlv1.Run, error) {
	if err := checkRunID(runID); err != nil {
		return nil, err
	}
	var run *controlv1.Run
	ctx, tally := s.metrics.Track(ctx)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		pl, state, err := s.lockRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		if err := change(ctx, tx, lockedRun{id: runID, state: state, by: caller(ctx), pipeline: pl}); err != nil {
			return err
		}
		if _, err := s.starter.StartQueued(ctx, tx, pl); err != nil {
			return err
		}
		if run, err = loadRun(ctx, tx, runID); err != nil || !dry {
			return err
		}
		return errDryRun
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	if !dry {
		tally.Record(ctx)
		s.relay.Nudge()
		s.log.InfoContext(ctx, msg, append([]any{"run_id", runID, "by", caller(ctx)}, attrs...)...)
	}
	return run, nil
}

// checkRunID refuses a run id ValidateRunID refuses (InvalidArgument): it
// names no run.
func checkRunID(runID string) error {
	if err := ValidateRunID(runID); err != nil {
		return invalid("run_id: %v", err)
	}
	return nil
}

// markSucceeded ends the run successful with every step that did not
// succeed marked success (Airflow's set_dag_run_state_to_success).
func markSucceeded(ctx context.Context, tx pgx.Tx, r lockedRun) error {
	if err := runstore.MarkStepsSucceeded(ctx, tx, r.id, r.by); err != nil {
		return err
	}
	return runstore.SetState(ctx, tx, r.id, runstore.Success, "", r.by)
}

// stopRun ends the run in state (failed or cancelled) with why as its
// error: its steps at work are failed with that error, its pending ones
// skipped (Airflow's set_dag_run_state_to_failed). The steps' services see
// the run ended and stop their work (eventing.ErrRunStopped).
func stopRun(ctx context.Context, tx pgx.Tx, r lockedRun, state runstore.State, why string) error {
	if err := runstore.StopSteps(ctx, tx, r.id, r.by, why); err != nil {
		return err
	}
	return runstore.SetState(ctx, tx, r.id, state, why, r.by)
}

// requeue queues a finished run again from its first step: every step back
// to pending (attempt counts kept, as RetryRun keeps them), the run queued
// now, counted as a retry; StartQueued starts it when a slot is free.
func requeue(ctx context.Context, tx pgx.Tx, r lockedRun) error {
	if r.state.Active() {
		return errorf(codes.Aborted, "run %q is %s: only a finished run can be queued again (cancel it first)", r.id, r.state)
	}
	return runstore.Requeue(ctx, tx, r.id)
}

// setFinishedStep sets a step of a finished run, and the run follows its
// steps: failed when one failed (with the first failed step's error),
// success when all succeeded or were skipped; a failed run with a step never
// performed stays failed, saying so.
func setFinishedStep(ctx context.Context, tx pgx.Tx, r lockedRun, step string, state runstore.State) error {
	why := ""
	if state == runstore.Failed {
		why = "marked failed by " + r.by
	}
	if err := runstore.SetStepState(ctx, tx, r.id, step, state, why, r.by); err != nil {
		return err
	}
	o, err := runstore.Outcome(ctx, tx, r.id)
	if err != nil {
		return err
	}
	switch {
	case o.Failed != "":
		return runstore.SetState(ctx, tx, r.id, runstore.Failed, o.Failed, r.by)
	case o.Undone == "":
		return runstore.SetState(ctx, tx, r.id, runstore.Success, "", r.by)
	case r.state == runstore.Failed:
		return runstore.SetState(ctx, tx, r.id, runstore.Failed, o.Undone+": not performed", r.by)
	}
	return nil
}
