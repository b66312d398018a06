// Package auth guards control's API: bearer tokens configured as SHA-256
// hashes with a role, checked on every gRPC call (interceptors) and on every
// HTTP API request (middleware), a per-method role policy and a per-token
// rate limit on triggers. Users with a password (API_USERS) may also log in
// with HTTP Basic, on the routes that allow it only (the Airflow-compatible
// ones, for Airflow's clients; basic.go).
//
// A caller learns only "unauthenticated" (401 / UNAUTHENTICATED), "permission
// denied" (403 / PERMISSION_DENIED) or "rate limit exceeded" (429 /
// RESOURCE_EXHAUSTED), never why a token was refused.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Role is what a token may do.
type Role int

// Roles, in increasing power.
const (
	RoleNone   Role = iota // no role: public methods only
	RoleViewer             // read pipelines, runs and notifications
	RoleAdmin              // also trigger, pause, unpause and cancel
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses "admin" or "viewer".
func ParseRole(s string) (Role, error) {
	switch s {
	case "admin":
		return RoleAdmin, nil
	case "viewer":
		return RoleViewer, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want admin or viewer)", s)
}

// Identity is an authenticated caller.
type Identity struct {
	// Name is the token's, account's or user's name, for logs and audit
	// (never the credential).
	Name string
	Role Role
	// key identifies the token (its hash) for rate limiting.
	key [sha256.Size]byte
}

type entry struct {
	hash [sha256.Size]byte
	id   Identity
}

// Tokens is the configured set of API tokens. The zero value (and an empty
// configuration) accepts no token: the API is disabled.
type Tokens struct {
	entries []entry
	// id, when set, verifies Google-signed ID tokens (AcceptIDTokens).
	id *idTokens
	// users log in with HTTP Basic (AcceptUsers), by name.
	users map[string]user
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ParseTokens parses API_TOKENS: comma-separated "<sha256-hex>:<role>[:<name>]"
// entries, role admin or viewer; the name defaults to "token-" and the
// first 8 hex digits of the hash. The error never contains a hash.
func ParseTokens(s string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	names := map[string]bool{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("API_TOKENS entry %d: want <sha256-hex>:<role>[:<name>]", i+1)
		}
		raw, err := hex.DecodeString(strings.ToLower(parts[0]))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("API_TOKENS entry %d: the hash is not 64 hex digits (a SHA-256; see `cmmsflow token`)", i+1)
		}
		var e entry
		copy(e.hash[:], raw)
		if seen[e.hash] {
			return nil, fmt.Errorf("API_TOKENS entry %d: the same token is listed twice", i+1)
		}
		seen[e.hash] = true
		if e.id.Role, err = ParseRole(parts[1]); err != nil {
			return nil, fmt.Errorf("API_TOKENS entry %d: %w", i+1, err)
		}
		e.id.Name = "token-" + strings.ToLower(parts[0][:8])
		if len(parts) == 3 {
			e.id.Name = parts[2]
		}
		if !nameRE.MatchString(e.id.Name) {
			return nil, fmt.Errorf("API_TOKENS entry %d: the name must be 1-64 characters of [A-Za-z0-9._@-]", i+1)
		}
		if names[e.id.Name] {
			return nil, fmt.Errorf("API_TOKENS entry %d: name %q is used twice", i+1, e.id.Name)
		}
		names[e.id.Name] = true
		e.id.key = e.hash
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// Len is the number of configured tokens; 0 means the API is disabled.
func (t *Tokens) Len() int { return len(t.entries) }

// Authenticate checks an Authorization header value ("Bearer <token>"). It
// hashes the token and compares the hash with every configured one in
// constant time, so neither the timing nor the answer tells which part of a
// token was wrong. A token matching none, when ID tokens are accepted, is
// then verified as a Google-signed ID token.
func (t *Tokens) Authenticate(authorization string) (Identity, bool) {
	return t.AuthenticateContext(context.Background(), authorization)
}

// AuthenticateContext is Authenticate with ctx bounding an ID token's key
// fetch.
func (t *Tokens) AuthenticateContext(ctx context.Context, authorization string) (Identity, bool) {
	token, ok := bearer(authorization)
	if !ok {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found Identity
	match := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found, match = e.id, 1
		}
	}
	if match == 0 && t.id != nil {
		return t.id.authenticate(ctx, token)
	}
	return found, match == 1
}

// bearer extracts the token of "Bearer <token>" (scheme case-insensitive).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	token := strings.TrimSpace(h[len(scheme):])
	return token, token != ""
}

// Hash is the hex SHA-256 of a token: what API_TOKENS lists.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random token (256 bits) and its API_TOKENS entry.
func NewToken(role Role, name string) (token, entry string, err error) {
	if role != RoleAdmin && role != RoleViewer {
		return "", "", errors.New("role must be admin or viewer")
	}
	if name != "" && !nameRE.MatchString(name) {
		return "", "", errors.New("the name must be 1-64 characters of [A-Za-z0-9._@-]")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = "cmf_" + base64.RawURLEncoding.EncodeToString(b)
	entry = Hash(token) + ":" + role.String()
	if name != "" {
		entry += ":" + name
	}
	return token, entry, nil
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the authenticated caller of a request.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
