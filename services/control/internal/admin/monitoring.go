package admin

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
)

// Bounds of the Models view's monitoring: the monitoring runs its realized
// performance chart shows and the retrains it lists.
const (
	performanceRuns = 60
	listedRetrains  = 20
)

// Monitoring is the Models view's monitoring of the champion and shadow.
type Monitoring struct {
	// Performance is the realized ROC AUC per monitoring run, champion
	// and shadow.
	Performance Chart `json:"performance"`
	// Drift is the PSI per feature of the champion's latest scoring, nil
	// when it has none (no profile, or no scoring yet); DriftScoring is
	// that scoring.
	Drift        *Chart   `json:"drift"`
	DriftScoring *Scoring `json:"drift_scoring"`
	// Comparison is the latest monitoring run's realized figures of each
	// model it evaluated: champion and, when there was one, shadow.
	Comparison []Performance `json:"comparison"`
	Retrains   []Retrain     `json:"retrains"`
}

func (h *Handler) monitoring(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	perf, err := h.loadPerformance(ctx, 2*performanceRuns)
	if err != nil {
		return nil, err
	}
	scorings, err := h.loadScorings(ctx, "champion", 1)
	if err != nil {
		return nil, err
	}
	m := Monitoring{Performance: performanceChart(perf), Comparison: latestComparison(perf)}
	if m.Retrains, err = h.loadRetrains(ctx, listedRetrains); err != nil {
		return nil, err
	}
	if len(scorings) > 0 && len(scorings[0].PSI) > 0 {
		c := driftChart(scorings[0])
		m.Drift, m.DriftScoring = &c, &scorings[0]
	}
	return m, nil
}

// Performance is a model's realized performance in a monitoring run
// (model_performance).
type Performance struct {
	RunID             string    `json:"run_id"`
	ModelVersion      string    `json:"model_version"`
	Role              string    `json:"role"`
	ScoringID         int64     `json:"scoring_id"`
	SnapshotDate      string    `json:"snapshot_date"`
	LabelWindowDays   int       `json:"label_window_days"`
	Labelled          int       `json:"labelled"`
	Positives         int       `json:"positives"`
	ROCAUC            *float64  `json:"roc_auc"`
	CriticalPrecision *float64  `json:"critical_precision"`
	ComputedAt        time.Time `json:"computed_at"`
}

// loadPerformance reads the n newest realized performance rows, newest run
// first, the champion before the shadow.
func (h *Handler) loadPerformance(ctx context.Context, n int) ([]Performance, error) {
	return collect(ctx, h, "model performance", `
		SELECT run_id, model_version, role, scoring_id, snapshot_date::text, label_window_days, labelled, positives,
		       roc_auc, critical_precision, computed_at
		FROM model_performance ORDER BY computed_at DESC, run_id DESC, role LIMIT $1`,
		pgx.RowToStructByPos[Performance], n)
}

// Retrain is a retraining the monitor triggered (model_retrains).
type Retrain struct {
	RetrainRunID string    `json:"retrain_run_id"`
	MonitorRunID string    `json:"monitor_run_id"`
	ModelVersion string    `json:"model_version"`
	Reason       string    `json:"reason"`
	TriggeredAt  time.Time `json:"triggered_at"`
}

// loadRetrains reads the n newest retrains, newest first.
func (h *Handler) loadRetrains(ctx context.Context, n int) ([]Retrain, error) {
	return collect(ctx, h, "model retrains", `
		SELECT retrain_run_id, monitor_run_id, model_version, reason, triggered_at
		FROM model_retrains ORDER BY triggered_at DESC, retrain_run_id LIMIT $1`,
		pgx.RowToStructByPos[Retrain], n)
}

// performanceRoles are the lines of the realized performance chart.
var performanceRoles = []string{"champion", "shadow"}

// performanceChart draws the realized ROC AUC per monitoring run (perf
// newest first), a line per role; a run without a figure for a role (no
// shadow, one class only) has no point.
func performanceChart(perf []Performance) Chart {
	var runs []string
	at := map[string]time.Time{}
	auc := map[[2]string]float64{}
	for _, p := range perf {
		if _, seen := at[p.RunID]; !seen {
			runs, at[p.RunID] = append(runs, p.RunID), p.ComputedAt
		}
		if p.ROCAUC != nil {
			auc[[2]string{p.RunID, p.Role}] = *p.ROCAUC
		}
	}
	slices.Reverse(runs)
	c := lineChart{ID: "chart-realized-auc", Title: "Realized ROC AUC per monitoring run", XLabel: "monitoring run (day)",
		YLabel: "ROC AUC", Max: 1, Digits: 3,
		Desc: "The champion's and the shadow's ROC AUC on the corrective work orders that followed their scorings, over the last " +
			plural(len(runs), "monitoring run") + "."}
	for _, run := range runs {
		c.X = append(c.X, at[run].UTC().Format(time.DateOnly))
	}
	for _, role := range performanceRoles {
		s := Series{Name: role, Values: make([]float64, len(runs))}
		for i, run := range runs {
			v, ok := auc[[2]string{run, role}]
			if !ok {
				v = math.NaN()
			}
			s.Values[i] = v
		}
		c.Series = append(c.Series, s)
	}
	return c.Render()
}

// latestComparison is the newest run's rows of perf (newest first).
func latestComparison(perf []Performance) []Performance {
	out := []Performance{}
	for _, p := range perf {
		if p.RunID != perf[0].RunID {
			break
		}
		out = append(out, p)
	}
	return out
}

// driftChart draws a scoring's PSI per feature, the most shifted first,
// coloured by drift level, with the warn and alert thresholds' lines: the
// monitor's default ones (the deployer's DRIFT_WARN and DRIFT_ALERT are
// not recorded with a scoring).
func driftChart(s Scoring) Chart {
	th := monitor.DefaultThresholds
	warn, alert := strconv.FormatFloat(th.Warn, 'g', -1, 64), strconv.FormatFloat(th.Alert, 'g', -1, 64)
	c := barChart{ID: "chart-drift", Title: "Drift per feature (PSI)", XLabel: "population stability index", Digits: 3,
		Desc: "PSI of each feature and of the score in the champion " + s.ModelVersion + "'s scoring of " + s.SnapshotDate +
			" against its training profile; from " + warn + " a feature is drifting (warn), from " + alert + " it has shifted (alert).",
		Lines: []Threshold{{Name: "warn " + warn, Value: th.Warn, Class: monitor.LevelWarn},
			{Name: "alert " + alert, Value: th.Alert, Class: monitor.LevelAlert}}}
	for name, v := range s.PSI {
		c.Bars = append(c.Bars, Bar{Name: name, Value: v, Class: th.Level(v)})
	}
	slices.SortFunc(c.Bars, func(a, b Bar) int {
		if a.Value != b.Value {
			if a.Value > b.Value {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return c.Render()
}
