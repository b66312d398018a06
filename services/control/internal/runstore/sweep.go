package runstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// StaleRun is a run FailStale failed.
type StaleRun struct{ RunID, TraceID string }

// FailStale fails, with why, the pipeline's queued or running runs quiet for
// longer than quiet: since the later of the run's start (else its queue
// time) and its latest step end. A queued run waiting for a slot (another
// run is running) is not stale. The runs are claimed on rows locked FOR
// UPDATE SKIP LOCKED by an UPDATE that re-checks they are still active, so
// of several sweepers one fails each run. Their steps are left to the
// caller (FailOpenSteps). Each run failed notes its end in the context's
// Tally.
func FailStale(ctx context.Context, db DB, pipeline string, quiet time.Duration, why string) ([]StaleRun, error) {
	rows, err := db.Query(ctx, `
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
		RETURNING r.run_id, r.trace_id, r.queued_at, r.ended_at`, pipeline, quiet.Seconds(), why)
	if err != nil {
		return nil, err
	}
	t := tallyOf(ctx)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StaleRun, error) {
		var s StaleRun
		e := runEnd{pipeline: pipeline, state: Failed}
		if err := r.Scan(&s.RunID, &s.TraceID, &e.queued, &e.ended); err != nil {
			return s, err
		}
		t.runEnded(e)
		return s, nil
	})
}

// PipelineOf reads the pipeline of a run.
func PipelineOf(ctx context.Context, db DB, runID string) (string, error) {
	var pipeline string
	err := db.QueryRow(ctx, `SELECT pipeline FROM runs WHERE run_id = $1`, runID).Scan(&pipeline)
	return pipeline, err
}
