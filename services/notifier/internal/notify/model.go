package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// holdoutMetrics are the metrics the model email shows, in order; the
// champion's are the same keys prefixed "champion_".
var holdoutMetrics = []struct{ key, name string }{
	{"roc_auc", "ROC AUC"},
	{"pr_auc", "PR AUC"},
	{"brier", "Brier score"},
	{"ece", "Calibration error (ECE)"},
}

// riskLevels are the deployer's risk levels, lowest first.
var riskLevels = []string{"low", "medium", "high", "critical"}

// ModelDeployed is the ETL and ML training pipeline's notify step: one email
// to the admins with the gate's decision, the holdout metrics and the
// fleet's risk levels, and the same on every configured webhook — once per
// run; then the alert rules on the scoring (period: the run's logical date).
func (n *Notifier) ModelDeployed(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.ModelDeployed
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	if p.ModelVersion == "" {
		return eventing.StepResult{}, eventing.Permanent(errors.New("model.deployed without model_version"))
	}
	ds, err := n.planModel(ev, &p)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.deliver(ctx, ev, ds); err != nil {
		return eventing.StepResult{}, err
	}
	period, err := n.logicalDate(ctx, ev)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.evaluate(ctx, ev, rules.SourceScoring, period, rules.Inputs{RiskLevels: p.RiskLevels, PSI: p.Psi}); err != nil {
		return eventing.StepResult{}, err
	}
	res, err := n.result(ctx, ds)
	if err != nil {
		return eventing.StepResult{}, err
	}
	res.Summary = fmt.Sprintf("model %s %s: %d emails and %d webhooks sent, %d failed", p.ModelVersion, decision(p.Promoted),
		int(res.Figures["emails_sent"]), int(res.Figures["webhooks_sent"]), int(res.Figures["failures"]))
	return res, nil
}

func decision(promoted bool) string {
	if promoted {
		return "promoted"
	}
	return "kept champion"
}

func (n *Notifier) planModel(ev eventing.Event, p *eventsv1.ModelDeployed) ([]delivery, error) {
	m := email.ModelDeployed{
		RunID: ev.RunID, Pipeline: ev.Pipeline, ModelVersion: p.ModelVersion, Promoted: p.Promoted,
		GateReason: p.GateReason, Endpoint: p.Endpoint, ScoredAssets: int(p.ScoredAssets),
	}
	for _, l := range riskLevels {
		m.RiskLevels = append(m.RiskLevels, email.Count{Name: l, N: int(p.RiskLevels[l])})
	}
	for _, l := range slices.Sorted(maps.Keys(p.RiskLevels)) {
		if !slices.Contains(riskLevels, l) {
			m.RiskLevels = append(m.RiskLevels, email.Count{Name: l, N: int(p.RiskLevels[l])})
		}
	}
	for _, f := range holdoutMetrics {
		v, ok := p.Metrics[f.key]
		if !ok {
			continue
		}
		mt := email.Metric{Name: f.name, Value: formatMetric(v)}
		if c, ok := p.Metrics["champion_"+f.key]; ok {
			mt.Champion, m.HasChampion = formatMetric(c), true
		}
		m.Metrics = append(m.Metrics, mt)
	}
	if rows, ok := p.Metrics["holdout_rows"]; ok {
		m.Holdout = fmt.Sprintf("%d %s", int64(rows), pluralize(int64(rows), "row", "rows"))
		if pos, ok := p.Metrics["holdout_positives"]; ok {
			m.Holdout += fmt.Sprintf(", %d positive", int64(pos))
		}
	}

	r, err := email.RenderModelDeployed(m)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("render model email: %w", err))
	}
	var ds []delivery
	if len(n.cfg.Admins) > 0 {
		ds = append(ds, delivery{
			Key: key(ev.RunID, ChannelEmail, "admins", email.KindModelDeployed), Channel: ChannelEmail,
			Kind: email.KindModelDeployed, Recipient: email.FormatAddressList(n.cfg.Admins),
			Subject: r.Subject, Body: r.Text, BodyHTML: r.HTML,
		})
	}

	facts := []webhook.Fact{
		{Label: "Model", Value: p.ModelVersion},
		{Label: "Gate", Value: decision(p.Promoted)},
	}
	if p.GateReason != "" {
		facts = append(facts, webhook.Fact{Label: "Reason", Value: p.GateReason})
	}
	for _, mt := range m.Metrics {
		v := mt.Value
		if mt.Champion != "" {
			v += " (champion " + mt.Champion + ")"
		}
		facts = append(facts, webhook.Fact{Label: mt.Name, Value: v})
	}
	levels := make([]string, len(m.RiskLevels))
	for i, c := range m.RiskLevels {
		levels[i] = fmt.Sprintf("%s %d", c.Name, c.N)
	}
	facts = append(facts, webhook.Fact{Label: "Assets scored", Value: fmt.Sprintf("%d (%s)", p.ScoredAssets, strings.Join(levels, ", "))})
	if p.Endpoint != "" {
		facts = append(facts, webhook.Fact{Label: "Endpoint", Value: p.Endpoint})
	}
	hooks, err := n.webhookDeliveries(ev.RunID+":webhook:", email.KindModelDeployed, r.Subject, webhook.Message{
		Kind: email.KindModelDeployed, RunID: ev.RunID, Pipeline: ev.Pipeline, Severity: "info",
		Title: r.Subject, Text: cmp.Or(p.GateReason, "Gate decision: "+decision(p.Promoted)+"."), Facts: facts,
		Data: map[string]any{
			"model_version": p.ModelVersion, "promoted": p.Promoted, "gate_reason": p.GateReason,
			"endpoint": p.Endpoint, "scored_assets": p.ScoredAssets, "risk_levels": p.RiskLevels, "metrics": finite(p.Metrics),
		},
	})
	if err != nil {
		return nil, err
	}
	return append(ds, hooks...), nil
}

// formatMetric shows a metric in [0, 1] to four decimals.
func formatMetric(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func pluralize(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// finite is m without NaN and infinities, which JSON cannot carry.
func finite(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
