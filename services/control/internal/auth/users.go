package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/password"
)

// user is an API_USERS entry: a password hash and who the user is.
type user struct {
	hash string
	id   Identity
}

// userEntryRE matches one API_USERS entry, "<name>:<hash>:<role>", and the
// comma ending it. The list cannot be split on commas first: an argon2id
// hash has commas in its parameters ($argon2id$v=19$m=19456,t=2,p=1$salt$key),
// so such a hash is matched field by field; any other hash (bcrypt) runs to
// the next colon. What the fields hold is checked after the match.
var userEntryRE = regexp.MustCompile(
	`^\s*([^:,]*):(\$argon2id\$[^$:,]*\$[^$:]*\$[^$:,]*\$[^$:,]*|[^:,]*):([^:,]*?)\s*(?:,|$)`)

// AcceptUsers makes t also accept the users of API_USERS, comma-separated
// "<name>:<argon2id or bcrypt hash>:<role>" entries, with HTTP Basic on the
// routes that allow it (Guard.CheckBearerOrBasic). Names follow the tokens'
// rules and are unique among users and tokens. The error names the entry,
// never its hash.
func (t *Tokens) AcceptUsers(s string) error {
	taken := map[string]bool{}
	for _, e := range t.entries {
		taken[e.id.Name] = true
	}
	users := map[string]user{}
	rest := s
	for n := 1; ; n++ {
		if rest = strings.TrimLeft(rest, ", \t\r\n"); rest == "" {
			break
		}
		m := userEntryRE.FindStringSubmatch(rest)
		if m == nil {
			return fmt.Errorf("API_USERS entry %d: want <name>:<argon2id or bcrypt hash>:<role> (see `cmmsflow user`)", n)
		}
		rest = rest[len(m[0]):]
		u, err := parseUser(m[1], m[2], m[3])
		if err != nil {
			return fmt.Errorf("API_USERS entry %d: %w", n, err)
		}
		if _, dup := users[u.id.Name]; dup {
			return fmt.Errorf("API_USERS entry %d: user %q is listed twice", n, u.id.Name)
		}
		if taken[u.id.Name] {
			return fmt.Errorf("API_USERS entry %d: name %q is a token's name (API_TOKENS)", n, u.id.Name)
		}
		users[u.id.Name] = u
	}
	t.users = users
	return nil
}

func parseUser(name, hash, role string) (user, error) {
	if !nameRE.MatchString(name) {
		return user{}, errors.New("the name must be 1-64 characters of [A-Za-z0-9._@-]")
	}
	if err := password.Validate(hash); err != nil {
		return user{}, fmt.Errorf("user %s: %w", name, err)
	}
	r, err := ParseRole(role)
	if err != nil {
		return user{}, fmt.Errorf("user %s: %w", name, err)
	}
	// One rate limiter per configured user: the limiter map cannot outgrow the list.
	return user{hash: hash, id: Identity{Name: name, Role: r, key: sha256.Sum256([]byte("user:" + name))}}, nil
}

// Users is the number of API_USERS users; 0 means HTTP Basic is off.
func (t *Tokens) Users() int { return len(t.users) }

// NewUser returns the API_USERS entry of a user named name with role and
// password pw (an argon2id hash of it).
func NewUser(name string, role Role, pw string) (string, error) {
	if role != RoleAdmin && role != RoleViewer {
		return "", errors.New("role must be admin or viewer")
	}
	if !nameRE.MatchString(name) {
		return "", errors.New("the name must be 1-64 characters of [A-Za-z0-9._@-]")
	}
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	h, err := password.Hash(pw)
	if err != nil {
		return "", err
	}
	return name + ":" + h + ":" + role.String(), nil
}
