package terraformcheck

import (
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// ---- monitoring -------------------------------------------------------------------

// policy is an alert policy instance, evaluated.
type policy struct {
	in       *Instance
	queries  []string // its PromQL conditions
	enabled  bool
	channels []string
}

// monitoring checks every expected alert has an enabled policy with a
// PromQL condition on its metric that notifies every notification channel,
// and a dashboard charts every expected metric.
func (c *checker) monitoring() {
	c.unevaluated(c.root, "google_monitoring_alert_policy")
	var channels []string
	for _, in := range instances(c.root, "google_monitoring_notification_channel") {
		channels = append(channels, in.Ref("id"))
	}
	var policies []policy
	for _, in := range instances(c.root, "google_monitoring_alert_policy") {
		policies = append(policies, c.policy(in))
	}
	for _, a := range c.exp.Alerts {
		i := slices.IndexFunc(policies, func(p policy) bool {
			return slices.ContainsFunc(p.queries, func(q string) bool { return a.matches(q) })
		})
		if i < 0 {
			c.fail("alert %s: no google_monitoring_alert_policy with a PromQL condition on %s%s",
				a.Name, a.Metric, matchers(a.Matchers))
			continue
		}
		p := policies[i]
		if !p.enabled {
			c.fail("alert %s (%s): disabled", a.Name, p.in.addr())
		}
		for _, ch := range channels {
			if !slices.Contains(p.channels, ch) {
				c.fail("alert %s (%s): does not notify %s", a.Name, p.in.addr(), strings.TrimPrefix(ch, "ref:"))
			}
		}
	}
	c.dashboard()
}

func matchers(m []string) string {
	if len(m) == 0 {
		return ""
	}
	return "{" + strings.Join(m, ",") + "}"
}

// matches reports whether the query reads the alert's metric (the whole
// name, not a longer one it begins) with each of its matchers.
func (a Alert) matches(q string) bool {
	found := false
	for rest := q; ; {
		i := strings.Index(rest, a.Metric)
		if i < 0 {
			break
		}
		after := rest[i+len(a.Metric):]
		if after == "" || !isNameChar(after[0]) {
			found = true
			break
		}
		rest = after
	}
	if !found {
		return false
	}
	for _, m := range a.Matchers {
		if !strings.Contains(q, m) {
			return false
		}
	}
	return true
}

func isNameChar(b byte) bool {
	return b == '_' || b == ':' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// policy evaluates an alert policy: its PromQL queries (every conditions
// block), enabled (true unless set false) and notification channels.
func (c *checker) policy(in *Instance) policy {
	p := policy{in: in, enabled: true}
	if v := c.attr(c.root, in, "enabled"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool {
		p.enabled = v.True()
	}
	for _, cond := range in.Block.Body.Blocks {
		if cond.Type != "conditions" {
			continue
		}
		for _, b := range cond.Body.Blocks {
			if b.Type != "condition_prometheus_query_language" {
				continue
			}
			if a, ok := b.Body.Attributes["query"]; ok {
				if v, diags := a.Expr.Value(c.root.ctx(in)); !diags.HasErrors() {
					if q, ok := str(v); ok {
						p.queries = append(p.queries, q)
					}
				}
			}
		}
	}
	if v := c.attr(c.root, in, "notification_channels"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.CanIterateElements() {
		for it := v.ElementIterator(); it.Next(); {
			_, x := it.Element()
			if s, ok := str(x); ok {
				p.channels = append(p.channels, s)
			}
		}
	}
	return p
}

// dashboard checks some dashboard charts each expected metric.
func (c *checker) dashboard() {
	if len(c.exp.Dashboard) == 0 {
		return
	}
	var docs []string
	for _, in := range instances(c.root, "google_monitoring_dashboard") {
		if j, ok := str(c.attr(c.root, in, "dashboard_json")); ok {
			docs = append(docs, j)
		}
	}
	if len(docs) == 0 {
		c.fail("dashboard: no google_monitoring_dashboard (with a known dashboard_json)")
		return
	}
	for _, m := range c.exp.Dashboard {
		// A histogram is charted through its series: _bucket, _sum, _count.
		charted := func(d string) bool {
			return slices.ContainsFunc([]string{"", "_bucket", "_sum", "_count"}, func(suffix string) bool {
				return Alert{Metric: m + suffix}.matches(d)
			})
		}
		if !slices.ContainsFunc(docs, charted) {
			c.fail("dashboard: no chart of %s", m)
		}
	}
}
