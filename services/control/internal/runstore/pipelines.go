package runstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// PipelineRuns is a pipeline's pause state and how its runs stand.
type PipelineRuns struct {
	ID              string
	Paused          bool
	Running, Queued int32
	Last            *controlv1.Run // newest by queue time (without steps); nil: none
}

// Pipelines reads the PipelineRuns of pipelines ids, in their order, in one
// query; a pipeline without its pipelines row is left out.
func Pipelines(ctx context.Context, db DB, ids []string) ([]PipelineRuns, error) {
	rows, err := db.Query(ctx, `
		SELECT p.id, p.paused, a.running, a.queued, r.*
		FROM unnest($1::text[]) WITH ORDINALITY AS want(id, n)
		JOIN pipelines p ON p.id = want.id
		CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE state = 'running') AS running, count(*) FILTER (WHERE state = 'queued') AS queued
			FROM runs WHERE runs.pipeline = p.id AND state IN ('queued', 'running')
		) a
		LEFT JOIN LATERAL (
			SELECT `+runColumns+` FROM runs WHERE runs.pipeline = p.id
			ORDER BY queued_at DESC, run_id DESC LIMIT 1
		) r ON true
		ORDER BY want.n`, ids)
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PipelineRuns, error) {
		var x PipelineRuns
		var err error
		x.Last, err = scanRun(r.Scan, &x.ID, &x.Paused, &x.Running, &x.Queued)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	return got, nil
}
