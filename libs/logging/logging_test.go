package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cmmsflow/cmmsflow/libs/logging"
)

func spanContext(t *testing.T) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
}

func TestJSONLinesInASpanCarryCloudLoggingTraceKeys(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Format: "json", ProjectID: "acme"}).With("service", "pmgen")
	log.InfoContext(spanContext(t), "in a span", "run_id", "r1")
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", lines)
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"severity": "INFO", "message": "in a span", "service": "pmgen", "run_id": "r1",
		"logging.googleapis.com/trace":         "projects/acme/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"logging.googleapis.com/spanId":        "00f067aa0ba902b7",
		"logging.googleapis.com/trace_sampled": true,
	}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, in[k], v, lines[0])
		}
	}
	for k := range out {
		if strings.HasPrefix(k, "logging.googleapis.com/") || strings.Contains(k, "trace") {
			t.Errorf("line outside a span has %s: %s", k, lines[1])
		}
	}
}

func TestTextLinesInASpanCarryTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Format: "text", ProjectID: "acme"})
	log.WarnContext(spanContext(t), "hello")
	if s := buf.String(); !strings.Contains(s, "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7") {
		t.Errorf("%s", s)
	}
}

// Durations read as in the text format, in groups too, not as nanoseconds.
func TestJSONDurationsAreReadable(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Format: "json"})
	log.Info("done", "took", 1500*time.Millisecond, slog.Group("g", "wait", 41700*time.Microsecond))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["took"] != "1.5s" || m["g"].(map[string]any)["wait"] != "41.7ms" {
		t.Fatalf("%s", buf.Bytes())
	}
}

func TestFromOr(t *testing.T) {
	def, mine := slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler)
	if logging.FromOr(context.Background(), def) != def || logging.FromOr(logging.With(context.Background(), mine), def) != mine {
		t.Fatal("FromOr")
	}
}
