package trainer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// gateLock serialises registrations across trainer instances until commit,
// so two runs never both replace the same champion.
const gateLock = 727_400

// errChampionChanged: another run's model became the champion while this
// one was compared with the previous champion; the step is retried, and
// compares with the new one.
var errChampionChanged = errors.New("the champion changed while the model was gated")

type gateResult struct {
	promoted bool
	// unconditional: promoted with no comparison, there being no usable
	// champion (none, the same model, or one that cannot score).
	unconditional   bool
	shadow          bool // kept as the shadow challenger
	reason          string
	championVersion string
	championAUC     float64
	championMetrics map[string]float64 // the champion's metrics on this holdout
}

// gate compares m with the current champion on the same holdout rows:
// promote iff there is no champion or m's ROC AUC ≥ the champion's − margin.
// A champion that cannot be read or cannot score the current feature schema
// cannot be compared, and the new model takes its place (the reason says so).
// It runs with no transaction open; registerIfChampionHeld checks at commit
// that the champion it compared with still is.
func (h *Handler) gate(ctx context.Context, m *model.Model, holdout []features.Row, y []float64) (gateResult, error) {
	var champVersion, champArtifact string
	err := h.pool.QueryRow(ctx, `SELECT version, artifact_name FROM models WHERE champion`).Scan(&champVersion, &champArtifact)
	if errors.Is(err, pgx.ErrNoRows) {
		return gateResult{promoted: true, unconditional: true, reason: "no champion yet: the first model is promoted"}, nil
	}
	if err != nil {
		return gateResult{}, fmt.Errorf("gate: read champion: %w", err)
	}
	auc := m.Metrics["roc_auc"]
	// Until the comparison below, the model is promoted unconditionally.
	g := gateResult{championVersion: champVersion, promoted: true, unconditional: true}
	if champVersion == m.Version {
		g.championAUC, g.championMetrics = auc, m.Metrics
		g.reason = "already the champion: the same training data and learner gave the same model"
		return g, nil
	}
	data, err := h.store.Get(ctx, champArtifact)
	if errors.Is(err, objstore.ErrNotExist) {
		g.reason = fmt.Sprintf("champion %s's artifact %s is missing: promoted without comparison", champVersion, champArtifact)
		return g, nil
	}
	if err != nil {
		return gateResult{}, fmt.Errorf("gate: read champion artifact: %w", err)
	}
	champ, err := model.Load(data)
	if err != nil {
		g.reason = fmt.Sprintf("champion %s cannot be loaded (%v): promoted without comparison", champVersion, err)
		return g, nil
	}
	p := make([]float64, len(holdout))
	for i, r := range holdout {
		if p[i], err = champ.PredictRow(r); err != nil {
			g.reason = fmt.Sprintf("champion %s cannot score the current features (%v): promoted without comparison", champVersion, err)
			return g, nil
		}
	}
	ce, err := model.Evaluate(y, p)
	if err != nil {
		return gateResult{}, fmt.Errorf("gate: evaluate champion: %w", err)
	}
	g.championMetrics = ce.Metrics()
	g.championAUC = ce.ROCAUC
	margin := h.cfg.GateMargin
	g.unconditional = false
	g.promoted = auc >= ce.ROCAUC-margin
	op := "≥"
	if !g.promoted {
		op = "<"
	}
	g.reason = fmt.Sprintf("holdout ROC AUC %.4f %s champion %s's %.4f − margin %.4f on the same %d rows",
		auc, op, champVersion, ce.ROCAUC, margin, len(holdout))
	return g, nil
}

// shadowPolicy applies Config.Shadow to the gate's decision: with rejected a
// model the gate rejects becomes the shadow; with all every model compared
// with a champion becomes the shadow and is not promoted, whatever the gate
// decided (the reason keeps its figures). A model promoted unconditionally
// stays promoted: there is no champion to challenge.
func (h *Handler) shadowPolicy(g gateResult) gateResult {
	switch {
	case h.cfg.Shadow == ShadowRejected && !g.promoted:
		g.shadow = true
		g.reason += "; kept as the shadow challenger (SHADOW=rejected)"
	case h.cfg.Shadow == ShadowAll && !g.unconditional:
		verdict := "would promote"
		if !g.promoted {
			verdict = "rejects"
		}
		g.shadow, g.promoted = true, false
		g.reason = fmt.Sprintf("kept as the shadow challenger, promoted only on realized performance (SHADOW=all); the offline gate %s it: %s", verdict, g.reason)
	}
	return g
}

// registerIfChampionHeld registers m in the complete transaction, under the
// gate lock, if the champion is still the one the gate compared m with
// (none, if none); otherwise it fails with errChampionChanged, a transient
// error: the step is retried and gates m against the new champion.
func registerIfChampionHeld(ctx context.Context, tx pgx.Tx, m *model.Model, store *objstore.Store, g gateResult) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, gateLock); err != nil {
		return fmt.Errorf("gate lock: %w", err)
	}
	var now string
	err := tx.QueryRow(ctx, `SELECT version FROM models WHERE champion`).Scan(&now)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("gate: read champion: %w", err)
	}
	if now != g.championVersion && now != m.Version {
		return fmt.Errorf("%w: compared with %q, now %q", errChampionChanged, g.championVersion, now)
	}
	return register(ctx, tx, m, store, g)
}

// register records m, its profile and the gate's decision in the models
// table, making it the champion when promoted and the shadow (in place of
// any other) when kept as one. A redelivery updates the same row.
func register(ctx context.Context, tx pgx.Tx, m *model.Model, store *objstore.Store, g gateResult) error {
	var compared *string
	if g.championVersion != "" {
		compared = &g.championVersion
	}
	if g.shadow {
		if _, err := tx.Exec(ctx, `UPDATE models SET shadow = false, updated_at = now() WHERE shadow AND version <> $1`, m.Version); err != nil {
			return fmt.Errorf("retire shadow: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO models (version, run_id, kind, artifact_name, artifact_uri, training_fingerprint, metrics,
		                    promoted, gate_reason, compared_with, champion_metrics, profile_name, shadow)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (version) DO UPDATE SET
			run_id = EXCLUDED.run_id, kind = EXCLUDED.kind, artifact_name = EXCLUDED.artifact_name,
			artifact_uri = EXCLUDED.artifact_uri, training_fingerprint = EXCLUDED.training_fingerprint,
			metrics = EXCLUDED.metrics, promoted = EXCLUDED.promoted, gate_reason = EXCLUDED.gate_reason,
			compared_with = EXCLUDED.compared_with, champion_metrics = EXCLUDED.champion_metrics,
			profile_name = EXCLUDED.profile_name, shadow = EXCLUDED.shadow,
			updated_at = now()`,
		m.Version, m.RunID, string(m.Kind), ArtifactName(m.Version), store.URI(ArtifactName(m.Version)),
		m.Training.Fingerprint, m.Metrics, g.promoted, g.reason, compared, g.championMetrics, ProfileName(m.Version), g.shadow)
	if err != nil {
		return fmt.Errorf("register model %s: %w", m.Version, err)
	}
	if !g.promoted {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE models SET champion = false, updated_at = now() WHERE champion AND version <> $1`, m.Version); err != nil {
		return fmt.Errorf("retire champion: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE models SET champion = true, promoted_at = coalesce(promoted_at, now()), updated_at = now() WHERE version = $1`, m.Version); err != nil {
		return fmt.Errorf("promote %s: %w", m.Version, err)
	}
	return nil
}
