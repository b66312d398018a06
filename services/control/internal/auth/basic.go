package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/password"
)

// Limits of HTTP Basic logins.
const (
	// A user name with maxFailures failed logins within failureWindow (from
	// its first failure) is refused without a verification until the window
	// ends: online guessing gets 10 passwords a minute per name, and a
	// guesser cannot make argon2id burn more CPU than that per name.
	maxFailures   = 10
	failureWindow = time.Minute
	// maxTrackedNames bounds the failure windows kept. Unknown names are
	// counted like known ones (else a lockout would tell which names exist);
	// when full, expired windows go first, then arbitrary ones.
	maxTrackedNames = 10_000
	// A verified name and password is remembered for cacheTTL, so a client
	// sending Basic on every call (as Airflow's do) pays one verification
	// per cacheTTL instead of tens of ms of CPU and 19 MiB per request.
	// Only verified passwords are cached, so the cache holds about one entry
	// per user; maxCached is a backstop.
	cacheTTL  = 5 * time.Minute
	maxCached = 1024
)

// basicAuth verifies HTTP Basic credentials of API_USERS.
type basicAuth struct {
	users map[string]user
	now   func() time.Time
	log   *slog.Logger
	// dummy is verified for an unknown name, so that it takes as long as a
	// known name with a wrong password.
	dummy string
	// hmacKey keys the cache: credentials are held only as HMAC-SHA256s
	// under a key that lives and dies with the process.
	hmacKey [32]byte
	// slots bounds concurrent verifications: more than the CPUs gains
	// nothing, and each argon2id verification holds its memory (19 MiB).
	slots chan struct{}

	mu       sync.Mutex
	verified map[[sha256.Size]byte]verified // by credentialKey
	failures map[string]*failedLogins       // by name as sent
}

type verified struct {
	id      Identity
	expires time.Time
}

// failedLogins counts the failed logins of a name in the window from start.
type failedLogins struct {
	start time.Time
	n     int
}

func newBasicAuth(users map[string]user, now func() time.Time, log *slog.Logger) *basicAuth {
	// crypto/rand does not fail (since Go 1.24 it aborts the program), so
	// neither does hashing a random password.
	dummy, err := password.Hash(rand.Text())
	if err != nil {
		panic("auth: hash the dummy password: " + err.Error())
	}
	b := &basicAuth{
		users: users, now: now, log: log, dummy: dummy, slots: make(chan struct{}, runtime.GOMAXPROCS(0)),
		verified: map[[sha256.Size]byte]verified{}, failures: map[string]*failedLogins{},
	}
	_, _ = rand.Read(b.hmacKey[:])
	return b
}

// authenticate checks a name and password: refused without a verification
// while the name is locked out, accepted from the cache when verified
// recently, else verified with password.Verify — against the dummy hash for
// an unknown name.
func (b *basicAuth) authenticate(ctx context.Context, name, pw string) (Identity, bool) {
	if !nameRE.MatchString(name) {
		return Identity{}, false // no user has such a name, and it is not worth a window
	}
	now := b.now()
	key := b.credentialKey(name, pw)
	if locked, id, ok := b.lookup(name, key, now); locked || ok {
		return id, ok
	}
	u, known := b.users[name]
	hash := b.dummy
	if known {
		hash = u.hash
	}
	ok, err := b.verify(ctx, hash, pw)
	switch {
	case errors.Is(err, password.ErrMalformed):
		// AcceptUsers validated every hash: not expected.
		b.log.ErrorContext(ctx, "basic auth: unusable password hash", "user", name, "error", err)
		return Identity{}, false
	case err != nil:
		return Identity{}, false // the request ended while waiting: not a failed login
	case !ok || !known:
		b.fail(ctx, name, now)
		return Identity{}, false
	}
	b.remember(key, u.id, now)
	return u.id, true
}

// lookup reports whether name is locked out, else the cached identity of key.
func (b *basicAuth) lookup(name string, key [sha256.Size]byte, now time.Time) (locked bool, id Identity, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w, found := b.failures[name]; found && w.n >= maxFailures && now.Sub(w.start) < failureWindow {
		return true, Identity{}, false
	}
	v, found := b.verified[key]
	if !found || !now.Before(v.expires) {
		return false, Identity{}, false
	}
	return false, v.id, true
}

// verify runs password.Verify in one of the slots.
func (b *basicAuth) verify(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-b.slots }()
	return password.Verify(hash, pw)
}

// fail counts a failed login of name in its window.
func (b *basicAuth) fail(ctx context.Context, name string, now time.Time) {
	b.mu.Lock()
	w, found := b.failures[name]
	if !found || now.Sub(w.start) >= failureWindow {
		makeRoom(b.failures, maxTrackedNames, func(w *failedLogins) bool { return now.Sub(w.start) >= failureWindow })
		w = &failedLogins{start: now}
		b.failures[name] = w
	}
	w.n++
	n := w.n
	b.mu.Unlock()
	if n == maxFailures {
		b.log.WarnContext(ctx, "basic auth: too many failed logins, the name is refused until its window ends",
			"user", name, "failures", n, "window", failureWindow)
	}
}

func (b *basicAuth) remember(key [sha256.Size]byte, id Identity, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	makeRoom(b.verified, maxCached, func(v verified) bool { return !now.Before(v.expires) })
	b.verified[key] = verified{id: id, expires: now.Add(cacheTTL)}
}

// credentialKey is the HMAC of a name and password (names have no colon).
func (b *basicAuth) credentialKey(name, pw string) [sha256.Size]byte {
	m := hmac.New(sha256.New, b.hmacKey[:])
	m.Write([]byte(name + ":" + pw))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// makeRoom deletes entries of m until one more fits under limit: the
// expired ones first, then arbitrary ones.
func makeRoom[K comparable, V any](m map[K]V, limit int, expired func(V) bool) {
	if len(m) < limit {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < limit {
			return
		}
		delete(m, k)
	}
}

// isBasic reports whether an Authorization value has the Basic scheme
// (case-insensitive).
func isBasic(authorization string) bool {
	scheme, _, _ := strings.Cut(authorization, " ")
	return strings.EqualFold(scheme, "basic")
}

// basicCredentials decodes "Basic base64(name:password)"; a value that is not
// base64, has no colon or an empty name is not credentials.
func basicCredentials(authorization string) (name, pw string, ok bool) {
	scheme, encoded, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", false
	}
	name, pw, ok = strings.Cut(string(raw), ":")
	return name, pw, ok && name != ""
}
