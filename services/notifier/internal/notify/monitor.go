package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

// allChannels: drift and the alert rules' channels a drift alert goes to.
var allChannels = []string{rules.ChannelEmail, rules.ChannelWebhook, rules.ChannelPagerDuty}

// topPSI is how many PSIs the monitoring email lists.
const topPSI = 5

// ModelMonitored is the model monitoring pipeline's notify step: it emails
// the admins a summary — only when something happened (drift at warn or
// alert, a shadow promoted, a retraining triggered): a quiet day sends
// nothing, the dashboard shows it — then evaluates the alert rules on the
// run's figures (period: the snapshot date) and resolves the model's drift
// alert once its drift is below the alert band again.
func (n *Notifier) ModelMonitored(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.ModelMonitored
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	if err := checkModelDay(p.ModelVersion, p.SnapshotDate); err != nil {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("model.monitored: %w", err))
	}
	ds, err := n.planMonitored(ev, &p)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.deliver(ctx, ev, ds); err != nil {
		return eventing.StepResult{}, err
	}
	in := rules.Inputs{RiskLevels: p.RiskLevels, PSI: p.Psi, Drift: p.Drift, Realized: p.Realized, ShadowRealized: p.ShadowRealized}
	if err := n.evaluate(ctx, ev, rules.SourceMonitoring, p.SnapshotDate, in); err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.resolveDrift(ctx, ev, &p); err != nil {
		return eventing.StepResult{}, err
	}
	res, err := n.result(ctx, ds)
	if err != nil {
		return eventing.StepResult{}, err
	}
	res.Summary = fmt.Sprintf("model %s on %s: drift %s; %d emails sent, %d failed", p.ModelVersion, p.SnapshotDate,
		cmp.Or(p.Drift, "not measured"), int(res.Figures["emails_sent"]), int(res.Figures["failures"]))
	return res, nil
}

// resolveDrift resolves the model's drift alert, and tells its channels,
// when the monitoring run found the drift below the alert band.
func (n *Notifier) resolveDrift(ctx context.Context, ev eventing.Event, p *eventsv1.ModelMonitored) error {
	if p.Drift == "alert" {
		return nil
	}
	rule := driftRule(p.ModelVersion)
	if err := n.resolveAlert(ctx, rule, p.SnapshotDate); err != nil {
		return err
	}
	note := "drift " + cmp.Or(p.Drift, "not measured") + " on " + p.SnapshotDate
	return n.announceAt(ctx, ev, rule, p.SnapshotDate, "", allChannels, note)
}

// eventful reports whether a monitoring run is worth an email.
func eventful(p *eventsv1.ModelMonitored) bool {
	return p.Drift == "warn" || p.Drift == "alert" || p.PromotedVersion != "" || p.RetrainTriggered
}

// planMonitored is the admins' monitoring email, if the run was eventful.
func (n *Notifier) planMonitored(ev eventing.Event, p *eventsv1.ModelMonitored) ([]delivery, error) {
	if !eventful(p) || len(n.cfg.Admins) == 0 {
		return nil, nil
	}
	m := email.ModelMonitored{RunID: ev.RunID, Pipeline: ev.Pipeline, ModelVersion: p.ModelVersion,
		SnapshotDate: p.SnapshotDate, Drift: p.Drift, Promoted: p.PromotedVersion}
	if p.RetrainTriggered {
		m.RetrainReason = cmp.Or(p.RetrainReason, "no reason given")
	}
	for _, k := range highest(p.Psi, topPSI) {
		m.PSI = append(m.PSI, email.Metric{Name: k, Value: formatMetric(p.Psi[k])})
	}
	for _, k := range slices.Sorted(maps.Keys(p.Realized)) {
		m.Realized = append(m.Realized, email.Metric{Name: k, Value: formatFloat(p.Realized[k])})
	}
	r, err := email.RenderModelMonitored(m)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("render monitoring email: %w", err))
	}
	return []delivery{{
		Key: key(ev.RunID, ChannelEmail, "admins", email.KindModelMonitored), Channel: ChannelEmail,
		Kind: email.KindModelMonitored, Recipient: email.FormatAddressList(n.cfg.Admins),
		Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML,
	}}, nil
}

// highest returns m's keys by value, highest first, at most k of them.
func highest(m map[string]float64, k int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	return keys[:min(k, len(keys))]
}

// DriftDetected alerts the admins (email), the webhooks and PagerDuty that
// a model drifted: one alert per model per day (alerts kind drift, rule
// drift:<model>, dedup key cmmsflow/drift/<model>/<date>). While an earlier
// drift alert of the model is still open, that one stays the incident and
// nothing new is sent; the monitoring step resolves it when the drift is
// back below the alert band.
func (n *Notifier) DriftDetected(ctx context.Context, ev eventing.Event) (eventing.TxFunc, error) {
	var p eventsv1.DriftDetected
	if err := ev.Decode(&p); err != nil {
		return nil, err
	}
	if err := checkModelDay(p.ModelVersion, p.SnapshotDate); err != nil {
		return nil, eventing.Permanent(fmt.Errorf("model.drift_detected: %w", err))
	}
	features := highest(p.Psi, len(p.Psi))
	if len(features) == 0 {
		return nil, eventing.Permanent(errors.New("model.drift_detected without psi"))
	}
	peak, threshold := p.Psi[features[0]], p.Threshold
	rule, dedup := driftRule(p.ModelVersion), "cmmsflow/drift/"+p.ModelVersion+"/"+p.SnapshotDate
	err := n.openAlert(ctx, alertRow{Rule: rule, Kind: alertDrift, Severity: "error",
		Summary: fmt.Sprintf("Model %s drifted on %s: PSI of %s %s (alert at %s); %d %s drifted",
			p.ModelVersion, p.SnapshotDate, features[0], formatMetric(peak), formatFloat(threshold), len(features),
			pluralize(int64(len(features)), "input", "inputs")),
		Metric: "model.drift_psi_max", Value: &peak, Threshold: &threshold, OpenedPeriod: p.SnapshotDate,
		DedupKey: dedup, RunID: ev.RunID})
	if err != nil {
		return nil, err
	}
	return nil, n.announceAt(ctx, ev, rule, p.SnapshotDate, dedup, allChannels, "")
}

func driftRule(model string) string { return "drift:" + model }

// checkModelDay checks an event's model version and YYYY-MM-DD date.
func checkModelDay(model, day string) error {
	if model == "" {
		return errors.New("no model_version")
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return fmt.Errorf("snapshot_date %q: want YYYY-MM-DD", day)
	}
	return nil
}
