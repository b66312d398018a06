package deployer

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
)

// Monitor is the deployer's step of the model_monitoring pipeline. With no
// transaction open it measures the realized performance of the champion
// (the engine's active deployment) and of the shadow on their latest
// scorings whose label window has passed, promotes the shadow (deploying
// it) when the promotion rule says so, scores the day's features as the
// ETL step does (predictions, scorings, drift), and decides on retraining.
// The complete transaction records it all. Its output is the
// model.monitored payload.
func (h *Handler) Monitor(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.FeaturesBuilt
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	rows, err := h.scoringRows(ctx, events.FeaturesBuilt, p.GetScoring())
	if err != nil {
		return eventing.StepResult{}, err
	}
	fl, err := h.fleetOf(ctx, rows)
	if err != nil {
		return eventing.StepResult{}, err
	}
	champion, err := h.activeModel(ctx)
	if err != nil {
		return eventing.StepResult{}, err
	}
	e, err := h.evaluate(ctx, champion, fl.snapshot)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if e.promote != nil {
		champion = *e.promote
	}
	s, err := h.serve(ctx, champion, fl)
	if err != nil {
		return eventing.StepResult{}, err
	}
	rt, err := h.retrainDue(ctx, ev.RunID, s, e.champion)
	if err != nil {
		return eventing.StepResult{}, err
	}
	h.logScored(ctx, s, "promoted_version", e.promotedVersion(), "retrain_reason", rt.reason, "retrain_triggered", rt.trigger)
	res := h.monitorResult(s, e, rt)
	res.Commit = func(ctx context.Context, tx pgx.Tx) error {
		if err := h.commit(ctx, tx, ev, s); err != nil {
			return err
		}
		if err := e.record(ctx, tx, ev.RunID, h.mon.LabelWindowDays); err != nil {
			return err
		}
		return rt.commit(ctx, tx, ev)
	}
	return res, nil
}

// activeModel loads the model the engine serves (its active deployment); a
// permanent error when nothing is deployed yet.
func (h *Handler) activeModel(ctx context.Context) (engine.Model, error) {
	var version, artifact string
	err := h.pool.QueryRow(ctx, `SELECT model_version, artifact_name FROM model_deployments WHERE engine = $1 AND active`,
		h.engine.Name()).Scan(&version, &artifact)
	if errors.Is(err, pgx.ErrNoRows) {
		return engine.Model{}, eventing.Permanent(fmt.Errorf("no model is deployed on the %s engine yet: monitoring needs a champion (run etl_ml_training first)", h.engine.Name()))
	}
	if err != nil {
		return engine.Model{}, fmt.Errorf("read the active deployment: %w", err)
	}
	return h.load(ctx, version, artifact)
}

// monitorResult is the monitoring step's output (model.monitored), figures
// and summary.
func (h *Handler) monitorResult(s served, e evaluation, rt retrain) eventing.StepResult {
	out := &eventsv1.ModelMonitored{
		ModelVersion: s.d.ModelVersion, SnapshotDate: s.fleet.snapshot, ScoredAssets: int32(len(s.fleet.keep)),
		RiskLevels: s.champion.counts, Psi: s.champion.psi, Drift: s.champion.drift,
		Realized: e.champion.metrics(), ShadowVersion: shadowVersion(s), ShadowRealized: e.shadow.metrics(),
		PromotedVersion: e.promotedVersion(), RetrainTriggered: rt.trigger, RetrainReason: rt.reason,
	}
	figures := scoredFigures(s)
	for k, v := range out.Realized {
		figures["realized_"+k] = v
	}
	for k, v := range out.ShadowRealized {
		figures["shadow_realized_"+k] = v
	}
	figures["promoted"] = b2f(e.promote != nil)
	figures["retrain_triggered"] = b2f(rt.trigger)
	summary := fmt.Sprintf("monitored %s %s", s.d.ModelVersion, h.scoredSummary(s))
	if e.promote != nil {
		summary = fmt.Sprintf("promoted shadow %s (%s); %s", e.promote.Version(), e.reason, summary)
	}
	if rt.reason != "" {
		summary += fmt.Sprintf("; retraining due (%s): triggered %v", rt.reason, rt.trigger)
	}
	return eventing.StepResult{Output: out, Figures: figures, Summary: summary}
}

// metrics are the realized figures of a measurement; empty when there is
// none.
func (m *measured) metrics() map[string]float64 {
	if m == nil {
		return map[string]float64{}
	}
	return maps.Clone(m.perf.Metrics())
}
