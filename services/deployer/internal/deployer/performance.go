package deployer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
)

// measured is a model's realized performance on one past scoring: its
// scores against the corrective work orders of the label window that
// followed the scoring's snapshot date.
type measured struct {
	version, role string
	scoringID     int64
	scoringRun    string // the run of the scoring: two models measured on the same run were scored on the same assets
	snapshot      string
	perf          monitor.Performance
}

// evaluation is what a monitoring run measured of past scorings: the
// champion's and the shadow's realized performance (nil when none is due),
// and the shadow to promote, if any, with the rule's reason.
type evaluation struct {
	champion, shadow *measured
	promote          *engine.Model
	reason           string
}

// promotedVersion is the version of the shadow promoted, or "".
func (e evaluation) promotedVersion() string {
	if e.promote == nil {
		return ""
	}
	return e.promote.Version()
}

// evaluate measures the champion and the shadow on their latest scorings
// whose label window ended by snapshot, and decides on promoting the
// shadow when both were measured on the same scoring run.
func (h *Handler) evaluate(ctx context.Context, champion engine.Model, snapshot string) (evaluation, error) {
	var e evaluation
	var err error
	if e.champion, err = h.measure(ctx, champion.Version(), roleChampion, snapshot); err != nil {
		return evaluation{}, err
	}
	version, artifact, err := h.shadowModel(ctx, champion.Version())
	if err != nil || version == "" {
		return e, err
	}
	if e.shadow, err = h.measure(ctx, version, roleShadow, snapshot); err != nil {
		return evaluation{}, err
	}
	if e.champion == nil || e.shadow == nil || e.champion.scoringRun != e.shadow.scoringRun {
		return e, nil
	}
	var promote bool
	if promote, e.reason = h.mon.Promotion.Decide(e.champion.perf, e.shadow.perf); !promote {
		return e, nil
	}
	m, err := h.load(ctx, version, artifact)
	if err != nil {
		return evaluation{}, err
	}
	e.promote = &m
	return e, nil
}

// measure computes version's realized performance on its latest scoring
// whose label window ([snapshot date, + LabelWindowDays)) ended by snapshot:
// an asset is positive when a CORRECTIVE work order was created for it in
// the window. nil when no such scoring has scores.
func (h *Handler) measure(ctx context.Context, version, role, snapshot string) (*measured, error) {
	m := measured{version: version, role: role}
	window := h.mon.LabelWindowDays
	err := h.pool.QueryRow(ctx, `
		SELECT id, run_id, snapshot_date::text FROM model_scorings
		WHERE model_version = $1 AND snapshot_date + $2::int <= $3::date
		ORDER BY snapshot_date DESC, scored_at DESC LIMIT 1`, version, window, snapshot).Scan(&m.scoringID, &m.scoringRun, &m.snapshot)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find a scoring of %s to evaluate: %w", version, err)
	}
	rows, err := h.pool.Query(ctx, `
		SELECT s.failure_probability, s.risk_level, EXISTS (
			SELECT 1 FROM work_orders w
			WHERE w.asset_id = s.asset_id AND w.type = 'CORRECTIVE'
				AND w.created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
				AND w.created_at < ($2::date + $3::int)::timestamp AT TIME ZONE 'UTC')
		FROM model_scores s WHERE s.scoring_id = $1`, m.scoringID, m.snapshot, window)
	if err != nil {
		return nil, fmt.Errorf("label the scores of %s: %w", version, err)
	}
	var scores []float64
	var levels []string
	var labels []bool
	var score float64
	var level string
	var label bool
	if _, err := pgx.ForEachRow(rows, []any{&score, &level, &label}, func() error {
		scores, levels, labels = append(scores, score), append(levels, level), append(labels, label)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("label the scores of %s: %w", version, err)
	}
	if len(scores) == 0 {
		return nil, nil
	}
	if m.perf, err = monitor.Realized(labels, scores, levels); err != nil {
		return nil, fmt.Errorf("realized performance of %s: %w", version, err)
	}
	return &m, nil
}

// record stores the measurements, promotes the shadow if decided, and
// prunes the scores of the scorings older than the latest one evaluated,
// which no later run evaluates (the scorings are kept).
func (e evaluation) record(ctx context.Context, tx pgx.Tx, runID string, window int) error {
	latest := ""
	for _, m := range []*measured{e.champion, e.shadow} {
		if m == nil {
			continue
		}
		if err := m.record(ctx, tx, runID, window); err != nil {
			return err
		}
		latest = max(latest, m.snapshot)
	}
	if e.promote != nil {
		if err := promote(ctx, tx, e.promote.Version()); err != nil {
			return err
		}
	}
	if latest == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM model_scores WHERE scoring_id IN (SELECT id FROM model_scorings WHERE snapshot_date < $1::date)`, latest); err != nil {
		return fmt.Errorf("prune the scores evaluated: %w", err)
	}
	return nil
}

// record upserts the measurement of the monitoring run runID.
func (m *measured) record(ctx context.Context, tx pgx.Tx, runID string, window int) error {
	var auc, precision *float64
	if m.perf.HasAUC {
		auc = &m.perf.ROCAUC
	}
	if m.perf.HasPrecision {
		precision = &m.perf.CriticalPrecision
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO model_performance (run_id, model_version, role, scoring_id, snapshot_date, label_window_days, labelled, positives, roc_auc, critical_precision)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (run_id, model_version) DO UPDATE SET role = EXCLUDED.role, scoring_id = EXCLUDED.scoring_id,
			snapshot_date = EXCLUDED.snapshot_date, label_window_days = EXCLUDED.label_window_days, labelled = EXCLUDED.labelled,
			positives = EXCLUDED.positives, roc_auc = EXCLUDED.roc_auc, critical_precision = EXCLUDED.critical_precision, computed_at = now()`,
		runID, m.version, m.role, m.scoringID, m.snapshot, window, m.perf.Labelled, m.perf.Positives, auc, precision)
	if err != nil {
		return fmt.Errorf("record the realized performance of %s: %w", m.version, err)
	}
	return nil
}

// promote makes the shadow version the champion (and no longer the shadow);
// the old champion is no longer champion. promoted_at is kept on a redelivery.
func promote(ctx context.Context, tx pgx.Tx, version string) error {
	if _, err := tx.Exec(ctx, `UPDATE models SET champion = false WHERE champion AND version <> $1`, version); err != nil {
		return fmt.Errorf("promote %s: retire the champion: %w", version, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE models SET shadow = false, champion = true,
		promoted_at = CASE WHEN champion THEN promoted_at ELSE now() END WHERE version = $1`, version)
	if err != nil {
		return fmt.Errorf("promote %s: %w", version, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("promote %s: the model is not registered", version)
	}
	return nil
}
