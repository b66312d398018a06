package steplogs

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// fakeLogging is the Logging API's ListLogEntries over gRPC on loopback: it
// records the requests and answers with its entries, at most page a page,
// whatever the filter.
type fakeLogging struct {
	loggingpb.UnimplementedLoggingServiceV2Server
	entries []*loggingpb.LogEntry
	page    int

	mu       sync.Mutex
	requests []*loggingpb.ListLogEntriesRequest
}

func (f *fakeLogging) ListLogEntries(_ context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	start, _ := strconv.Atoi(req.GetPageToken())
	end := min(len(f.entries), start+min(f.page, int(req.GetPageSize())))
	resp := &loggingpb.ListLogEntriesResponse{Entries: f.entries[start:end]}
	if end < len(f.entries) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// seen returns the requests so far and forgets them.
func (f *fakeLogging) seen() []*loggingpb.ListLogEntriesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func startFake(t *testing.T, f *fakeLogging) *CloudLogging {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	loggingpb.RegisterLoggingServiceV2Server(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c, err := NewCloudLogging(context.Background(), "proj", option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func jsonEntry(t *testing.T, i int, sev ltype.LogSeverity, fields map[string]any) *loggingpb.LogEntry {
	t.Helper()
	fields["service"], fields["run_id"] = "pmgen", runA
	p, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	return &loggingpb.LogEntry{
		LogName:   "projects/proj/logs/run.googleapis.com%2Fstdout",
		Resource:  &monitoredres.MonitoredResource{Type: "cloud_run_revision", Labels: map[string]string{"service_name": "pmgen"}},
		Timestamp: timestamppb.New(t0.Add(time.Duration(i) * time.Second)), Severity: sev,
		Payload: &loggingpb.LogEntry_JsonPayload{JsonPayload: p}, Trace: "projects/proj/traces/abc", SpanId: "def",
	}
}

func TestCloudLoggingReadsTheStepsEntries(t *testing.T) {
	f := &fakeLogging{page: 2, entries: []*loggingpb.LogEntry{
		jsonEntry(t, 0, ltype.LogSeverity_INFO, map[string]any{"message": eventing.StepStartedLog}),
		jsonEntry(t, 1, ltype.LogSeverity_DEBUG, map[string]any{"message": "evaluating maintenance plans", "as_of": "2026-12-02"}),
		jsonEntry(t, 2, ltype.LogSeverity_WARNING, map[string]any{"message": "event failed, will be retried"}),
		jsonEntry(t, 3, ltype.LogSeverity_INFO, map[string]any{"message": eventing.StepStartedLog}),
		jsonEntry(t, 4, ltype.LogSeverity_INFO, map[string]any{"message": "work orders generated", "created": 3}),
		{Timestamp: timestamppb.New(t0.Add(5 * time.Second)), Severity: ltype.LogSeverity_ERROR,
			Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "panic: boom"}},
		// A plain slog JSON line (featurejob's Dataproc engine): msg and level.
		jsonEntry(t, 6, ltype.LogSeverity_DEFAULT, map[string]any{"msg": "dataproc: batch done", "level": "WARN"}),
	}}
	c := startFake(t, f)
	since := t0.Add(-time.Minute)
	got, err := c.Read(context.Background(), Query{RunID: runA, Service: "pmgen", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if want := "INFO step started; DEBUG evaluating maintenance plans; WARNING event failed, will be retried; " +
		"INFO step started; INFO work orders generated; ERROR panic: boom; WARNING dataproc: batch done"; messages(got) != want {
		t.Fatalf("got  %s\nwant %s", messages(got), want)
	}
	l := got.Lines[1]
	if !l.Time.Equal(t0.Add(time.Second)) || l.Attrs["as_of"] != "2026-12-02" || l.Attrs["run_id"] != runA || l.Attrs["service"] != nil ||
		l.Attrs["logging.googleapis.com/trace"] != "projects/proj/traces/abc" || l.Attrs["logging.googleapis.com/spanId"] != "def" {
		t.Fatalf("line %+v", l)
	}
	reqs := f.seen()
	if got.Tries != 2 || got.Partial || len(reqs) != 4 {
		t.Fatalf("tries %d, partial %v, %d requests (want 4 pages)", got.Tries, got.Partial, len(reqs))
	}
	req := reqs[0]
	wantFilter := `resource.type="cloud_run_revision" AND resource.labels.service_name="pmgen" AND ` +
		`jsonPayload.run_id="` + runA + `" AND timestamp>="2026-12-02T05:59:00Z"`
	if req.GetFilter() != wantFilter || req.GetOrderBy() != "" || req.GetPageSize() != pageSize ||
		len(req.GetResourceNames()) != 1 || req.GetResourceNames()[0] != "projects/proj" {
		t.Fatalf("request %v\nwant filter %s", req, wantFilter)
	}
	if reqs[1].GetPageToken() != "2" || reqs[2].GetPageToken() != "4" {
		t.Fatalf("page tokens %q %q", reqs[1].GetPageToken(), reqs[2].GetPageToken())
	}

	// Try 1 ends at the second "step started": the third page is not asked for.
	got, err = c.Read(context.Background(), Query{RunID: runA, Service: "pmgen", Try: 1, MinLevel: "INFO", Since: since})
	if n := len(f.seen()); err != nil || messages(got) != "INFO step started; WARNING event failed, will be retried" || n != 2 {
		t.Fatalf("try 1: %s, %v, %d requests", messages(got), err, n)
	}
	// The entry bound.
	c.MaxEntries = 3
	got, err = c.Read(context.Background(), Query{RunID: runA, Service: "pmgen", Since: since})
	if err != nil || !got.Partial || len(got.Lines) != 3 {
		t.Fatalf("bounded: %s, partial %v, %v", messages(got), got.Partial, err)
	}
}

func TestFilterQuotes(t *testing.T) {
	got := Filter(Query{RunID: `a"b\c`, Service: "pmgen"})
	want := `resource.type="cloud_run_revision" AND resource.labels.service_name="pmgen" AND jsonPayload.run_id="a\"b\\c"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
