package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// op is one API call, over HTTP and over gRPC.
type op struct {
	name   string
	admin  bool
	method string
	path   string
	call   func(ctx context.Context, c controlv1.ControlServiceClient) error
}

func ops(runID string) []op {
	return []op{
		{"read", false, "GET", "/v1/runs?page_size=5", func(ctx context.Context, c controlv1.ControlServiceClient) error {
			_, err := c.ListRuns(ctx, &controlv1.ListRunsRequest{PageSize: 5})
			return err
		}},
		{"trigger", true, "POST", "/v1/pipelines/weekly_kpi_report:trigger", func(ctx context.Context, c controlv1.ControlServiceClient) error {
			_, err := c.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport})
			return err
		}},
		{"pause", true, "POST", "/v1/pipelines/weekly_kpi_report:pause", func(ctx context.Context, c controlv1.ControlServiceClient) error {
			_, err := c.PausePipeline(ctx, &controlv1.PausePipelineRequest{Pipeline: events.WeeklyKPIReport})
			return err
		}},
		{"cancel", true, "POST", "/v1/runs/" + runID + ":cancel", func(ctx context.Context, c controlv1.ControlServiceClient) error {
			_, err := c.CancelRun(ctx, &controlv1.CancelRunRequest{RunId: runID})
			return err
		}},
	}
}

func TestAuthMatrix(t *testing.T) {
	f := newFixture(t)
	callers := []struct {
		name  string
		token string
		admin bool
		authn bool
	}{
		{"no token", "", false, false},
		{"bad token", badToken, false, false},
		{"viewer", viewerToken, false, true},
		{"admin", adminToken, true, true},
	}
	n := 0
	for _, via := range []string{"http", "grpc"} {
		for _, c := range callers {
			// Each cell cancels its own queued run.
			n++
			runID := fmt.Sprintf("queued-%d", n)
			f.insertRun(t, runID, events.WeeklyKPIReport, "queued", time.Now())
			for _, o := range ops(runID) {
				t.Run(via+"/"+c.name+"/"+o.name, func(t *testing.T) {
					wantHTTP, wantGRPC, wantMsg := 200, codes.OK, ""
					switch {
					case !c.authn:
						wantHTTP, wantGRPC, wantMsg = 401, codes.Unauthenticated, "unauthenticated"
					case o.admin && !c.admin:
						wantHTTP, wantGRPC, wantMsg = 403, codes.PermissionDenied, "permission denied"
					}
					if via == "grpc" {
						err := o.call(rpc(t, c.token), f.client)
						if status.Code(err) != wantGRPC || (wantMsg != "" && status.Convert(err).Message() != wantMsg) {
							t.Fatalf("got %v, want %s %q", err, wantGRPC, wantMsg)
						}
						return
					}
					code, body := f.do(t, o.method, o.path, c.token, map[string]any{})
					if o.method == "GET" {
						code, body = f.do(t, o.method, o.path, c.token, nil)
					}
					if code != wantHTTP || (wantMsg != "" && body["message"] != wantMsg) {
						t.Fatalf("HTTP %d %v, want %d %q", code, body, wantHTTP, wantMsg)
					}
				})
			}
		}
	}
	// Only the admin cells changed anything: 2 triggers, 2 cancels.
	if got := f.count(t, `SELECT count(*) FROM runs WHERE source = 'manual'`); got != 2 {
		t.Errorf("%d manual runs, want 2", got)
	}
	if got := f.count(t, `SELECT count(*) FROM runs WHERE state = 'cancelled'`); got != 2 {
		t.Errorf("%d cancelled runs, want 2", got)
	}
}

func TestUnauthenticatedDetails(t *testing.T) {
	f := newFixture(t)
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + adminToken, adminToken, "Bearer " + adminToken + "x", "Bearer " + strings.ToUpper(adminToken)} {
		req, _ := http.NewRequest("GET", f.url+"/v1/pipelines", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: %d %q", h, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// The scheme is case-insensitive.
	req, _ := http.NewRequest("GET", f.url+"/v1/pipelines", nil)
	req.Header.Set("Authorization", "bearer "+viewerToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lower-case scheme: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Without a token nobody learns which routes exist.
	if code, body := f.do(t, "GET", "/v1/no/such/route", "", nil); code != 401 || body["message"] != "unauthenticated" {
		t.Errorf("unknown route without a token: %d %v", code, body)
	}
	if code, _ := f.do(t, "GET", "/v1/no/such/route", viewerToken, nil); code != 404 {
		t.Errorf("unknown route with a token: %d", code)
	}
}

func TestEmptyTokensDisableTheAPI(t *testing.T) {
	f := newFixture(t, withTokens(""))
	if code, body := f.do(t, "GET", "/v1/pipelines", adminToken, nil); code != 401 || body["message"] != "unauthenticated" {
		t.Fatalf("HTTP: %d %v", code, body)
	}
	_, err := f.client.ListPipelines(rpc(t, adminToken), &controlv1.ListPipelinesRequest{})
	wantCode(t, err, codes.Unauthenticated)
	if code, _ := f.do(t, "GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
}

func TestTriggerRateLimit(t *testing.T) {
	f := newFixture(t, withRate(0.001, 3))
	for i := range 3 {
		if _, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport}); err != nil {
			t.Fatalf("trigger %d: %v", i, err)
		}
	}
	_, err := f.client.TriggerPipeline(rpc(t, adminToken), &controlv1.TriggerPipelineRequest{Pipeline: events.WeeklyKPIReport})
	wantCode(t, err, codes.ResourceExhausted)
	if code, body := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:trigger", adminToken, map[string]any{}); code != http.StatusTooManyRequests || body["message"] != "rate limit exceeded" {
		t.Fatalf("HTTP: %d %v", code, body)
	}
	// Per token: another admin still may; reads are not limited.
	if code, _ := f.do(t, "POST", "/v1/pipelines/weekly_kpi_report:trigger", admin2Token, map[string]any{}); code != 200 {
		t.Fatalf("other token: %d", code)
	}
	if _, err := f.client.ListRuns(rpc(t, adminToken), &controlv1.ListRunsRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM runs`); n != 4 {
		t.Fatalf("%d runs, want 4", n)
	}
}
