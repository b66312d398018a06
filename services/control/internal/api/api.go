// Package api implements control's ControlService (proto/cmmsflow/control/v1)
// against PostgreSQL: pipelines and their pause state, manual triggers
// (queued run + pipeline.triggered event in one transaction, through the
// outbox), runs with their steps, cancellation and technicians' inboxes.
//
// Handlers return errors built with errorf/notFound/invalid, or any other
// error for a failure; ErrorInterceptor maps them to gRPC status in one place.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

// Nudger wakes the outbox relay (eventing.Relay).
type Nudger interface{ Nudge() }

// Server implements controlv1.ControlServiceServer.
type Server struct {
	controlv1.UnimplementedControlServiceServer
	pool    *pgxpool.Pool
	table   scheduler.Table
	relay   Nudger
	starter *projection.Starter
	log     *slog.Logger
	now     func() time.Time
	metrics *runstore.Metrics // nil: none recorded
}

// New returns the API over pool; table gives schedules and max_active_runs,
// relay is nudged after every trigger.
func New(pool *pgxpool.Pool, table scheduler.Table, relay Nudger, log *slog.Logger) *Server {
	return &Server{pool: pool, table: table, relay: relay, starter: projection.NewStarter(table.MaxActiveRuns), log: log, now: time.Now}
}

// Instrument makes the server record the runs and steps a cancel or a
// state set by hand ends to m. Call it before serving.
func (s *Server) Instrument(m *runstore.Metrics) { s.metrics = m }

var (
	manualSource  = "manual"
	errNoPipeline = errors.New("no such pipeline")
)

// lookupPipeline finds a pipeline by id or alias; callers go on with its ID.
func lookupPipeline(id string) (events.Pipeline, error) {
	pl, ok := events.LookupPipeline(id)
	if !ok {
		return pl, notFound("pipeline %q not found", id)
	}
	return pl, nil
}

// ListPipelines lists every registered pipeline, in the registry's order.
func (s *Server) ListPipelines(ctx context.Context, _ *controlv1.ListPipelinesRequest) (*controlv1.ListPipelinesResponse, error) {
	ids := make([]string, len(events.Pipelines))
	for i, p := range events.Pipelines {
		ids[i] = p.ID
	}
	got, err := s.pipelines(ctx, ids)
	if err != nil {
		return nil, err
	}
	return &controlv1.ListPipelinesResponse{Pipelines: got}, nil
}

// GetPipeline returns one pipeline.
func (s *Server) GetPipeline(ctx context.Context, req *controlv1.GetPipelineRequest) (*controlv1.Pipeline, error) {
	return s.pipeline(ctx, req.GetPipeline())
}

func (s *Server) pipeline(ctx context.Context, id string) (*controlv1.Pipeline, error) {
	pl, err := lookupPipeline(id)
	if err != nil {
		return nil, err
	}
	got, err := s.pipelines(ctx, []string{pl.ID})
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// pipelines loads the pause state and last run of registered pipelines ids
// in one query.
func (s *Server) pipelines(ctx context.Context, ids []string) ([]*controlv1.Pipeline, error) {
	got, err := runstore.Pipelines(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	if len(got) != len(ids) {
		// SyncPipelines runs at start-up; a missing row is a broken install.
		return nil, fmt.Errorf("load pipelines %v: %w in the pipelines table", ids, errNoPipeline)
	}
	missed, err := s.missedTicks(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]*controlv1.Pipeline, len(got))
	for i, g := range got {
		pl, _ := events.LookupPipeline(g.ID)
		p := &controlv1.Pipeline{
			Id: pl.ID, Aliases: pl.Aliases, Description: pl.Description, Steps: pl.Steps,
			TimeZone: s.table.TimeZone, Paused: g.Paused, LastRun: g.Last,
			ActiveRuns: g.Running, QueuedRuns: g.Queued, MissedTicks: missed[pl.ID],
		}
		if e, ok := s.table.Lookup(pl.ID); ok {
			p.Schedule = e.Schedule
			p.NextRun = timestamppb.New(e.Next(now))
			p.Catchup = e.Catchup
		}
		p.MaxActiveRuns = int32(s.table.MaxActiveRuns(pl.ID))
		for _, k := range pl.Conf {
			p.ConfKeys = append(p.ConfKeys, &controlv1.ConfKey{Name: k.Name, Format: string(k.Format), Description: k.Description})
		}
		out[i] = p
	}
	return out, nil
}

// missedTicks loads the last 7 days' missed ticks of pipelines ids, newest
// first, by pipeline, each with its run when that exists now.
func (s *Server) missedTicks(ctx context.Context, ids []string) (map[string][]*controlv1.MissedTick, error) {
	rows, err := s.pool.Query(ctx, `SELECT pipeline, tick, caught_up FROM missed_ticks
		WHERE pipeline = ANY($1) AND detected_at > now() - interval '7 days' ORDER BY tick DESC LIMIT 100`, ids)
	if err != nil {
		return nil, fmt.Errorf("load missed ticks: %w", err)
	}
	type missed struct {
		Pipeline string
		Tick     time.Time
		CaughtUp bool
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[missed])
	if err != nil || len(all) == 0 {
		return nil, err
	}
	tickTimes := make([]time.Time, len(all))
	for i, m := range all {
		tickTimes[i] = m.Tick
	}
	absent, err := ticks.Missing(ctx, s.pool, tickTimes)
	if err != nil {
		return nil, err
	}
	out := map[string][]*controlv1.MissedTick{}
	for _, m := range all {
		mt := &controlv1.MissedTick{Tick: timestamppb.New(m.Tick), CaughtUp: m.CaughtUp}
		if !slices.ContainsFunc(absent, m.Tick.Equal) {
			mt.RunId = projection.RunIDFor("scheduled", m.Tick)
		}
		out[m.Pipeline] = append(out[m.Pipeline], mt)
	}
	return out, nil
}

// PausePipeline makes the pipeline ignore scheduled kicks.
func (s *Server) PausePipeline(ctx context.Context, req *controlv1.PausePipelineRequest) (*controlv1.Pipeline, error) {
	return s.setPaused(ctx, req.GetPipeline(), true)
}

// UnpausePipeline undoes PausePipeline.
func (s *Server) UnpausePipeline(ctx context.Context, req *controlv1.UnpausePipelineRequest) (*controlv1.Pipeline, error) {
	return s.setPaused(ctx, req.GetPipeline(), false)
}

func (s *Server) setPaused(ctx context.Context, id string, paused bool) (*controlv1.Pipeline, error) {
	pl, err := lookupPipeline(id)
	if err != nil {
		return nil, err
	}
	id = pl.ID
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO pipelines (id, paused) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET paused = $2, updated_at = now() WHERE pipelines.paused <> $2`, id, paused); err != nil {
		return nil, fmt.Errorf("pause %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "pipeline pause state set", "pipeline", id, "paused", paused, "by", caller(ctx))
	return s.pipeline(ctx, id)
}

// TriggerPipeline queues a manual run: in one transaction it inserts the run
// as queued and writes the pipeline.triggered event to the outbox (the same
// message a cron kick is); the projection then starts the run.
func (s *Server) TriggerPipeline(ctx context.Context, req *controlv1.TriggerPipelineRequest) (*controlv1.TriggerPipelineResponse, error) {
	pl, err := lookupPipeline(req.GetPipeline())
	if err != nil {
		return nil, err
	}
	conf, err := requestConf(pl, req)
	if err != nil {
		return nil, err
	}
	key := req.GetIdempotencyKey()
	if err := validateIdempotencyKey(key); err != nil {
		return nil, err
	}
	var (
		run     *controlv1.Run
		created bool
	)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		run, created, err = s.insertRun(ctx, tx, pl, conf, key)
		if err != nil || !created {
			return err
		}
		ev, err := eventing.New(events.PipelineTriggered, events.Source(events.Control), run.GetRunId(), pl.ID,
			traceParent(ctx), &eventsv1.PipelineTriggered{Source: manualSource, LogicalDate: run.GetLogicalDate(), Conf: conf.Known})
		if err != nil {
			return err
		}
		return eventing.Emit(ctx, tx, ev)
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.relay.Nudge()
		s.log.InfoContext(ctx, "run queued", "pipeline", pl.ID, "run_id", run.GetRunId(), "by", caller(ctx))
	}
	return &controlv1.TriggerPipelineResponse{Run: run, Created: created}, nil
}

// insertRun inserts the queued run, named manual__<now>. With an idempotency
// key already used for the pipeline it returns the existing run instead (a
// concurrent first use waits on the unique index, then finds the row).
func (s *Server) insertRun(ctx context.Context, tx pgx.Tx, pl events.Pipeline, conf Conf, key string) (*controlv1.Run, bool, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	for range 10 {
		run, err := runstore.Insert(ctx, tx, runstore.NewRun{RunID: projection.RunIDFor(manualSource, now), Pipeline: pl.ID,
			Source: manualSource, Conf: conf.JSON, Logical: now, Queued: now, IdempotencyKey: key})
		if !errors.Is(err, runstore.ErrExists) {
			return run, err == nil, err
		}
		if key != "" {
			run, err := runstore.ByIdempotencyKey(ctx, tx, pl.ID, key)
			if err == nil {
				if !sameConf(run.GetConfJson(), conf.JSON) {
					return nil, false, errorf(codes.AlreadyExists, "idempotency_key %q was used with a different conf (run %s)", key, run.GetRunId())
				}
				return run, false, nil
			}
			if !errors.Is(err, runstore.ErrNotFound) {
				return nil, false, err
			}
		}
		// Another manual run got the same microsecond: take the next one.
		now = now.Add(time.Microsecond)
	}
	return nil, false, errorf(codes.Aborted, "could not name the run: too many triggers at once, retry")
}

// CancelRun cancels a queued or running run: its pending steps become
// skipped and its running step failed, whose service sees the run ended and
// stops its work where the engine allows it (eventing.ErrRunStopped).
func (s *Server) CancelRun(ctx context.Context, req *controlv1.CancelRunRequest) (*controlv1.Run, error) {
	return s.changeRun(ctx, req.GetRunId(), false, func(ctx context.Context, tx pgx.Tx, r lockedRun) error {
		if !r.state.Active() {
			return errorf(codes.FailedPrecondition, "run %q is %s: only a queued or running run can be cancelled", r.id, r.state)
		}
		return stopRun(ctx, tx, r, runstore.Cancelled, "cancelled by "+r.by)
	}, "run cancelled")
}

// lockRun locks a run's pipeline, then the run's row (runstore.LockRun),
// and returns its pipeline and state.
func (s *Server) lockRun(ctx context.Context, tx pgx.Tx, runID string) (events.Pipeline, runstore.State, error) {
	id, state, err := runstore.LockRun(ctx, tx, runID)
	if errors.Is(err, runstore.ErrNotFound) {
		return events.Pipeline{}, "", notFound("run %q not found", runID)
	}
	if err != nil {
		return events.Pipeline{}, "", err
	}
	pl, ok := events.LookupPipeline(id)
	if !ok {
		return pl, "", fmt.Errorf("run %s: unknown pipeline %q", runID, id)
	}
	return pl, state, nil
}

// caller names the authenticated caller in logs and run errors.
func caller(ctx context.Context) string {
	if id, ok := auth.IdentityFrom(ctx); ok {
		return id.Name
	}
	return "unknown"
}

// traceParent continues the caller's W3C trace when it sent one.
func traceParent(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "traceparent"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
