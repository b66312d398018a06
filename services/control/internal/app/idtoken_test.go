package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/oidc"
	"github.com/cmmsflow/cmmsflow/libs/oidc/oidctest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
)

const (
	idAudience = "https://control-abc.a.run.app"
	idAdmin    = "scheduler@proj.iam.gserviceaccount.com"
	idViewer   = "dashboard@proj.iam.gserviceaccount.com"
)

func withIDTokens(jwksURL string) option {
	return func(c *app.Config) {
		c.IDTokenAudience = idAudience
		c.IDTokenAccounts = idAdmin + ":admin, " + idViewer + ":viewer"
		c.IDTokenJWKSURL = jwksURL
	}
}

// rogueToken is a token with good claims signed by a key not in the JWKS,
// under the issuer's key id.
func rogueToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: oidctest.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestIDTokenAuthMatrix(t *testing.T) {
	iss := oidctest.New(t)
	f := newFixture(t, withIDTokens(iss.URL))
	now := time.Now()
	with := func(m map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	callers := []struct {
		name         string
		token        string
		authn, admin bool
	}{
		{"id token admin", iss.Token(t, idAudience, idAdmin), true, true},
		{"id token viewer", iss.Token(t, idAudience, idViewer), true, false},
		{"api token admin alongside", adminToken, true, true},
		{"api token viewer alongside", viewerToken, true, false},
		{"wrong audience", iss.Token(t, "https://other.a.run.app", idAdmin), false, false},
		{"expired", iss.Sign(t, with(oidctest.Claims(idAudience, idAdmin, now),
			"iat", now.Add(-3*time.Hour).Unix(), "exp", now.Add(-2*time.Hour).Unix())), false, false},
		{"wrong signer", rogueToken(t, oidctest.Claims(idAudience, idAdmin, now)), false, false},
		{"unlisted email", iss.Token(t, idAudience, "intruder@proj.iam.gserviceaccount.com"), false, false},
		{"email unverified", iss.Sign(t, with(oidctest.Claims(idAudience, idAdmin, now), "email_verified", false)), false, false},
		{"wrong issuer", iss.Sign(t, with(oidctest.Claims(idAudience, idAdmin, now), "iss", "https://evil.example")), false, false},
		{"bad token", badToken, false, false},
	}
	n := 0
	for _, via := range []string{"http", "grpc"} {
		for _, c := range callers {
			n++
			runID := fmt.Sprintf("idtok-queued-%d", n)
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
					if wantHTTP == 401 && (len(body) != 3 || body["code"] != float64(16)) {
						t.Errorf("401 body says more than unauthenticated: %v", body)
					}
				})
			}
		}
	}
	// Two admin callers (ID token, API token) over two transports.
	if got := f.count(t, `SELECT count(*) FROM runs WHERE source = 'manual'`); got != 4 {
		t.Errorf("%d manual runs, want 4", got)
	}
	if got := f.count(t, `SELECT count(*) FROM runs WHERE state = 'cancelled'`); got != 4 {
		t.Errorf("%d cancelled runs, want 4", got)
	}
}

// ID tokens alone open the API; without them configured an ID token is just
// a bad token.
func TestIDTokenConfiguration(t *testing.T) {
	iss := oidctest.New(t)
	tok := iss.Token(t, idAudience, idViewer)

	only := newFixture(t, withTokens(""), withIDTokens(iss.URL))
	if code, body := only.do(t, "GET", "/v1/pipelines", tok, nil); code != 200 {
		t.Fatalf("ID tokens without API tokens: %d %v", code, body)
	}
	if code, _ := only.do(t, "GET", "/v1/pipelines", adminToken, nil); code != 401 {
		t.Fatalf("API token with API_TOKENS empty: %d", code)
	}

	off := newFixture(t)
	if code, _ := off.do(t, "GET", "/v1/pipelines", tok, nil); code != 401 {
		t.Fatalf("ID token with ID tokens off: %d", code)
	}
	_, err := off.client.ListPipelines(rpc(t, tok), &controlv1.ListPipelinesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC ID token with ID tokens off: %v", err)
	}

	var cfg app.Config
	if err := config.LoadFrom(context.Background(), &cfg, map[string]string{"DATABASE_URL": "postgres://x"}); err != nil {
		t.Fatal(err)
	}
	if cfg.IDTokenJWKSURL != oidc.GoogleJWKSURL || cfg.IDTokenAudience != "" || cfg.IDTokenAccounts != "" {
		t.Errorf("defaults: %q %q %q", cfg.IDTokenJWKSURL, cfg.IDTokenAudience, cfg.IDTokenAccounts)
	}
}
