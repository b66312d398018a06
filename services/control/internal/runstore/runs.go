package runstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// NewRun is a run to insert, queued.
type NewRun struct {
	RunID, Pipeline, Source string
	Conf                    []byte // a JSON object; nil: {}
	Logical, Queued         time.Time
	IdempotencyKey          string // "": none
}

// Insert inserts a queued run and returns it; ErrExists when its run id,
// or its idempotency key for its pipeline, is taken.
func Insert(ctx context.Context, db DB, r NewRun) (*controlv1.Run, error) {
	var key *string
	if r.IdempotencyKey != "" {
		key = &r.IdempotencyKey
	}
	if r.Conf == nil {
		r.Conf = []byte(`{}`)
	}
	run, err := collectOneRun(db.Query(ctx, `
		INSERT INTO runs (run_id, pipeline, state, source, conf, logical_date, queued_at, idempotency_key)
		VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING
		RETURNING `+runColumns,
		r.RunID, r.Pipeline, r.Source, string(r.Conf), r.Logical, r.Queued, key))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("insert run: %w", err)
	}
	return run, nil
}

// ByIdempotencyKey reads the run of pipeline with an idempotency key;
// ErrNotFound when there is none.
func ByIdempotencyKey(ctx context.Context, db DB, pipeline, key string) (*controlv1.Run, error) {
	run, err := collectOneRun(db.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE pipeline = $1 AND idempotency_key = $2`, pipeline, key))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("find run by idempotency key: %w", err)
	}
	return run, err
}

// InsertTriggered inserts the queued run of a pipeline trigger (queued now)
// with the trigger's traceparent; a run already queued, as control's API
// queues a manual run before its trigger is published, takes the
// traceparent if it has none. It reports whether a row changed: false for
// a duplicate trigger. A scheduled run it inserts notes its schedule lag
// (logical date to queue time) in the context's Tally.
func InsertTriggered(ctx context.Context, db DB, r NewRun, traceparent string) (bool, error) {
	var queued time.Time
	err := db.QueryRow(ctx, `
		INSERT INTO runs (run_id, pipeline, state, source, conf, logical_date, traceparent)
		VALUES ($1, $2, 'queued', $3, $4, $5, $6)
		ON CONFLICT (run_id) DO NOTHING
		RETURNING queued_at`,
		r.RunID, r.Pipeline, r.Source, r.Conf, r.Logical, traceparent).Scan(&queued)
	if err == nil {
		noteScheduled(ctx, r.Pipeline, r.Source, r.Logical, queued)
		return true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("create run: %w", err)
	}
	tag, err := db.Exec(ctx, `UPDATE runs SET traceparent = $2, updated_at = now()
		WHERE run_id = $1 AND state = 'queued' AND traceparent = ''`, r.RunID, traceparent)
	if err != nil {
		return false, fmt.Errorf("create run: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Queue inserts a queued run with an empty conf (queued now) unless its run
// id exists; it reports whether it did. A scheduled run it inserts notes its
// schedule lag in the context's Tally.
func Queue(ctx context.Context, db DB, runID, pipeline, source string, logical time.Time) (bool, error) {
	var queued time.Time
	err := db.QueryRow(ctx, `INSERT INTO runs (run_id, pipeline, state, source, logical_date)
		VALUES ($1, $2, 'queued', $3, $4) ON CONFLICT (run_id) DO NOTHING RETURNING queued_at`,
		runID, pipeline, source, logical).Scan(&queued)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	noteScheduled(ctx, pipeline, source, logical, queued)
	return true, nil
}

// noteScheduled notes a scheduled run's lag, from its tick (logical date)
// to its queueing, in the context's Tally; other sources have no tick.
func noteScheduled(ctx context.Context, pipeline, source string, tick, queued time.Time) {
	if source == "scheduled" {
		tallyOf(ctx).scheduled(scheduleLag{pipeline: pipeline, tick: tick, queued: queued})
	}
}

// Querier is what a read needs: a DB, or anything that queries.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Missing returns the indexes (from 0, in order) of the runIDs with no run.
func Missing(ctx context.Context, q Querier, runIDs []string) ([]int, error) {
	rows, err := q.Query(ctx, `SELECT n - 1 FROM unnest($1::text[]) WITH ORDINALITY AS w(id, n)
		WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = w.id) ORDER BY n`, runIDs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// CountRunning counts the pipeline's running runs.
func CountRunning(ctx context.Context, db DB, pipeline string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM runs WHERE pipeline = $1 AND state = 'running'`, pipeline).Scan(&n)
	return n, err
}

// QueuedRun is what starting a queued run reads of it.
type QueuedRun struct {
	RunID       string
	Conf        []byte
	Logical     time.Time
	TraceParent string
}

// OldestQueued reads up to n of the pipeline's queued runs, oldest first
// (queued_at, then run_id).
func OldestQueued(ctx context.Context, db DB, pipeline string, n int) ([]QueuedRun, error) {
	rows, err := db.Query(ctx, `SELECT run_id, conf, logical_date, traceparent FROM runs
		WHERE pipeline = $1 AND state = 'queued' ORDER BY queued_at, run_id LIMIT $2`, pipeline, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[QueuedRun])
}

// Start makes a queued run running now, with its trace, and creates its
// steps (pending) unless they exist.
func Start(ctx context.Context, db DB, runID, traceID string, steps []string) error {
	if _, err := db.Exec(ctx, `UPDATE runs SET state = 'running', started_at = now(), updated_at = now(), trace_id = $2
		WHERE run_id = $1`, runID, traceID); err != nil {
		return err
	}
	return CreateSteps(ctx, db, runID, steps)
}

// CreateSteps creates a run's steps, pending, unless they exist.
func CreateSteps(ctx context.Context, db DB, runID string, steps []string) error {
	for i, step := range steps {
		if _, err := db.Exec(ctx, `INSERT INTO steps (run_id, step, position, state) VALUES ($1, $2, $3, 'pending') ON CONFLICT DO NOTHING`,
			runID, step, i); err != nil {
			return fmt.Errorf("create steps: %w", err)
		}
	}
	return nil
}

// MarkStarted makes a queued run running as its first step started at t.
func MarkStarted(ctx context.Context, db DB, runID string, t time.Time) error {
	_, err := db.Exec(ctx, `UPDATE runs SET state = 'running', started_at = coalesce(started_at, $2), updated_at = now()
		WHERE run_id = $1 AND state = 'queued'`, runID, t)
	return err
}

// Succeed ends a queued or running run successful at t; it reports
// whether the run was still active (and notes its end in the context's
// Tally). The caller holds the pipeline's lock.
func Succeed(ctx context.Context, db DB, runID string, t time.Time) (bool, error) {
	return ended(ctx, Success, db.QueryRow(ctx, `UPDATE runs SET state = 'success', ended_at = $2, updated_at = now()
		WHERE run_id = $1 AND state IN ('queued', 'running')
		RETURNING pipeline, queued_at, ended_at`, runID, t))
}

// Fail ends a queued or running run failed at t with why as its error; it
// reports whether the run was still active (and notes its end in the
// context's Tally). The caller holds the pipeline's lock.
func Fail(ctx context.Context, db DB, runID, why string, t time.Time) (bool, error) {
	return ended(ctx, Failed, db.QueryRow(ctx, `UPDATE runs SET state = 'failed', error = $2, ended_at = $3, updated_at = now()
		WHERE run_id = $1 AND state IN ('queued', 'running')
		RETURNING pipeline, queued_at, ended_at`, runID, why, t))
}

// ended reads the pipeline, queue and end time an UPDATE that ended a run
// in state returned, notes the end in the context's Tally and reports
// whether there was one (no row: the run was not active).
func ended(ctx context.Context, state State, row pgx.Row) (bool, error) {
	e := runEnd{state: state}
	err := row.Scan(&e.pipeline, &e.queued, &e.ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tallyOf(ctx).runEnded(e)
	return true, nil
}

// SetState sets a run's state by hand (who: state_set_by) with why as its
// error; a run that had ended keeps its end time. A run that was queued or
// running and now has ended notes its end in the context's Tally. The
// caller holds the run's lock (LockRun).
func SetState(ctx context.Context, db DB, runID string, state State, why, who string) error {
	var was State
	e := runEnd{state: state}
	err := db.QueryRow(ctx, `
		UPDATE runs r SET state = $2, error = $3, state_set_by = $4, ended_at = coalesce(r.ended_at, now()), updated_at = now()
		FROM (SELECT state FROM runs WHERE run_id = $1 FOR UPDATE) old
		WHERE r.run_id = $1
		RETURNING old.state, r.pipeline, r.queued_at, r.ended_at`, runID, state, why, who).Scan(&was, &e.pipeline, &e.queued, &e.ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set run %s: %w", state, err)
	}
	if was.Active() && !state.Active() {
		tallyOf(ctx).runEnded(e)
	}
	return nil
}

// RetryInfo is what a retry reads of a run: its logical date, conf and its
// steps' states in order.
type RetryInfo struct {
	Logical time.Time
	Conf    []byte
	Steps   []StepState
}

// StepState is a step and its state.
type StepState struct {
	Step  string
	State State
}

// ReadForRetry reads a run's RetryInfo.
func ReadForRetry(ctx context.Context, db DB, runID string) (RetryInfo, error) {
	var r RetryInfo
	if err := db.QueryRow(ctx, `SELECT logical_date, conf FROM runs WHERE run_id = $1`, runID).Scan(&r.Logical, &r.Conf); err != nil {
		return r, fmt.Errorf("retry: read run: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT step, state FROM steps WHERE run_id = $1 ORDER BY position`, runID)
	if err != nil {
		return r, fmt.Errorf("retry: steps: %w", err)
	}
	r.Steps, err = pgx.CollectRows(rows, pgx.RowToStructByPos[StepState])
	if err != nil {
		return r, fmt.Errorf("retry: steps: %w", err)
	}
	return r, nil
}

// Restart sets a finished run running again now (a retry): its end and
// error cleared, trace traceID, counted as a retry.
func Restart(ctx context.Context, db DB, runID, traceID string) error {
	if _, err := db.Exec(ctx, `
		UPDATE runs SET state = 'running', started_at = now(), ended_at = NULL, error = '', trace_id = $2,
			state_set_by = '', retries = retries + 1, updated_at = now()
		WHERE run_id = $1`, runID, traceID); err != nil {
		return fmt.Errorf("retry: reset run: %w", err)
	}
	return nil
}

// Requeue queues a finished run again from its first step: every step back
// to pending (attempt counts kept), the run queued now, counted as a retry.
func Requeue(ctx context.Context, db DB, runID string) error {
	if err := resetSteps(ctx, db, runID, 0); err != nil {
		return fmt.Errorf("requeue: reset steps: %w", err)
	}
	if _, err := db.Exec(ctx, `
		UPDATE runs SET state = 'queued', queued_at = now(), started_at = NULL, ended_at = NULL, error = '',
			state_set_by = '', retries = retries + 1, updated_at = now()
		WHERE run_id = $1`, runID); err != nil {
		return fmt.Errorf("requeue: reset run: %w", err)
	}
	return nil
}

// Trace reads a run's trace id and queue time; ErrNotFound when there is no
// such run.
func Trace(ctx context.Context, db DB, runID string) (traceID string, queued time.Time, err error) {
	err = db.QueryRow(ctx, `SELECT trace_id, queued_at FROM runs WHERE run_id = $1`, runID).Scan(&traceID, &queued)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	return traceID, queued, err
}

// LastScheduled reads when the newest scheduled run was queued (nil: none
// yet): the scheduler's heartbeat.
func LastScheduled(ctx context.Context, db DB) (*time.Time, error) {
	var beat *time.Time
	err := db.QueryRow(ctx, `SELECT max(queued_at) FROM runs WHERE source = 'scheduled'`).Scan(&beat)
	return beat, err
}
