// Package rules is the alert rule engine: it parses and validates the rule
// file, reads metrics from events (Metrics, Sample) and decides, from a
// rule's recent observations, whether to open or resolve its alert. It does
// no I/O: notify stores the observations and alerts.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Channels a rule may notify.
const (
	ChannelEmail     = "email"
	ChannelWebhook   = "webhook"
	ChannelPagerDuty = "pagerduty"
)

var (
	channels   = []string{ChannelEmail, ChannelWebhook, ChannelPagerDuty}
	severities = []string{"info", "warning", "error", "critical"}
	// names become part of alert dedup keys: cmmsflow/rule/<name>/<period>.
	validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,99}$`)
)

// Rule watches one metric.
type Rule struct {
	Name       string
	Metric     string
	Comparator Comparator
	Threshold  float64
	For        int // consecutive periods the condition must hold
	Severity   string
	Channels   []string
}

// Comparator compares an observed value with a threshold.
type Comparator string

// Breached reports whether v compared with threshold holds.
func (c Comparator) Breached(v, threshold float64) bool {
	switch c {
	case ">":
		return v > threshold
	case ">=":
		return v >= threshold
	case "<":
		return v < threshold
	case "<=":
		return v <= threshold
	}
	return false
}

// ruleYAML is a rule as written; pointers tell a missing field from zero.
type ruleYAML struct {
	Name       string   `yaml:"name"`
	Metric     string   `yaml:"metric"`
	Comparator string   `yaml:"comparator"`
	Threshold  *float64 `yaml:"threshold"`
	For        *int     `yaml:"for"`
	Severity   string   `yaml:"severity"`
	Channels   []string `yaml:"channels"`
}

// Parse reads a rule file ({rules: [...]}) and validates every rule. An
// unknown field is an error; errors name the rule (by name, or position)
// and the field.
func Parse(data []byte) ([]Rule, error) {
	var file struct {
		Rules []ruleYAML `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("rules: %w", err)
	}
	out := make([]Rule, 0, len(file.Rules))
	seen := map[string]bool{}
	for i, y := range file.Rules {
		r, err := y.rule()
		if err != nil {
			return nil, fmt.Errorf("rules: rule %d (%q): %w", i+1, y.Name, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("rules: rule %d (%q): name: duplicate", i+1, r.Name)
		}
		seen[r.Name] = true
		out = append(out, r)
	}
	return out, nil
}

// rule validates y and applies the defaults (for: 1).
func (y ruleYAML) rule() (Rule, error) {
	r := Rule{Name: y.Name, Metric: y.Metric, Comparator: Comparator(y.Comparator), For: 1, Severity: y.Severity,
		Channels: y.Channels}
	if !validName.MatchString(y.Name) {
		return r, errors.New("name: want 1 to 100 of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
	}
	if _, ok := metric(y.Metric); !ok {
		return r, fmt.Errorf("metric: unknown metric %q", y.Metric)
	}
	if !slices.Contains([]Comparator{">", ">=", "<", "<="}, r.Comparator) {
		return r, fmt.Errorf("comparator: %q, want >, >=, < or <=", y.Comparator)
	}
	if y.Threshold == nil {
		return r, errors.New("threshold: missing")
	}
	r.Threshold = *y.Threshold
	if y.For != nil {
		if *y.For < 1 {
			return r, fmt.Errorf("for: %d, want at least 1", *y.For)
		}
		r.For = *y.For
	}
	if !slices.Contains(severities, y.Severity) {
		return r, fmt.Errorf("severity: %q, want one of %v", y.Severity, severities)
	}
	if len(y.Channels) == 0 {
		return r, errors.New("channels: none, want some of email, webhook, pagerduty")
	}
	for _, c := range y.Channels {
		if !slices.Contains(channels, c) {
			return r, fmt.Errorf("channels: unknown channel %q, want email, webhook or pagerduty", c)
		}
	}
	return r, nil
}

// Watches reports whether r's metric is observed from src.
func (r Rule) Watches(src Source) bool {
	m, ok := metric(r.Metric)
	return ok && slices.Contains(m.Sources, src)
}

// Observation is a rule's verdict for one period.
type Observation struct {
	Period   string
	Breached bool
}

// Decision is what to do with a rule's alert.
type Decision int

const (
	None    Decision = iota
	Open             // open an alert, for the current period
	Resolve          // resolve the open alert
)

// Decide decides on r's alert from its recent observations — newest
// first, at most r.For of them, recent[0] the current period's — and the
// period its open alert was opened for ("" when none is open). An alert
// opens when the last r.For periods all breached; an open alert resolves on
// a later period that does not breach (an older period arriving late never
// resolves it). Periods order as strings: ISO weeks among themselves,
// dates among themselves.
func Decide(r Rule, recent []Observation, openedPeriod string) Decision {
	if len(recent) == 0 {
		return None
	}
	cur := recent[0]
	if openedPeriod != "" {
		if !cur.Breached && cur.Period > openedPeriod {
			return Resolve
		}
		return None
	}
	if len(recent) < r.For {
		return None
	}
	for _, o := range recent[:r.For] {
		if !o.Breached {
			return None
		}
	}
	return Open
}
