// Package notify is the notifier step: it turns pipeline outcomes into
// notifications — technicians' inbox entries and emails, the admins' summary
// email, chat webhooks — and alerts the admins when a run fails. Every
// delivery is a row of the notifications table with a dedupe key, sent at
// most once (see deliver).
package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// DefaultMaxAttempts is how many times a delivery is tried before a
// temporary failure is recorded as final. It stays below Pub/Sub's delivery
// attempts (events.MaxDeliveryAttempts), so the step finishes — with the
// failure counted — before the event would be dead-lettered.
const DefaultMaxAttempts = 5

// Config is what notify needs to know about recipients.
type Config struct {
	From     mail.Address
	Admins   []mail.Address   // summary and alert emails; none means no admin email
	Webhooks []webhook.Target // each gets the summary and alerts
	// MaxAttempts per delivery; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// SendTimeout bounds one request to SendGrid or a webhook (a delivery
	// makes at most two); 0 means DefaultSendTimeout. It also sets how old a
	// delivery's claim must be to be taken as abandoned (see deliver).
	SendTimeout time.Duration
	// Reports receive the weekly KPI report (none: the report is not mailed).
	Reports []mail.Address
	// ReportLinkBase is the public URL prefix of the bucket's objects, for
	// a report too large to attach; empty means the gs:// URI.
	ReportLinkBase string
	// Bucket is where the reports are read from.
	Bucket Bucket
	// PagerDuty receives run, drift and rule alerts; nil: none.
	PagerDuty *pagerduty.Client
	// Rules are the alert rules evaluated on reports, scorings and
	// monitoring runs.
	Rules []rules.Rule
}

// Bucket reads stored objects.
type Bucket interface {
	Get(ctx context.Context, name string) ([]byte, error)
}

// Poster posts a webhook payload.
type Poster interface {
	Post(ctx context.Context, t webhook.Target, body []byte) error
}

// Notifier handles notifier's events.
type Notifier struct {
	pool    *pgxpool.Pool
	email   email.Sender
	hooks   Poster
	cfg     Config
	targets map[string]webhook.Target
	log     *slog.Logger
}

// New returns a notifier sending email with sender and webhooks with hooks.
func New(pool *pgxpool.Pool, sender email.Sender, hooks Poster, cfg Config, log *slog.Logger) *Notifier {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	targets := map[string]webhook.Target{}
	for _, t := range cfg.Webhooks {
		targets[t.ID] = t
	}
	return &Notifier{pool: pool, email: sender, hooks: hooks, cfg: cfg, targets: targets, log: log}
}

// Register adds notifier's handlers to r: the preventive maintenance step on
// workorders-generated, the weekly report step on report-generated, the ETL
// and ML training step on model-deployed, the model monitoring step on
// model-monitored — the last step of their pipelines, so they declare no
// output event — and the alerts on step-failed, schedule-missed and
// drift-detected. Every one sends with no transaction open (see deliver).
func (n *Notifier) Register(r *eventing.Router) {
	r.HandleStep(events.WorkOrdersGenerated, "", n.resolvingRun(n.WorkOrdersGenerated))
	r.HandleStep(events.ReportGenerated, "", n.resolvingRun(n.ReportGenerated))
	r.HandleStep(events.ModelDeployed, "", n.resolvingRun(n.ModelDeployed))
	r.HandleStep(events.ModelMonitored, "", n.resolvingRun(n.ModelMonitored))
	r.HandleWork(events.StepFailed, n.StepFailed)
	r.HandleWork(events.ScheduleMissed, n.ScheduleMissed)
	r.HandleWork(events.DriftDetected, n.DriftDetected)
}

// resolvingRun is step h that, once it succeeded, resolves the run's
// failed-run alert if it has one: notifier's step is the last of every
// pipeline, so its success is a retried run's completion.
func (n *Notifier) resolvingRun(h eventing.StepFunc) eventing.StepFunc {
	return func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		res, err := h(ctx, ev)
		if err != nil {
			return res, err
		}
		return res, n.resolveRunAlert(ctx, ev)
	}
}

// runRule and runKey are the rule and dedup key of a run's alert.
func runRule(runID string) string { return "run:" + runID }
func runKey(runID string) string  { return "cmmsflow/run/" + runID }

// resolveRunAlert resolves ev's run's alert, if open, and tells PagerDuty,
// once.
func (n *Notifier) resolveRunAlert(ctx context.Context, ev eventing.Event) error {
	if err := n.resolveAlert(ctx, runRule(ev.RunID), ev.Time().UTC().Format(time.DateOnly)); err != nil {
		return err
	}
	a, ok, err := n.alertByKey(ctx, runKey(ev.RunID))
	if err != nil || !ok || a.Status != "resolved" {
		return err
	}
	return n.announce(ctx, ev, announcement{alert: a, resolved: true, channels: []string{rules.ChannelPagerDuty}})
}

// runIncident records run's alert (kind run; at most one per run) and
// triggers PagerDuty with it, once. A run whose alert was resolved (a retry
// completed) and that fails again is alerted by email and webhooks, but
// its incident is not opened again.
func (n *Notifier) runIncident(ctx context.Context, run failedRun) error {
	err := n.openAlert(ctx, alertRow{Rule: runRule(run.RunID), Kind: alertRun, Severity: "error",
		Summary: fmt.Sprintf("%s run %s failed at step %s: %s", run.Pipeline, run.RunID, cmp.Or(run.Step, "unknown"),
			truncate(run.Error, 300)),
		OpenedPeriod: run.At.UTC().Format(time.DateOnly), DedupKey: runKey(run.RunID), RunID: run.RunID})
	if err != nil {
		return err
	}
	a, ok, err := n.alertByKey(ctx, runKey(run.RunID))
	if err != nil || !ok || a.Status != "open" {
		return err
	}
	return n.announce(ctx, eventing.Event{RunID: run.RunID, Pipeline: run.Pipeline},
		announcement{alert: a, channels: []string{rules.ChannelPagerDuty}, pipeline: run.Pipeline})
}

// WorkOrdersGenerated is the preventive maintenance pipeline's notify step:
// one inbox notification and one email per assigned technician listing their
// work orders of the run, a summary email to the admins, and the summary on
// every configured webhook.
func (n *Notifier) WorkOrdersGenerated(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.WorkOrdersGenerated
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	wos, err := n.loadWorkOrders(ctx, ev.RunID)
	if err != nil {
		return eventing.StepResult{}, err
	}
	ds, err := n.planPM(ev, &p, wos)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.deliver(ctx, ev, ds); err != nil {
		return eventing.StepResult{}, err
	}
	return n.result(ctx, ds)
}

// StepFailed alerts the admins (and the webhooks) when a step of a run has
// failed for good, once per run and retry of the run. Failures that will be
// retried are ignored. It has nothing to write when the event completes.
func (n *Notifier) StepFailed(ctx context.Context, ev eventing.Event) (eventing.TxFunc, error) {
	var p eventsv1.StepFailed
	if err := ev.Decode(&p); err != nil {
		return nil, err
	}
	if p.Retrying {
		return nil, nil
	}
	run := failedRun{RunID: ev.RunID, Pipeline: ev.Pipeline, Step: p.Step, Error: p.Error, At: ev.Time()}
	err := n.pool.QueryRow(ctx, `SELECT retries FROM runs WHERE run_id = $1`, ev.RunID).Scan(&run.Retries)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("notify: the run's retries: %w", err)
	}
	return nil, n.alert(ctx, run)
}

// failedRun is what an alert says of a run that failed.
type failedRun struct {
	RunID, Pipeline, Step, Error string
	At                           time.Time
	Retries                      int // control's RetryRun re-ran the run this many times
}

// alertKey is the key of a run's alert: alert:<run>, and alert:<run>:retry-<n>
// for the failure of its nth retry, so that each failure is alerted once.
func (r failedRun) alertKey() string {
	if r.Retries == 0 {
		return "alert:" + r.RunID
	}
	return fmt.Sprintf("alert:%s:retry-%d", r.RunID, r.Retries)
}

// alert sends run's alert email to the admins and posts it to every webhook,
// each once per failure of the run (alertKey), whichever path asks first,
// and records the run's incident for PagerDuty (runIncident).
func (n *Notifier) alert(ctx context.Context, run failedRun) error {
	step := cmp.Or(run.Step, "unknown")
	r, err := email.RenderAlert(email.Alert{
		RunID: run.RunID, Pipeline: run.Pipeline, Step: step, Error: truncate(run.Error, 8000), At: run.At,
	})
	if err != nil {
		return eventing.Permanent(fmt.Errorf("render alert: %w", err))
	}
	err = n.toAdmins(ctx, run.alertKey(), email.KindAlert, r, webhook.Message{
		Kind: email.KindAlert, RunID: run.RunID, Pipeline: run.Pipeline, Severity: "error",
		Title: r.Subject, Text: truncate(run.Error, 1500),
		Facts: []webhook.Fact{{Label: "Pipeline", Value: run.Pipeline}, {Label: "Step", Value: step}, {Label: "Run", Value: run.RunID}},
		Data:  map[string]any{"step": step, "error": run.Error},
	})
	return errors.Join(err, n.runIncident(ctx, run))
}

// ScheduleMissed alerts the admins, by email and webhooks, that a cron tick
// had no run after its grace period: once per tick (keys
// missed:<pipeline>:<tick>…). It has nothing to write when the event
// completes.
func (n *Notifier) ScheduleMissed(ctx context.Context, ev eventing.Event) (eventing.TxFunc, error) {
	var p eventsv1.ScheduleMissed
	if err := ev.Decode(&p); err != nil {
		return nil, err
	}
	tick := p.GetTick().AsTime().UTC()
	r, err := email.RenderMissedTick(email.MissedTick{Pipeline: ev.Pipeline, RunID: ev.RunID, Tick: tick, CaughtUp: p.GetCaughtUp()})
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("render missed tick: %w", err))
	}
	return nil, n.toAdmins(ctx, "missed:"+ev.Pipeline+":"+tick.Format(time.RFC3339), email.KindMissedTick, r, webhook.Message{
		Kind: email.KindMissedTick, RunID: ev.RunID, Pipeline: ev.Pipeline, Severity: "error",
		Title: r.Subject, Text: truncate(r.Text, 1500),
		Facts: []webhook.Fact{{Label: "Pipeline", Value: ev.Pipeline}, {Label: "Tick", Value: tick.Format(time.RFC3339)},
			{Label: "Caught up", Value: fmt.Sprint(p.GetCaughtUp())}},
		Data: map[string]any{"tick": tick.Format(time.RFC3339), "caught_up": p.GetCaughtUp()},
	})
}

// toAdmins sends r to the admins' email and m to every webhook, each once
// per key.
func (n *Notifier) toAdmins(ctx context.Context, key, kind string, r email.Rendered, m webhook.Message) error {
	var ds []delivery
	if len(n.cfg.Admins) > 0 {
		ds = append(ds, delivery{
			Key: key, Channel: ChannelEmail, Kind: kind,
			Recipient: email.FormatAddressList(n.cfg.Admins), Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML,
		})
	}
	hooks, err := n.webhookDeliveries(key+":webhook:", kind, r.Subject, m)
	if err != nil {
		return err
	}
	return n.deliver(ctx, eventing.Event{RunID: m.RunID, Pipeline: m.Pipeline}, append(ds, hooks...))
}

// reconcileHorizon bounds how far back ReconcileAlerts looks: a failure
// older than a day is history, not news.
const reconcileHorizon = 24 * time.Hour

// ReconcileAlerts alerts every run that failed between a day and grace ago
// and has no alert since it (last) started: one whose step-failed event never
// reached notifier (dead-lettered by Pub/Sub while notifier was down longer
// than its retries, say). Alerts are keyed per run and retry, so a run this
// and its event both alert is alerted once. A run failed by hand (control's
// SetRunState or SetStepState, runs.state_set_by) is not alerted: whoever
// failed it knows. It returns how many runs it alerted; nothing is done when
// there are neither admin emails, webhooks nor PagerDuty to alert.
func (n *Notifier) ReconcileAlerts(ctx context.Context, grace time.Duration) (int, error) {
	if len(n.cfg.Admins) == 0 && len(n.cfg.Webhooks) == 0 && n.cfg.PagerDuty == nil {
		return 0, nil
	}
	now := time.Now()
	rows, err := n.pool.Query(ctx, `
		SELECT r.run_id, r.pipeline, coalesce(s.step, ''), coalesce(nullif(s.error, ''), r.error), r.ended_at, r.retries
		FROM runs r
		LEFT JOIN LATERAL (SELECT step, error FROM steps
			WHERE run_id = r.run_id AND state = 'failed' ORDER BY position LIMIT 1) s ON true
		WHERE r.state = 'failed' AND r.state_set_by = '' AND r.ended_at <= $1 AND r.ended_at > $2
		  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.run_id = r.run_id AND n.kind = $3
		                  AND n.created_at >= coalesce(r.started_at, r.queued_at))
		ORDER BY r.ended_at
		LIMIT 100`, now.Add(-grace), now.Add(-reconcileHorizon), email.KindAlert)
	if err != nil {
		return 0, fmt.Errorf("notify: find failed runs without an alert: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (failedRun, error) {
		var f failedRun
		return f, r.Scan(&f.RunID, &f.Pipeline, &f.Step, &f.Error, &f.At, &f.Retries)
	})
	if err != nil {
		return 0, fmt.Errorf("notify: find failed runs without an alert: %w", err)
	}
	var errs []error
	for _, run := range runs {
		n.log.WarnContext(ctx, "failed run has no alert (its step-failed event never arrived): alerting now",
			"run_id", run.RunID, "pipeline", run.Pipeline, "step", run.Step)
		if err := n.alert(ctx, run); err != nil {
			errs = append(errs, fmt.Errorf("alert run %s: %w", run.RunID, err))
		}
	}
	return len(runs) - len(errs), errors.Join(errs...)
}

// RunAlertReconciler calls ReconcileAlerts every interval until ctx ends.
func (n *Notifier) RunAlertReconciler(ctx context.Context, interval, grace time.Duration) {
	service.Every(ctx, interval, n.log, "alert reconciliation", func(ctx context.Context) error {
		_, err := n.ReconcileAlerts(ctx, grace)
		return err
	})
}

// workOrder is a work order of the run with its assignee.
type workOrder struct {
	email.WorkOrder
	techID     *int64
	techName   string
	techEmail  string
	techActive bool
}

// loadWorkOrders loads the run's work orders: those the source says the run
// created (run_id, cmmsflow's own tables) and those pmgen recorded as the
// run's occurrences (plan_occurrences), which is how a mapped source's work
// orders are known: a CMMS keeps no run_id, so its mapping gives NULL.
func (n *Notifier) loadWorkOrders(ctx context.Context, runID string) ([]workOrder, error) {
	rows, err := n.pool.Query(ctx, `
		SELECT w.wo_number, w.title, w.priority, w.status, coalesce(to_char(w.due_date, 'YYYY-MM-DD'), ''),
		       w.skipped_occurrences, a.asset_tag, a.name, a.vehicle_type, a.location,
		       t.id, coalesce(t.name, ''), coalesce(t.email, ''), coalesce(t.active, false)
		FROM work_orders w
		JOIN assets a ON a.id = w.asset_id
		LEFT JOIN technicians t ON t.id = w.assigned_technician_id
		WHERE w.run_id = $1
		   OR w.wo_number IN (SELECT o.wo_number FROM plan_occurrences o WHERE o.run_id = $1)`, runID)
	if err != nil {
		return nil, fmt.Errorf("notify: load work orders: %w", err)
	}
	wos, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (workOrder, error) {
		var w workOrder
		err := r.Scan(&w.Number, &w.Title, &w.Priority, &w.Status, &w.Due, &w.SkippedOccurrences,
			&w.AssetTag, &w.AssetName, &w.VehicleType, &w.Location,
			&w.techID, &w.techName, &w.techEmail, &w.techActive)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("notify: load work orders: %w", err)
	}
	// Soonest due first, then the most urgent, then by number.
	slices.SortStableFunc(wos, func(a, b workOrder) int {
		return cmp.Or(cmpDue(a.Due, b.Due), cmp.Compare(priorityRank(a.Priority), priorityRank(b.Priority)),
			cmp.Compare(a.Number, b.Number))
	})
	return wos, nil
}

func cmpDue(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	return strings.Compare(a, b)
}

func priorityRank(p string) int {
	switch p {
	case "CRITICAL":
		return 0
	case "HIGH":
		return 1
	case "MEDIUM":
		return 2
	}
	return 3
}

// planPM builds the deliveries of a preventive maintenance run. Keys are
// <run>:<channel>:<recipient>:<kind>, so a later event for the same run
// (a republished or regenerated one) finds the rows already there.
func (n *Notifier) planPM(ev eventing.Event, p *eventsv1.WorkOrdersGenerated, wos []workOrder) ([]delivery, error) {
	techs, needsAssignment := assignees(wos)
	ds, err := digests(ev, p, techs)
	if err != nil {
		return nil, err
	}
	summary := pmSummary(ev, p, techs, needsAssignment)
	r, err := email.RenderPMSummary(summary)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("render summary: %w", err))
	}
	if len(n.cfg.Admins) > 0 {
		ds = append(ds, delivery{
			Key: key(ev.RunID, ChannelEmail, "admins", email.KindPMSummary), Channel: ChannelEmail,
			Kind: email.KindPMSummary, Recipient: email.FormatAddressList(n.cfg.Admins),
			Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML,
		})
	}
	hooks, err := n.webhookDeliveries(ev.RunID+":webhook:", email.KindPMSummary, r.Subject, pmWebhook(ev, p, summary, r.Subject))
	if err != nil {
		return nil, err
	}
	return append(ds, hooks...), nil
}

// pmTech is an assigned, active technician with their work orders of the run.
type pmTech struct {
	id          int64
	name, email string
	wos         []email.WorkOrder
}

// assignees splits wos between the assigned, active technicians (by name,
// then id) and the work orders that need assignment: unassigned, or
// assigned to an inactive technician (who is named).
func assignees(wos []workOrder) (techs []*pmTech, needsAssignment []email.WorkOrder) {
	byTech := map[int64]*pmTech{}
	for _, w := range wos {
		if w.techID == nil || !w.techActive {
			wo := w.WorkOrder
			if w.techID != nil {
				wo.Technician = w.techName
			}
			needsAssignment = append(needsAssignment, wo)
			continue
		}
		t := byTech[*w.techID]
		if t == nil {
			t = &pmTech{id: *w.techID, name: w.techName, email: strings.TrimSpace(w.techEmail)}
			byTech[t.id] = t
			techs = append(techs, t)
		}
		t.wos = append(t.wos, w.WorkOrder)
	}
	slices.SortFunc(techs, func(a, b *pmTech) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id)) })
	return techs, needsAssignment
}

// digests are every technician's inbox notification and, when they have an
// address, email, listing their work orders by asset.
func digests(ev eventing.Event, p *eventsv1.WorkOrdersGenerated, techs []*pmTech) ([]delivery, error) {
	var ds []delivery
	for _, t := range techs {
		r, err := email.RenderDigest(email.Digest{
			Technician: t.name, AsOf: p.AsOf, RunID: ev.RunID, Pipeline: ev.Pipeline,
			Count: len(t.wos), Assets: groupByAsset(t.wos),
		})
		if err != nil {
			return nil, eventing.Permanent(fmt.Errorf("render digest: %w", err))
		}
		id := t.id
		who := fmt.Sprintf("technician-%d", t.id)
		ds = append(ds, delivery{
			Key: key(ev.RunID, ChannelInbox, who, email.KindWorkOrderDigest), Channel: ChannelInbox,
			Kind: email.KindWorkOrderDigest, TechnicianID: &id, Recipient: cmp.Or(t.email, who),
			Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML,
		})
		if t.email != "" {
			ds = append(ds, delivery{
				Key: key(ev.RunID, ChannelEmail, who, email.KindWorkOrderDigest), Channel: ChannelEmail,
				Kind: email.KindWorkOrderDigest, TechnicianID: &id,
				Recipient: (&mail.Address{Name: t.name, Address: t.email}).String(),
				Subject:   r.Subject, Body: r.Text, BodyHTML: r.HTML,
			})
		}
	}
	return ds, nil
}

// pmSummary is the admins' summary of the run.
func pmSummary(ev eventing.Event, p *eventsv1.WorkOrdersGenerated, techs []*pmTech, needsAssignment []email.WorkOrder) email.PMSummary {
	summary := email.PMSummary{
		AsOf: p.AsOf, RunID: ev.RunID, Pipeline: ev.Pipeline,
		Created: int(p.Created), SkippedOpen: int(p.SkippedOpen), Failed: int(p.Failed),
		MissedOccurrences: int(p.MissedOccurrences), NeedsAssignment: needsAssignment,
	}
	for vt, c := range p.CreatedByVehicleType {
		summary.ByVehicleType = append(summary.ByVehicleType, email.Count{Name: vt, N: int(c)})
	}
	slices.SortFunc(summary.ByVehicleType, func(a, b email.Count) int { return cmp.Compare(a.Name, b.Name) })
	for _, t := range techs {
		summary.Technicians = append(summary.Technicians, email.TechnicianCount{Name: t.name, Email: t.email, WorkOrders: len(t.wos)})
	}
	return summary
}

// pmWebhook is the summary as a webhook message.
func pmWebhook(ev eventing.Event, p *eventsv1.WorkOrdersGenerated, summary email.PMSummary, subject string) webhook.Message {
	facts := []webhook.Fact{
		{Label: "Created", Value: fmt.Sprint(p.Created)},
		{Label: "Skipped (open)", Value: fmt.Sprint(p.SkippedOpen)},
		{Label: "Failed", Value: fmt.Sprint(p.Failed)},
		{Label: "Missed occurrences", Value: fmt.Sprint(p.MissedOccurrences)},
	}
	var byType []string
	for _, c := range summary.ByVehicleType {
		byType = append(byType, fmt.Sprintf("%s %d", c.Name, c.N))
	}
	if len(byType) > 0 {
		facts = append(facts, webhook.Fact{Label: "By vehicle type", Value: strings.Join(byType, ", ")})
	}
	techs, needsAssignment := len(summary.Technicians), len(summary.NeedsAssignment)
	text := fmt.Sprintf("%d technicians notified.", techs)
	if needsAssignment > 0 {
		text += fmt.Sprintf(" %d work orders need assignment.", needsAssignment)
	}
	severity := "info"
	if p.Failed > 0 {
		severity = "error"
	}
	return webhook.Message{
		Kind: email.KindPMSummary, RunID: ev.RunID, Pipeline: ev.Pipeline, Severity: severity,
		Title: subject, Text: text, Facts: facts,
		Data: map[string]any{
			"as_of": p.AsOf, "created": p.Created, "skipped_open": p.SkippedOpen, "failed": p.Failed,
			"missed_occurrences": p.MissedOccurrences, "created_by_vehicle_type": p.CreatedByVehicleType,
			"technicians_notified": techs, "needs_assignment": needsAssignment,
		},
	}
}

// webhookDeliveries is m for every configured webhook; keys are
// prefix + target id (+ ":" + kind unless the prefix is an alert's).
func (n *Notifier) webhookDeliveries(prefix, kind, subject string, m webhook.Message) ([]delivery, error) {
	var ds []delivery
	for _, t := range n.cfg.Webhooks {
		body, err := webhook.Payload(t.Kind, m)
		if err != nil {
			return nil, eventing.Permanent(err)
		}
		k := prefix + t.ID
		if kind != email.KindAlert {
			k += ":" + kind
		}
		ds = append(ds, delivery{
			Key: k, Channel: ChannelWebhook, Kind: kind, Recipient: t.Redacted(),
			Subject: subject, Body: string(body), Target: t.ID,
		})
	}
	return ds, nil
}

func key(runID, channel, recipient, kind string) string {
	return runID + ":" + channel + ":" + recipient + ":" + kind
}

// groupByAsset keeps the order of wos within each asset; assets by tag.
func groupByAsset(wos []email.WorkOrder) []email.AssetGroup {
	var groups []email.AssetGroup
	index := map[string]int{}
	for _, w := range wos {
		i, ok := index[w.AssetTag]
		if !ok {
			i = len(groups)
			index[w.AssetTag] = i
			groups = append(groups, email.AssetGroup{AssetTag: w.AssetTag, AssetName: w.AssetName, VehicleType: w.VehicleType, Location: w.Location})
		}
		groups[i].WorkOrders = append(groups[i].WorkOrders, w)
	}
	slices.SortStableFunc(groups, func(a, b email.AssetGroup) int { return cmp.Compare(a.AssetTag, b.AssetTag) })
	return groups
}

// result is the step's figures, over every delivery of the run (this
// attempt's and earlier ones').
func (n *Notifier) result(ctx context.Context, ds []delivery) (eventing.StepResult, error) {
	keys := make([]string, len(ds))
	for i, d := range ds {
		keys[i] = d.Key
	}
	var inbox, emails, hooks, failed int
	err := n.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE channel = 'inbox'),
		       count(*) FILTER (WHERE channel = 'email' AND status = 'sent'),
		       count(*) FILTER (WHERE channel = 'webhook' AND status = 'sent'),
		       count(*) FILTER (WHERE status = 'failed')
		FROM notifications WHERE dedupe_key = ANY($1)`, keys).Scan(&inbox, &emails, &hooks, &failed)
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("notify: figures: %w", err)
	}
	return eventing.StepResult{
		Figures: map[string]float64{
			"notifications_written": float64(inbox),
			"emails_sent":           float64(emails),
			"webhooks_sent":         float64(hooks),
			"failures":              float64(failed),
		},
		Summary: fmt.Sprintf("%d technicians notified; %d emails and %d webhooks sent; %d failed",
			inbox, emails, hooks, failed),
	}, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
