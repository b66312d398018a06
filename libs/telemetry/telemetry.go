// Package telemetry sets up a service's OpenTelemetry providers: traces to
// an OTLP endpoint when one is configured (none otherwise: a no-op tracer,
// near zero cost), and metrics for Prometheus at /metrics.
//
// On Google Cloud, traces go to Cloud Trace through an OpenTelemetry
// Collector (e.g. a Cloud Run sidecar) at the OTLP endpoint, and metrics to
// Cloud Monitoring by a collector or Managed Service for Prometheus scraping
// /metrics: Google's Go exporters for Cloud Trace and Cloud Monitoring
// (opentelemetry-operations-go exporter/trace and exporter/metric) are
// deprecated in favour of OTLP.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Config selects the exporters. Its fields come from the standard
// OpenTelemetry environment variables (config.Common); the exporters also
// read the other standard variables themselves (OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_*, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
type Config struct {
	Service string // service.name (OTEL_SERVICE_NAME overrides it)
	// TracesExporter is OTEL_TRACES_EXPORTER: "otlp", "none", or empty:
	// otlp when an OTLP endpoint is set, none otherwise.
	TracesExporter string
	// OTLPEndpoint is OTEL_EXPORTER_OTLP_ENDPOINT, the collector's base URL
	// (http/protobuf: /v1/traces is appended); OTLPTracesEndpoint is
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the full URL, and wins.
	OTLPEndpoint       string
	OTLPTracesEndpoint string
	// OTLPProtocol is OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (default)
	// or grpc.
	OTLPProtocol string
	// Metrics on serves the Prometheus handler; off makes every instrument a
	// no-op.
	Metrics bool
}

// Telemetry is a service's providers. Tracing off gives a no-op tracer
// provider; metrics off a no-op meter provider and no handler.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Metrics serves the metrics in the Prometheus text format; nil when
	// metrics are off.
	Metrics http.Handler

	exporter  string
	shutdowns []func(context.Context) error
}

// Tracing reports whether spans are exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.exporter != "" }

// Exporter names the trace exporter: "otlp (http/protobuf) to URL", or "".
func (t *Telemetry) Exporter() string {
	if t == nil {
		return ""
	}
	return t.exporter
}

// New builds the providers c asks for and installs the W3C trace context
// propagator globally (always: a caller's traceparent is continued even
// with tracing off) and, when tracing is on, the tracer provider as the
// global one (for libraries that trace, such as Google's gRPC clients).
func New(ctx context.Context, c Config) (*Telemetry, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t := &Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	exporter := strings.ToLower(strings.TrimSpace(c.TracesExporter))
	if exporter == "" && (c.OTLPEndpoint != "" || c.OTLPTracesEndpoint != "") {
		exporter = "otlp"
	}
	if exporter != "" && exporter != "none" && exporter != "otlp" {
		return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: want otlp or none", c.TracesExporter)
	}
	if exporter != "otlp" && !c.Metrics {
		return t, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", c.Service), attribute.String("service.namespace", "cmmsflow")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	if exporter == "otlp" {
		exp, desc, err := otlpExporter(ctx, c)
		if err != nil {
			return nil, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.TracerProvider, t.exporter = tp, desc
		t.shutdowns = append(t.shutdowns, tp.Shutdown)
		otel.SetTracerProvider(tp)
	}
	if c.Metrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, errors.Join(fmt.Errorf("telemetry: prometheus exporter: %w", err), t.Shutdown(ctx))
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		t.MeterProvider, t.Metrics = mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		t.shutdowns = append(t.shutdowns, mp.Shutdown)
	}
	return t, nil
}

func otlpExporter(ctx context.Context, c Config) (sdktrace.SpanExporter, string, error) {
	proto := strings.ToLower(strings.TrimSpace(c.OTLPProtocol))
	switch proto {
	case "", "http/protobuf":
		proto = "http/protobuf"
		var opts []otlptracehttp.Option
		switch {
		case c.OTLPTracesEndpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(c.OTLPTracesEndpoint))
		case c.OTLPEndpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(c.OTLPEndpoint, "/")+"/v1/traces"))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: otlp exporter: %w", err)
		}
		return exp, "otlp (" + proto + ") to " + endpointOf(c, "/v1/traces"), nil
	case "grpc":
		var opts []otlptracegrpc.Option
		switch {
		case c.OTLPTracesEndpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.OTLPTracesEndpoint))
		case c.OTLPEndpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.OTLPEndpoint))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: otlp exporter: %w", err)
		}
		return exp, "otlp (grpc) to " + endpointOf(c, ""), nil
	}
	return nil, "", fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", c.OTLPProtocol)
}

func endpointOf(c Config, path string) string {
	switch {
	case c.OTLPTracesEndpoint != "":
		return c.OTLPTracesEndpoint
	case c.OTLPEndpoint != "":
		return strings.TrimSuffix(c.OTLPEndpoint, "/") + path
	}
	return "the exporter's default endpoint"
}

// Shutdown flushes pending spans and stops the providers, within ctx's
// deadline. A nil Telemetry has nothing to stop.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	for _, f := range t.shutdowns {
		errs = append(errs, f(ctx))
	}
	t.shutdowns = nil
	return errors.Join(errs...)
}
