package e2e

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// otlp is the stack's trace collector: a tiny OTLP/HTTP receiver on
// loopback, started before the stack, whose services export their spans to
// it (OTEL_EXPORTER_OTLP_ENDPOINT).
var otlp *otlpReceiver

type span struct {
	service, name, traceID, spanID, parentID string
}

type otlpReceiver struct {
	url   string
	srv   *http.Server
	mu    sync.Mutex
	spans []span
}

// startOTLP starts the receiver and returns the environment that points the
// stack's services at it.
func startOTLP() (map[string]string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	otlp = &otlpReceiver{url: "http://" + l.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", otlp.export)
	otlp.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = otlp.srv.Serve(l) }()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
		"OTEL_BSP_SCHEDULE_DELAY":     "300", // ms: spans arrive soon after they end
	}
	return env, func() { _ = otlp.srv.Close() }, nil
}

func (o *otlpReceiver) export(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = z
	}
	b, err := io.ReadAll(io.LimitReader(body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, span{service: service, name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parentID: hex.EncodeToString(s.GetParentSpanId())})
				if got[len(got)-1].parentID == "0000000000000000" {
					got[len(got)-1].parentID = ""
				}
			}
		}
	}
	o.mu.Lock()
	o.spans = append(o.spans, got...)
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans received for traceID.
func (o *otlpReceiver) trace(traceID string) []span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []span
	for _, s := range o.spans {
		if s.traceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// TestOneRunIsOneTrace triggers a pipeline through control's API and checks
// that every service of the chain exported spans into one trace, the one the
// run recorded, with no span pointing at a parent outside it except the
// root; and that reporter's /metrics counted the delivery.
func TestOneRunIsOneTrace(t *testing.T) {
	// The weekly KPI report: the other e2e tests run it too and expect
	// nothing of its state (a preventive maintenance run would use up the
	// due plans TestPreventiveMaintenancePipeline needs).
	handled := `cmmsflow_events_handled_total{event_type="` + events.RunStarted + `",outcome="handled",service="reporter"}`
	before := scrapeMetric(t, events.Reporter, handled)

	runID := trigger(t, events.WeeklyKPIReport)
	if state, steps := waitRun(t, runID, 2*time.Minute); state != "success" {
		t.Fatalf("run %s: %s %v", runID, state, steps)
	}
	var traceID string
	if err := pool.QueryRow(context.Background(), `SELECT trace_id FROM runs WHERE run_id = $1`, runID).Scan(&traceID); err != nil {
		t.Fatal(err)
	}
	if len(traceID) != 32 {
		t.Fatalf("run %s recorded trace id %q", runID, traceID)
	}

	// control (trigger, projection of every step report), reporter and
	// notifier. Each process exports its spans in its own batches: wait
	// until the tree is whole.
	want := []string{events.Control, events.Reporter, events.Notifier}
	var spans []span
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans = otlp.trace(traceID)
		services := map[string]bool{}
		for _, s := range spans {
			services[s.service] = true
		}
		done := true
		for _, svc := range want {
			done = done && services[svc]
		}
		// Both steps' success reports projected by control, and no span
		// whose parent has not arrived yet.
		done = done && countSpans(spans, events.Control, "process "+events.StepSucceeded) >= 2 && len(orphans(spans)) == 0
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: spans from %v (want every one of %v), orphans %v:\n%s",
				traceID, keys(services), want, orphans(spans), dump(spans))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range []struct{ service, name string }{
		{events.Control, "create " + events.TopicOf(events.PipelineTriggered)},
		{events.Control, "process " + events.PipelineTriggered},
		{events.Control, "create " + events.TopicOf(events.RunStarted)},
		{events.Reporter, "process " + events.RunStarted},
		{events.Reporter, "handle reporter"},
		{events.Reporter, "create " + events.TopicOf(events.StepSucceeded)},
		{events.Notifier, "handle notifier"},
	} {
		if countSpans(spans, n.service, n.name) == 0 {
			t.Errorf("no %s span %q in trace %s:\n%s", n.service, n.name, traceID, dump(spans))
		}
	}
	// One tree: one root (the trigger's), every other span's parent in it.
	roots := 0
	for _, s := range spans {
		if s.parentID == "" {
			roots++
		}
	}
	if roots != 1 {
		t.Errorf("trace %s has %d roots, want 1:\n%s", traceID, roots, dump(spans))
	}

	t.Logf("trace %s: %d spans\n%s", traceID, len(spans), dump(spans))
	if after := scrapeMetric(t, events.Reporter, handled); after < before+1 {
		t.Errorf("%s went from %v to %v, want it to count the run's delivery", handled, before, after)
	}
}

func countSpans(spans []span, service, name string) int {
	n := 0
	for _, s := range spans {
		if s.service == service && s.name == name {
			n++
		}
	}
	return n
}

// orphans are the spans whose parent is not among spans.
func orphans(spans []span) []string {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.spanID] = true
	}
	var out []string
	for _, s := range spans {
		if s.parentID != "" && !ids[s.parentID] {
			out = append(out, s.service+" "+s.name)
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func dump(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %-9s %-45s %s ← %s\n", s.service, s.name, s.spanID, s.parentID)
	}
	return b.String()
}

// scrapeMetric reads one series from a service's /metrics (0 when absent).
func scrapeMetric(t *testing.T, service, series string) float64 {
	t.Helper()
	resp, err := http.Get(sys.Services[service].URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /metrics: %s", service, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, v)
			}
			return f
		}
	}
	return 0
}
