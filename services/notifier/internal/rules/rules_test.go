package rules_test

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

func TestParse(t *testing.T) {
	rs, err := rules.Parse([]byte(`
rules:
  - name: overdue
    metric: kpi.work_orders_overdue
    comparator: ">"
    threshold: 10
    severity: warning
    channels: [email, webhook]
  - name: decay
    metric: model.realized_roc_auc
    comparator: "<="
    threshold: 0.6
    for: 3
    severity: critical
    channels: [pagerduty]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d rules, want 2", len(rs))
	}
	if r := rs[0]; r.Name != "overdue" || r.For != 1 || r.Comparator != ">" || r.Threshold != 10 || r.Severity != "warning" ||
		strings.Join(r.Channels, ",") != "email,webhook" {
		t.Errorf("first rule %+v (for defaults to 1)", r)
	}
	if r := rs[1]; r.For != 3 || r.Threshold != 0.6 || !r.Watches(rules.SourceMonitoring) || r.Watches(rules.SourceReport) {
		t.Errorf("second rule %+v", r)
	}
	if rs, err := rules.Parse(nil); err != nil || len(rs) != 0 {
		t.Errorf("an empty file: %v, %v; want no rules", rs, err)
	}
}

func TestParseErrorsNameTheRuleAndField(t *testing.T) {
	const ok = "    metric: kpi.work_orders_overdue\n    comparator: \">\"\n    threshold: 1\n    severity: info\n    channels: [email]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown metric", "  - name: a\n    metric: kpi.nope\n    comparator: \">\"\n    threshold: 1\n    severity: info\n    channels: [email]\n",
			`rule 1 ("a"): metric: unknown metric "kpi.nope"`},
		{"bad comparator", "  - name: a\n    metric: kpi.mttr_hours\n    comparator: \"=>\"\n    threshold: 1\n    severity: info\n    channels: [email]\n",
			`rule 1 ("a"): comparator: "=>"`},
		{"unknown channel", "  - name: a\n    metric: kpi.mttr_hours\n    comparator: \">\"\n    threshold: 1\n    severity: info\n    channels: [email, sms]\n",
			`rule 1 ("a"): channels: unknown channel "sms"`},
		{"no channel", "  - name: a\n    metric: kpi.mttr_hours\n    comparator: \">\"\n    threshold: 1\n    severity: info\n",
			`rule 1 ("a"): channels: none`},
		{"for below 1", "  - name: a\n    for: 0\n" + ok, `rule 1 ("a"): for: 0, want at least 1`},
		{"duplicate name", "  - name: a\n" + ok + "  - name: a\n" + ok, `rule 2 ("a"): name: duplicate`},
		{"bad severity", "  - name: a\n    metric: kpi.mttr_hours\n    comparator: \">\"\n    threshold: 1\n    severity: high\n    channels: [email]\n",
			`rule 1 ("a"): severity: "high"`},
		{"no threshold", "  - name: a\n    metric: kpi.mttr_hours\n    comparator: \">\"\n    severity: info\n    channels: [email]\n",
			`rule 1 ("a"): threshold: missing`},
		{"bad name", "  - name: Has Space\n" + ok, `rule 1 ("Has Space"): name:`},
		{"unknown field", "  - name: a\n    treshold: 3\n" + ok, `field treshold not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.Parse([]byte("rules:\n" + tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBreached(t *testing.T) {
	for _, tc := range []struct {
		c    rules.Comparator
		v    float64
		want bool
	}{
		{">", 5, false}, {">", 5.1, true}, {">=", 5, true}, {">=", 4.9, false},
		{"<", 5, false}, {"<", 4.9, true}, {"<=", 5, true}, {"<=", 5.1, false},
	} {
		if got := tc.c.Breached(tc.v, 5); got != tc.want {
			t.Errorf("%v %s 5: %v, want %v", tc.v, tc.c, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	r := rules.Rule{Name: "r", For: 2}
	obs := func(s ...string) []rules.Observation { // newest first: "p:1" breached, "p:0" not
		var out []rules.Observation
		for _, o := range s {
			p, b, _ := strings.Cut(o, ":")
			out = append(out, rules.Observation{Period: p, Breached: b == "1"})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		recent []rules.Observation
		opened string
		want   rules.Decision
	}{
		{"no observation", nil, "", rules.None},
		{"one breach of two needed", obs("d2:1"), "", rules.None},
		{"two breaches in a row", obs("d2:1", "d1:1"), "", rules.Open},
		{"current not breached", obs("d2:0", "d1:1"), "", rules.None},
		{"older not breached", obs("d2:1", "d1:0"), "", rules.None},
		{"open, still breached", obs("d3:1", "d2:1"), "d2", rules.None},
		{"open, cleared", obs("d3:0", "d2:1"), "d2", rules.Resolve},
		{"open, an older period arriving late never resolves", obs("d1:0"), "d2", rules.None},
		{"open, the opening period again", obs("d2:0"), "d2", rules.None},
	} {
		if got := rules.Decide(r, tc.recent, tc.opened); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := rules.Decide(rules.Rule{For: 1}, obs("w48:1"), ""); got != rules.Open {
		t.Errorf("for 1: one breach: %v, want open", got)
	}
}

func TestSample(t *testing.T) {
	in := rules.Inputs{
		KPIs:           map[string]float64{"wo_overdue": 12, "pm_compliance_pct": 75.5, "inventory_at_or_below_reorder": 3},
		RiskLevels:     map[string]int32{"low": 40, "critical": 6},
		PSI:            map[string]float64{"age": 0.31, "score": 0.12},
		Drift:          "warn",
		Realized:       map[string]float64{"roc_auc": 0.7, "critical_precision": 0.5},
		ShadowRealized: map[string]float64{"roc_auc": 0.75},
	}
	report := rules.Sample(rules.SourceReport, in)
	if report["kpi.work_orders_overdue"] != 12 || report["kpi.pm_compliance_pct"] != 75.5 || report["kpi.low_stock_items"] != 3 {
		t.Errorf("report sample %v", report)
	}
	if _, ok := report["kpi.mttr_hours"]; ok {
		t.Error("a KPI the report lacks was sampled")
	}
	if _, ok := report["model.critical_risk_vehicles"]; ok {
		t.Error("a model metric sampled from a report")
	}
	scoring := rules.Sample(rules.SourceScoring, in)
	if scoring["model.critical_risk_vehicles"] != 6 || scoring["model.high_risk_vehicles"] != 0 ||
		scoring["model.drift_psi_max"] != 0.31 || scoring["model.score_psi"] != 0.12 {
		t.Errorf("scoring sample %v", scoring)
	}
	if _, ok := scoring["model.realized_roc_auc"]; ok {
		t.Error("a monitoring metric sampled from a scoring")
	}
	mon := rules.Sample(rules.SourceMonitoring, in)
	if mon["model.drift_level"] != 1 || mon["model.realized_roc_auc"] != 0.7 || mon["model.realized_critical_precision"] != 0.5 ||
		mon["model.shadow_realized_roc_auc"] != 0.75 || mon["model.shadow_roc_auc_gain"] < 0.0499 || mon["model.shadow_roc_auc_gain"] > 0.0501 {
		t.Errorf("monitoring sample %v", mon)
	}
	if empty := rules.Sample(rules.SourceMonitoring, rules.Inputs{}); len(empty) != 0 {
		t.Errorf("sample of nothing: %v", empty)
	}
}
