package runstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The step transitions the projection makes from the steps' events leave a
// step whose state was set by hand (steps.state_set_by) as it is: its events
// are late, from work the change stopped.

// StepExists reports whether the run has the step (it has started).
func StepExists(ctx context.Context, db DB, runID, step string) (bool, error) {
	var exists bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $1 AND step = $2)`, runID, step).Scan(&exists)
	return exists, err
}

// StartStep counts an attempt of a step started at t. Events may arrive out
// of order: a step that already ended keeps its end state, and an attempt
// whose end came first is not counted twice (see EndStep).
func StartStep(ctx context.Context, db DB, runID, step string, t time.Time) error {
	_, err := db.Exec(ctx, `
		UPDATE steps SET
			attempts = attempts + CASE WHEN starts_minus_ends >= 0 THEN 1 ELSE 0 END,
			starts_minus_ends = starts_minus_ends + 1,
			state = CASE WHEN state IN ('success', 'failed') THEN state ELSE 'running' END,
			started_at = LEAST(coalesce(started_at, $3), $3),
			updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''`, runID, step, t)
	return err
}

// EndStep counts the end of an attempt (success, failure, or a failure to
// be retried). Every attempt sends one start and one end, in either order:
// an end whose start has not come counts the attempt, and that start will
// not (steps.starts_minus_ends). A step whose end came first shows its
// attempt.
func EndStep(ctx context.Context, db DB, runID, step string) error {
	_, err := db.Exec(ctx, `UPDATE steps SET
			attempts = attempts + CASE WHEN starts_minus_ends <= 0 THEN 1 ELSE 0 END,
			starts_minus_ends = starts_minus_ends - 1
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''`, runID, step)
	return err
}

// StepSucceeded records a step's success at t with its figures (a JSON
// object) and summary. A step that was open (pending, running, up for retry)
// notes its end in the context's Tally.
func StepSucceeded(ctx context.Context, db DB, runID, step string, t time.Time, figures []byte, summary string) error {
	return endStep(ctx, db, runID, step, Success, `
		UPDATE steps SET state = 'success', ended_at = $3, figures = $4, summary = $5, error = '',
			started_at = coalesce(started_at, $3), updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = ''
		RETURNING started_at, ended_at`, t, figures, summary)
}

// StepRetrying records a failed attempt the step's service retries; a step
// that ended keeps its end state.
func StepRetrying(ctx context.Context, db DB, runID, step, why string) error {
	_, err := db.Exec(ctx, `UPDATE steps SET state = 'up_for_retry', error = $3, updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = '' AND state NOT IN ('success', 'failed')`, runID, step, why)
	return err
}

// StepFailed records a step's failure at t with its figures (a JSON
// object); a step that succeeded keeps its success. A step that was open
// notes its end in the context's Tally.
func StepFailed(ctx context.Context, db DB, runID, step, why string, t time.Time, figures []byte) error {
	return endStep(ctx, db, runID, step, Failed, `
		UPDATE steps SET state = 'failed', error = $3, ended_at = $4, figures = $5,
			started_at = coalesce(started_at, $4), updated_at = now()
		WHERE run_id = $1 AND step = $2 AND state_set_by = '' AND state <> 'success'
		RETURNING started_at, ended_at`, why, t, figures)
}

// endStep runs update, which ends the step (runID and step as $1 and $2,
// args from $3) in state and returns its start and end times, after locking
// the step's row and reading its state: only a step that was open, whose end
// this is, is noted in the context's Tally (an end event after the sweeper
// failed the step is not).
func endStep(ctx context.Context, db DB, runID, step string, state State, update string, args ...any) error {
	e := stepEnd{step: step, state: state}
	var was State
	err := db.QueryRow(ctx, `SELECT s.state, r.pipeline FROM steps s JOIN runs r USING (run_id)
		WHERE s.run_id = $1 AND s.step = $2 FOR UPDATE OF s`, runID, step).Scan(&was, &e.pipeline)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	err = db.QueryRow(ctx, update, append([]any{runID, step}, args...)...).Scan(&e.started, &e.ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err == nil && open(was) {
		tallyOf(ctx).stepEnded(e)
	}
	return err
}

// open reports whether a step in state s has not ended.
func open(s State) bool { return s == Pending || s == Running || s == UpForRetry }

// ResetSteps sets the run's steps from position on back to pending, their
// times, error, summary and figures cleared and attempt counts kept (a
// retry).
func ResetSteps(ctx context.Context, db DB, runID string, position int) error {
	if err := resetSteps(ctx, db, runID, position); err != nil {
		return fmt.Errorf("retry: reset steps: %w", err)
	}
	return nil
}

func resetSteps(ctx context.Context, db DB, runID string, position int) error {
	_, err := db.Exec(ctx, `
		UPDATE steps SET state = 'pending', started_at = NULL, ended_at = NULL, error = '', summary = '',
			figures = '{}', state_set_by = '', updated_at = now()
		WHERE run_id = $1 AND position >= $2`, runID, position)
	return err
}

// MarkStepsSucceeded marks every step of the run that did not succeed
// success, by who (Airflow's set_dag_run_state_to_success).
func MarkStepsSucceeded(ctx context.Context, db DB, runID, who string) error {
	if _, err := db.Exec(ctx, `
		UPDATE steps SET state = 'success', state_set_by = $2, error = '', ended_at = coalesce(ended_at, now()), updated_at = now()
		WHERE run_id = $1 AND state <> 'success'`, runID, who); err != nil {
		return fmt.Errorf("mark steps success: %w", err)
	}
	return nil
}

// StopSteps stops a run's open steps by who with why: those at work
// (running, up for retry) failed with why, the pending ones skipped
// (Airflow's set_dag_run_state_to_failed). The steps it failed note their
// ends in the context's Tally.
func StopSteps(ctx context.Context, db DB, runID, who, why string) error {
	rows, err := db.Query(ctx, `
		UPDATE steps SET state = CASE WHEN state = 'pending' THEN 'skipped' ELSE 'failed' END,
			error = CASE WHEN state = 'pending' THEN error ELSE $3 END,
			ended_at = CASE WHEN state = 'pending' THEN ended_at ELSE now() END,
			state_set_by = $2, updated_at = now()
		WHERE run_id = $1 AND state IN ('pending', 'running', 'up_for_retry')
		RETURNING step, position, state, coalesce(started_at, ended_at), ended_at,
			(SELECT pipeline FROM runs WHERE run_id = $1)`, runID, who, why)
	if err != nil {
		return fmt.Errorf("stop steps: %w", err)
	}
	if _, err := collectEnded(ctx, rows); err != nil {
		return fmt.Errorf("stop steps: %w", err)
	}
	return nil
}

// endedStep is a row of collectEnded: a step a statement changed, its
// position and its state, times and pipeline after the change.
type endedStep struct {
	stepEnd
	position           int
	startedAt, endedAt *time.Time // nil: a pending step skipped
}

// collectEnded reads the steps a statement ended (step, position, state,
// started_at, ended_at, pipeline), notes those failed or succeeded in the
// context's Tally and returns them all.
func collectEnded(ctx context.Context, rows pgx.Rows) ([]endedStep, error) {
	steps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (endedStep, error) {
		var x endedStep
		return x, r.Scan(&x.step, &x.position, &x.state, &x.startedAt, &x.endedAt, &x.pipeline)
	})
	if err != nil {
		return nil, err
	}
	t := tallyOf(ctx)
	for _, s := range steps {
		if (s.state == Success || s.state == Failed) && s.startedAt != nil && s.endedAt != nil {
			e := s.stepEnd
			e.started, e.ended = *s.startedAt, *s.endedAt
			t.stepEnded(e)
		}
	}
	return steps, nil
}

// SetStepState sets one step's state by hand (who: state_set_by) with why
// as its error; a step that had ended keeps its end time. A step that was
// running or up for retry and is now failed or successful notes its end in
// the context's Tally.
func SetStepState(ctx context.Context, db DB, runID, step string, state State, why, who string) error {
	rows, err := db.Query(ctx, `
		UPDATE steps s SET state = $3, error = $4, state_set_by = $5, ended_at = coalesce(s.ended_at, now()), updated_at = now()
		FROM (SELECT state FROM steps WHERE run_id = $1 AND step = $2 FOR UPDATE) old
		WHERE s.run_id = $1 AND s.step = $2
		RETURNING s.step, s.position, CASE WHEN old.state IN ('running', 'up_for_retry') THEN s.state ELSE 'unchanged' END,
			s.started_at, s.ended_at, (SELECT pipeline FROM runs WHERE run_id = $1)`, runID, step, state, why, who)
	if err == nil {
		_, err = collectEnded(ctx, rows)
	}
	if err != nil {
		return fmt.Errorf("set step %s %s: %w", step, state, err)
	}
	return nil
}

// StepOutcome is how a run's steps stand: the first failed step's
// "step: error" ("" when none failed), and the first step neither
// succeeded nor skipped ("" when every step did).
type StepOutcome struct{ Failed, Undone string }

// Outcome reads how the run's steps stand.
func Outcome(ctx context.Context, db DB, runID string) (StepOutcome, error) {
	var o StepOutcome
	err := db.QueryRow(ctx, `
		SELECT coalesce((SELECT step || ': ' || error FROM steps WHERE run_id = $1 AND state = 'failed' ORDER BY position LIMIT 1), ''),
			coalesce((SELECT step FROM steps WHERE run_id = $1 AND state NOT IN ('success', 'skipped') ORDER BY position LIMIT 1), '')`,
		runID).Scan(&o.Failed, &o.Undone)
	if err != nil {
		return o, fmt.Errorf("the run's steps: %w", err)
	}
	return o, nil
}

// FailOpenSteps fails the run's running and up-for-retry steps with why
// now and returns the first (by position) it failed; "" when none was open.
// The steps it failed note their ends in the context's Tally.
func FailOpenSteps(ctx context.Context, db DB, runID, why string) (string, error) {
	rows, err := db.Query(ctx, `
		UPDATE steps SET state = 'failed', error = $2, ended_at = now(),
			started_at = coalesce(started_at, now()), updated_at = now()
		WHERE run_id = $1 AND state IN ('running', 'up_for_retry')
		RETURNING step, position, state, started_at, ended_at, (SELECT pipeline FROM runs WHERE run_id = $1)`, runID, why)
	if err != nil {
		return "", err
	}
	steps, err := collectEnded(ctx, rows)
	if err != nil || len(steps) == 0 {
		return "", err
	}
	first := steps[0]
	for _, s := range steps[1:] {
		if s.position < first.position {
			first = s
		}
	}
	return first.step, nil
}

// FailFirstPending fails the run's first pending step with why now and
// returns it; ErrNotFound when no step is pending.
func FailFirstPending(ctx context.Context, db DB, runID, why string) (string, error) {
	var step string
	err := db.QueryRow(ctx, `
		UPDATE steps SET state = 'failed', error = $2, ended_at = now(),
			started_at = coalesce(started_at, now()), updated_at = now()
		WHERE (run_id, step) = (SELECT run_id, step FROM steps WHERE run_id = $1 AND state = 'pending' ORDER BY position LIMIT 1)
		RETURNING step`, runID, why).Scan(&step)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return step, err
}

// FirstUnsucceeded returns the run's first step that did not succeed, else
// its last step.
func FirstUnsucceeded(ctx context.Context, db DB, runID string) (string, error) {
	var step string
	err := db.QueryRow(ctx, `SELECT step FROM steps WHERE run_id = $1
		ORDER BY (state = 'success'), CASE WHEN state = 'success' THEN -position ELSE position END LIMIT 1`, runID).Scan(&step)
	return step, err
}
