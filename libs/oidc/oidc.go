// Package oidc verifies Google-signed OpenID Connect ID tokens: the tokens
// Pub/Sub push subscriptions, Cloud Scheduler and Cloud Run service accounts
// send as "Authorization: Bearer <token>". A Verifier checks the RS256
// signature against Google's published keys (a JWKS, cached and refetched on
// rotation), the issuer, the audience, the validity window and that the
// token's email is a verified, allowed service account.
//
// The key set URL is configurable, so everything is testable offline against
// a local JWKS server. Callers get one answer only — 401 "unauthenticated" —
// while the reason is logged.
package oidc

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// GoogleJWKSURL is where Google publishes the keys it signs ID tokens with.
const GoogleJWKSURL = "https://www.googleapis.com/oauth2/v3/certs"

// GoogleIssuers are the iss values of Google-signed ID tokens.
var GoogleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// Reasons a token is refused. Verify wraps one of them; the middleware logs
// it and answers 401 whatever it is.
var (
	ErrMissingToken    = errors.New("oidc: no bearer token")
	ErrMalformed       = errors.New("oidc: malformed token")
	ErrUnknownKey      = errors.New("oidc: token signed with an unknown key")
	ErrSignature       = errors.New("oidc: bad signature")
	ErrIssuer          = errors.New("oidc: wrong issuer")
	ErrAudience        = errors.New("oidc: wrong audience")
	ErrExpired         = errors.New("oidc: token expired")
	ErrNotYetValid     = errors.New("oidc: token not yet valid")
	ErrEmailNotAllowed = errors.New("oidc: email not allowed")
	ErrEmailUnverified = errors.New("oidc: email not verified")
	// ErrKeySource means the keys could not be fetched: the token may be
	// good, but it cannot be checked.
	ErrKeySource = errors.New("oidc: key set unavailable")
)

// Config configures New.
type Config struct {
	// Audiences are the accepted aud values (at least one): for a Pub/Sub
	// push subscription, the audience set on its OIDC token (by default the
	// push endpoint URL).
	Audiences []string
	// AllowedEmails are the service accounts whose tokens are accepted (at
	// least one), compared without regard to case.
	AllowedEmails []string
	// Issuers accepted; empty means GoogleIssuers.
	Issuers []string
	// JWKSURL is the key set; empty means GoogleJWKSURL.
	JWKSURL string
	// HTTPClient fetches the key set; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 means 1 minute.
	Leeway time.Duration
	// MinRefresh is the shortest interval between two fetches caused by
	// tokens naming an unknown key (rotation), so that forged key ids cannot
	// make every request fetch; 0 means 30 seconds.
	MinRefresh time.Duration
	// DefaultTTL is how long keys are cached when the response has no
	// Cache-Control max-age; 0 means 1 hour.
	DefaultTTL time.Duration
	// Log receives the reason for every refused token; nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Claims are the verified contents of an ID token.
type Claims struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string
	Email           string
	EmailVerified   bool
	IssuedAt        time.Time
	NotBefore       time.Time
	Expiry          time.Time
}

// Verifier verifies ID tokens. It is safe for concurrent use.
type Verifier struct {
	audiences []string
	emails    map[string]bool
	issuers   []string
	leeway    time.Duration
	log       *slog.Logger
	now       func() time.Time
	keys      *keySet
}

// New returns a verifier; it fetches no keys until the first token.
func New(c Config) (*Verifier, error) {
	var errs []error
	audiences := nonEmpty(c.Audiences)
	if len(audiences) == 0 {
		errs = append(errs, errors.New("no audience"))
	}
	emails := map[string]bool{}
	for _, e := range nonEmpty(c.AllowedEmails) {
		emails[strings.ToLower(e)] = true
	}
	if len(emails) == 0 {
		errs = append(errs, errors.New("no allowed service account email"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("oidc: %w", errors.Join(errs...))
	}
	issuers := nonEmpty(c.Issuers)
	if len(issuers) == 0 {
		issuers = GoogleIssuers
	}
	if c.JWKSURL == "" {
		c.JWKSURL = GoogleJWKSURL
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Leeway == 0 {
		c.Leeway = time.Minute
	}
	if c.MinRefresh == 0 {
		c.MinRefresh = 30 * time.Second
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = time.Hour
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Verifier{
		audiences: audiences, emails: emails, issuers: issuers, leeway: c.Leeway, log: c.Log, now: c.Now,
		keys: &keySet{
			url: c.JWKSURL, client: c.HTTPClient, minRefresh: c.MinRefresh, defaultTTL: c.DefaultTTL,
			now: c.Now, log: c.Log,
		},
	}, nil
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// tokenClaims is the JSON payload of a Google ID token.
type tokenClaims struct {
	Issuer          string           `json:"iss"`
	Subject         string           `json:"sub"`
	Audience        jwt.Audience     `json:"aud"`
	AuthorizedParty string           `json:"azp"`
	Email           string           `json:"email"`
	EmailVerified   flexBool         `json:"email_verified"`
	IssuedAt        *jwt.NumericDate `json:"iat"`
	NotBefore       *jwt.NumericDate `json:"nbf"`
	Expiry          *jwt.NumericDate `json:"exp"`
}

// flexBool reads true and "true": older Google tokens carry the string.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("email_verified: not a boolean: %s", data)
	}
	return nil
}

// Verify checks a raw ID token (without "Bearer ") and returns its claims.
// The error wraps one of the Err* reasons.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Claims{}, ErrMissingToken
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(tok.Headers) != 1 {
		return Claims{}, fmt.Errorf("%w: %d signatures", ErrMalformed, len(tok.Headers))
	}
	kid := tok.Headers[0].KeyID
	if kid == "" {
		return Claims{}, fmt.Errorf("%w: no key id (kid)", ErrMalformed)
	}
	key, err := v.keys.key(ctx, kid)
	if err != nil {
		return Claims{}, err
	}
	var tc tokenClaims
	if err := tok.Claims(key, &tc); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return Claims{}, fmt.Errorf("%w: key %s: %v", ErrSignature, kid, err)
		}
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return v.check(tc)
}

func (v *Verifier) check(tc tokenClaims) (Claims, error) {
	c := Claims{
		Issuer: tc.Issuer, Subject: tc.Subject, Audience: []string(tc.Audience), AuthorizedParty: tc.AuthorizedParty,
		Email: tc.Email, EmailVerified: bool(tc.EmailVerified),
	}
	if !slices.Contains(v.issuers, tc.Issuer) {
		return Claims{}, fmt.Errorf("%w: %q", ErrIssuer, tc.Issuer)
	}
	if !slices.ContainsFunc(v.audiences, tc.Audience.Contains) {
		return Claims{}, fmt.Errorf("%w: %q", ErrAudience, []string(tc.Audience))
	}
	now := v.now()
	if tc.Expiry == nil {
		return Claims{}, fmt.Errorf("%w: no exp", ErrMalformed)
	}
	if tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no iat", ErrMalformed)
	}
	c.Expiry, c.IssuedAt = tc.Expiry.Time(), tc.IssuedAt.Time()
	if !now.Before(c.Expiry.Add(v.leeway)) {
		return Claims{}, fmt.Errorf("%w: at %s", ErrExpired, c.Expiry.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(v.leeway)) {
		return Claims{}, fmt.Errorf("%w: issued at %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time()
		if c.NotBefore.After(now.Add(v.leeway)) {
			return Claims{}, fmt.Errorf("%w: not before %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	if !v.emails[strings.ToLower(tc.Email)] {
		return Claims{}, fmt.Errorf("%w: %q", ErrEmailNotAllowed, tc.Email)
	}
	if !c.EmailVerified {
		return Claims{}, fmt.Errorf("%w: %q", ErrEmailUnverified, tc.Email)
	}
	return c, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, or ErrMissingToken.
func BearerToken(r *http.Request) (string, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", ErrMissingToken
	}
	return strings.TrimSpace(tok), nil
}

// VerifyRequest verifies the bearer token of r.
func (v *Verifier) VerifyRequest(r *http.Request) (Claims, error) {
	tok, err := BearerToken(r)
	if err != nil {
		return Claims{}, err
	}
	return v.Verify(r.Context(), tok)
}

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims the middleware verified for this request.
func ClaimsFrom(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}

// Middleware passes on only requests with a valid token, their claims in the
// request context (ClaimsFrom); every other request gets 401
// "unauthenticated" and never reaches next. The reason is logged, not sent.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyRequest(r)
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, ErrKeySource) {
				level = slog.LevelError
			}
			v.log.Log(r.Context(), level, "request refused: unauthenticated",
				"reason", err.Error(), "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			Unauthenticated(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// Unauthenticated writes the one 401 answer.
func Unauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="cmmsflow"`)
	http.Error(w, "unauthenticated", http.StatusUnauthorized)
}

// jwks is a fetched key set: public RSA signing keys by key id.
type jwks map[string]*rsa.PublicKey

func parseJWKS(body []byte) (jwks, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, err
	}
	out := jwks{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.RS256) {
			continue
		}
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || k.KeyID == "" {
			continue
		}
		out[k.KeyID] = pub
	}
	if len(out) == 0 {
		return nil, errors.New("no RS256 signing keys")
	}
	return out, nil
}
