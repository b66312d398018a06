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
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// Channels of the notifications table. PagerDuty events are webhook rows
// whose target is pagerduty.TargetID: the table's channel check (migration
// 00002) allows no other channel.
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
	Recipient    string // email: an RFC 5322 address list; webhook: the redacted target (PagerDuty: no routing key)
	Subject      string
	Body         string // inbox and email: plain text; webhook: the JSON payload (PagerDuty: without routing key)
	BodyHTML     string
	Target       string // webhook: the target id, or pagerduty.TargetID for PagerDuty

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

// claimMargin is added to the longest a live attempt holds a claim before a
// 'sending' row is taken as abandoned (abandonAfter): room for a pause (GC,
// a stalled machine) between claim and mark.
const claimMargin = 15 * time.Second

// DefaultSendTimeout bounds one request to SendGrid or a webhook when
// Config.SendTimeout is 0.
const DefaultSendTimeout = 30 * time.Second

// sendBound bounds the sending of one delivery: an email and, when the
// provider refuses it as too large, its fallback.
func (n *Notifier) sendBound() time.Duration { return 2 * n.cfg.SendTimeout }

// abandonAfter is the age past which a 'sending' claim cannot belong to a
// live attempt: a claim is taken right before its send, the send is bounded
// by sendBound and the mark by bookkeepingTimeout.
func (n *Notifier) abandonAfter() time.Duration {
	return n.sendBound() + bookkeepingTimeout + claimMargin
}

// deliver records ds and sends those not yet sent, each at most once, with
// no transaction open while it sends.
//
// Why not simply insert the rows in the step's complete transaction after
// sending? A crash (or a failed commit) after a send would lose the row and
// the redelivered event would send it again; and a send that fails would
// undo the record of the sends that succeeded. Instead every step below
// commits on its own:
//
//  1. Record: insert every planned row, ON CONFLICT (dedupe_key) DO NOTHING.
//     Inbox rows are delivered by being written, so they go in as sent.
//  2. Sweep: a row of the run still 'sending' whose claim is older than
//     abandonAfter belonged to an attempt that stopped between claiming and
//     marking it. Whether it went out is unknown; it is marked failed and
//     never resent.
//  3. For each row due (pending, failed and retryable, or given up by
//     another input event than this one), in plan order: claim it — one
//     committed statement makes it 'sending' (attempts + 1, claimed_at now)
//     if it is still due, so that of concurrent attempts exactly one wins
//     it and the others skip it — then send it within sendBound, then mark
//     it sent, or failed with the error: retryable for a temporary failure
//     (429, 5xx, network) below the attempt limit. Marks use a context that
//     outlives the request's. A row given up after the attempt limit is
//     claimed again, from a fresh count, by another input event of the run
//     than the one whose attempts gave it up: control's RetryRun re-emits
//     the step's input under a new id to perform the step again, and what
//     failed is tried again then. Rows that became due meanwhile (another
//     attempt's temporary failures) are taken in a further round.
//  4. If any row is left failed and retryable, return an error: the step
//     is retried (Pub/Sub redelivers), and the next attempt claims only
//     those rows; what was sent stays sent. Permanent failures (4xx, invalid
//     address, too large) are recorded on their row and do not fail the
//     step, nor stop the other channels.
//  5. If a planned row is still in another live attempt's hands ('sending',
//     or failed and retryable since this attempt last looked), return an
//     eventing.ErrLeased (errInFlight): the delivery is answered "leased"
//     (503, not reported as a step failure) and comes back later, when that
//     attempt has recorded its outcome, to report final figures.
//
// Attempts on one run are serialised row by row, not as a whole: the
// handler used to hold a transaction-level advisory lock on the run across
// its sends, which kept a transaction and its connection open for as long
// as SendGrid and the webhooks took. A session-level lock would still hold a
// connection; the router's lease is per event, not per run, while the same
// run's deliveries are also sent by other events (a republished or retried
// input, another step's failure alert, the alert reconciler). The claim is
// the row's own lock: taking it is atomic, only its holder sends the row,
// and claimed_at tells a live claim (younger than abandonAfter) from an
// abandoned one. Claiming each row right before its send keeps that age
// bounded, and leaves the rows an attempt stopped before (its timeout, its
// run cancelled) pending, not claimed. A claim swept while its attempt is
// only slow is not resent either: that attempt's late mark then records
// what really happened.
//
// So a row is sent twice only if a send succeeded and was then reported as
// a temporary failure (a timeout after the provider accepted the request);
// a crash anywhere costs at most the row in flight, recorded as unknown.
func (n *Notifier) deliver(ctx context.Context, ev eventing.Event, ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	log := logging.FromOr(ctx, n.log) // in a delivery: the step's lines name the run
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
	tried := map[int64]bool{} // the rows this attempt claimed
	var retry []string
	for {
		due, err := n.due(ctx, keys, ev.ID(), tried)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			break
		}
		slices.SortFunc(due, func(a, b dueRow) int { return order[a.key] - order[b.key] })
		for _, r := range due {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("notify: deliveries not attempted: %w", err)
			}
			c, ok, err := n.claim(ctx, r.id, ev.ID())
			if err != nil {
				return err
			}
			if !ok {
				continue // another attempt claimed it first
			}
			tried[r.id] = true
			failure, err := n.attempt(ctx, ev, c, ds[order[r.key]])
			if err != nil {
				return err
			}
			if failure != "" {
				retry = append(retry, failure)
			}
		}
	}
	if len(retry) > 0 {
		return fmt.Errorf("notify: %d deliveries failed temporarily and will be retried: %s",
			len(retry), strings.Join(retry, "; "))
	}
	return n.settled(ctx, ev.RunID, keys)
}

// attempt sends c, a row this attempt claimed (planned as d), and marks it.
// It returns the row's temporary failure ("key: error") when it is to be
// retried, and an error when the outcome could not be recorded (the row
// stays 'sending' and is swept as unknown).
func (n *Notifier) attempt(ctx context.Context, ev eventing.Event, c claimed, d delivery) (string, error) {
	log := logging.FromOr(ctx, n.log)
	c.Attachments, c.TooLarge = d.Attachments, d.TooLarge
	sctx, cancel := context.WithTimeout(ctx, n.sendBound())
	note, err := n.send(sctx, c)
	cancel()
	if err == nil {
		log.InfoContext(ctx, "notification sent", "key", c.Key, "channel", c.Channel, "kind", c.Kind, "note", note)
		if merr := n.mark(ctx, c.id, StatusSent, note, false, ""); merr != nil {
			return "", fmt.Errorf("notify: record %s as sent: %w", c.Key, merr)
		}
		return "", nil
	}
	retryable := !permanent(err) && c.attempts < n.cfg.MaxAttempts
	msg, givenUpBy := err.Error(), ""
	if !permanent(err) && !retryable {
		msg, givenUpBy = fmt.Sprintf("gave up after %d attempts: %s", c.attempts, msg), ev.ID()
	}
	log.WarnContext(ctx, "notification failed", "key", c.Key, "channel", c.Channel, "kind", c.Kind,
		"attempt", c.attempts, "retryable", retryable, "error", msg)
	if merr := n.mark(ctx, c.id, StatusFailed, msg, retryable, givenUpBy); merr != nil {
		return "", fmt.Errorf("notify: record %s as failed: %w", c.Key, merr)
	}
	if retryable {
		return c.Key + ": " + msg, nil
	}
	return "", nil
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

// sweep fails the run's abandoned claims: every 'sending' row of the run,
// planned this time or not, claimed longer than abandonAfter ago.
func (n *Notifier) sweep(ctx context.Context, runID string) ([]string, error) {
	rows, err := n.pool.Query(ctx, `
		UPDATE notifications SET status = 'failed', retryable = false, claimed_at = NULL, error = $2
		WHERE run_id = $1 AND status = 'sending'
		  AND coalesce(claimed_at, '-infinity') < now() - make_interval(secs => $3)
		RETURNING dedupe_key`, runID, ErrOutcomeUnknown, n.abandonAfter().Seconds())
	if err != nil {
		return nil, fmt.Errorf("notify: sweep abandoned claims: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("notify: sweep abandoned claims: %w", err)
	}
	return out, nil
}

// dueCondition selects the rows an attempt for input event $2 may claim:
// pending ones, failed ones still retryable, and those given up by another
// input event than $2 (a retry of the step: they start a fresh attempt
// count).
const dueCondition = `channel <> 'inbox'
	AND (status = 'pending' OR (status = 'failed' AND (retryable OR (given_up_by <> $2 AND $2 <> ''))))`

// dueRow is a row due to be sent.
type dueRow struct {
	id  int64
	key string
}

// due lists the rows of keys due to be sent, but those this attempt claimed
// already.
func (n *Notifier) due(ctx context.Context, keys []string, eventID string, tried map[int64]bool) ([]dueRow, error) {
	rows, err := n.pool.Query(ctx, `SELECT id, dedupe_key FROM notifications
		WHERE dedupe_key = ANY($1) AND `+dueCondition, keys, eventID)
	if err != nil {
		return nil, fmt.Errorf("notify: deliveries due: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dueRow, error) {
		var d dueRow
		return d, r.Scan(&d.id, &d.key)
	})
	if err != nil {
		return nil, fmt.Errorf("notify: deliveries due: %w", err)
	}
	return slices.DeleteFunc(due, func(d dueRow) bool { return tried[d.id] }), nil
}

// claim makes row id 'sending' for this attempt if it is still due; ok is
// false when it is not (another attempt claimed it, or sent it).
func (n *Notifier) claim(ctx context.Context, id int64, eventID string) (c claimed, ok bool, err error) {
	err = n.pool.QueryRow(ctx, `
		UPDATE notifications SET status = 'sending', claimed_at = now(), given_up_by = NULL,
			attempts = CASE WHEN given_up_by IS NULL THEN attempts + 1 ELSE 1 END
		WHERE id = $1 AND `+dueCondition+`
		RETURNING id, dedupe_key, channel, kind, recipient, subject, body, body_html, target, attempts`, id, eventID).
		Scan(&c.id, &c.Key, &c.Channel, &c.Kind, &c.Recipient, &c.Subject, &c.Body, &c.BodyHTML, &c.Target, &c.attempts)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return c, false, nil
	case err != nil:
		return c, false, fmt.Errorf("notify: claim delivery: %w", err)
	}
	return c, true, nil
}

// settled returns an errInFlight when a row of keys is still being sent by
// another attempt, or was left to be retried by one after this attempt last
// looked for rows due (this attempt's own temporary failures were returned
// before).
func (n *Notifier) settled(ctx context.Context, runID string, keys []string) error {
	var open int
	if err := n.pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE dedupe_key = ANY($1)
		AND (status = 'sending' OR (status = 'failed' AND retryable))`, keys).Scan(&open); err != nil {
		return fmt.Errorf("notify: deliveries in flight: %w", err)
	}
	if open > 0 {
		return errInFlight{n: open, runID: runID}
	}
	return nil
}

// errInFlight: deliveries of the run are in another live attempt's hands.
// It is an eventing.ErrLeased, so that the delivery is answered "leased"
// (retry later) and not reported as a failure of the step.
type errInFlight struct {
	n     int
	runID string
}

func (e errInFlight) Error() string {
	return fmt.Sprintf("notify: %d deliveries of run %s are in another attempt's hands (being sent, or to be retried)", e.n, e.runID)
}

func (e errInFlight) Is(target error) bool { return target == eventing.ErrLeased }

// bookkeepingTimeout bounds the recording of a result.
const bookkeepingTimeout = 15 * time.Second

// bookkeeping returns a context for recording a result: it outlives the
// request's (a send that happened must be recorded even if the handler timed
// out meanwhile) but not by long.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
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
		if c.Target == pagerduty.TargetID {
			if n.cfg.PagerDuty == nil {
				return "", errNoPagerDuty
			}
			return "", n.cfg.PagerDuty.Send(ctx, []byte(c.Body))
		}
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
	errNoPagerDuty   = fmt.Errorf("%w: PagerDuty is no longer configured", errUndeliverable)
)

// permanent reports whether err will recur on retry.
func permanent(err error) bool {
	return errors.Is(err, errUndeliverable) || email.IsPermanent(err) || webhook.IsPermanent(err) ||
		eventing.IsPermanent(err)
}
