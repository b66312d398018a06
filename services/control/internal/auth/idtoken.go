package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/oidc"
)

// IDTokenConfig configures Google-signed ID tokens as API credentials (on
// GCP: service accounts calling control with their own identity).
type IDTokenConfig struct {
	// Audience is the aud the tokens must carry (control's URL).
	Audience string
	// Accounts is API_ID_TOKEN_ACCOUNTS: "<email>:<role>,…".
	Accounts string
	// JWKSURL is where Google's signing keys are fetched; empty: Google's.
	JWKSURL string
	Log     *slog.Logger
}

// idTokens verifies ID tokens and maps their email to a role.
type idTokens struct {
	verifier *oidc.Verifier
	roles    map[string]Role // lower-case email → role
	log      *slog.Logger
}

// ParseIDTokenAccounts parses API_ID_TOKEN_ACCOUNTS: comma-separated
// "<email>:<role>" entries, role admin or viewer. Emails are compared
// case-insensitively.
func ParseIDTokenAccounts(s string) (map[string]Role, error) {
	out := map[string]Role{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		email, role, ok := strings.Cut(item, ":")
		email = strings.ToLower(strings.TrimSpace(email))
		if !ok || email == "" || !strings.Contains(email, "@") {
			return nil, fmt.Errorf("API_ID_TOKEN_ACCOUNTS entry %d: want <email>:<role>", i+1)
		}
		r, err := ParseRole(strings.TrimSpace(role))
		if err != nil {
			return nil, fmt.Errorf("API_ID_TOKEN_ACCOUNTS entry %d: %w", i+1, err)
		}
		if _, dup := out[email]; dup {
			return nil, fmt.Errorf("API_ID_TOKEN_ACCOUNTS entry %d: %s is listed twice", i+1, email)
		}
		out[email] = r
	}
	return out, nil
}

// AcceptIDTokens makes t also accept Google-signed ID tokens for
// c.Audience from the accounts c lists, as Identity{Name: email, Role: role}.
// An empty c (no audience, no accounts) leaves ID tokens off; half a
// configuration is an error.
func (t *Tokens) AcceptIDTokens(c IDTokenConfig) error {
	roles, err := ParseIDTokenAccounts(c.Accounts)
	if err != nil {
		return err
	}
	c.Audience = strings.TrimSpace(c.Audience)
	if c.Audience == "" && len(roles) == 0 {
		t.id = nil
		return nil
	}
	if c.Audience == "" || len(roles) == 0 {
		return errors.New("ID token auth needs both API_ID_TOKEN_AUDIENCE and API_ID_TOKEN_ACCOUNTS")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	emails := make([]string, 0, len(roles))
	for e := range roles {
		emails = append(emails, e)
	}
	v, err := oidc.New(oidc.Config{
		Audiences: []string{c.Audience}, AllowedEmails: emails, Issuers: oidc.GoogleIssuers,
		JWKSURL: c.JWKSURL, Log: c.Log,
	})
	if err != nil {
		return fmt.Errorf("API_ID_TOKEN_*: %w", err)
	}
	t.id = &idTokens{verifier: v, roles: roles, log: c.Log}
	return nil
}

// IDTokenAccounts is the number of service accounts whose ID tokens are
// accepted; 0 means ID tokens are off.
func (t *Tokens) IDTokenAccounts() int {
	if t.id == nil {
		return 0
	}
	return len(t.id.roles)
}

// authenticate verifies an ID token; the reason of a refusal goes to the
// log only.
func (x *idTokens) authenticate(ctx context.Context, token string) (Identity, bool) {
	// Not a JWT (three dot-separated parts): not worth a verification.
	if strings.Count(token, ".") != 2 {
		return Identity{}, false
	}
	c, err := x.verifier.Verify(ctx, token)
	if err != nil {
		level := slog.LevelDebug
		if errors.Is(err, oidc.ErrKeySource) {
			level = slog.LevelError
		}
		x.log.Log(ctx, level, "ID token refused", "reason", err.Error())
		return Identity{}, false
	}
	email := strings.ToLower(c.Email)
	role, ok := x.roles[email]
	if !ok {
		return Identity{}, false
	}
	// One rate limiter per account: the limiter map cannot outgrow the list.
	return Identity{Name: email, Role: role, key: sha256.Sum256([]byte("id-token:" + email))}, true
}
