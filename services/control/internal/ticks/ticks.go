// Package ticks watches the cron schedules from control's side. Cloud
// Scheduler publishes a kick per tick; when it is down, or the kick is
// dead-lettered, the tick gets no run and nothing else would notice. The
// watcher finds such a tick once its grace period has passed, records it
// once (missed_ticks), emits cmmsflow.schedule.missed.v1 (notifier alerts
// the admins, by email and webhooks) and, for a pipeline with catchup, creates
// the run scheduled__<tick> itself. Backfill creates the runs of a range of
// ticks on request.
package ticks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Defaults of the watcher.
const (
	// DefaultGrace is how long after a tick its run may still be on its way
	// (Cloud Scheduler's retries, push delivery) before the tick is missed.
	DefaultGrace = 10 * time.Minute
	// Lookback bounds how far back a check looks: an older tick is history.
	Lookback = 7 * 24 * time.Hour
)

// Querier is what the tick queries need: a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Missing returns the ticks among ticks whose run, scheduled__<tick>, does
// not exist.
func Missing(ctx context.Context, q Querier, ticks []time.Time) ([]time.Time, error) {
	ids := make([]string, len(ticks))
	for i, t := range ticks {
		ids[i] = projection.RunIDFor("scheduled", t)
	}
	ns, err := runstore.Missing(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, len(ns))
	for i, n := range ns {
		out[i] = ticks[n]
	}
	return out, nil
}

// Between lists e's ticks in (from, to], at most limit of them (the first).
func Between(e scheduler.Entry, from, to time.Time, limit int) []time.Time {
	var out []time.Time
	for t := e.Next(from); !t.IsZero() && !t.After(to) && len(out) < limit; t = e.Next(t) {
		out = append(out, t)
	}
	return out
}

// Watcher finds and handles missed ticks.
type Watcher struct {
	pool    *pgxpool.Pool
	table   scheduler.Table
	starter *projection.Starter
	relay   *eventing.Relay // nil: the relay's own loop publishes
	grace   time.Duration
	log     *slog.Logger
	now     func() time.Time
	metrics *runstore.Metrics // nil: none recorded
}

// NewWatcher returns a watcher over the cron table with the given grace.
func NewWatcher(pool *pgxpool.Pool, table scheduler.Table, starter *projection.Starter, relay *eventing.Relay, grace time.Duration, log *slog.Logger) *Watcher {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Watcher{pool: pool, table: table, starter: starter, relay: relay, grace: grace, log: log, now: time.Now}
}

// Instrument makes the watcher count the ticks it finds missed, and record
// the schedule lag of the runs it catches up, to m. Call it before Run.
func (w *Watcher) Instrument(m *runstore.Metrics) { w.metrics = m }

// Missed is a tick the watcher found without a run.
type Missed struct {
	Pipeline string
	Tick     time.Time
	CaughtUp bool
}

// Run checks every interval (service.Every's default when not
// positive) until ctx ends; errors are logged and the next tick
// tries again.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	service.Every(ctx, interval, w.log, "missed-tick check", func(ctx context.Context) error {
		_, err := w.Check(ctx)
		return err
	})
}

// Check handles the missed ticks of every pipeline now and returns them.
func (w *Watcher) Check(ctx context.Context) ([]Missed, error) {
	var all []Missed
	for _, e := range w.table.Entries {
		pl, _ := events.LookupPipeline(e.Pipeline)
		var missed []Missed
		tctx, tally := w.metrics.Track(ctx)
		err := pgx.BeginFunc(tctx, w.pool, func(tx pgx.Tx) (err error) {
			missed, err = w.check(tctx, tx, pl, e)
			return err
		})
		if err != nil {
			return all, fmt.Errorf("missed ticks of %s: %w", e.Pipeline, err)
		}
		tally.Record(ctx)
		w.metrics.TicksMissed(ctx, pl.ID, len(missed))
		all = append(all, missed...)
	}
	for _, m := range all {
		w.log.Warn("cron tick missed", "pipeline", m.Pipeline, "tick", m.Tick, "caught_up", m.CaughtUp)
	}
	if len(all) > 0 && w.relay != nil {
		w.relay.Nudge()
	}
	return all, nil
}

// check handles one pipeline's missed ticks in tx: ticks after its pause
// state last changed (an unpaused pipeline's earlier ticks were not due).
func (w *Watcher) check(ctx context.Context, tx pgx.Tx, pl events.Pipeline, e scheduler.Entry) ([]Missed, error) {
	var (
		paused  bool
		changed time.Time
	)
	if err := runstore.LockPipeline(ctx, tx, pl.ID); err != nil {
		return nil, err
	}
	if err := tx.QueryRow(ctx, `SELECT paused, updated_at FROM pipelines WHERE id = $1`, pl.ID).Scan(&paused, &changed); err != nil || paused {
		return nil, err
	}
	now := w.now()
	ticks, err := Missing(ctx, tx, Between(e, later(changed, now.Add(-Lookback)), now.Add(-w.grace), 1000))
	if err != nil {
		return nil, err
	}
	var out []Missed
	for _, tick := range ticks {
		m := Missed{Pipeline: pl.ID, Tick: tick, CaughtUp: e.Catchup}
		tag, err := tx.Exec(ctx, `INSERT INTO missed_ticks (pipeline, tick, caught_up) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			pl.ID, tick, m.CaughtUp)
		if err != nil || tag.RowsAffected() == 0 {
			if err != nil {
				return nil, err
			}
			continue // alerted (and caught up) before
		}
		if m.CaughtUp {
			if _, err := QueueRun(ctx, tx, pl.ID, tick, "scheduled"); err != nil {
				return nil, err
			}
		}
		ev, err := eventing.New(events.ScheduleMissed, events.Source(events.Control), projection.RunIDFor("scheduled", tick), pl.ID, "",
			&eventsv1.ScheduleMissed{Tick: timestamppb.New(tick), CaughtUp: m.CaughtUp})
		if err != nil {
			return nil, err
		}
		if err := eventing.Emit(ctx, tx, ev); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) > 0 {
		_, err = w.starter.StartQueued(ctx, tx, pl)
	}
	return out, err
}

// QueueRun inserts the queued run of tick, scheduled__<tick>, unless it
// exists; it reports whether it did. The caller holds the pipeline's lock
// and starts queued runs afterwards (projection.Starter).
func QueueRun(ctx context.Context, tx pgx.Tx, pipeline string, tick time.Time, source string) (bool, error) {
	created, err := runstore.Queue(ctx, tx, projection.RunIDFor("scheduled", tick), pipeline, source, tick)
	if err != nil {
		return false, fmt.Errorf("queue run of %s at %s: %w", pipeline, tick, err)
	}
	return created, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
