package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth/authtest"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
)

var (
	adminToken, adminEntry   = authtest.Token(auth.RoleAdmin, "ops")
	viewerToken, viewerEntry = authtest.Token(auth.RoleViewer, "viewer")
	badToken                 = "cmf_not-a-configured-token"
	// Users of Airflow's clients (HTTP Basic): made once, as an argon2id
	// hash costs tens of milliseconds.
	airflowPassword, airflowUserEntry = authtest.User(auth.RoleAdmin, "airflow")
	readerPassword, readerUserEntry   = authtest.User(auth.RoleViewer, "reader")
)

// ---- the contract ----

var (
	contractOnce   sync.Once
	contractDoc    *openapi3.T
	contractRouter routers.Router
	contractErr    error
)

// undeclared are the statuses an operation answers that the contract does
// not list for it, each a problem of the contract's Error schema (README:
// compatibility notes). Airflow itself answers 400 on clearTaskInstances for
// a bad form; cmmsflow also refuses to clear a DAG run still running, or to
// queue one again, or to mark a task of a running DAG run success or skipped
// (the tasks after it need its output): 409. The lists answer 400 for an
// offset above maxOffset, as Airflow answers 400 for a bad query parameter
// on any route.
var undeclared = map[string][]int{
	"GET /dags":                  {400},
	"GET /dags/{dag_id}/dagRuns": {400},
	"GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances":             {400},
	"POST /dags/{dag_id}/clearTaskInstances":                            {400, 409},
	"POST /dags/{dag_id}/dagRuns/{dag_run_id}/clear":                    {409},
	"PATCH /dags/{dag_id}/dagRuns/{dag_run_id}":                         {409},
	"PATCH /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}": {409},
}

// contractPath is the Airflow subset compat serves, cut from the upstream
// spec by go run ./services/control/cmd/airflowcontract.
const contractPath = "testdata/airflow-v1.yaml"

// loadContract reads and validates the contract.
func loadContract() (*openapi3.T, []byte, error) {
	raw, err := os.ReadFile(contractPath)
	if err != nil {
		return nil, nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, nil, err
	}
	return doc, raw, doc.Validate(context.Background())
}

func contract(t *testing.T) routers.Router {
	t.Helper()
	contractOnce.Do(func() {
		doc, _, err := loadContract()
		if err != nil {
			contractErr = err
			return
		}
		contractDoc = doc
		contractRouter, contractErr = gorillamux.NewRouter(doc)
	})
	if contractErr != nil {
		t.Fatalf("contract %s: %v", contractPath, contractErr)
	}
	return contractRouter
}

// ---- the server under test ----

type fixture struct {
	pool   *pgxpool.Pool
	srv    *Server
	url    string
	events *eventing.Router
	clock  *testClock // the guard's
}

// testClock is a settable time, the guard's clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, eventing.Message) error { return nil }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := projection.SyncPipelines(ctx, pool); err != nil {
		t.Fatal(err)
	}
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens(adminEntry + "," + viewerEntry)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.AcceptUsers(airflowUserEntry + "," + readerUserEntry); err != nil {
		t.Fatal(err)
	}
	relay := eventing.NewRelay(pool, nopPublisher{}, log, time.Hour)
	clock := &testClock{t: time.Now()}
	guard := auth.NewGuard(tokens, auth.Policy, auth.RateLimit{}, log, auth.WithClock(clock.now))
	srv := New(pool, table, relay, guard, log)
	mux := http.NewServeMux()
	srv.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Relay: relay, Log: log})
	projection.New(func(_ string, t time.Time) (time.Time, error) { return t, nil }, projection.NewStarter(table.MaxActiveRuns), log).Register(router)
	return &fixture{pool: pool, srv: srv, url: ts.URL, events: router, clock: clock}
}

type response struct {
	status int
	header http.Header
	raw    []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.raw)
	}
	return m
}

func newRequest(t *testing.T, method, url, token string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(token, "Basic"):
		// A whole Basic Authorization value (authtest.Basic), not a token.
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// airflow makes a request of the Airflow subset, validating the request and
// the response against the contract: the test fails on any deviation.
// path is relative to /api/v1.
func (f *fixture) airflow(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return f.airflowWith(t, method, path, token, body, nil)
}

// airflowWith is airflow with more request headers (e.g. Accept).
func (f *fixture) airflowWith(t *testing.T, method, path, token string, body any, hdr http.Header) response {
	t.Helper()
	ctx := context.Background()
	req := newRequest(t, method, f.url+"/api/v1"+path, token, body)
	// The contract's server is the relative /api/v1: match on the path only.
	match := newRequest(t, method, "/api/v1"+path, token, body)
	for k, v := range hdr {
		req.Header[k], match.Header[k] = v, v
	}
	route, params, err := contract(t).FindRoute(match)
	if err != nil {
		t.Fatalf("%s %s: not an operation of the contract: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: match, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		t.Fatalf("%s %s: the request does not conform to the contract: %v", method, path, err)
	}
	resp := send(t, req)
	if route.Operation.Responses.Status(resp.status) == nil && route.Operation.Responses.Default() == nil {
		checkUndeclared(t, method+" "+route.Path, resp)
		return resp
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.status, Header: resp.header,
		Body:    io.NopCloser(bytes.NewReader(resp.raw)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Fatalf("%s %s: the response (%d) does not conform to the contract: %v\n%s", method, path, resp.status, err, resp.raw)
	}
	if resp.status >= 400 {
		p := resp.json(t)
		if p["status"] != float64(resp.status) || !strings.HasPrefix(p["type"].(string), "https://") || p["title"] == "" {
			t.Fatalf("%s %s: not an RFC 7807 problem: %s", method, path, resp.raw)
		}
	}
	return resp
}

// checkUndeclared accepts a status the operation does not declare only
// when undeclared lists it, and then as a problem of the contract's Error
// schema.
func checkUndeclared(t *testing.T, op string, resp response) {
	t.Helper()
	var body any
	if err := json.Unmarshal(resp.raw, &body); err != nil {
		t.Fatalf("%s: %d is not JSON: %s", op, resp.status, resp.raw)
	}
	if !slices.Contains(undeclared[op], resp.status) {
		t.Fatalf("%s: the contract does not declare %d: %s", op, resp.status, resp.raw)
	}
	if err := contractDoc.Components.Schemas["Error"].Value.VisitJSON(body); err != nil {
		t.Fatalf("%s: the %d problem is not the contract's Error: %v\n%s", op, resp.status, err, resp.raw)
	}
	if p := body.(map[string]any); p["status"] != float64(resp.status) || p["detail"] == nil {
		t.Fatalf("%s: %d problem %s", op, resp.status, resp.raw)
	}
}

// composer makes a request of the old backend's routes.
func (f *fixture) composer(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	resp := send(t, newRequest(t, method, f.url+"/api/v1/core/composer/"+path, token, body))
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.status, resp.json(t)
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// deliverTrigger hands the run's pipeline.triggered event, as written to the
// outbox, to the projection.
func (f *fixture) deliverTrigger(t *testing.T, runID string) {
	t.Helper()
	trig := eventingtest.Messages(t, f.pool, events.PipelineTriggered, runID)
	if len(trig) != 1 {
		t.Fatalf("%d triggers of %s in the outbox, want 1", len(trig), runID)
	}
	eventingtest.Deliver(t, f.events, trig[0], eventing.Handled)
}

func (f *fixture) deliverStep(t *testing.T, eventType, runID, pipeline string, payload proto.Message) {
	t.Helper()
	eventingtest.Deliver(t, f.events, eventingtest.Event(t, eventType, runID, pipeline, payload).Message(), eventing.Handled)
}
