// Package metricstest reads control's run metrics in tests: New makes a
// runstore.Metrics on a meter provider with a manual reader, and Points
// reads one instrument's data points by their attributes.
package metricstest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Reader collects the metrics of one meter provider.
type Reader struct{ r *sdkmetric.ManualReader }

// New returns run metrics whose queued gauge reads db, and their reader.
func New(t testing.TB, db runstore.DB) (*runstore.Metrics, *Reader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := runstore.NewMetrics(mp, db)
	if err != nil {
		t.Fatal(err)
	}
	return m, &Reader{r: r}
}

// Point is one data point: a counter's or gauge's Value, or a histogram's
// Count and Sum.
type Point struct {
	Value float64
	Count uint64
	Sum   float64
}

// Points collects now and returns the data points of the instrument name
// by their attributes, written "k=v,k=v" in key order; with the unit it was
// created with ("" when it has no points).
func (r *Reader) Points(t testing.TB, name string) (points map[string]Point, unit string) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points = map[string]Point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			unit = m.Unit
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = Point{Value: float64(p.Value)}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = Point{Value: float64(p.Value)}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = Point{Count: p.Count, Sum: p.Sum}
				}
			default:
				t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
		}
	}
	return points, unit
}

// key writes an attribute set "k=v,k=v" in key order.
func key(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }
