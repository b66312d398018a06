package eventing

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// Inbox is one consumer's record of the events it received: the one owner
// of the processed_events, event_leases and dead_letters rows, and of the
// outbox flush after each commit that emitted.
type Inbox struct {
	Pool     *pgxpool.Pool
	Consumer string
	Relay    *Relay // flushed after every commit that may have emitted; nil for none
	Log      *slog.Logger
	// Tracer, when set, puts the claim and the complete transactions of a
	// work in spans of their own ("claim <consumer>", "complete <consumer>").
	Tracer trace.Tracer
}

// phase starts the span of a claim or a complete transaction.
func (in *Inbox) phase(ctx context.Context, name string) (context.Context, func()) {
	if in.Tracer == nil {
		return ctx, func() {}
	}
	ctx, span := in.Tracer.Start(ctx, name+" "+in.Consumer)
	return ctx, func() { span.End() }
}

// ErrLeased: another delivery of the event holds its lease. A work may also
// return an error that is an ErrLeased (errors.Is) when another worker holds
// what it needs (the notifier: a delivery row another attempt is sending):
// the delivery is answered "leased" (503, retry later) and no step failure
// is reported.
var ErrLeased = errors.New("event leased by another delivery, which is at work on it")

// ErrLeaseLost: the lease expired during the work and another delivery took
// it over; that delivery completes the event, this one writes nothing.
var ErrLeaseLost = errors.New("lease on the event lost to another delivery")

var errDuplicate = errors.New("duplicate delivery")

const insertProcessed = `INSERT INTO processed_events (consumer, event_id, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`

// deleteLease ends a holder's lease on an event.
const deleteLease = `DELETE FROM event_leases WHERE consumer = $1 AND event_id = $2 AND holder = $3`

// Seen reports whether ev was processed.
func (in *Inbox) Seen(ctx context.Context, ev Event) (bool, error) { return in.seen(ctx, in.Pool, ev) }

// seen is Seen through q (the pool, or a claim's transaction).
func (in *Inbox) seen(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ev Event) (bool, error) {
	var seen bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2)`,
		in.Consumer, ev.ID()).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("dedupe check: %w", err)
	}
	return seen, nil
}

// markProcessedTx records ev as processed in tx; errDuplicate if it was.
func (in *Inbox) markProcessedTx(ctx context.Context, tx pgx.Tx, id, typ string) error {
	tag, err := tx.Exec(ctx, insertProcessed, in.Consumer, id, typ)
	if err != nil {
		return fmt.Errorf("dedupe: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errDuplicate
	}
	return nil
}

// MarkProcessed records ev as processed on its own, so that no redelivery
// performs it (a step of a stopped run).
func (in *Inbox) MarkProcessed(ctx context.Context, ev Event) error {
	_, err := in.Pool.Exec(ctx, insertProcessed, in.Consumer, ev.ID(), ev.Type())
	return err
}

// InTx runs f in a transaction that also records ev as processed, and
// flushes the outbox after commit; errDuplicate when ev was processed.
func (in *Inbox) InTx(ctx context.Context, ev Event, f TxFunc) error {
	err := pgx.BeginFunc(ctx, in.Pool, func(tx pgx.Tx) error {
		if err := in.markProcessedTx(ctx, tx, ev.ID(), ev.Type()); err != nil {
			return err
		}
		return f(ctx, tx)
	})
	if err == nil {
		in.Flush(ctx)
	}
	return err
}

// Hold is a delivery's lease on an event while it works on it.
type Hold struct {
	in     *Inbox
	ev     Event
	holder string
	ttl    time.Duration
}

// Claim, in one short transaction: ErrLeased when another delivery holds a
// lease that has not expired; errDuplicate when ev was processed; otherwise
// takes the lease for ttl and runs the claim functions. The outbox is
// flushed after commit.
//
// The lease is taken before the processed check: a delivery that completes
// meanwhile deletes its lease and records the event in one transaction, so
// once our insert has passed its lease (waiting for that transaction when it
// is still open), the check's fresh snapshot sees the record. Checked first,
// the record could commit between the check and the insert, and a duplicate
// would claim and report the step started again.
func (in *Inbox) Claim(ctx context.Context, ev Event, ttl time.Duration, claim ...TxFunc) (*Hold, error) {
	l := &Hold{in: in, ev: ev, holder: newHolder(), ttl: ttl}
	ctx, end := in.phase(ctx, "claim")
	defer end()
	err := pgx.BeginFunc(ctx, in.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO event_leases (consumer, event_id, holder, expires_at)
			VALUES ($1, $2, $3, now() + make_interval(secs => $4))
			ON CONFLICT (consumer, event_id) DO UPDATE
				SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, takeovers = event_leases.takeovers + 1
				WHERE event_leases.expires_at < now()`,
			in.Consumer, ev.ID(), l.holder, ttl.Seconds())
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrLeased
		}
		if seen, err := in.seen(ctx, tx, ev); err != nil || seen {
			return cmp.Or(err, errDuplicate)
		}
		return runAll(ctx, tx, claim)
	})
	if err != nil {
		return nil, err
	}
	in.Flush(ctx)
	return l, nil
}

// Renew extends the lease by its ttl from now; ErrLeaseLost when another
// delivery took it over.
func (l *Hold) Renew(ctx context.Context) error {
	tag, err := l.in.Pool.Exec(ctx, `UPDATE event_leases SET expires_at = now() + make_interval(secs => $4)
		WHERE consumer = $1 AND event_id = $2 AND holder = $3`, l.in.Consumer, l.ev.ID(), l.holder, l.ttl.Seconds())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Complete, in one short transaction: ends the lease (ErrLeaseLost when it
// is not held any more), records the event as processed and runs the
// complete functions. The outbox is flushed after commit.
func (l *Hold) Complete(ctx context.Context, complete ...TxFunc) error {
	ctx, end := l.in.phase(ctx, "complete")
	defer end()
	err := pgx.BeginFunc(ctx, l.in.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteLease,
			l.in.Consumer, l.ev.ID(), l.holder)
		if err != nil {
			return fmt.Errorf("end lease: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrLeaseLost
		}
		if err := l.in.markProcessedTx(ctx, tx, l.ev.ID(), l.ev.Type()); err != nil {
			return err
		}
		return runAll(ctx, tx, complete)
	})
	if err == nil {
		l.in.Flush(ctx)
	}
	return err
}

// Release gives the lease up, so that the next delivery may work at once;
// best effort (an expired lease is taken over anyway).
func (l *Hold) Release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	if _, err := l.in.Pool.Exec(ctx, deleteLease,
		l.in.Consumer, l.ev.ID(), l.holder); err != nil && l.in.Log != nil {
		l.in.Log.WarnContext(ctx, "could not release the event's lease; it expires", "error", err)
	}
}

func runAll(ctx context.Context, tx pgx.Tx, fs []TxFunc) error {
	for _, f := range fs {
		if f == nil {
			continue
		}
		if err := f(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

func newHolder() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// flushTimeout bounds the publish after commit: when Pub/Sub is slow the
// request returns and the relay's loop publishes later.
const flushTimeout = 5 * time.Second

// Flush publishes what the last commit emitted, best effort: on failure the
// relay's loop publishes later.
func (in *Inbox) Flush(ctx context.Context) {
	if in.Relay == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if _, err := in.Relay.Flush(ctx); err != nil {
		if in.Log != nil {
			in.Log.WarnContext(ctx, "outbox flush after commit failed; the relay will retry", "error", err)
		}
		in.Relay.Nudge()
	}
}

// EmitNow writes ev in its own transaction and flushes.
func (in *Inbox) EmitNow(ctx context.Context, ev Event) error {
	if err := pgx.BeginFunc(ctx, in.Pool, func(tx pgx.Tx) error { return Emit(ctx, tx, ev) }); err != nil {
		return err
	}
	in.Flush(ctx)
	return nil
}
