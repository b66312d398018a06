package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/libs/telemetry"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth/authtest"
)

// Tokens of every test server: two admins, a viewer.
var (
	adminToken, adminEntry   = authtest.Token(auth.RoleAdmin, "ops")
	admin2Token, admin2Entry = authtest.Token(auth.RoleAdmin, "ops2")
	viewerToken, viewerEntry = authtest.Token(auth.RoleViewer, "")
	badToken                 = "cmf_not-a-configured-token"
)

type published struct {
	topic string
	msg   eventing.Message
}

// recorder is the relay's publisher: it keeps what was published.
type recorder struct {
	mu  sync.Mutex
	got []published
}

func (r *recorder) Publish(_ context.Context, topic string, m eventing.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, published{topic, m})
	return nil
}

type fixture struct {
	pool   *pgxpool.Pool
	svc    *service.Service
	pub    *recorder
	url    string
	client controlv1.ControlServiceClient
	conn   *grpc.ClientConn
}

type option func(*app.Config)

func withTokens(s string) option { return func(c *app.Config) { c.APITokens = s } }
func withRate(r float64, burst int) option {
	return func(c *app.Config) { c.TriggerRateLimit, c.TriggerBurst = r, burst }
}

// newFixture serves control's API on a loopback port (HTTP/1.1 and h2c, as
// in production) against a fresh database, with a gRPC client on that port.
func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := &recorder{}
	relay := eventing.NewRelay(pool, pub, log, time.Hour)
	// Metrics on, as by default (METRICS): the run metrics on /metrics.
	tel, err := telemetry.New(ctx, telemetry.Config{Service: events.Control, Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	s := &service.Service{
		Name: events.Control, Log: log, Pool: pool, Relay: relay, Mux: http.NewServeMux(), Telemetry: tel,
		Router: eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Relay: relay, Log: log}),
	}
	s.Mux.Handle("GET /healthz", service.Healthz(events.Control))
	cfg := app.Config{
		APITokens:        strings.Join([]string{adminEntry, admin2Entry, viewerEntry}, ","),
		TriggerRateLimit: 0, TriggerBurst: 1,
		// Start takes the intervals Config.Validate checked positive.
		StaleRunSweepInterval: time.Hour, MissedTickGrace: 10 * time.Minute, MissedTickInterval: time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := app.Start(ctx, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = service.NewHTTPServer(ctx, s.Handler)
	ts.Start()
	conn, err := grpc.NewClient(ts.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ts.Close()
		c.Close()
	})
	return &fixture{pool: pool, svc: s, pub: pub, url: ts.URL, client: controlv1.NewControlServiceClient(conn), conn: conn}
}

// rpc is a context carrying token as gRPC metadata ("" for none).
func rpc(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// do makes an HTTP request with token ("" for none) and returns the status
// and the decoded JSON body.
func (f *fixture) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// insertRun adds a run (and its steps, pending) directly.
func (f *fixture) insertRun(t *testing.T, runID, pipeline, state string, queued time.Time) {
	t.Helper()
	f.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at) VALUES ($1, $2, $3, 'scheduled', $4, $4)`,
		runID, pipeline, state, queued)
	pl, _ := events.LookupPipeline(pipeline)
	for i, st := range pl.Steps {
		f.exec(t, `INSERT INTO steps (run_id, step, position, state) VALUES ($1, $2, $3, 'pending')`, runID, st, i)
	}
}
