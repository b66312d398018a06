package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/service"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth/authtest"
)

func withUsers(s string) option { return func(c *app.Config) { c.APIUsers = s } }

// get makes a GET with an Authorization value and returns the status and
// the WWW-Authenticate challenges.
func (f *fixture) get(t *testing.T, path, authorization string) (int, []string) {
	t.Helper()
	req, err := http.NewRequest("GET", f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate")
}

// API_USERS log in with HTTP Basic on the Airflow-compatible routes only:
// the gateway, gRPC and the admin page's JSON routes stay bearer-only.
func TestBasicOnlyOnCompatRoutes(t *testing.T) {
	pw, entry := authtest.User(auth.RoleAdmin, "airflow")
	f := newFixture(t, withUsers(entry))
	basic := authtest.Basic("airflow", pw)

	for _, path := range []string{"/api/v1/dags", "/api/v1/core/composer/list_dags"} {
		if code, _ := f.get(t, path, basic); code != 200 {
			t.Errorf("%s with Basic: %d", path, code)
		}
	}
	for _, path := range []string{"/v1/pipelines", "/v1/runs", "/admin/api/notifications"} {
		code, challenges := f.get(t, path, basic)
		if code != 401 || !slices.Equal(challenges, []string{`Bearer realm="cmmsflow"`}) {
			t.Errorf("%s with Basic: %d %q, want 401 with the Bearer challenge only", path, code, challenges)
		}
	}
	ctx := metadata.AppendToOutgoingContext(rpc(t, ""), "authorization", basic)
	if _, err := f.client.ListPipelines(ctx, &controlv1.ListPipelinesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with Basic: %v", err)
	}
	// The tokens still work everywhere.
	if code, _ := f.get(t, "/v1/pipelines", "Bearer "+adminToken); code != 200 {
		t.Fatalf("token on the gateway: %d", code)
	}
	if code, _ := f.get(t, "/api/v1/dags", "Bearer "+viewerToken); code != 200 {
		t.Fatalf("token on the compat routes: %d", code)
	}
}

func TestAPIUsersConfiguration(t *testing.T) {
	_, entry := authtest.User(auth.RoleViewer, "reader")
	var cfg app.Config
	if err := config.LoadFrom(context.Background(), &cfg, map[string]string{
		"DATABASE_URL": "postgres://x", "API_USERS": entry + "," + entry,
	}); err != nil {
		t.Fatal(err)
	}
	if cfg.APIUsers != entry+","+entry {
		t.Fatalf("API_USERS read as %q", cfg.APIUsers)
	}

	// A bad list stops control at start-up, naming the entry, not the hash.
	s := &service.Service{Name: events.Control, Log: slog.New(slog.DiscardHandler), Pool: pgtest.New(t), Mux: http.NewServeMux()}
	_, err := app.Start(context.Background(), s, app.Config{APITokens: adminEntry, APIUsers: cfg.APIUsers})
	if err == nil || !strings.Contains(err.Error(), `API_USERS entry 2: user "reader" is listed twice`) {
		t.Fatalf("Register: %v", err)
	}
	if hash := strings.Split(entry, ":")[1]; strings.Contains(err.Error(), hash) {
		t.Fatalf("the error quotes the hash: %v", err)
	}
}
