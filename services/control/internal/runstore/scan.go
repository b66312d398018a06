package runstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// runColumns are the runs columns scanRun reads, in its order.
const runColumns = `run_id, pipeline, state, source, conf, logical_date, queued_at, started_at, ended_at, error, coalesce(idempotency_key, ''), state_set_by`

// stepColumns are the steps columns scanStep reads, in its order.
const stepColumns = `step, position, state, attempts, started_at, ended_at, error, summary, figures, state_set_by`

// scanRun scans the runColumns of a runs row, each possibly NULL (the row
// of an outer join): a NULL run_id is no run (nil).
func scanRun(scan func(dest ...any) error, before ...any) (*controlv1.Run, error) {
	var (
		runID, pl, st, src   *string
		conf                 []byte
		logical, queued      *time.Time
		started, ended       *time.Time
		errText, idempotency *string
		setBy                *string
	)
	dest := append(before, &runID, &pl, &st, &src, &conf, &logical, &queued, &started, &ended, &errText, &idempotency, &setBy)
	if err := scan(dest...); err != nil {
		return nil, err
	}
	if runID == nil {
		return nil, nil
	}
	run := &controlv1.Run{RunId: *runID, Pipeline: *pl, State: *st, Source: *src,
		LogicalDate: ts(logical), QueuedAt: ts(queued), StartedAt: ts(started), EndedAt: ts(ended),
		Error: *errText, IdempotencyKey: *idempotency, StateSetBy: *setBy,
	}
	run.Conf, run.ConfJson = runConf(conf)
	return run, nil
}

// collectRun is scanRun for pgx.CollectRows.
func collectRun(r pgx.CollectableRow) (*controlv1.Run, error) { return scanRun(r.Scan) }

// collectRuns reads rows of runColumns.
func collectRuns(rows pgx.Rows, err error) ([]*controlv1.Run, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, collectRun)
}

// collectOneRun reads the one row of runColumns; ErrNotFound without one.
func collectOneRun(rows pgx.Rows, err error) (*controlv1.Run, error) {
	if err != nil {
		return nil, err
	}
	run, err := pgx.CollectExactlyOneRow(rows, collectRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return run, err
}

func scanStep(r pgx.CollectableRow) (*controlv1.Step, error) {
	var (
		st             controlv1.Step
		started, ended *time.Time
	)
	if err := r.Scan(&st.Step, &st.Position, &st.State, &st.Attempts, &started, &ended, &st.Error, &st.Summary, &st.Figures, &st.StateSetBy); err != nil {
		return nil, err
	}
	st.StartedAt, st.EndedAt = ts(started), ts(ended)
	return &st, nil
}

// Get reads a run with its steps in order; ErrNotFound when there is none.
func Get(ctx context.Context, db DB, runID string) (*controlv1.Run, error) {
	run, err := collectOneRun(db.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE run_id = $1`, runID))
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	if run.Steps, err = Steps(ctx, db, runID); err != nil {
		return nil, err
	}
	return run, nil
}

// Steps reads a run's steps in order.
func Steps(ctx context.Context, db DB, runID string) ([]*controlv1.Step, error) {
	rows, err := db.Query(ctx, `SELECT `+stepColumns+` FROM steps WHERE run_id = $1 ORDER BY position`, runID)
	if err != nil {
		return nil, fmt.Errorf("get steps: %w", err)
	}
	steps, err := pgx.CollectRows(rows, scanStep)
	if err != nil {
		return nil, fmt.Errorf("get steps: %w", err)
	}
	return steps, nil
}

// runConf splits a runs.conf value into the run's string values and its JSON.
func runConf(b []byte) (map[string]string, string) {
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return map[string]string{}, "{}"
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out, string(b)
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
