package kpi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
)

// ModelHealth is the failure-risk model's health as of the end of the
// week, from the deployer's monitoring (cmmsflow.model_scorings and
// model_performance): the champion's latest scoring with its drift against
// the model's training profile and its latest realized performance, and the
// shadow challenger scored beside it, if any. Champion is nil when no model
// scoring was recorded before the week's end.
type ModelHealth struct {
	Champion *ModelStatus
	Shadow   *ModelStatus // scored in the champion's latest scoring run; nil without a shadow
}

// ModelStatus is one model's latest scoring and realized performance.
type ModelStatus struct {
	Version      string
	Role         string    // champion | shadow
	Pipeline     string    // of the scoring: etl_ml_training or model_monitoring
	SnapshotDate time.Time // the day the scored features describe
	ScoredAt     time.Time
	MaxPSI       Opt    // n/a without a training profile
	Drift        string // the deployer's level of MaxPSI (monitor.LevelNone without a profile)
	// Drifting is the features (and "score") whose PSI is at the warn
	// level or above, highest first.
	Drifting    []FeatureDrift
	Performance *Performance // nil until a scoring's label window has passed
}

// FeatureDrift is one feature's PSI and its level.
type FeatureDrift struct {
	Feature string
	PSI     float64
	Level   string // monitor.LevelWarn or LevelAlert
}

// Performance is a model's realized performance on one past scoring: its
// scores against the corrective work orders of the label window after it.
type Performance struct {
	SnapshotDate      time.Time // of the scoring evaluated; labels look at [date, date + window)
	LabelWindowDays   int64
	Labelled          int64
	Positives         int64
	ROCAUC            Opt // n/a when only one class occurred
	CriticalPrecision Opt // percent; n/a when no asset was critical
}

// drifting is the entries of psi at the warn level or above, highest first
// (by name among equal values).
func drifting(t monitor.Thresholds, psi map[string]float64) []FeatureDrift {
	var out []FeatureDrift
	for f, v := range psi {
		if l := t.Level(v); l != monitor.LevelOK {
			out = append(out, FeatureDrift{Feature: f, PSI: v, Level: l})
		}
	}
	slices.SortFunc(out, func(a, b FeatureDrift) int {
		return cmp.Or(cmp.Compare(b.PSI, a.PSI), cmp.Compare(a.Feature, b.Feature))
	})
	return out
}

// healthScoringsSQL is the champion's latest scoring made before $1 and the
// shadow's scoring of the same run, champion first.
const healthScoringsSQL = `
WITH latest AS (
	SELECT run_id FROM model_scorings WHERE role = 'champion' AND scored_at < $1
	ORDER BY scored_at DESC, id DESC LIMIT 1
)
SELECT s.model_version, s.role, s.pipeline, s.snapshot_date, s.scored_at, s.max_psi, s.drift, s.psi
FROM model_scorings s JOIN latest USING (run_id)
ORDER BY s.role`

// healthPerformanceSQL is the realized performance of the latest monitoring
// run before $1 that evaluated model $2, for the models $3 (the champion
// and the shadow: the same labels for both).
const healthPerformanceSQL = `
WITH latest AS (
	SELECT run_id FROM model_performance WHERE model_version = $2 AND computed_at < $1
	ORDER BY computed_at DESC, run_id DESC LIMIT 1
)
SELECT m.model_version, m.snapshot_date, m.label_window_days, m.labelled, m.positives, m.roc_auc, m.critical_precision
FROM model_performance m JOIN latest USING (run_id)
WHERE m.model_version = ANY($3)`

// health reads the model's health as of the current week's end.
func (c *computation) health() error {
	end := c.ps.end[0]
	var models []*ModelStatus
	err := each(c.ctx, c.q, healthScoringsSQL, []any{end}, func(row pgx.Rows) error {
		m, err := c.scanStatus(row)
		if err == nil {
			models = append(models, m)
		}
		return err
	})
	if err != nil || len(models) == 0 {
		return err
	}
	h := &c.r.Health
	versions := make([]string, len(models))
	for i, m := range models {
		versions[i] = m.Version
		if m.Role == "shadow" {
			h.Shadow = m
		} else {
			h.Champion = m
		}
	}
	if h.Champion == nil {
		return fmt.Errorf("scoring run of %v has no champion", versions)
	}
	return c.performance(end, models, versions)
}

// scanStatus reads one row of healthScoringsSQL.
func (c *computation) scanStatus(row pgx.Rows) (*ModelStatus, error) {
	m := &ModelStatus{}
	var maxPSI *float64
	var psi []byte
	if err := row.Scan(&m.Version, &m.Role, &m.Pipeline, &m.SnapshotDate, &m.ScoredAt, &maxPSI, &m.Drift, &psi); err != nil {
		return nil, err
	}
	if maxPSI != nil {
		m.MaxPSI = Some(*maxPSI)
	}
	var byFeature map[string]float64
	if err := json.Unmarshal(psi, &byFeature); err != nil {
		return nil, fmt.Errorf("psi of %s: %w", m.Version, err)
	}
	m.Drifting = drifting(c.p.Drift, byFeature)
	return m, nil
}

// performance attaches to models their rows of healthPerformanceSQL.
func (c *computation) performance(end time.Time, models []*ModelStatus, versions []string) error {
	return each(c.ctx, c.q, healthPerformanceSQL, []any{end, c.r.Health.Champion.Version, versions}, func(row pgx.Rows) error {
		var version string
		var auc, precision *float64
		p := &Performance{}
		if err := row.Scan(&version, &p.SnapshotDate, &p.LabelWindowDays, &p.Labelled, &p.Positives, &auc, &precision); err != nil {
			return err
		}
		if auc != nil {
			p.ROCAUC = Some(*auc)
		}
		if precision != nil {
			p.CriticalPrecision = Some(100 * *precision)
		}
		for _, m := range models {
			if m.Version == version {
				m.Performance = p
			}
		}
		return nil
	})
}
