// Package oidctest is a stand-in for Google's ID token issuer in tests: a
// local RSA key, a JWKS server on loopback publishing it (point
// oidc.Config.JWKSURL or PUSH_JWKS_URL at URL) and tokens signed with it.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KeyID is the kid of the issuer's key.
const KeyID = "oidctest-1"

// Issuer signs tokens and serves its public key as a JWKS.
type Issuer struct {
	// URL is the JWKS endpoint.
	URL string
	key *rsa.PrivateKey
}

// one key for the test binary: RSA generation is slow under -race.
var sharedKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// New starts the JWKS server, closed at test end.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := sharedKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: KeyID, Algorithm: string(jose.RS256), Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &Issuer{URL: srv.URL, key: key}
}

// Claims are those of a Google-signed ID token for audience and the service
// account email, issued a minute before now and valid for an hour.
func Claims(audience, email string, now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://accounts.google.com", "aud": audience, "azp": "100000000000000000001",
		"sub": "100000000000000000001", "email": email, "email_verified": true,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(59 * time.Minute).Unix(),
	}
}

// Token returns a valid token for audience and email.
func (i *Issuer) Token(t testing.TB, audience, email string) string {
	t.Helper()
	return i.Sign(t, Claims(audience, email, time.Now()))
}

// Sign returns a token with claims signed by the issuer's key.
func (i *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: i.key, KeyID: KeyID}},
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
