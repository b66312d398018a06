package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/oidc/oidctest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

const (
	pushAudience = "https://extractor-abc-ew.a.run.app/events"
	pushAccount  = "cmmsflow-push@proj.iam.gserviceaccount.com"
)

// newService starts a service with env on a fresh database and an
// in-process Pub/Sub, serving its Mux on loopback.
func newService(t *testing.T, env map[string]string) (*Service, *httptest.Server, *pgxpool.Pool) {
	t.Helper()
	pool, dbURL := pgtest.NewWithURL(t)
	ps := pubsubtest.New(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Addr)
	full := map[string]string{"DATABASE_URL": dbURL, "GOOGLE_CLOUD_PROJECT": pubsubtest.Project, "LOG_LEVEL": "error"}
	for k, v := range env {
		full[k] = v
	}
	var cfg config.Common
	if err := config.LoadFrom(context.Background(), &cfg, full); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), "extractor", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	srv := httptest.NewServer(s.Mux)
	t.Cleanup(srv.Close)
	return s, srv, pool
}

func push(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/events", strings.NewReader(`{"message": "not a message"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func deadLetters(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// With PUSH_AUTH=on, /events refuses pushes without a valid token before the
// router sees them, and passes a valid one on to the router (which here
// dead-letters the undecodable body, proving it got it).
func TestPushAuthOn(t *testing.T) {
	iss := oidctest.New(t)
	s, srv, pool := newService(t, map[string]string{
		"PUSH_AUTH": "on", "PUSH_AUDIENCE": pushAudience, "PUSH_JWKS_URL": iss.URL,
		"PUSH_SERVICE_ACCOUNTS": "other@proj.iam.gserviceaccount.com, " + pushAccount,
	})
	if s.PushAuth == nil {
		t.Fatal("no verifier with PUSH_AUTH=on")
	}
	for name, token := range map[string]string{
		"missing":        "",
		"garbage":        "abc.def.ghi",
		"wrong audience": iss.Token(t, "https://control-abc-ew.a.run.app/events", pushAccount),
		"wrong account":  iss.Token(t, pushAudience, "intruder@proj.iam.gserviceaccount.com"),
	} {
		if code, body := push(t, srv.URL, token); code != http.StatusUnauthorized || body != "unauthenticated" {
			t.Errorf("%s: %d %q, want 401 unauthenticated", name, code, body)
		}
	}
	if n := deadLetters(t, pool); n != 0 {
		t.Fatalf("the router saw refused pushes: %d dead letters", n)
	}
	code, body := push(t, srv.URL, iss.Token(t, pushAudience, pushAccount))
	if code != http.StatusOK || !strings.Contains(body, "dead-lettered") {
		t.Fatalf("valid token: %d %q, want the router's answer", code, body)
	}
	if n := deadLetters(t, pool); n != 1 {
		t.Fatalf("dead letters = %d, want 1", n)
	}
	// Health probes stay open.
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	// So does /metrics, which counted the dead letter.
	if code, body := get(t, srv.URL+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `cmmsflow_events_dead_letters_total{event_type="unknown",service="extractor"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// METRICS=off serves no /metrics.
func TestMetricsOff(t *testing.T) {
	_, srv, _ := newService(t, map[string]string{"METRICS": "off"})
	if code, _ := get(t, srv.URL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics with METRICS=off: %d, want 404", code)
	}
}

// By default (PUSH_AUTH off) /events is open, as on the local stack.
func TestPushAuthOff(t *testing.T) {
	s, srv, pool := newService(t, nil)
	if s.PushAuth != nil {
		t.Fatal("verifier with PUSH_AUTH off")
	}
	if code, body := push(t, srv.URL, ""); code != http.StatusOK || !strings.Contains(body, "dead-lettered") {
		t.Fatalf("open /events: %d %q", code, body)
	}
	if n := deadLetters(t, pool); n != 1 {
		t.Fatalf("dead letters = %d, want 1", n)
	}
}

func TestPushAuthConfig(t *testing.T) {
	load := func(env map[string]string) (config.Common, error) {
		env["DATABASE_URL"] = "postgres://unused"
		var cfg config.Common
		err := config.LoadFrom(context.Background(), &cfg, env)
		return cfg, err
	}
	cfg, err := load(map[string]string{})
	if err != nil || cfg.PushAuth.On() {
		t.Fatalf("default: %v %v", cfg.PushAuth, err)
	}
	if _, err := load(map[string]string{"PUSH_AUTH": "maybe"}); err == nil || !strings.Contains(err.Error(), "want on, off or off-insecure") {
		t.Errorf("PUSH_AUTH=maybe: %v", err)
	}
	cfg, err = load(map[string]string{"PUSH_AUTH": "on"})
	if err != nil || !cfg.PushAuth.On() {
		t.Fatalf("on: %v %v", cfg.PushAuth, err)
	}
	// On without audience or accounts: the service refuses to start.
	if _, err := PushVerifier(cfg, discard()); err == nil || !strings.Contains(err.Error(), "PUSH_AUDIENCE") {
		t.Errorf("on without audience: %v", err)
	}
	cfg, err = load(map[string]string{"PUSH_AUTH": "on", "PUSH_AUDIENCE": pushAudience, "PUSH_SERVICE_ACCOUNTS": "a@x.iam.gserviceaccount.com,b@x.iam.gserviceaccount.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.PushServiceAccounts) != 2 {
		t.Errorf("PUSH_SERVICE_ACCOUNTS = %q", cfg.PushServiceAccounts)
	}
	if v, err := PushVerifier(cfg, discard()); err != nil || v == nil {
		t.Errorf("configured: %v %v", v, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A service whose SOURCE_SCHEMA is a mapping schema starts only once a
// mapping was applied there for this build's source contract version.
func TestMappedSourceMustBeApplied(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	ps := pubsubtest.New(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Addr)
	start := func() error {
		var cfg config.Common
		env := map[string]string{"DATABASE_URL": dbURL, "GOOGLE_CLOUD_PROJECT": pubsubtest.Project,
			"LOG_LEVEL": "error", "SOURCE_SCHEMA": "cmms_mapped"}
		if err := config.LoadFrom(t.Context(), &cfg, env); err != nil {
			t.Fatal(err)
		}
		s, err := New(t.Context(), "reporter", cfg)
		if err == nil {
			s.close()
		}
		return err
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "SOURCE_SCHEMA=cmms_mapped: no mapping has been applied") {
		t.Fatalf("no mapping applied: %v", err)
	}
	record := `INSERT INTO source_contract (schema_name, contract_version, file_sha256, applied_by)
		VALUES ('cmms_mapped', $1, repeat('0', 64), 'test')
		ON CONFLICT (schema_name) DO UPDATE SET contract_version = EXCLUDED.contract_version`
	if _, err := pool.Exec(t.Context(), record, source.Version+1); err != nil {
		t.Fatal(err)
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("applied for source contract version %d, this build needs version %d", source.Version+1, source.Version)) {
		t.Fatalf("other contract version: %v", err)
	}
	if _, err := pool.Exec(t.Context(), record, source.Version); err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatalf("mapping applied: %v", err)
	}
}
