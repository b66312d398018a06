package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// Alert kinds (alerts.kind).
const (
	alertRule  = "rule"
	alertDrift = "drift"
	alertRun   = "run"
)

// alertRow is a row of the alerts table: an incident opened by a rule,
// drift or a failed run, and resolved when it clears. Its dedup key is
// PagerDuty's, and prefixes the keys of its notifications, so that each
// is sent once per incident and action whichever event asks.
type alertRow struct {
	Rule, Kind, Severity, Summary, Metric string
	Value, Threshold                      *float64
	OpenedPeriod                          string
	ResolvedPeriod                        *string
	Status, DedupKey, RunID               string
}

const alertColumns = `rule, kind, severity, summary, metric, value, threshold, opened_period, resolved_period,
	status, dedup_key, run_id`

func scanAlert(r pgx.CollectableRow) (alertRow, error) {
	var a alertRow
	err := r.Scan(&a.Rule, &a.Kind, &a.Severity, &a.Summary, &a.Metric, &a.Value, &a.Threshold, &a.OpenedPeriod,
		&a.ResolvedPeriod, &a.Status, &a.DedupKey, &a.RunID)
	return a, err
}

// openAlert records a as open, unless an alert with its dedup key exists
// or its rule already has an open alert (which stays the incident).
func (n *Notifier) openAlert(ctx context.Context, a alertRow) error {
	_, err := n.pool.Exec(ctx, `
		INSERT INTO alerts (rule, kind, severity, summary, metric, value, threshold, opened_period, status, dedup_key, run_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10)
		ON CONFLICT DO NOTHING`,
		a.Rule, a.Kind, a.Severity, a.Summary, a.Metric, a.Value, a.Threshold, a.OpenedPeriod, a.DedupKey, a.RunID)
	if err != nil {
		return fmt.Errorf("notify: open alert %s: %w", a.DedupKey, err)
	}
	return nil
}

// resolveAlert resolves rule's open alert, if any, at period.
func (n *Notifier) resolveAlert(ctx context.Context, rule, period string) error {
	_, err := n.pool.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_period = $2, resolved_at = now()
		WHERE rule = $1 AND status = 'open'`, rule, period)
	if err != nil {
		return fmt.Errorf("notify: resolve alert of %s: %w", rule, err)
	}
	return nil
}

// alertByKey returns the alert with dedupKey; ok is false if there is none.
func (n *Notifier) alertByKey(ctx context.Context, dedupKey string) (a alertRow, ok bool, err error) {
	rows, err := n.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE dedup_key = $1`, dedupKey)
	if err != nil {
		return a, false, fmt.Errorf("notify: alert %s: %w", dedupKey, err)
	}
	as, err := pgx.CollectRows(rows, scanAlert)
	if err != nil || len(as) == 0 {
		return a, false, wrap(err, "notify: alert "+dedupKey)
	}
	return as[0], true, nil
}

// resolvedAt returns rule's alerts resolved at period.
func (n *Notifier) resolvedAt(ctx context.Context, rule, period string) ([]alertRow, error) {
	rows, err := n.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE rule = $1 AND status = 'resolved' AND resolved_period = $2`, rule, period)
	if err != nil {
		return nil, fmt.Errorf("notify: alerts of %s resolved at %s: %w", rule, period, err)
	}
	as, err := pgx.CollectRows(rows, scanAlert)
	return as, wrap(err, "notify: alerts of "+rule+" resolved at "+period)
}

// openedPeriod is the period rule's open alert was opened for ("" if none
// is open).
func (n *Notifier) openedPeriod(ctx context.Context, rule string) (string, error) {
	var p string
	err := n.pool.QueryRow(ctx, `SELECT opened_period FROM alerts WHERE rule = $1 AND status = 'open'`, rule).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return p, wrap(err, "notify: open alert of "+rule)
}

func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// announcement is an alert's trigger or resolution on some channels.
type announcement struct {
	alert    alertRow
	resolved bool
	channels []string // of rules.ChannelEmail, ChannelWebhook, ChannelPagerDuty
	note     string   // what the current observation says, if anything
	pipeline string
}

// announce delivers an alert's trigger or resolution to its channels, once
// per alert and action: keys <dedup key>:<trigger|resolve>:<channel>...
// PagerDuty is told only when configured.
func (n *Notifier) announce(ctx context.Context, ev eventing.Event, an announcement) error {
	a, action, kind := an.alert, pagerduty.Trigger, email.KindIncident
	switch {
	case an.resolved:
		action, kind = pagerduty.Resolve, email.KindIncidentResolved
	case a.Kind == alertRun:
		kind = email.KindAlert // the run's alert, which ReconcileAlerts looks for
	}
	prefix := a.DedupKey + ":" + action
	in := incidentOf(an)
	r, err := email.RenderIncident(in)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("render incident: %w", err))
	}
	var ds []delivery
	if slices.Contains(an.channels, rules.ChannelEmail) && len(n.cfg.Admins) > 0 {
		ds = append(ds, delivery{Key: prefix + ":email", Channel: ChannelEmail, Kind: kind,
			Recipient: email.FormatAddressList(n.cfg.Admins), Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML})
	}
	if slices.Contains(an.channels, rules.ChannelWebhook) {
		hooks, err := n.webhookDeliveries(prefix+":webhook:", kind, r.Subject, incidentWebhook(ev, an, in, r.Subject))
		if err != nil {
			return err
		}
		ds = append(ds, hooks...)
	}
	if slices.Contains(an.channels, rules.ChannelPagerDuty) && n.cfg.PagerDuty != nil {
		d, err := n.pagerDutyDelivery(prefix+":pagerduty", kind, a, action, in)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	return n.deliver(ctx, ev, ds)
}

// incidentOf is what the admins' email says of an announcement.
func incidentOf(an announcement) email.Incident {
	a := an.alert
	in := email.Incident{Title: a.Rule, Severity: a.Severity, Summary: a.Summary, Period: a.OpenedPeriod,
		DedupKey: a.DedupKey, Resolved: an.resolved}
	if an.resolved && a.ResolvedPeriod != nil {
		in.Period = *a.ResolvedPeriod
	}
	if a.Metric != "" {
		in.Details = append(in.Details, email.Detail{Label: "Metric", Value: a.Metric})
	}
	if a.Value != nil {
		in.Details = append(in.Details, email.Detail{Label: "Value when opened", Value: formatFloat(*a.Value)})
	}
	if a.Threshold != nil {
		in.Details = append(in.Details, email.Detail{Label: "Threshold", Value: formatFloat(*a.Threshold)})
	}
	in.Details = append(in.Details, email.Detail{Label: "Opened for", Value: a.OpenedPeriod})
	if an.note != "" {
		in.Details = append(in.Details, email.Detail{Label: "Now", Value: an.note})
	}
	return in
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// incidentWebhook is an announcement as a webhook message.
func incidentWebhook(ev eventing.Event, an announcement, in email.Incident, subject string) webhook.Message {
	facts := make([]webhook.Fact, len(in.Details))
	for i, d := range in.Details {
		facts[i] = webhook.Fact{Label: d.Label, Value: d.Value}
	}
	severity := an.alert.Severity
	if an.resolved {
		severity = "info"
	}
	return webhook.Message{
		Kind: email.KindIncident, RunID: ev.RunID, Pipeline: cmp.Or(ev.Pipeline, an.pipeline), Severity: severity,
		Title: subject, Text: in.Summary, Facts: facts,
		Data: map[string]any{"rule": an.alert.Rule, "kind": an.alert.Kind, "dedup_key": an.alert.DedupKey,
			"resolved": an.resolved, "period": in.Period, "severity": an.alert.Severity},
	}
}

// pagerDutyDelivery is a's event for PagerDuty, stored without the routing
// key (the client adds it when sending) under the client's redacted name.
func (n *Notifier) pagerDutyDelivery(key, kind string, a alertRow, action string, in email.Incident) (delivery, error) {
	e := pagerduty.Event{Action: action, DedupKey: a.DedupKey}
	if action == pagerduty.Trigger {
		details := map[string]any{"rule": a.Rule, "kind": a.Kind, "period": a.OpenedPeriod}
		for _, d := range in.Details {
			details[d.Label] = d.Value
		}
		if a.RunID != "" {
			details["run_id"] = a.RunID
		}
		e.Payload = &pagerduty.Payload{Summary: truncate(a.Summary, 1024), Source: "cmmsflow", Severity: a.Severity,
			Component: cmp.Or(a.Metric, a.Kind), CustomDetails: details}
	}
	if err := e.Validate(); err != nil {
		return delivery{}, eventing.Permanent(err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return delivery{}, eventing.Permanent(fmt.Errorf("encode pagerduty event: %w", err))
	}
	return delivery{Key: key, Channel: ChannelWebhook, Kind: kind, Recipient: n.cfg.PagerDuty.Redacted(),
		Subject: in.Title, Body: string(body), Target: pagerduty.TargetID}, nil
}
