package eventing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Emit writes ev to the outbox inside tx, so the event exists if and only if
// the transaction commits. The relay publishes it after commit.
//
// The row's attributes carry the trace context of a producer span ("create
// <topic>"), a child of the span in ctx: the relay publishes it with the
// event, and the consumer's span continues it, so a run is one trace.
func Emit(ctx context.Context, tx pgx.Tx, ev Event) error {
	_, err := EmitTraced(ctx, tx, ev)
	return err
}

// EmitTraced is Emit, returning the trace id the event carries (its producer
// span's): the trace its consumers continue.
func EmitTraced(ctx context.Context, tx pgx.Tx, ev Event) (traceID string, err error) {
	t, ok := events.LookupType(ev.Type())
	if !ok {
		return "", fmt.Errorf("emit: unregistered event type %q", ev.Type())
	}
	span := startEmit(ctx, t.Topic, &ev)
	defer span.End()
	m := ev.Message()
	if _, err := tx.Exec(ctx,
		`INSERT INTO outbox (topic, event_id, event_type, attributes, data) VALUES ($1, $2, $3, $4, $5)`,
		t.Topic, ev.ID(), ev.Type(), m.Attributes, m.Data); err != nil {
		return "", fmt.Errorf("emit %s: %w", ev.Type(), err)
	}
	return ev.TraceID(), nil
}

// Relay publishes outbox rows. Flush runs after each commit that emitted;
// Run also flushes on start-up and on a timer, so rows left by a crash between
// commit and publish go out when the service is back.
type Relay struct {
	pool     *pgxpool.Pool
	pub      Publisher
	log      *slog.Logger
	interval time.Duration
	batch    int
	nudge    chan struct{}
	tel      relayInstruments
}

// NewRelay returns a relay that polls every interval.
func NewRelay(pool *pgxpool.Pool, pub Publisher, log *slog.Logger, interval time.Duration) *Relay {
	return &Relay{pool: pool, pub: pub, log: log, interval: interval, batch: 100, nudge: make(chan struct{}, 1),
		tel: newRelayInstruments("", Telemetry{})}
}

// Instrument makes the relay report a span per publish and the outbox
// metrics, labelled with service, to t. Call it before Run.
//
// It also registers the outbox backlog gauges, read from the database when
// metrics are collected (a scrape of /metrics): pending rows and the age of
// the oldest, over the whole outbox table, which every service sharing the
// database reports alike.
func (r *Relay) Instrument(service string, t Telemetry) error {
	r.tel = newRelayInstruments(service, t)
	m := t.meter()
	pending, err := m.Int64ObservableGauge("cmmsflow.outbox.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Outbox rows not yet published (whole table)."))
	if err != nil {
		return err
	}
	oldest, err := m.Float64ObservableGauge("cmmsflow.outbox.oldest_pending.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest unpublished outbox row (whole table); 0 when none."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var n int64
		var age float64
		if err := r.pool.QueryRow(ctx, `
			SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
			FROM outbox WHERE published_at IS NULL`).Scan(&n, &age); err != nil {
			return nil // the database is down: no reading this time
		}
		o.ObserveInt64(pending, n)
		o.ObserveFloat64(oldest, age)
		return nil
	}, pending, oldest)
	return err
}

// Run flushes at once, then on every Nudge and every interval, until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var pruned time.Time
	for {
		if _, err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay: flush failed, will retry", "error", err)
		}
		if time.Since(pruned) > pruneEvery {
			pruned = time.Now()
			if err := Prune(ctx, r.pool); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: prune failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.nudge:
		}
	}
}

// Nudge asks Run to flush soon without waiting.
func (r *Relay) Nudge() {
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// Flush publishes every pending row and returns how many it published. Rows
// are locked with SKIP LOCKED, so several relays (instances) share the work
// without publishing a row twice in the common case; a crash after publish
// and before the update republishes, which consumers' dedupe absorbs.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.flushBatch(ctx)
		total += n
		if err != nil || n < r.batch {
			return total, err
		}
	}
}

type outboxRow struct {
	id      int64
	topic   string
	msg     Message
	created time.Time
}

func (r *Relay) flushBatch(ctx context.Context) (int, error) {
	published := 0
	var publishErr error
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, topic, attributes, data, created_at FROM outbox
			WHERE published_at IS NULL ORDER BY id LIMIT $1
			FOR UPDATE SKIP LOCKED`, r.batch)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
			var o outboxRow
			err := row.Scan(&o.id, &o.topic, &o.msg.Attributes, &o.msg.Data, &o.created)
			return o, err
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		errs := make([]error, len(batch))
		done := make(chan int, len(batch))
		for i, o := range batch {
			go func() {
				ctx, span := r.tel.startSend(ctx, o)
				errs[i] = r.pub.Publish(ctx, o.topic, o.msg)
				r.tel.sent(ctx, span, o, errs[i])
				done <- i
			}()
		}
		for range batch {
			<-done
		}
		var ids []int64
		for i, o := range batch {
			if errs[i] == nil {
				ids = append(ids, o.id)
			}
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE id = ANY($1)`, ids); err != nil {
				return err
			}
		}
		published = len(ids)
		// Commit the marks of what went out even when some publishes failed.
		publishErr = errors.Join(errs...)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox relay: %w", err)
	}
	if publishErr != nil {
		return published, fmt.Errorf("outbox relay: %w", publishErr)
	}
	return published, nil
}

// Retention of the bookkeeping tables. Pub/Sub keeps an unacked message for
// at most 31 days, so no redelivery can arrive after DedupeRetention.
const (
	PublishedRetention = 7 * 24 * time.Hour
	DedupeRetention    = 32 * 24 * time.Hour
	pruneEvery         = time.Hour
)

// Prune deletes outbox rows published more than PublishedRetention ago and
// dedupe records older than DedupeRetention.
func Prune(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `DELETE FROM outbox WHERE published_at < now() - $1::interval`, PublishedRetention); err != nil {
		return fmt.Errorf("prune outbox: %w", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM processed_events WHERE processed_at < now() - $1::interval`, DedupeRetention); err != nil {
		return fmt.Errorf("prune processed events: %w", err)
	}
	return nil
}
