package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/oidc/oidctest"
)

func TestParseIDTokenAccounts(t *testing.T) {
	got, err := ParseIDTokenAccounts(" A@p.iam.gserviceaccount.com:admin, b@p.iam.gserviceaccount.com:viewer ,")
	if err != nil || len(got) != 2 || got["a@p.iam.gserviceaccount.com"] != RoleAdmin || got["b@p.iam.gserviceaccount.com"] != RoleViewer {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"a@p", "a@p:root", ":admin", "nobody:admin", "a@p:admin,A@P:viewer"} {
		if _, err := ParseIDTokenAccounts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAcceptIDTokens(t *testing.T) {
	tokens, _ := ParseTokens(hashA + ":viewer:api")
	if err := tokens.AcceptIDTokens(IDTokenConfig{}); err != nil || tokens.IDTokenAccounts() != 0 {
		t.Fatalf("empty config: %v, %d", err, tokens.IDTokenAccounts())
	}
	for _, half := range []IDTokenConfig{{Audience: "https://c"}, {Accounts: "a@p:admin"}} {
		if err := tokens.AcceptIDTokens(half); err == nil || !strings.Contains(err.Error(), "API_ID_TOKEN_") {
			t.Errorf("%+v: %v", half, err)
		}
	}
	iss := oidctest.New(t)
	if err := tokens.AcceptIDTokens(IDTokenConfig{Audience: "https://c", Accounts: "Ops@p.iam.gserviceaccount.com:admin", JWKSURL: iss.URL}); err != nil {
		t.Fatal(err)
	}
	id, ok := tokens.AuthenticateContext(context.Background(), "Bearer "+iss.Token(t, "https://c", "ops@p.iam.gserviceaccount.com"))
	if !ok || id.Name != "ops@p.iam.gserviceaccount.com" || id.Role != RoleAdmin {
		t.Fatalf("ID token: %+v %v", id, ok)
	}
	if id, ok := tokens.Authenticate("Bearer test"); !ok || id.Name != "api" {
		t.Fatalf("API token alongside: %+v %v", id, ok)
	}
	for _, bad := range []string{"Bearer " + iss.Token(t, "https://other", "ops@p.iam.gserviceaccount.com"), "Bearer a.b.c", "Bearer nope"} {
		if id, ok := tokens.Authenticate(bad); ok {
			t.Errorf("%q: %+v", bad, id)
		}
	}
}
