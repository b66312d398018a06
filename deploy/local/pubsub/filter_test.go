package pubsub

import (
	"net/url"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	a := map[string]string{"pipeline": "etl_ml_training", "run_id": "r-1", "ce-type": "cmmsflow.run.started.v1"}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{``, true},
		{`attributes.pipeline = "etl_ml_training"`, true},
		{`attributes.pipeline = "weekly_kpi_report"`, false},
		{`attributes.pipeline != "weekly_kpi_report"`, true},
		{`attributes.missing != "x"`, true},
		{`attributes.missing = ""`, false},
		{`attributes:run_id`, true},
		{`attributes:missing`, false},
		{`NOT attributes:missing`, true},
		{`-attributes:run_id`, false},
		{`hasPrefix(attributes.pipeline, "etl_")`, true},
		{`hasPrefix(attributes.missing, "")`, false},
		{`attributes.ce-type = "cmmsflow.run.started.v1"`, true},
		{`attributes."ce-type" = 'cmmsflow.run.started.v1'`, true},
		{`attributes:pipeline AND attributes.pipeline = "x"`, false},
		{`attributes.pipeline = "x" OR attributes:run_id`, true},
		{`(attributes.pipeline = "x" OR attributes.pipeline = "etl_ml_training") AND NOT attributes:missing`, true},
		{`attributes.pipeline = "etl\u005fml_training"`, true},
	} {
		m, err := parseFilter(tc.filter)
		if err != nil {
			t.Errorf("parseFilter(%s): %v", tc.filter, err)
			continue
		}
		if got := m(a); got != tc.want {
			t.Errorf("%s on %v = %v, want %v", tc.filter, a, got, tc.want)
		}
	}
	for _, bad := range []string{
		`attributes.pipeline = `,
		`attributes.pipeline == "x"`,
		`pipeline = "x"`,
		`attributes.pipeline = "x" AND`,
		`(attributes:pipeline`,
		`attributes.pipeline = "x`,
		`hasPrefix(attributes.pipeline)`,
	} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("parseFilter(%s) accepted it", bad)
		}
	}
	// Every registry filter parses and means what it says.
	for _, s := range events.Subscriptions() {
		if s.Filter() == "" {
			continue
		}
		if err := pstest.ValidateFilter(s.Filter()); err != nil {
			t.Errorf("pstest rejects %s: %v", s.Filter(), err)
		}
		m, err := parseFilter(s.Filter())
		if err != nil {
			t.Fatalf("%s: %v", s.Filter(), err)
		}
		for _, p := range s.Pipelines {
			if !m(map[string]string{"pipeline": p}) || m(map[string]string{"pipeline": p + "x"}) {
				t.Errorf("%s does not select exactly pipelines %v", s.Filter(), s.Pipelines)
			}
		}
		if m(nil) {
			t.Errorf("%s selects a message with no pipeline", s.Filter())
		}
	}
}

func TestGateTarget(t *testing.T) {
	t.Parallel()
	g := &gate{base: "http://127.0.0.1:9"}
	var filtered events.Subscription
	for _, s := range events.Subscriptions() {
		if s.Filter() != "" {
			filtered = s
		}
	}
	u, err := url.Parse(g.pushURL(filtered, "http://127.0.0.1:8081/x") + PushPath + "?a=b")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := gateTarget(u); err != nil || got != "http://127.0.0.1:8081/x/events?a=b" {
		t.Errorf("gateTarget(%s) = %q, %v", u, got, err)
	}
	unfiltered := events.Subscription{ID: "x", Topic: "y", Service: "control"}
	if got := g.pushURL(unfiltered, "http://127.0.0.1:8081"); got != "http://127.0.0.1:8081" {
		t.Errorf("unfiltered subscription routed through the gate: %s", got)
	}
	for _, target := range []string{"http://example.com", "file:///etc/passwd", "http://10.0.0.1:80"} {
		u, _ := url.Parse(g.pushURL(filtered, target) + PushPath)
		if got, err := gateTarget(u); err == nil {
			t.Errorf("gateTarget forwards to %s", got)
		}
	}
}
