package terraformcheck

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cmmsflow/cmmsflow/libs/telemetry"
)

// TestMetricsPrometheusNames records each instrument of Metrics, with its
// kind and unit, through the services' own exporter (libs/telemetry) and
// reads /metrics: the Prometheus names the alerts and the dashboard query
// are the ones the exporter writes.
func TestMetricsPrometheusNames(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{Service: "terraformcheck", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	m := tel.MeterProvider.Meter("terraformcheck")
	attrs := metric.WithAttributes(attribute.String("pipeline", "p"))
	for _, x := range Metrics {
		var err error
		switch x.Kind {
		case "counter":
			var c metric.Int64Counter
			c, err = m.Int64Counter(x.OTel, metric.WithUnit(x.Unit))
			if err == nil {
				c.Add(ctx, 1, attrs)
			}
		case "histogram":
			var h metric.Float64Histogram
			h, err = m.Float64Histogram(x.OTel, metric.WithUnit(x.Unit))
			if err == nil {
				h.Record(ctx, 1.5, attrs)
			}
		case "gauge":
			var g metric.Float64Gauge
			g, err = m.Float64Gauge(x.OTel, metric.WithUnit(x.Unit))
			if err == nil {
				g.Record(ctx, 2, attrs)
			}
		default:
			t.Fatalf("%s: kind %q", x.OTel, x.Kind)
		}
		if err != nil {
			t.Fatalf("%s: %v", x.OTel, err)
		}
	}
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, x := range Metrics {
		want := x.Prom + `{pipeline="p"} `
		if x.Kind == "histogram" {
			want = x.Prom + `_bucket{pipeline="p",le="+Inf"} 1`
		}
		if !strings.Contains(string(body), want) {
			t.Errorf("%s (%s, %s): no %q in /metrics:\n%s", x.OTel, x.Kind, x.Unit, want, body)
		}
	}
}
