package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// ListRuns pages through runs newest first (queued_at, then run_id), with
// optional pipeline and state filters.
func (s *Server) ListRuns(ctx context.Context, req *controlv1.ListRunsRequest) (*controlv1.ListRunsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var f runstore.Filter
	pipeline := req.GetPipeline()
	if pipeline != "" {
		pl, err := lookupPipeline(pipeline)
		if err != nil {
			return nil, invalid("pipeline: unknown pipeline %q", pipeline)
		}
		pipeline = pl.ID
		f.Pipeline = pipeline
	}
	if st := req.GetState(); st != "" {
		state, err := runstore.ParseRunState(st)
		if err != nil {
			return nil, invalid("state: %s", err)
		}
		f.States = []runstore.State{state}
	}
	filter := pipeline + "|" + req.GetState()
	tok, err := decodeToken(req.GetPageToken(), filter)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		f.After = &runstore.Cursor{QueuedAt: tok.time(), RunID: tok.ID}
	}
	runs, err := runstore.List(ctx, s.pool, f, runstore.Order{}, runstore.Page{Limit: size + 1})
	if err != nil {
		return nil, err
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

// loadRun reads a run with its steps in order.
func loadRun(ctx context.Context, db runstore.DB, runID string) (*controlv1.Run, error) {
	run, err := runstore.Get(ctx, db, runID)
	if errors.Is(err, runstore.ErrNotFound) {
		return nil, notFound("run %q not found", runID)
	}
	return run, err
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
