package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// The states a caller may set (Airflow's UpdateDagRunState and
// UpdateTaskState).
var (
	settableRunStates  = []string{"success", "failed", "queued"}
	settableStepStates = []string{"success", "failed", "skipped"}
)

// SetRunState sets a run's state by hand (Airflow's "mark success",
// "mark failed" and "queue up"); see the proto for what each state does.
// Setting the state a run already has changes nothing.
func (s *Server) SetRunState(ctx context.Context, req *controlv1.SetRunStateRequest) (*controlv1.Run, error) {
	state := req.GetState()
	if !slices.Contains(settableRunStates, state) {
		return nil, invalid("state: %q is not one of %s", state, strings.Join(settableRunStates, ", "))
	}
	return s.changeRun(ctx, req.GetRunId(), req.GetDryRun(), func(ctx context.Context, tx pgx.Tx, r lockedRun) error {
		switch {
		case state == r.state && r.state != "queued":
			return nil
		case state == "queued":
			return requeue(ctx, tx, r)
		case state == "success":
			return markSucceeded(ctx, tx, r)
		default:
			return stopRun(ctx, tx, r, "failed", "marked failed by "+r.by)
		}
	}, "run state set", "state", state)
}

// SetStepState sets a step's state by hand (Airflow's PATCH task
// instance); see the proto for how the run follows.
func (s *Server) SetStepState(ctx context.Context, req *controlv1.SetStepStateRequest) (*controlv1.Run, error) {
	state, step := req.GetState(), req.GetStep()
	if !slices.Contains(settableStepStates, state) {
		return nil, invalid("state: %q is not one of %s", state, strings.Join(settableStepStates, ", "))
	}
	return s.changeRun(ctx, req.GetRunId(), req.GetDryRun(), func(ctx context.Context, tx pgx.Tx, r lockedRun) error {
		if r.pipeline.StepIndex(step) < 0 {
			return invalid("step: %q is not a step of %s: want one of %s", step, r.pipeline.ID, strings.Join(r.pipeline.Steps, ", "))
		}
		if !slices.Contains(cancellable, r.state) {
			return setFinishedStep(ctx, tx, r, step, state)
		}
		if state != "failed" {
			return errorf(codes.FailedPrecondition, "run %q is %s: step %s can be marked %s only once the run has ended "+
				"(the steps after it need its output); mark it failed, or cancel the run first", r.id, r.state, step, state)
		}
		if err := setStep(ctx, tx, r, step, "failed", "marked failed by "+r.by); err != nil {
			return err
		}
		return stopRun(ctx, tx, r, "failed", step+": marked failed by "+r.by)
	}, "step state set", "step", step, "state", state)
}

// lockedRun is a run locked for a change by hand, and who makes it.
type lockedRun struct {
	id, state, by string
	pipeline      events.Pipeline
}

// changeRun applies change to the locked run in one transaction, starts the
// pipeline's queued runs a change may have made room for, and answers the
// run as it is then. With dry the transaction is rolled back.
func (s *Server) changeRun(ctx context.Context, runID string, dry bool,
	change func(context.Context, pgx.Tx, lockedRun) error, msg string, attrs ...any) (*controlv1.Run, error) {
	if err := checkRunID(runID); err != nil {
		return nil, err
	}
	var run *controlv1.Run
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
		s.relay.Nudge()
		s.log.InfoContext(ctx, msg, append([]any{"run_id", runID, "by", caller(ctx)}, attrs...)...)
	}
	return run, nil
}

// checkRunID refuses an empty run id; one that is not text names no run.
func checkRunID(runID string) error {
	if runID == "" {
		return invalid("run_id: required")
	}
	if !isText(runID) {
		return notFound("run %q not found", runID)
	}
	return nil
}

// markSucceeded ends the run successful with every step that did not
// succeed marked success (Airflow's set_dag_run_state_to_success).
func markSucceeded(ctx context.Context, tx pgx.Tx, r lockedRun) error {
	if _, err := tx.Exec(ctx, `
		UPDATE steps SET state = 'success', state_set_by = $2, error = '', ended_at = coalesce(ended_at, now()), updated_at = now()
		WHERE run_id = $1 AND state <> 'success'`, r.id, r.by); err != nil {
		return fmt.Errorf("mark steps success: %w", err)
	}
	return endRun(ctx, tx, r, "success", "")
}

// stopRun ends the run in state (failed or cancelled) with why as its
// error: its steps at work are failed with that error, its pending ones
// skipped (Airflow's set_dag_run_state_to_failed). The steps' services see
// the run ended and stop their work (eventing.ErrRunStopped).
func stopRun(ctx context.Context, tx pgx.Tx, r lockedRun, state, why string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE steps SET state = CASE WHEN state = 'pending' THEN 'skipped' ELSE 'failed' END,
			error = CASE WHEN state = 'pending' THEN error ELSE $3 END,
			ended_at = CASE WHEN state = 'pending' THEN ended_at ELSE now() END,
			state_set_by = $2, updated_at = now()
		WHERE run_id = $1 AND state IN ('pending', 'running', 'up_for_retry')`, r.id, r.by, why); err != nil {
		return fmt.Errorf("stop steps: %w", err)
	}
	return endRun(ctx, tx, r, state, why)
}

// endRun sets the run's end state by hand; a run that had ended keeps its
// end time.
func endRun(ctx context.Context, tx pgx.Tx, r lockedRun, state, why string) error {
	_, err := tx.Exec(ctx, `
		UPDATE runs SET state = $2, error = $3, state_set_by = $4, ended_at = coalesce(ended_at, now()), updated_at = now()
		WHERE run_id = $1`, r.id, state, why, r.by)
	if err != nil {
		return fmt.Errorf("set run %s: %w", state, err)
	}
	return nil
}

// requeue queues a finished run again from its first step: every step back
// to pending (attempt counts kept, as RetryRun keeps them), the run queued
// now, counted as a retry; StartQueued starts it when a slot is free.
func requeue(ctx context.Context, tx pgx.Tx, r lockedRun) error {
	if slices.Contains(cancellable, r.state) {
		return errorf(codes.Aborted, "run %q is %s: only a finished run can be queued again (cancel it first)", r.id, r.state)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE steps SET state = 'pending', started_at = NULL, ended_at = NULL, error = '', summary = '',
			figures = '{}', state_set_by = '', updated_at = now()
		WHERE run_id = $1`, r.id); err != nil {
		return fmt.Errorf("requeue: reset steps: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE runs SET state = 'queued', queued_at = now(), started_at = NULL, ended_at = NULL, error = '',
			state_set_by = '', retries = retries + 1, updated_at = now()
		WHERE run_id = $1`, r.id); err != nil {
		return fmt.Errorf("requeue: reset run: %w", err)
	}
	return nil
}

// setStep sets one step's state by hand.
func setStep(ctx context.Context, tx pgx.Tx, r lockedRun, step, state, why string) error {
	_, err := tx.Exec(ctx, `
		UPDATE steps SET state = $3, error = $4, state_set_by = $5, ended_at = coalesce(ended_at, now()), updated_at = now()
		WHERE run_id = $1 AND step = $2`, r.id, step, state, why, r.by)
	if err != nil {
		return fmt.Errorf("set step %s %s: %w", step, state, err)
	}
	return nil
}

// setFinishedStep sets a step of a finished run, and the run follows its
// steps: failed when one failed (with the first failed step's error),
// success when all succeeded or were skipped; a failed run with a step never
// performed stays failed, saying so.
func setFinishedStep(ctx context.Context, tx pgx.Tx, r lockedRun, step, state string) error {
	why := ""
	if state == "failed" {
		why = "marked failed by " + r.by
	}
	if err := setStep(ctx, tx, r, step, state, why); err != nil {
		return err
	}
	var failed, undone string
	err := tx.QueryRow(ctx, `
		SELECT coalesce((SELECT step || ': ' || error FROM steps WHERE run_id = $1 AND state = 'failed' ORDER BY position LIMIT 1), ''),
			coalesce((SELECT step FROM steps WHERE run_id = $1 AND state NOT IN ('success', 'skipped') ORDER BY position LIMIT 1), '')`,
		r.id).Scan(&failed, &undone)
	if err != nil {
		return fmt.Errorf("the run's steps: %w", err)
	}
	switch {
	case failed != "":
		return endRun(ctx, tx, r, "failed", failed)
	case undone == "":
		return endRun(ctx, tx, r, "success", "")
	case r.state == "failed":
		return endRun(ctx, tx, r, "failed", undone+": not performed")
	}
	return nil
}
