package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testAudience = "https://extractor-abc.a.run.app/events"
	testEmail    = "pubsub-push@proj.iam.gserviceaccount.com"
)

// keys are generated once: RSA generation is slow under -race.
var testKeys = sync.OnceValue(func() map[string]*rsa.PrivateKey {
	out := map[string]*rsa.PrivateKey{}
	for _, kid := range []string{"k1", "k2", "rogue"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[kid] = k
	}
	return out
})

// jwksServer is a fake of Google's certs endpoint on loopback, serving the
// public halves of the keys it is told to.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	kids    []string
	maxAge  int
	status  int
	fetches atomic.Int32
}

func newJWKS(t *testing.T, kids ...string) *jwksServer {
	t.Helper()
	s := &jwksServer{kids: kids, maxAge: 3600, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			http.Error(w, "down", s.status)
			return
		}
		var set jose.JSONWebKeySet
		for _, kid := range s.kids {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &testKeys()[kid].PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		w.Header().Set("Cache-Control", "public, max-age="+itoa(s.maxAge)+", must-revalidate, no-transform")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(kids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kids = kids
}

func (s *jwksServer) setMaxAge(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxAge = seconds
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sign returns a token signed with the key signKey under the key id kid.
func sign(t *testing.T, signKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: jose.JSONWebKey{Key: testKeys()[signKey], KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// goodClaims are those of a push token Google would send at now.
func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://accounts.google.com", "aud": testAudience, "azp": "1234567890",
		"sub": "1234567890", "email": testEmail, "email_verified": true,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(59 * time.Minute).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

type fixture struct {
	v     *Verifier
	jwks  *jwksServer
	clock *clock
	log   *bytes.Buffer
}

func newFixture(t *testing.T, mod ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{jwks: newJWKS(t, "k1"), clock: &clock{t: time.Now()}, log: &bytes.Buffer{}}
	cfg := Config{
		Audiences: []string{testAudience}, AllowedEmails: []string{"other@proj.iam.gserviceaccount.com", testEmail},
		JWKSURL: f.jwks.URL, Now: f.clock.Now, Log: slog.New(slog.NewTextHandler(&syncWriter{w: f.log}, nil)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// refusals are the tokens every verifier must refuse, with the reason.
func refusals(t *testing.T, now time.Time) []struct {
	name  string
	token string
	want  error
} {
	good := goodClaims(now)
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	hsToken, err := jwt.Signed(hs).Claims(good).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(t, "k1", "k1", good)
	parts := strings.Split(valid, ".")
	return []struct {
		name  string
		token string
		want  error
	}{
		{"missing", "", ErrMissingToken},
		{"malformed", "not-a-jwt", ErrMalformed},
		{"alg HS256 (key confusion)", hsToken, ErrMalformed},
		{"alg none", "eyJhbGciOiJub25lIiwia2lkIjoiazEifQ." + parts[1] + ".", ErrMalformed},
		{"no kid", sign(t, "k1", "", good), ErrMalformed},
		{"tampered payload", parts[0] + "." + mustB64(t, with(good, "email", "attacker@evil.example")) + "." + parts[2], ErrSignature},
		{"wrong signer, known kid", sign(t, "rogue", "k1", good), ErrSignature},
		{"wrong signer, unknown kid", sign(t, "rogue", "rogue", good), ErrUnknownKey},
		{"wrong audience", sign(t, "k1", "k1", with(good, "aud", "https://other.a.run.app/events")), ErrAudience},
		{"no audience", sign(t, "k1", "k1", with(good, "aud", nil)), ErrAudience},
		{"wrong issuer", sign(t, "k1", "k1", with(good, "iss", "https://evil.example")), ErrIssuer},
		{"expired", sign(t, "k1", "k1", with(good, "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix())), ErrExpired},
		{"expired beyond leeway", sign(t, "k1", "k1", with(good, "exp", now.Add(-61*time.Second).Unix())), ErrExpired},
		{"no exp", sign(t, "k1", "k1", with(good, "exp", nil)), ErrMalformed},
		{"no iat", sign(t, "k1", "k1", with(good, "iat", nil)), ErrMalformed},
		{"not yet valid (nbf)", sign(t, "k1", "k1", with(good, "nbf", now.Add(10*time.Minute).Unix())), ErrNotYetValid},
		{"issued in the future", sign(t, "k1", "k1", with(good, "iat", now.Add(10*time.Minute).Unix())), ErrNotYetValid},
		{"email not allowed", sign(t, "k1", "k1", with(good, "email", "someone@proj.iam.gserviceaccount.com")), ErrEmailNotAllowed},
		{"no email", sign(t, "k1", "k1", with(good, "email", nil)), ErrEmailNotAllowed},
		{"email unverified", sign(t, "k1", "k1", with(good, "email_verified", false)), ErrEmailUnverified},
		{"email_verified missing", sign(t, "k1", "k1", with(good, "email_verified", nil)), ErrEmailUnverified},
		{"email_verified garbage", sign(t, "k1", "k1", with(good, "email_verified", "yes")), ErrMalformed},
	}
}

func mustB64(t *testing.T, claims map[string]any) string {
	t.Helper()
	raw := sign(t, "k1", "k1", claims)
	return strings.Split(raw, ".")[1]
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	for _, tc := range []struct {
		name   string
		claims map[string]any
	}{
		{"google push token", goodClaims(now)},
		{"issuer without scheme", with(goodClaims(now), "iss", "accounts.google.com")},
		{"audience list", with(goodClaims(now), "aud", []string{"x", testAudience})},
		{"email in other case", with(goodClaims(now), "email", strings.ToUpper(testEmail))},
		{"email_verified as string", with(goodClaims(now), "email_verified", "true")},
		{"expired within leeway", with(goodClaims(now), "exp", now.Add(-30*time.Second).Unix())},
		{"nbf in the past", with(goodClaims(now), "nbf", now.Add(-time.Minute).Unix())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.v.Verify(context.Background(), sign(t, "k1", "k1", tc.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !strings.EqualFold(c.Email, testEmail) || !c.EmailVerified || c.Subject != "1234567890" ||
				c.Expiry.IsZero() || c.IssuedAt.IsZero() {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	if n := f.v.Fetches(); n != 1 {
		t.Errorf("key set fetched %d times for %d tokens, want once (cached)", n, 7)
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range refusals(t, f.clock.Now()) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.v.Verify(context.Background(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.want)
			}
			if c.Email != "" || c.Subject != "" {
				t.Errorf("claims returned with an error: %+v", c)
			}
		})
	}
}

// The middleware passes a valid token's request to the handler with its
// claims, and answers every other one 401 "unauthenticated" — the same body
// whatever the reason — without the handler seeing it.
func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	var seen atomic.Int32
	var gotEmail atomic.Value
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			t.Error("no claims in the request context")
		}
		gotEmail.Store(c.Email)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(t *testing.T, auth string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/events", strings.NewReader(`{"message":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}

	good := sign(t, "k1", "k1", goodClaims(f.clock.Now()))
	if code, body, _ := post(t, "Bearer "+good); code != http.StatusNoContent {
		t.Fatalf("valid token: %d %q", code, body)
	}
	if seen.Load() != 1 || gotEmail.Load() != testEmail {
		t.Fatalf("handler saw %d requests, email %v", seen.Load(), gotEmail.Load())
	}
	if code, _, _ := post(t, "bearer "+good); code != http.StatusNoContent {
		t.Errorf("lower-case scheme: %d", code)
	}
	seen.Store(0)

	cases := map[string]string{
		"no header":     "",
		"basic auth":    "Basic dXNlcjpwYXNz",
		"empty bearer":  "Bearer ",
		"token only":    good,
		"bearer, space": "Bearer  ",
	}
	for _, tc := range refusals(t, f.clock.Now()) {
		if tc.token != "" {
			cases[tc.name] = "Bearer " + tc.token
		}
	}
	for name, auth := range cases {
		t.Run(name, func(t *testing.T) {
			code, body, hdr := post(t, auth)
			if code != http.StatusUnauthorized || strings.TrimSpace(body) != "unauthenticated" {
				t.Errorf("got %d %q, want 401 unauthenticated", code, body)
			}
			if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("handler saw %d refused requests", n)
	}
	logged := f.log.String()
	for _, want := range []string{"oidc: wrong audience", "oidc: token expired", "oidc: bad signature", "oidc: no bearer token"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks reason %q", want)
		}
	}
}

// A token naming a key id the cache lacks refetches the key set once, so a
// rotated key is accepted; unknown key ids refetch at most once per
// MinRefresh.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MinRefresh = time.Minute })
	ctx := context.Background()
	now := f.clock.Now()
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(now))); err != nil {
		t.Fatal(err)
	}
	// Google rotates: k2 is published, k1 retired.
	f.jwks.serve("k2")
	f.clock.Add(2 * time.Minute)
	now = f.clock.Now()
	if _, err := f.v.Verify(ctx, sign(t, "k2", "k2", goodClaims(now))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if got := f.jwks.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (initial, rotation)", got)
	}
	// The retired key is gone with its set.
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(now))); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
	// Forged key ids within MinRefresh of the last fetch fetch nothing.
	before := f.jwks.fetches.Load()
	for range 20 {
		if _, err := f.v.Verify(ctx, sign(t, "rogue", "rogue", goodClaims(now))); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if got := f.jwks.fetches.Load(); got != before {
		t.Errorf("forged key ids caused %d fetches", got-before)
	}
}

// Keys expire after the response's max-age; when the refresh then fails,
// keys already known stay in use, while a verifier that never got keys
// refuses.
func TestKeyExpiryAndOutage(t *testing.T) {
	f := newFixture(t)
	f.jwks.setMaxAge(600)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(f.clock.Now()))); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(5 * time.Minute)
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(f.clock.Now()))); err != nil || f.jwks.fetches.Load() != 1 {
		t.Fatalf("within max-age: %v, %d fetches", err, f.jwks.fetches.Load())
	}
	f.clock.Add(6 * time.Minute)
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(f.clock.Now()))); err != nil || f.jwks.fetches.Load() != 2 {
		t.Fatalf("after max-age: %v, %d fetches", err, f.jwks.fetches.Load())
	}
	f.jwks.setStatus(http.StatusInternalServerError)
	f.clock.Add(11 * time.Minute)
	if _, err := f.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(f.clock.Now()))); err != nil {
		t.Fatalf("stale key during outage: %v", err)
	}
	if !strings.Contains(f.log.String(), "using cached keys") {
		t.Error("outage not logged")
	}
	fresh := newFixture(t)
	fresh.jwks.setStatus(http.StatusInternalServerError)
	if _, err := fresh.v.Verify(ctx, sign(t, "k1", "k1", goodClaims(fresh.clock.Now()))); !errors.Is(err, ErrKeySource) {
		t.Fatalf("no keys at all: %v", err)
	}
}

// Concurrent first requests share one fetch.
func TestConcurrentFirstFetch(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, "k1", "k1", goodClaims(f.clock.Now()))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := f.v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.jwks.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{AllowedEmails: []string{testEmail}}); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("no audience: %v", err)
	}
	if _, err := New(Config{Audiences: []string{testAudience}, AllowedEmails: []string{" "}}); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("no email: %v", err)
	}
	v, err := New(Config{Audiences: []string{testAudience}, AllowedEmails: []string{testEmail}})
	if err != nil {
		t.Fatal(err)
	}
	if v.keys.url != GoogleJWKSURL {
		t.Errorf("default key set %q", v.keys.url)
	}
}

func TestMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"public, max-age=19845, must-revalidate": 19845 * time.Second,
		"max-age=0":                              time.Hour,
		"no-cache":                               time.Hour,
		"":                                       time.Hour,
		"max-age=999999":                         24 * time.Hour,
	} {
		if got := maxAge(cc, time.Hour); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", cc, got, want)
		}
	}
}
