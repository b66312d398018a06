// Package runstore owns every statement control makes on the runs and steps
// tables: inserting runs, their transitions (starting queued runs, a step's
// start and end, ending, cancelling, setting a state by hand, the resets of
// a retry), and reading them back (one scan of a run row, one list query
// builder). Its functions take a DB, which a pgx.Tx and a *pgxpool.Pool
// both are, so they run inside the caller's transaction; none begins one.
//
// The callers keep the rules: the API checks what a caller may do, the
// projection decides what an event means, the sweeper which runs are stale;
// what they do to the rows is here. Every transaction that ends, starts or
// queues a run takes its pipeline's lock first (LockPipeline).
package runstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotFound is returned for a run that does not exist.
var ErrNotFound = errors.New("run not found")

// ErrExists is returned by Insert for a run whose id (or idempotency key) is
// taken.
var ErrExists = errors.New("run exists")

// LockPipeline locks a pipeline's row for the transaction. Every
// transaction that ends, starts or queues a run of the pipeline takes it
// before any of the pipeline's runs rows, in that order, so starts are
// serialised across control instances and no two such transactions wait on
// each other in a cycle.
func LockPipeline(ctx context.Context, db DB, pipeline string) error {
	if _, err := db.Exec(ctx, `SELECT 1 FROM pipelines WHERE id = $1 FOR UPDATE`, pipeline); err != nil {
		return fmt.Errorf("lock pipeline %s: %w", pipeline, err)
	}
	return nil
}

// LockRun locks a run's pipeline (LockPipeline), then the run's row, and
// returns its pipeline id and state; ErrNotFound when there is no such run.
func LockRun(ctx context.Context, db DB, runID string) (pipeline string, state State, err error) {
	err = db.QueryRow(ctx, `SELECT pipeline FROM runs WHERE run_id = $1`, runID).Scan(&pipeline)
	if err == nil {
		err = LockPipeline(ctx, db, pipeline)
	}
	if err == nil {
		err = db.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1 FOR UPDATE`, runID).Scan(&state)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return pipeline, state, err
}
