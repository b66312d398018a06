package eventing

import (
	"context"
	"slices"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestInstrumentHelpers checks the unit, description and buckets that
// eventCounter and secondsHistogram give the router's and relay's metrics.
func TestInstrumentHelpers(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	m := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter(ScopeName)
	eventCounter(m, "test.count", "counted events").Add(ctx, 2)
	secondsHistogram(m, "test.seconds", "timed things", []float64{1, 10}).Record(ctx, 3)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			got[mt.Name] = mt
		}
	}
	c := got["test.count"]
	sum, ok := c.Data.(metricdata.Sum[int64])
	if c.Unit != "{event}" || c.Description != "counted events" || !ok || !sum.IsMonotonic ||
		len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != 2 {
		t.Errorf("eventCounter: %+v", c)
	}
	h := got["test.seconds"]
	hist, ok := h.Data.(metricdata.Histogram[float64])
	if h.Unit != "s" || h.Description != "timed things" || !ok || len(hist.DataPoints) != 1 ||
		!slices.Equal(hist.DataPoints[0].Bounds, []float64{1, 10}) || !slices.Equal(hist.DataPoints[0].BucketCounts, []uint64{0, 1, 0}) {
		t.Errorf("secondsHistogram: %+v", h)
	}
}
