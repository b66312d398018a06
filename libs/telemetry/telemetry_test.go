package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/telemetry"
)

func TestNoExporterByDefault(t *testing.T) {
	tel, err := telemetry.New(context.Background(), telemetry.Config{Service: "pmgen"})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing() || tel.Metrics != nil {
		t.Fatalf("tracing %v (%s), metrics %v: want neither", tel.Tracing(), tel.Exporter(), tel.Metrics != nil)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("a span records with no exporter")
	}
	span.End()
	for _, c := range []telemetry.Config{{TracesExporter: "zipkin"}, {OTLPEndpoint: "http://127.0.0.1:1", OTLPProtocol: "thrift"}} {
		if _, err := telemetry.New(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if tel, err := telemetry.New(context.Background(), telemetry.Config{TracesExporter: "none", OTLPEndpoint: "http://127.0.0.1:1"}); err != nil || tel.Tracing() {
		t.Errorf("OTEL_TRACES_EXPORTER=none with an endpoint: tracing %v %v", tel.Tracing(), err)
	}
}

// TestOTLPEndpointGetsSpans: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans
// are posted to <endpoint>/v1/traces, at the latest on Shutdown.
func TestOTLPEndpointGetsSpans(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			if b, _ := io.ReadAll(r.Body); len(b) > 0 {
				posts.Add(1)
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{Service: "pmgen", OTLPEndpoint: srv.URL + "/", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Tracing() || !strings.Contains(tel.Exporter(), srv.URL+"/v1/traces") {
		t.Fatalf("exporter %q", tel.Exporter())
	}
	_, span := tel.TracerProvider.Tracer("t").Start(ctx, "x")
	if !span.IsRecording() {
		t.Fatal("span not recording with an exporter")
	}
	span.End()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans posted to /v1/traces")
	}
}
