package rules

import (
	"maps"
	"math"
	"slices"
)

// Source is the event a metric is observed from.
type Source string

// Sources, with the period their observations are for.
const (
	SourceReport     Source = "report"     // report.generated: the ISO week reported on
	SourceScoring    Source = "scoring"    // model.deployed: the run's logical date
	SourceMonitoring Source = "monitoring" // model.monitored: its snapshot date
)

// Inputs are the figures of one event metrics are read from; a source
// fills what its event carries.
type Inputs struct {
	KPIs           map[string]float64 // report: report.generated's kpis
	RiskLevels     map[string]int32   // scoring, monitoring: count per risk level
	PSI            map[string]float64 // scoring, monitoring: per feature and "score"
	Drift          string             // monitoring: ok, warn or alert
	Realized       map[string]float64 // monitoring: the champion's realized performance
	ShadowRealized map[string]float64 // monitoring: the shadow's
}

// Metric is a figure a rule may watch.
type Metric struct {
	Name    string
	Sources []Source
	Doc     string
	// value reads the metric from an event's inputs; ok is false when the
	// event does not carry it (no observation then).
	value func(Inputs) (v float64, ok bool)
}

// Metrics is every metric rules may name, with where it comes from: the
// table validation checks names against and Doc lists.
var Metrics = []Metric{
	kpi("kpi.work_orders_overdue", "wo_overdue", "work orders overdue at the end of the week"),
	kpi("kpi.work_orders_pending", "wo_pending", "work orders pending (open) at the end of the week"),
	kpi("kpi.work_orders_opened", "wo_opened", "work orders opened in the week"),
	kpi("kpi.mttr_hours", "mttr_hours", "mean time to repair in the week, hours"),
	kpi("kpi.pm_compliance_pct", "pm_compliance_pct", "preventive work orders completed by their due date, %"),
	kpi("kpi.planned_maintenance_pct", "planned_maintenance_pct", "planned share of maintenance, %"),
	kpi("kpi.low_stock_items", "inventory_at_or_below_reorder", "inventory items at or below their reorder level"),
	kpi("kpi.high_risk_assets", "ml_high_risk", "assets at high failure risk in the week's report"),
	kpi("kpi.critical_risk_assets", "ml_critical", "assets at critical failure risk in the week's report"),
	{Name: "model.critical_risk_vehicles", Sources: scorings, Doc: "vehicles the champion scores at critical risk",
		value: func(in Inputs) (float64, bool) { return level(in, "critical") }},
	{Name: "model.high_risk_vehicles", Sources: scorings, Doc: "vehicles the champion scores at high risk",
		value: func(in Inputs) (float64, bool) { return level(in, "high") }},
	{Name: "model.drift_psi_max", Sources: scorings, Doc: "highest PSI of a feature or the score against the training profile",
		value: func(in Inputs) (float64, bool) { return maxOf(in.PSI) }},
	{Name: "model.score_psi", Sources: scorings, Doc: "PSI of the score distribution against the training profile",
		value: func(in Inputs) (float64, bool) { return get(in.PSI, "score") }},
	{Name: "model.drift_level", Sources: monitoring, Doc: "drift band of the highest PSI: 0 ok, 1 warn, 2 alert",
		value: driftLevel},
	{Name: "model.realized_roc_auc", Sources: monitoring, Doc: "the champion's realized ROC AUC on labelled past scores",
		value: func(in Inputs) (float64, bool) { return get(in.Realized, "roc_auc") }},
	{Name: "model.realized_critical_precision", Sources: monitoring, Doc: "share of the champion's past critical scores that failed",
		value: func(in Inputs) (float64, bool) { return get(in.Realized, "critical_precision") }},
	{Name: "model.shadow_realized_roc_auc", Sources: monitoring, Doc: "the shadow's realized ROC AUC",
		value: func(in Inputs) (float64, bool) { return get(in.ShadowRealized, "roc_auc") }},
	{Name: "model.shadow_roc_auc_gain", Sources: monitoring, Doc: "the shadow's realized ROC AUC minus the champion's",
		value: shadowGain},
}

var (
	scorings   = []Source{SourceScoring, SourceMonitoring}
	monitoring = []Source{SourceMonitoring}
)

func kpi(name, key, doc string) Metric {
	return Metric{Name: name, Sources: []Source{SourceReport}, Doc: doc + " (KPI " + key + ")",
		value: func(in Inputs) (float64, bool) { return get(in.KPIs, key) }}
}

// metric returns the metric named name.
func metric(name string) (Metric, bool) {
	i := slices.IndexFunc(Metrics, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	return Metrics[i], true
}

// Sample is every metric of src that in carries, by name. NaN and
// infinities are left out: they compare with nothing.
func Sample(src Source, in Inputs) map[string]float64 {
	out := map[string]float64{}
	for _, m := range Metrics {
		if !slices.Contains(m.Sources, src) {
			continue
		}
		if v, ok := m.value(in); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[m.Name] = v
		}
	}
	return out
}

func get(m map[string]float64, key string) (float64, bool) {
	v, ok := m[key]
	return v, ok
}

func level(in Inputs, l string) (float64, bool) {
	if len(in.RiskLevels) == 0 {
		return 0, false
	}
	return float64(in.RiskLevels[l]), true
}

func maxOf(m map[string]float64) (float64, bool) {
	if len(m) == 0 {
		return 0, false
	}
	return slices.Max(slices.Collect(maps.Values(m))), true
}

func driftLevel(in Inputs) (float64, bool) {
	i := slices.Index([]string{"ok", "warn", "alert"}, in.Drift)
	return float64(i), i >= 0
}

func shadowGain(in Inputs) (float64, bool) {
	s, ok := get(in.ShadowRealized, "roc_auc")
	c, ok2 := get(in.Realized, "roc_auc")
	return s - c, ok && ok2
}
