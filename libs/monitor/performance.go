package monitor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cmmsflow/cmmsflow/libs/model"
)

// Performance is a model's realized performance: its scores and risk levels
// against the outcomes that followed them.
type Performance struct {
	// Labelled is the number of scored assets with a known outcome,
	// Positives those that failed, Critical those scored critical.
	Labelled, Positives, Critical int
	// ROCAUC is defined (HasAUC) when both outcomes occur.
	ROCAUC float64
	HasAUC bool
	// CriticalPrecision, the share of the critical assets that failed, is
	// defined (HasPrecision) when some asset was scored critical.
	CriticalPrecision float64
	HasPrecision      bool
}

// Realized measures scores and their risk levels against the outcomes
// labels (true: the asset failed), one of each per asset.
func Realized(labels []bool, scores []float64, levels []string) (Performance, error) {
	if len(labels) != len(scores) || len(labels) != len(levels) {
		return Performance{}, fmt.Errorf("monitor: %d labels, %d scores and %d risk levels", len(labels), len(scores), len(levels))
	}
	p := Performance{Labelled: len(labels)}
	y := make([]float64, len(labels))
	criticalPositives := 0
	for i, failed := range labels {
		if !slices.Contains(Levels, levels[i]) {
			return Performance{}, fmt.Errorf("monitor: risk level %q of row %d is not one of %v", levels[i], i, Levels)
		}
		if failed {
			y[i] = 1
			p.Positives++
		}
		if levels[i] == Critical {
			p.Critical++
			if failed {
				criticalPositives++
			}
		}
	}
	if p.Critical > 0 {
		p.CriticalPrecision, p.HasPrecision = float64(criticalPositives)/float64(p.Critical), true
	}
	if p.Labelled == 0 {
		return p, nil
	}
	auc, err := model.ROCAUC(y, scores)
	if errors.Is(err, model.ErrUndefined) {
		return p, nil
	}
	if err != nil {
		return Performance{}, fmt.Errorf("monitor: realized ROC AUC: %w", err)
	}
	p.ROCAUC, p.HasAUC = auc, true
	return p, nil
}

// Metrics returns the performance as the named figures the pipeline reports:
// labelled, positives and critical, and roc_auc and critical_precision when
// defined.
func (p Performance) Metrics() map[string]float64 {
	m := map[string]float64{
		"labelled":  float64(p.Labelled),
		"positives": float64(p.Positives),
		"critical":  float64(p.Critical),
	}
	if p.HasAUC {
		m["roc_auc"] = p.ROCAUC
	}
	if p.HasPrecision {
		m["critical_precision"] = p.CriticalPrecision
	}
	return m
}

// PromotionRule decides when a shadow model's realized performance earns it
// the champion's place.
type PromotionRule struct {
	// Margin is how much higher the shadow's ROC AUC must be.
	Margin float64
	// MinLabelled and MinPositives are the least labelled assets and
	// failures among them for the comparison to count.
	MinLabelled, MinPositives int
}

// DefaultPromotionRule promotes a shadow two points of AUC better on at least
// 50 labelled assets with 5 failures.
var DefaultPromotionRule = PromotionRule{Margin: 0.02, MinLabelled: 50, MinPositives: 5}

// Decide compares the champion's and the shadow's performance measured on the
// same labelled assets: the shadow is promoted when there are enough labels
// and failures, both AUCs are defined and the shadow's is at least the
// champion's plus Margin. The reason is a sentence with the figures.
func (r PromotionRule) Decide(champion, shadow Performance) (promote bool, reason string) {
	switch {
	case champion.Labelled != shadow.Labelled || champion.Positives != shadow.Positives:
		return false, fmt.Sprintf("kept the champion: not measured on the same labels (champion %d labelled, %d failed; shadow %d labelled, %d failed)",
			champion.Labelled, champion.Positives, shadow.Labelled, shadow.Positives)
	case shadow.Labelled < r.MinLabelled:
		return false, fmt.Sprintf("kept the champion: %d labelled assets, need at least %d", shadow.Labelled, r.MinLabelled)
	case shadow.Positives < r.MinPositives:
		return false, fmt.Sprintf("kept the champion: %d failures among %d labelled assets, need at least %d", shadow.Positives, shadow.Labelled, r.MinPositives)
	case !champion.HasAUC || !shadow.HasAUC:
		return false, fmt.Sprintf("kept the champion: ROC AUC undefined on %d labelled assets with %d failures", shadow.Labelled, shadow.Positives)
	}
	gain := shadow.ROCAUC - champion.ROCAUC
	figures := fmt.Sprintf("shadow ROC AUC %.4f vs champion %.4f (%+.4f, margin %.4f) on %d labelled assets with %d failures",
		shadow.ROCAUC, champion.ROCAUC, gain, r.Margin, shadow.Labelled, shadow.Positives)
	if shadow.ROCAUC >= champion.ROCAUC+r.Margin {
		return true, "promoted the shadow: " + figures
	}
	return false, "kept the champion: " + figures
}
