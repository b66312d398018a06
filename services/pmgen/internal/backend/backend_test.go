package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/backend"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

const (
	token = "s3cret-token"
	path  = "/api/v1/core/work-orders/"
)

// fakeBackend is a CMMS backend's work-order endpoint: it checks the bearer
// token and the idempotency key, creates one order per key (a replay with the
// same key and body returns the original), and fails on script.
type fakeBackend struct {
	mu        sync.Mutex
	orders    map[string]backend.Payload // by idempotency key
	attempts  map[string]int             // POSTs per key
	failFirst map[string]int             // wo_number → 503s to answer before succeeding
	refuse    map[string]int             // wo_number → status to refuse with
	throttle  int                        // 429s (Retry-After: 0) to answer before anything else
	violation []string                   // protocol errors seen
}

func newFake(t *testing.T) (*fakeBackend, *httptest.Server) {
	f := &fakeBackend{orders: map[string]backend.Payload{}, attempts: map[string]int{},
		failFirst: map[string]int{}, refuse: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, v := range f.violation {
			t.Errorf("backend saw: %s", v)
		}
	})
	return f, srv
}

func (f *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := func(status int, msg string) {
		f.violation = append(f.violation, msg)
		http.Error(w, msg, status)
	}
	if r.Method != http.MethodPost || r.URL.Path != path {
		bad(http.StatusNotFound, "unexpected "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"detail":"invalid token"}`, http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		bad(http.StatusUnsupportedMediaType, "content type "+ct)
		return
	}
	var p backend.Payload
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		bad(http.StatusBadRequest, "body: "+err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if want := fmt.Sprintf("pmgen-plan-%d-%s", p.PlanID, p.DueDate); key != want {
		bad(http.StatusBadRequest, fmt.Sprintf("idempotency key %q, want %q", key, want))
		return
	}
	f.attempts[key]++
	if f.throttle > 0 {
		f.throttle--
		w.Header().Set("Retry-After", "0")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	if f.failFirst[p.WONumber] > 0 {
		f.failFirst[p.WONumber]--
		http.Error(w, "upstream hiccup", http.StatusServiceUnavailable)
		return
	}
	if st := f.refuse[p.WONumber]; st != 0 {
		http.Error(w, `{"detail":"asset is locked"}`, st)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if prev, ok := f.orders[key]; ok {
		if !sameJSON(prev, p) {
			http.Error(w, `{"detail":"idempotency key reused with a different body"}`, http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(prev)
		return
	}
	f.orders[key] = p
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(p)
}

func sameJSON(a, b backend.Payload) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func (f *fakeBackend) counts() (orders, posts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.attempts {
		posts += n
	}
	return len(f.orders), posts
}

func client(t *testing.T, url, tok string, attempts int) *backend.Client {
	t.Helper()
	c, err := backend.New(backend.Config{URL: url + path, Token: tok, MaxAttempts: attempts,
		BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func workOrder(planID int64) generate.WorkOrder {
	tech := int64(7)
	return generate.WorkOrder{
		Number: generate.Number(planID, schedule.D(2026, 3, 15)), AssetID: 1, AssetTag: "VH-1", PlanID: planID, PlanCode: "P",
		DueDate: schedule.D(2026, 3, 15), Type: "PREVENTIVE", Status: "OPEN", Priority: "HIGH", Title: "Service (VH-1)",
		TechnicianID: &tech, SkippedOccurrences: 2, RunID: "run-1",
	}
}

func key(wo generate.WorkOrder) string { return generate.IdempotencyKey(wo.PlanID, wo.DueDate) }

func TestClientRetriesTransientAnswers(t *testing.T) {
	f, srv := newFake(t)
	wo := workOrder(1)
	f.throttle, f.failFirst[wo.Number] = 1, 2
	if err := client(t, srv.URL, token, 5).CreateWorkOrder(context.Background(), key(wo), wo); err != nil {
		t.Fatal(err)
	}
	if orders, posts := f.counts(); orders != 1 || posts != 4 {
		t.Errorf("%d orders after %d POSTs, want 1 after 4 (429, 503, 503, 201)", orders, posts)
	}
	if got := f.orders[key(wo)]; !sameJSON(got, backend.PayloadOf(wo)) || got.DueDate != "2026-03-15" || *got.AssignedTechnicianID != 7 {
		t.Errorf("stored %+v", got)
	}
}

func TestClientDuplicatePostsCreateOneOrder(t *testing.T) {
	f, srv := newFake(t)
	c := client(t, srv.URL, token, 5)
	wo := workOrder(1)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.CreateWorkOrder(context.Background(), key(wo), wo); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if orders, posts := f.counts(); orders != 1 || posts != 5 {
		t.Errorf("%d orders after %d POSTs with one key, want 1 after 5", orders, posts)
	}
}

func TestClientRefusals(t *testing.T) {
	f, srv := newFake(t)
	wo := workOrder(1)
	f.refuse[wo.Number] = http.StatusUnprocessableEntity
	err := client(t, srv.URL, token, 5).CreateWorkOrder(context.Background(), key(wo), wo)
	if !errors.Is(err, generate.ErrRefused) || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "asset is locked") {
		t.Errorf("error %v, want a 422 refusal with the backend's reason", err)
	}
	if _, posts := f.counts(); posts != 1 {
		t.Errorf("a refusal was retried: %d POSTs", posts)
	}
	// A wrong token is refused by the backend, not retried.
	err = client(t, srv.URL, "wrong", 5).CreateWorkOrder(context.Background(), key(wo), wo)
	if !errors.Is(err, generate.ErrRefused) || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v, want a 401 refusal", err)
	}
}

func TestClientGivesUpAfterMaxAttempts(t *testing.T) {
	f, srv := newFake(t)
	wo := workOrder(1)
	f.failFirst[wo.Number] = 100
	err := client(t, srv.URL, token, 3).CreateWorkOrder(context.Background(), key(wo), wo)
	if err == nil || errors.Is(err, generate.ErrRefused) || !strings.Contains(err.Error(), "503") {
		t.Errorf("error %v, want a transient failure (503) that is not a refusal", err)
	}
	if _, posts := f.counts(); posts != 3 {
		t.Errorf("%d POSTs, want 3", posts)
	}
}

func TestClientRetriesNetworkErrorsAndHonoursContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := backend.New(backend.Config{URL: url + path, Token: token, MaxAttempts: 3, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateWorkOrder(context.Background(), "k", workOrder(1)); err == nil || errors.Is(err, generate.ErrRefused) ||
		!strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("connection refused: %v, want a transient failure after 3 attempts", err)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	c, err = backend.New(backend.Config{URL: slow.URL, Token: token, MaxAttempts: 100, BaseDelay: time.Hour, MaxDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.CreateWorkOrder(ctx, "k", workOrder(1))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled wait: %v after %v", err, time.Since(start))
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "120")
			http.Error(w, "later", http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c, err := backend.New(backend.Config{URL: srv.URL, Token: token, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wo := workOrder(1)
	if err := c.CreateWorkOrder(context.Background(), key(wo), wo); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second || calls.Load() != 3 {
		t.Errorf("%d calls in %v: Retry-After 120 s must be honoured only up to MaxDelay", calls.Load(), d)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, c := range []backend.Config{
		{URL: "", Token: token},
		{URL: "cmms.example.com/api", Token: token},
		{URL: "ftp://cmms.example.com/", Token: token},
		{URL: "http://127.0.0.1/api", Token: " "},
	} {
		if _, err := backend.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestBackendMode runs generate against the fake backend: the accepted work
// orders' plans advance, refusals count as failed, nothing is inserted
// locally, and a run whose transaction is lost after its POSTs is repeated
// without creating anything twice.
func TestBackendMode(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date, meter_reading) VALUES ('VH-1', 'Van 1', 'van', '2020-01-01', 20000)`)
	ids := map[string]int64{}
	for _, code := range []string{"P-OK", "P-FLAKY", "P-REFUSED", "P-THROTTLED", "P-LATER"} {
		next := "2026-03-15"
		if code == "P-LATER" {
			next = "2026-06-01"
		}
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO maintenance_plans (code, asset_id, name, interval_value, interval_unit, next_due_date)
			SELECT $1, id, 'Service', 1, 'months', $2 FROM assets RETURNING id`, code, next).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[code] = id
	}
	f, srv := newFake(t)
	num := func(code string) string { return generate.Number(ids[code], schedule.D(2026, 3, 15)) }
	f.failFirst[num("P-FLAKY")] = 2
	f.refuse[num("P-REFUSED")] = http.StatusUnprocessableEntity
	f.throttle = 1
	c := client(t, srv.URL, token, 5)
	req := generate.Request{AsOf: schedule.D(2026, 3, 15), Location: time.UTC, RunID: "run-1", Backend: c}

	// First attempt: the POSTs go out, then the transaction is lost.
	errLost := errors.New("crash after the POSTs")
	res, err := runBackend(ctx, pool, req, errLost)
	if !errors.Is(err, errLost) {
		t.Fatal(err)
	}
	if res.Created != 3 || res.Failed != 1 {
		t.Errorf("first attempt %+v, want 3 created and 1 failed", res)
	}
	if orders, _ := f.counts(); orders != 3 {
		t.Fatalf("backend has %d orders after the first attempt, want 3", orders)
	}

	// The redelivery POSTs the same work orders with the same keys.
	if res, err = runBackend(ctx, pool, req, nil); err != nil {
		t.Fatal(err)
	}
	if res.Created != 3 || res.Failed != 1 || res.CreatedByVehicleType["van"] != 3 || len(res.Failures) != 1 ||
		res.Failures[0].PlanCode != "P-REFUSED" || !strings.Contains(res.Failures[0].Reason, "422") {
		t.Errorf("result %+v", res)
	}
	if orders, _ := f.counts(); orders != 3 {
		t.Errorf("backend has %d orders after a repeated run, want 3 (idempotency keys)", orders)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM work_orders`); n != 0 {
		t.Errorf("backend mode inserted %d local work orders", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM maintenance_plans WHERE next_due_date = '2026-04-15'`); n != 3 {
		t.Errorf("%d plans advanced, want 3", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM maintenance_plans WHERE code = 'P-REFUSED' AND next_due_date = '2026-03-15'`); n != 1 {
		t.Error("the refused plan advanced")
	}

	// Same day again: only the refused plan is due; it is refused again.
	_, before := f.counts()
	if res, err = runBackend(ctx, pool, req, nil); err != nil || res.Created != 0 || res.Failed != 1 {
		t.Errorf("rerun: %+v, %v", res, err)
	}
	if _, after := f.counts(); after != before+1 {
		t.Errorf("rerun POSTed %d times, want once (the refused plan)", after-before)
	}
}

func TestBackendUnavailableRetriesTheRun(t *testing.T) {
	pool := threePlans(t)
	ctx := context.Background()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusBadGateway)
	}))
	defer down.Close()
	c, err := backend.New(backend.Config{URL: down.URL, Token: token, MaxAttempts: 2, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = runBackend(ctx, pool, generate.Request{AsOf: schedule.D(2026, 3, 15), Location: time.UTC, RunID: "r", Backend: c}, nil)
	if err == nil || errors.Is(err, generate.ErrRefused) || !strings.Contains(err.Error(), "502") {
		t.Errorf("error %v, want a transient error naming the 502", err)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM maintenance_plans WHERE next_due_date = '2026-03-15'`); n != 3 {
		t.Errorf("plans advanced although nothing was accepted")
	}
}

// A run whose plans another run advanced while it POSTed does not commit:
// ErrPlansChanged, nothing advanced twice; its retry finds nothing due, and
// the backend has each work order once.
func TestPlansChangedWhilePosting(t *testing.T) {
	pool := threePlans(t)
	ctx := context.Background()
	f, srv := newFake(t)
	req := generate.Request{AsOf: schedule.D(2026, 3, 15), Location: time.UTC, RunID: "run-1", Backend: client(t, srv.URL, token, 5)}
	slow, err := generate.Plan(ctx, pool, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Post(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := runBackend(ctx, pool, req, nil); err != nil || res.Created != 3 {
		t.Fatalf("the other run: %+v, %v", res, err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return slow.Commit(ctx, tx) })
	if !errors.Is(err, generate.ErrPlansChanged) {
		t.Fatalf("commit after the plans moved: %v, want ErrPlansChanged", err)
	}
	if res, err := runBackend(ctx, pool, req, nil); err != nil || res.Created != 0 || res.Evaluated != 0 {
		t.Fatalf("retry: %+v, %v; want nothing due", res, err)
	}
	if orders, posts := f.counts(); orders != 3 || posts != 6 {
		t.Errorf("%d orders after %d POSTs, want 3 after 6", orders, posts)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM maintenance_plans WHERE next_due_date = '2026-04-15'`); n != 3 {
		t.Errorf("%d plans advanced once, want 3", n)
	}
}

// threePlans is a database with three monthly plans of a van, due on
// 2026-03-15.
func threePlans(t *testing.T) *pgxpool.Pool {
	pool := pgtest.New(t)
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES ('VH-1', 'Van 1', 'van', '2020-01-01');
		INSERT INTO maintenance_plans (code, asset_id, name, interval_value, interval_unit, next_due_date)
		SELECT 'P-' || g, a.id, 'Service', 1, 'months', '2026-03-15' FROM assets a, generate_series(1, 3) g`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// runBackend runs req as the pmgen step does in backend mode: planned and
// posted with no transaction open, then committed in a transaction that
// lose, when not nil, rolls back (as a crash would).
func runBackend(ctx context.Context, pool *pgxpool.Pool, req generate.Request, lose error) (generate.Result, error) {
	p, err := generate.Plan(ctx, pool, req)
	if err != nil {
		return generate.Result{}, err
	}
	if err := p.Post(ctx); err != nil {
		return p.Result(), err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := p.Commit(ctx, tx); err != nil {
			return err
		}
		return lose
	})
	return p.Result(), err
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
