package oidc

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxJWKSBytes bounds a key set response.
const maxJWKSBytes = 1 << 20

// keySet caches a remote JWKS. Keys live until the response's max-age (or
// defaultTTL); a token naming a key id not in the cache refetches at once,
// but at most once per minRefresh, so key rotation is picked up and forged
// key ids cannot turn every request into a fetch. Concurrent misses share
// one fetch. When a refresh fails, keys already known stay in use.
type keySet struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	defaultTTL time.Duration
	now        func() time.Time
	log        *slog.Logger

	fetchMu sync.Mutex // one fetch at a time

	mu          sync.Mutex
	keys        jwks
	expires     time.Time // keys are fresh until then
	lastAttempt time.Time // last fetch attempt, successful or not
	fetches     int       // successful fetches, for tests
}

func (k *keySet) lookup(kid string) (key *rsa.PublicKey, fresh bool, last time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[kid], k.keys != nil && k.now().Before(k.expires), k.lastAttempt
}

// key returns the public key kid names.
func (k *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	key, fresh, last := k.lookup(kid)
	if fresh && key != nil {
		return key, nil
	}
	if fresh && k.now().Sub(last) < k.minRefresh {
		// Unknown key, refetched moments ago: no rotation to pick up.
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	if !fresh && key != nil && k.now().Sub(last) < k.minRefresh {
		// Expired, and the last refresh failed moments ago: keep using it.
		return key, nil
	}

	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	// Another request may have refreshed while this one waited.
	if key2, fresh2, last2 := k.lookup(kid); last2.After(last) {
		if key2 != nil {
			return key2, nil
		}
		if fresh2 {
			return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
		}
	}
	keys, ttl, err := k.fetch(ctx)
	k.mu.Lock()
	k.lastAttempt = k.now()
	if err == nil {
		k.keys, k.expires = keys, k.now().Add(ttl)
		k.fetches++
	}
	k.mu.Unlock()
	if err != nil {
		if key != nil {
			k.log.Warn("key set refresh failed; using cached keys", "url", k.url, "error", err)
			return key, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrKeySource, err)
	}
	if key = keys[kid]; key == nil {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	return key, nil
}

func (k *keySet) fetch(ctx context.Context) (jwks, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("key set %s: %w", k.url, err)
	}
	return keys, maxAge(resp.Header.Get("Cache-Control"), k.defaultTTL), nil
}

// maxAge reads max-age from a Cache-Control header, bounded to a day.
func maxAge(cc string, def time.Duration) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		if s, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && s > 0 {
			return min(time.Duration(s)*time.Second, 24*time.Hour)
		}
	}
	return def
}

// Fetches reports how many times the key set was fetched successfully.
func (v *Verifier) Fetches() int {
	v.keys.mu.Lock()
	defer v.keys.mu.Unlock()
	return v.keys.fetches
}
