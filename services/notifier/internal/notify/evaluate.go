package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

// evaluate applies every alert rule watching src to the metrics in carries,
// observed for period by ev's run. Each rule's step is idempotent, so a
// redelivered event, or a second run for the same period, notifies nothing
// twice.
func (n *Notifier) evaluate(ctx context.Context, ev eventing.Event, src rules.Source, period string, in rules.Inputs) error {
	sample := rules.Sample(src, in)
	var errs []error
	for _, r := range n.cfg.Rules {
		v, ok := sample[r.Metric]
		if !ok || !r.Watches(src) {
			continue
		}
		if err := n.evaluateRule(ctx, ev, r, period, v); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// evaluateRule records r's observation v for period (the first one
// recorded for a period stands), opens or resolves r's alert as
// rules.Decide says, and announces what happened to the alert at period —
// what this delivery did, or an earlier delivery that stopped before its
// notifications were sent.
func (n *Notifier) evaluateRule(ctx context.Context, ev eventing.Event, r rules.Rule, period string, v float64) error {
	_, err := n.pool.Exec(ctx, `INSERT INTO alert_observations (rule, period, metric, value, breached, run_id)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rule, period) DO NOTHING`,
		r.Name, period, r.Metric, v, r.Comparator.Breached(v, r.Threshold), ev.RunID)
	if err != nil {
		return fmt.Errorf("notify: record observation: %w", err)
	}
	rows, err := n.pool.Query(ctx, `SELECT period, breached FROM alert_observations
		WHERE rule = $1 AND period <= $2 ORDER BY period DESC LIMIT $3`, r.Name, period, r.For)
	if err != nil {
		return fmt.Errorf("notify: recent observations: %w", err)
	}
	recent, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rules.Observation])
	if err != nil {
		return fmt.Errorf("notify: recent observations: %w", err)
	}
	opened, err := n.openedPeriod(ctx, r.Name)
	if err != nil {
		return err
	}
	switch rules.Decide(r, recent, opened) {
	case rules.Open:
		threshold := r.Threshold
		err = n.openAlert(ctx, alertRow{Rule: r.Name, Kind: alertRule, Severity: r.Severity,
			Summary: fmt.Sprintf("%s: %s = %s %s %s (%d %s)", r.Name, r.Metric, formatFloat(v), r.Comparator,
				formatFloat(r.Threshold), r.For, pluralize(int64(r.For), "period", "periods in a row")),
			Metric: r.Metric, Value: &v, Threshold: &threshold, OpenedPeriod: period, DedupKey: ruleKey(r.Name, period),
			RunID: ev.RunID})
	case rules.Resolve:
		err = n.resolveAlert(ctx, r.Name, period)
	}
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s = %s in %s", r.Metric, formatFloat(v), period)
	return n.announceAt(ctx, ev, r.Name, period, ruleKey(r.Name, period), r.Channels, note)
}

// announceAt announces the alert with key openKey ("": none) if it exists
// and is still open (its trigger), and rule's alerts resolved at period
// (their resolution). A trigger is never sent after its alert resolved:
// PagerDuty would open a new incident.
func (n *Notifier) announceAt(ctx context.Context, ev eventing.Event, rule, period, openKey string, channels []string, note string) error {
	a, ok, err := n.alertByKey(ctx, openKey)
	if err != nil {
		return err
	}
	if ok && a.Status == "open" {
		if err := n.announce(ctx, ev, announcement{alert: a, channels: channels, note: note}); err != nil {
			return err
		}
	}
	resolved, err := n.resolvedAt(ctx, rule, period)
	if err != nil {
		return err
	}
	for _, a := range resolved {
		if err := n.announce(ctx, ev, announcement{alert: a, resolved: true, channels: channels, note: note}); err != nil {
			return err
		}
	}
	return nil
}

// ruleKey is the dedup key of rule's alert opened for period.
func ruleKey(rule, period string) string { return "cmmsflow/rule/" + rule + "/" + period }

// logicalDate is the day (YYYY-MM-DD, UTC) of ev's run's logical date, or
// of the event's time when control has no such run.
func (n *Notifier) logicalDate(ctx context.Context, ev eventing.Event) (string, error) {
	var t time.Time
	err := n.pool.QueryRow(ctx, `SELECT logical_date FROM runs WHERE run_id = $1`, ev.RunID).Scan(&t)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		t = ev.Time()
	case err != nil:
		return "", fmt.Errorf("notify: the run's logical date: %w", err)
	}
	return t.UTC().Format(time.DateOnly), nil
}
