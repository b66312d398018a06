package auth

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	methodRead    = controlv1.ControlService_ListRuns_FullMethodName
	methodTrigger = controlv1.ControlService_TriggerPipeline_FullMethodName
)

func basic(name, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+pw))
}

// clock is a settable time for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// basicGuard has a bearer token ("adm", admin) and two users with the
// password airflow-pw: alice (admin, argon2id) and bob (viewer, bcrypt).
func basicGuard(t *testing.T, limit RateLimit) (*Guard, *clock) {
	t.Helper()
	tk, err := ParseTokens(Hash("adm") + ":admin:a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.AcceptUsers("alice:" + argonPW + ":admin,bob:" + bcryptPW + ":viewer"); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	return NewGuard(tk, Policy, limit, discard, WithClock(c.now)), c
}

func TestCheckBearerOrBasic(t *testing.T) {
	g, _ := basicGuard(t, RateLimit{})
	ctx := context.Background()
	for _, c := range []struct {
		method, authz string
		want          codes.Code
		name          string
	}{
		{methodRead, basic("alice", "airflow-pw"), codes.OK, "alice"},
		{methodRead, "basic " + basic("alice", "airflow-pw")[6:], codes.OK, "alice"},
		{methodRead, basic("bob", "airflow-pw"), codes.OK, "bob"},
		{methodTrigger, basic("alice", "airflow-pw"), codes.OK, "alice"},
		{methodTrigger, basic("bob", "airflow-pw"), codes.PermissionDenied, ""},
		{methodRead, "Bearer adm", codes.OK, "a"},
		{methodRead, basic("alice", "airflow-PW"), codes.Unauthenticated, ""},
		{methodRead, basic("alice", ""), codes.Unauthenticated, ""},
		{methodRead, basic("carol", "airflow-pw"), codes.Unauthenticated, ""},
		{methodRead, basic("a", "adm"), codes.Unauthenticated, ""}, // a token's name is no user
		{methodRead, basic("", "airflow-pw"), codes.Unauthenticated, ""},
		{methodRead, basic("bad name", "airflow-pw"), codes.Unauthenticated, ""},
		{methodRead, "Basic", codes.Unauthenticated, ""},
		{methodRead, "Basic !!!", codes.Unauthenticated, ""},
		{methodRead, "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), codes.Unauthenticated, ""},
		{methodRead, "Basic adm", codes.Unauthenticated, ""},
		{methodRead, "Bearer " + basic("alice", "airflow-pw")[6:], codes.Unauthenticated, ""},
	} {
		got, err := g.CheckBearerOrBasic(ctx, c.method, c.authz)
		if status.Code(err) != c.want {
			t.Errorf("%s %q: %v, want %s", c.method, c.authz, err, c.want)
			continue
		}
		if id, _ := IdentityFrom(got); err == nil && id.Name != c.name {
			t.Errorf("%q: identity %+v, want %s", c.authz, id, c.name)
		}
	}
	// Check, the rest of the API, stays bearer-only.
	if _, err := g.Check(ctx, methodRead, basic("alice", "airflow-pw")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Check accepted Basic: %v", err)
	}
	// Without users, Basic is refused.
	tk, _ := ParseTokens(Hash("adm") + ":admin:a")
	if _, err := NewGuard(tk, Policy, RateLimit{}, discard).CheckBearerOrBasic(ctx, methodRead, basic("a", "adm")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no users: %v", err)
	}
}

func TestBasicTriggerRateLimitPerUser(t *testing.T) {
	g, _ := basicGuard(t, RateLimit{Rate: 0.0001, Burst: 2})
	ctx := context.Background()
	for i, want := range []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted} {
		if _, err := g.CheckBearerOrBasic(ctx, methodTrigger, basic("alice", "airflow-pw")); status.Code(err) != want {
			t.Fatalf("trigger %d: %v, want %s", i, err, want)
		}
	}
	// Another caller has its own budget.
	if _, err := g.CheckBearerOrBasic(ctx, methodTrigger, "Bearer adm"); err != nil {
		t.Fatalf("token after alice's limit: %v", err)
	}
}

func TestBasicFailureLimit(t *testing.T) {
	g, clk := basicGuard(t, RateLimit{})
	ctx := context.Background()
	check := func(name, pw string) codes.Code {
		_, err := g.CheckBearerOrBasic(ctx, methodRead, basic(name, pw))
		return status.Code(err)
	}
	for i := range maxFailures {
		if got := check("alice", "guess"); got != codes.Unauthenticated {
			t.Fatalf("guess %d: %s", i, got)
		}
		if got := check("carol", "guess"); got != codes.Unauthenticated {
			t.Fatalf("unknown name, guess %d: %s", i, got)
		}
		clk.add(failureWindow / (2 * maxFailures))
	}
	// Locked out: even the right password is refused, without a verification.
	if got := check("alice", "airflow-pw"); got != codes.Unauthenticated {
		t.Fatalf("right password while locked out: %s", got)
	}
	if n := g.basic.failures["carol"].n; n != maxFailures {
		t.Fatalf("an unknown name has %d failures, want %d: it is counted like a known one", n, maxFailures)
	}
	// Per name: bob is not locked out.
	if got := check("bob", "airflow-pw"); got != codes.OK {
		t.Fatalf("bob: %s", got)
	}
	// Failures while locked out do not extend the window.
	check("alice", "guess")
	clk.add(failureWindow / 2)
	if got := check("alice", "airflow-pw"); got != codes.OK {
		t.Fatalf("after the window: %s", got)
	}
}

func TestBasicCache(t *testing.T) {
	g, clk := basicGuard(t, RateLimit{})
	b := g.basic
	ctx := context.Background()
	if _, ok := b.authenticate(ctx, "alice", "airflow-pw"); !ok || len(b.verified) != 1 {
		t.Fatalf("first login: %v, %d cached", ok, len(b.verified))
	}
	if _, ok := b.authenticate(ctx, "alice", "wrong"); ok || len(b.verified) != 1 {
		t.Fatalf("a wrong password: %v, %d cached", ok, len(b.verified))
	}
	// Take every verification slot: only a cached login can succeed now.
	for range cap(b.slots) {
		b.slots <- struct{}{}
	}
	defer func() {
		for range cap(b.slots) {
			<-b.slots
		}
	}()
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	clk.add(cacheTTL - time.Second)
	if id, ok := b.authenticate(short(), "alice", "airflow-pw"); !ok || id.Name != "alice" || id.Role != RoleAdmin {
		t.Fatalf("cached login: %+v %v", id, ok)
	}
	if _, ok := b.authenticate(short(), "alice", "wrong"); ok {
		t.Fatal("a wrong password passed on the cache")
	}
	clk.add(time.Second)
	if _, ok := b.authenticate(short(), "alice", "airflow-pw"); ok {
		t.Fatal("the cache outlived its TTL")
	}
	// Requests that ended waiting for a slot are not failed logins: only
	// the first wrong password counted.
	if n := b.failures["alice"].n; n != 1 {
		t.Fatalf("%d failures counted, want 1", n)
	}
}

func TestMakeRoom(t *testing.T) {
	m := map[int]int{1: 0, 2: 5, 3: 0, 4: 5}
	makeRoom(m, 4, func(v int) bool { return v == 0 })
	if len(m) != 2 || m[2] != 5 || m[4] != 5 {
		t.Fatalf("expired entries not dropped first: %v", m)
	}
	makeRoom(m, 2, func(int) bool { return false })
	if len(m) != 1 {
		t.Fatalf("%d entries, want 1", len(m))
	}
	makeRoom(m, 5, func(int) bool { return true })
	if len(m) != 1 {
		t.Fatal("entries dropped with room to spare")
	}
}
