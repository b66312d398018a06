package notifier_test

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/notifier"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

// The default rules parse, and their file documents every metric a rule
// may name, with its description from rules.Metrics.
func TestDefaultAlertRules(t *testing.T) {
	rs, err := rules.Parse(notifier.DefaultAlertRules)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no default rules")
	}
	doc := string(notifier.DefaultAlertRules)
	for _, m := range rules.Metrics {
		desc, _, _ := strings.Cut(m.Doc, " (KPI ")
		if !strings.Contains(doc, m.Name) || !strings.Contains(doc, desc) {
			t.Errorf("alerts.yaml does not document %s (%s)", m.Name, desc)
		}
	}
}
