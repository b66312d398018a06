package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// RunColumns are the runs columns ScanRun reads.
const RunColumns = `run_id, pipeline, state, source, conf, logical_date, queued_at, started_at, ended_at, error, coalesce(idempotency_key, ''), state_set_by`

// ScanRun scans the RunColumns of a runs row.
func ScanRun(r pgx.CollectableRow) (*controlv1.Run, error) {
	var (
		run             controlv1.Run
		conf            []byte
		logical, queued time.Time
		started, ended  *time.Time
	)
	if err := r.Scan(&run.RunId, &run.Pipeline, &run.State, &run.Source, &conf, &logical, &queued,
		&started, &ended, &run.Error, &run.IdempotencyKey, &run.StateSetBy); err != nil {
		return nil, err
	}
	run.Conf, run.ConfJson = runConf(conf)
	run.LogicalDate, run.QueuedAt = ts(&logical), ts(&queued)
	run.StartedAt, run.EndedAt = ts(started), ts(ended)
	return &run, nil
}

// ListRuns pages through runs newest first (queued_at, then run_id), with
// optional pipeline and state filters.
func (s *Server) ListRuns(ctx context.Context, req *controlv1.ListRunsRequest) (*controlv1.ListRunsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	pipeline := req.GetPipeline()
	if pipeline != "" {
		pl, err := lookupPipeline(pipeline)
		if err != nil {
			return nil, invalid("pipeline: unknown pipeline %q", pipeline)
		}
		pipeline = pl.ID
		where = append(where, "pipeline = "+arg(pipeline))
	}
	if st := req.GetState(); st != "" {
		if !slices.Contains(runStates, st) {
			return nil, invalid("state: %q is not one of %s", st, strings.Join(runStates, ", "))
		}
		where = append(where, "state = "+arg(st))
	}
	filter := pipeline + "|" + req.GetState()
	tok, err := decodeToken(req.GetPageToken(), filter)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		where = append(where, "(queued_at, run_id) < ("+arg(tok.time())+", "+arg(tok.ID)+")")
	}
	q := `SELECT ` + RunColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY queued_at DESC, run_id DESC LIMIT ` + arg(size+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, ScanRun)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	resp := &controlv1.ListRunsResponse{Runs: runs}
	if len(runs) > size {
		resp.Runs = runs[:size]
		last := resp.Runs[size-1]
		resp.NextPageToken = encodeToken(last.GetQueuedAt().AsTime(), last.GetRunId(), filter)
	}
	return resp, nil
}

// GetRun returns a run with its steps in order.
func (s *Server) GetRun(ctx context.Context, req *controlv1.GetRunRequest) (*controlv1.Run, error) {
	if err := checkRunID(req.GetRunId()); err != nil {
		return nil, err
	}
	return loadRun(ctx, s.pool, req.GetRunId())
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadRun reads a run with its steps in order.
func loadRun(ctx context.Context, q querier, runID string) (*controlv1.Run, error) {
	rows, err := q.Query(ctx, `SELECT `+RunColumns+` FROM runs WHERE run_id = $1`, runID)
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	run, err := pgx.CollectExactlyOneRow(rows, ScanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("run %q not found", runID)
	}
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	rows, err = q.Query(ctx, `
		SELECT step, position, state, attempts, started_at, ended_at, error, summary, figures, state_set_by
		FROM steps WHERE run_id = $1 ORDER BY position`, run.GetRunId())
	if err != nil {
		return nil, fmt.Errorf("get steps: %w", err)
	}
	run.Steps, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*controlv1.Step, error) {
		var (
			st             controlv1.Step
			started, ended *time.Time
		)
		if err := r.Scan(&st.Step, &st.Position, &st.State, &st.Attempts, &started, &ended, &st.Error, &st.Summary, &st.Figures, &st.StateSetBy); err != nil {
			return nil, err
		}
		st.StartedAt, st.EndedAt = ts(started), ts(ended)
		return &st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("get steps: %w", err)
	}
	return run, nil
}

// ListNotifications pages through a technician's in-app inbox, newest first.
func (s *Server) ListNotifications(ctx context.Context, req *controlv1.ListNotificationsRequest) (*controlv1.ListNotificationsResponse, error) {
	tech := req.GetTechnicianId()
	if tech <= 0 {
		return nil, invalid("technician_id: must be positive")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter := fmt.Sprint(tech)
	tok, err := decodeToken(req.GetPageToken(), filter)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM technicians WHERE id = $1)`, tech).Scan(&exists); err != nil {
		return nil, fmt.Errorf("find technician: %w", err)
	}
	if !exists {
		return nil, notFound("technician %d not found", tech)
	}
	var after *time.Time
	var afterID int64
	if tok != nil {
		t := tok.time()
		after = &t
		if _, err := fmt.Sscan(tok.ID, &afterID); err != nil {
			return nil, invalid("page_token: invalid")
		}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, technician_id, run_id, pipeline, kind, subject, body, status, created_at, sent_at, read_at
		FROM notifications
		WHERE channel = 'inbox' AND technician_id = $1
		  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, tech, after, afterID, size+1)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*controlv1.Notification, error) {
		var (
			n            controlv1.Notification
			created      time.Time
			sent, readAt *time.Time
		)
		if err := r.Scan(&n.Id, &n.TechnicianId, &n.RunId, &n.Pipeline, &n.Kind, &n.Subject, &n.Body, &n.Status,
			&created, &sent, &readAt); err != nil {
			return nil, err
		}
		n.CreatedAt, n.SentAt, n.ReadAt = ts(&created), ts(sent), ts(readAt)
		return &n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	resp := &controlv1.ListNotificationsResponse{Notifications: ns}
	if len(ns) > size {
		resp.Notifications = ns[:size]
		last := resp.Notifications[size-1]
		resp.NextPageToken = encodeToken(last.GetCreatedAt().AsTime(), fmt.Sprint(last.GetId()), filter)
	}
	return resp, nil
}
