package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// Channels of the notifications table.
const (
	ChannelInbox   = "inbox"
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Delivery statuses.
const (
	StatusPending = "pending"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
)

// ErrOutcomeUnknown is the error recorded on a delivery whose attempt
// stopped between claiming it and recording the result.
const ErrOutcomeUnknown = "delivery outcome unknown: the attempt that claimed it stopped before recording the result; not resent, to avoid a duplicate"

// delivery is one row of the notifications table: one message on one
// channel to one recipient.
type delivery struct {
	Key          string // dedupe_key: <run>:<channel>:<recipient>:<kind>, or alert:<run>[...]
	Channel      string
	Kind         string
	TechnicianID *int64
	Recipient    string // email: an RFC 5322 address list; webhook: the redacted target
	Subject      string
	Body         string // inbox and email: plain text; webhook: the JSON payload
	BodyHTML     string
	Target       string // webhook: the target id

	// Not stored: rebuilt by every attempt from the event.
	Attachments []email.Attachment // email: files sent with it
	// TooLarge, when set, is sent instead if the provider refuses the
	// message as too large (email.ErrTooLarge): the same without the big
	// attachments, with a link to the file.
	TooLarge *fallback
}

// fallback is a lighter version of an email.
type fallback struct {
	Body, BodyHTML string
	Attachments    []email.Attachment
	Note           string // recorded on the row when the fallback was sent
}

// claimed is a delivery this attempt owns.
type claimed struct {
	id int64
	delivery
	attempts int
}

// deliver records ds and sends those not yet sent, each at most once. It
// first takes the run's advisory lock in tx, the handler's transaction, and
// holds it until that transaction ends.
//
// Why not simply insert the rows in the handler's transaction and send? That
// transaction commits only after the handler returns, so a crash (or a
// failed commit) after a send would roll the row back and the redelivered
// event would send it again; and a send that fails would undo the record of
// the sends that succeeded. Instead every step below commits on its own:
//
//  1. Record: insert every planned row, ON CONFLICT (dedupe_key) DO NOTHING.
//     Inbox rows are delivered by being written, so they go in as sent.
//  2. Sweep: a row of the run still 'sending' belonged to an attempt that
//     stopped between claiming and marking it (the caller holds the run's
//     advisory lock, so no live attempt owns a claim on this run). Whether it
//     went out is unknown; it is marked failed and never resent.
//  3. Claim: pending rows, and failed rows marked retryable, become
//     'sending' (attempts + 1) in one committed statement.
//  4. Send each claimed row, then mark it sent, or failed with the error —
//     retryable for a temporary failure (429, 5xx, network) below the
//     attempt limit. Marks use a context that outlives the request's.
//     A row given up after the attempt limit is claimed again, from a fresh
//     count, by another input event of the run than the one whose attempts
//     gave it up: control's RetryRun re-emits the step's input under a new
//     id to perform the step again, and what failed is tried again then.
//  5. If any row is left failed and retryable, return an error: the step
//     is retried (Pub/Sub redelivers), and the next attempt claims only
//     those rows; what was sent stays sent. Permanent failures (4xx, invalid
//     address, too large) are recorded on their row and do not fail the
//     step, nor stop the other channels.
//
// So a row is sent twice only if a send succeeded and was then reported as
// a temporary failure (a timeout after the provider accepted the request);
// a crash anywhere costs at most the row in flight, recorded as unknown.
func (n *Notifier) deliver(ctx context.Context, tx pgx.Tx, ev eventing.Event, ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	log := logging.FromOr(ctx, n.log) // in a delivery: the step's lines name the run
	if err := lockRun(ctx, tx, ev.RunID); err != nil {
		return err
	}
	keys := make([]string, len(ds))
	order := make(map[string]int, len(ds))
	for i, d := range ds {
		keys[i] = d.Key
		order[d.Key] = i
	}
	if err := n.record(ctx, ev, ds); err != nil {
		return err
	}
	orphans, err := n.sweep(ctx, ev.RunID)
	if err != nil {
		return err
	}
	for _, k := range orphans {
		log.WarnContext(ctx, "notification left in flight by a stopped attempt; marked failed, not resent", "key", k)
	}
	rows, err := n.claim(ctx, keys, ev.ID())
	if err != nil {
		return err
	}
	slices.SortFunc(rows, func(a, b claimed) int { return order[a.Key] - order[b.Key] })
	for i := range rows {
		d := ds[order[rows[i].Key]]
		rows[i].Attachments, rows[i].TooLarge = d.Attachments, d.TooLarge
	}

	// stop ends the attempt early, handing the claims from i on back
	// untouched so the next attempt sends them (if even that cannot be
	// recorded, the next attempt sweeps them as unknown: never twice).
	stop := func(i int, cause error) error {
		if err := n.release(ctx, rows[i:]); err != nil {
			return errors.Join(cause, fmt.Errorf("notify: release claims: %w", err))
		}
		return cause
	}
	var retry []string
	for i, c := range rows {
		if err := ctx.Err(); err != nil {
			return stop(i, fmt.Errorf("notify: %d deliveries not attempted: %w", len(rows)-i, err))
		}
		note, err := n.send(ctx, c)
		if err == nil {
			log.InfoContext(ctx, "notification sent", "key", c.Key, "channel", c.Channel, "kind", c.Kind, "note", note)
			if merr := n.mark(ctx, c.id, StatusSent, note, false, ""); merr != nil {
				return stop(i+1, fmt.Errorf("notify: record %s as sent: %w", c.Key, merr))
			}
			continue
		}
		retryable := !permanent(err) && c.attempts < n.cfg.MaxAttempts
		msg, givenUpBy := err.Error(), ""
		if !permanent(err) && !retryable {
			msg, givenUpBy = fmt.Sprintf("gave up after %d attempts: %s", c.attempts, msg), ev.ID()
		}
		log.WarnContext(ctx, "notification failed", "key", c.Key, "channel", c.Channel, "kind", c.Kind,
			"attempt", c.attempts, "retryable", retryable, "error", msg)
		if merr := n.mark(ctx, c.id, StatusFailed, msg, retryable, givenUpBy); merr != nil {
			return stop(i+1, fmt.Errorf("notify: record %s as failed: %w", c.Key, merr))
		}
		if retryable {
			retry = append(retry, c.Key+": "+msg)
		}
	}
	if len(retry) > 0 {
		return fmt.Errorf("notify: %d of %d deliveries failed temporarily and will be retried: %s",
			len(retry), len(rows), strings.Join(retry, "; "))
	}
	return nil
}

func (n *Notifier) record(ctx context.Context, ev eventing.Event, ds []delivery) error {
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, d := range ds {
			status := StatusPending
			if d.Channel == ChannelInbox {
				status = StatusSent
			}
			b.Queue(`
				INSERT INTO notifications (dedupe_key, run_id, pipeline, channel, kind, technician_id,
					recipient, subject, body, body_html, target, status, sent_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $12 = 'sent' THEN now() END)
				ON CONFLICT (dedupe_key) DO NOTHING`,
				d.Key, ev.RunID, ev.Pipeline, d.Channel, d.Kind, d.TechnicianID,
				d.Recipient, d.Subject, d.Body, d.BodyHTML, d.Target, status)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("notify: record notifications: %w", err)
	}
	return nil
}

// sweep fails the run's abandoned claims. The caller holds the run's lock, so
// every 'sending' row of the run is abandoned, planned this time or not.
func (n *Notifier) sweep(ctx context.Context, runID string) ([]string, error) {
	rows, err := n.pool.Query(ctx, `
		UPDATE notifications SET status = 'failed', retryable = false, claimed_at = NULL, error = $2
		WHERE run_id = $1 AND status = 'sending'
		RETURNING dedupe_key`, runID, ErrOutcomeUnknown)
	if err != nil {
		return nil, fmt.Errorf("notify: sweep abandoned claims: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("notify: sweep abandoned claims: %w", err)
	}
	return out, nil
}

// claim claims the deliveries of keys to send: pending ones, failed ones
// still retryable, and those given up by another input event than eventID
// (a retry of the step: they start a fresh attempt count).
func (n *Notifier) claim(ctx context.Context, keys []string, eventID string) ([]claimed, error) {
	rows, err := n.pool.Query(ctx, `
		UPDATE notifications SET status = 'sending', claimed_at = now(), given_up_by = NULL,
			attempts = CASE WHEN given_up_by IS NULL THEN attempts + 1 ELSE 1 END
		WHERE dedupe_key = ANY($1) AND channel <> 'inbox'
		  AND (status = 'pending' OR (status = 'failed' AND (retryable OR (given_up_by <> $2 AND $2 <> ''))))
		RETURNING id, dedupe_key, channel, kind, recipient, subject, body, body_html, target, attempts`, keys, eventID)
	if err != nil {
		return nil, fmt.Errorf("notify: claim deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		err := r.Scan(&c.id, &c.Key, &c.Channel, &c.Kind, &c.Recipient, &c.Subject, &c.Body, &c.BodyHTML, &c.Target, &c.attempts)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("notify: claim deliveries: %w", err)
	}
	return out, nil
}

// bookkeeping returns a context for recording a result: it outlives the
// request's (a send that happened must be recorded even if the handler timed
// out meanwhile) but not by long.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

// mark records the outcome of a claimed delivery; givenUpBy is the input
// event whose attempts gave it up ("" for none, or no event).
func (n *Notifier) mark(ctx context.Context, id int64, status, errText string, retryable bool, givenUpBy string) error {
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	_, err := n.pool.Exec(ctx, `
		UPDATE notifications
		SET status = $2, error = $3, retryable = $4, claimed_at = NULL, given_up_by = nullif($5, ''),
		    sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
		WHERE id = $1`, id, status, errText, retryable, givenUpBy)
	return err
}

func (n *Notifier) release(ctx context.Context, cs []claimed) error {
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.id
	}
	_, err := n.pool.Exec(ctx, `
		UPDATE notifications
		SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
		    retryable = attempts > 1, attempts = attempts - 1, claimed_at = NULL
		WHERE id = ANY($1) AND status = 'sending'`, ids)
	return err
}

// send performs one claimed delivery. An email the provider refuses as too
// large goes out as its TooLarge fallback, if it has one; note says so.
func (n *Notifier) send(ctx context.Context, c claimed) (note string, err error) {
	switch c.Channel {
	case ChannelEmail:
		to, err := email.ParseAddressList(c.Recipient)
		if err != nil {
			return "", fmt.Errorf("%w: %v", email.ErrInvalid, err)
		}
		m := email.Message{
			Key: c.Key, From: n.cfg.From, To: to, Subject: c.Subject, Text: c.Body, HTML: c.BodyHTML, Attachments: c.Attachments,
		}
		err = n.email.Send(ctx, m)
		if errors.Is(err, email.ErrTooLarge) && c.TooLarge != nil {
			n.log.Warn("email too large; sending the fallback", "key", c.Key, "error", err)
			m.Text, m.HTML, m.Attachments = c.TooLarge.Body, c.TooLarge.BodyHTML, c.TooLarge.Attachments
			if err = n.email.Send(ctx, m); err == nil {
				return c.TooLarge.Note, nil
			}
		}
		return "", err
	case ChannelWebhook:
		t, ok := n.targets[c.Target]
		if !ok {
			return "", errNoTarget
		}
		return "", n.hooks.Post(ctx, t, []byte(c.Body))
	}
	return "", fmt.Errorf("%w: channel %q", errUndeliverable, c.Channel)
}

var (
	errUndeliverable = errors.New("undeliverable")
	errNoTarget      = fmt.Errorf("%w: the webhook is no longer configured", errUndeliverable)
)

// permanent reports whether err will recur on retry.
func permanent(err error) bool {
	return errors.Is(err, errUndeliverable) || email.IsPermanent(err) || webhook.IsPermanent(err) ||
		eventing.IsPermanent(err)
}
