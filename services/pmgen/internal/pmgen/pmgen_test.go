package pmgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/pmgen"
)

// router serves the pmgen step on pool, without a relay: emitted events stay
// in the outbox for the test to read.
func router(t *testing.T, pool *pgxpool.Pool, zone string) *eventing.Router {
	t.Helper()
	h, err := pmgen.New(pmgen.Config{TimeZone: zone})
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	return r
}

func runStarted(t *testing.T, runID, pipeline string, logical string, conf map[string]string) eventing.Message {
	t.Helper()
	p := &eventsv1.RunStarted{Conf: conf}
	if logical != "" {
		at, err := time.Parse(time.RFC3339, logical)
		if err != nil {
			t.Fatal(err)
		}
		p.LogicalDate = timestamppb.New(at)
	}
	return eventingtest.Event(t, events.RunStarted, runID, pipeline, p).Message()
}

func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO technicians (code, name, email) VALUES ('T-1', 'Tess', 'tess@example.com');
		INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date, meter_reading) VALUES
			('VH-1', 'Truck 1', 'truck', '2020-01-01', 50000),
			('VH-2', 'Van 2', 'van', '2020-01-01', 1000);
		INSERT INTO maintenance_plans (code, asset_id, name, interval_value, interval_unit, meter_interval, meter_unit,
		                               next_due_date, next_due_meter, assigned_technician_id)
		SELECT v.code, a.id, 'Service', iv, unit, mi, mu, nd::date, nm, t.id
		FROM (VALUES ('P-1', 'VH-1', 1, 'months', NULL, NULL, '2026-03-15', NULL),
		             ('P-2', 'VH-1', NULL, NULL, 15000, 'km', NULL, 45000),
		             ('P-3', 'VH-2', 3, 'months', NULL, NULL, '2026-01-15', NULL),
		             ('P-4', 'VH-2', 1, 'years', NULL, NULL, '2026-09-01', NULL))
		     AS v(code, tag, iv, unit, mi, mu, nd, nm)
		JOIN assets a ON a.asset_tag = v.tag, technicians t`)
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func generated(t *testing.T, pool *pgxpool.Pool) []*eventsv1.WorkOrdersGenerated {
	t.Helper()
	return eventingtest.Emitted(t, pool, events.WorkOrdersGenerated, "", func() *eventsv1.WorkOrdersGenerated { return &eventsv1.WorkOrdersGenerated{} })
}

func TestStepThroughRouter(t *testing.T) {
	pool := pgtest.New(t)
	seed(t, pool)
	r := router(t, pool, "UTC")
	msg := runStarted(t, "scheduled__2026-03-15T06:00:00+00:00", events.PreventiveMaintenance, "2026-03-15T06:00:00Z", nil)

	// Delivered three times: handled once.
	for _, want := range []eventing.Outcome{eventing.Handled, eventing.Duplicate, eventing.Duplicate} {
		eventingtest.Deliver(t, r, msg, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM work_orders WHERE run_id = 'scheduled__2026-03-15T06:00:00+00:00'`); n != 3 {
		t.Errorf("%d work orders, want 3 (P-1 due today, P-2 by meter, P-3 with a missed occurrence)", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id
		WHERE p.code = 'P-3' AND w.due_date = '2026-01-15' AND w.skipped_occurrences = 0`); n != 1 {
		t.Error("P-3's work order is not for Jan 15")
	}
	gen := generated(t, pool)
	if len(gen) != 1 {
		t.Fatalf("%d workorders.generated events in the outbox, want 1", len(gen))
	}
	want := &eventsv1.WorkOrdersGenerated{AsOf: "2026-03-15", Created: 3,
		CreatedByVehicleType: map[string]int32{"truck": 2, "van": 1}}
	if !proto.Equal(gen[0], want) {
		t.Errorf("workorders.generated %v, want %v", gen[0], want)
	}
	ok := eventingtest.Emitted(t, pool, events.StepSucceeded, "", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} })
	if len(ok) != 1 || ok[0].GetStep() != events.Pmgen || ok[0].GetFigures()["created"] != 3 ||
		ok[0].GetFigures()["created.truck"] != 2 || !strings.Contains(ok[0].GetSummary(), "3 work orders created") {
		t.Errorf("step succeeded %v", ok)
	}
	// Emitted events carry the run.
	if ev := eventingtest.Events(t, pool, events.WorkOrdersGenerated, "")[0]; ev.RunID != "scheduled__2026-03-15T06:00:00+00:00" || ev.Pipeline != events.PreventiveMaintenance {
		t.Errorf("workorders.generated attributes: run %q pipeline %q", ev.RunID, ev.Pipeline)
	}

	// A second trigger the same day (a new event, a new run): nothing new.
	second := runStarted(t, "manual__2026-03-15T09:12:00+00:00", events.PreventiveMaintenance, "2026-03-15T09:12:00Z", nil)
	eventingtest.Deliver(t, r, second, eventing.Handled)
	if n := count(t, pool, `SELECT count(*) FROM work_orders`); n != 3 {
		t.Errorf("%d work orders after a second run the same day, want 3", n)
	}
	gen = generated(t, pool)
	if len(gen) != 2 || gen[1].GetCreated() != 0 || gen[1].GetAsOf() != "2026-03-15" {
		t.Errorf("second workorders.generated %v", gen)
	}
}

// A run at 23:30 UTC is already the next day in Tokyo.
func TestTimeZoneEdge(t *testing.T) {
	for _, tt := range []struct {
		zone, asOf string
		created    int32
	}{
		{"UTC", "2026-03-14", 0},
		{"Asia/Tokyo", "2026-03-15", 1},
	} {
		t.Run(tt.zone, func(t *testing.T) {
			pool := pgtest.New(t)
			seed(t, pool)
			if _, err := pool.Exec(context.Background(), `DELETE FROM maintenance_plans WHERE code <> 'P-1'`); err != nil {
				t.Fatal(err)
			}
			msg := runStarted(t, "run-1", events.PreventiveMaintenance, "2026-03-14T23:30:00Z", nil)
			eventingtest.Deliver(t, router(t, pool, tt.zone), msg, eventing.Handled)
			gen := generated(t, pool)
			if len(gen) != 1 || gen[0].GetAsOf() != tt.asOf || gen[0].GetCreated() != tt.created {
				t.Errorf("workorders.generated %v, want as_of %s and %d created", gen, tt.asOf, tt.created)
			}
		})
	}
}

func TestConfAsOf(t *testing.T) {
	pool := pgtest.New(t)
	seed(t, pool)
	msg := runStarted(t, "run-1", events.PreventiveMaintenance, "2026-03-15T06:00:00Z", map[string]string{"as_of": "2026-01-15"})
	eventingtest.Deliver(t, router(t, pool, "UTC"), msg, eventing.Handled)
	// On Jan 15 only P-3 (due that day) and P-2 (by meter) are due.
	if gen := generated(t, pool); len(gen) != 1 || gen[0].GetAsOf() != "2026-01-15" || gen[0].GetCreated() != 2 {
		t.Errorf("workorders.generated %v, want as_of 2026-01-15 with 2 created", gen)
	}
}

// Input no retry can fix is dead-lettered with its reason and fails the step.
func TestBadRunsAreDeadLettered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		msg    func(t *testing.T) eventing.Message
		reason string
	}{
		{"bad as_of", func(t *testing.T) eventing.Message {
			return runStarted(t, "run-1", events.PreventiveMaintenance, "2026-03-15T06:00:00Z", map[string]string{"as_of": "2026-02-30"})
		}, `conf as_of: invalid date "2026-02-30"`},
		{"no logical date", func(t *testing.T) eventing.Message {
			return runStarted(t, "run-1", events.PreventiveMaintenance, "", nil)
		}, "without a logical_date"},
		{"another pipeline", func(t *testing.T) eventing.Message {
			return runStarted(t, "run-1", events.WeeklyKPIReport, "2026-03-15T06:00:00Z", nil)
		}, "pmgen takes cmmsflow.run.started.v1 only in preventive_maintenance"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool := pgtest.New(t)
			seed(t, pool)
			eventingtest.Deliver(t, router(t, pool, "UTC"), tt.msg(t), eventing.DeadLettered)
			var reason string
			if err := pool.QueryRow(context.Background(), `SELECT reason FROM dead_letters`).Scan(&reason); err != nil || !strings.Contains(reason, tt.reason) {
				t.Errorf("dead letter reason %q (%v), want it to contain %q", reason, err, tt.reason)
			}
			if n := count(t, pool, `SELECT count(*) FROM work_orders`); n != 0 {
				t.Errorf("%d work orders created", n)
			}
			if n := eventingtest.Count(t, pool, events.WorkOrdersGenerated, ""); n != 0 {
				t.Errorf("workorders.generated emitted for a dead-lettered run")
			}
		})
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	var cfg pmgen.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://x"}); err != nil {
		t.Fatal(err)
	}
	if cfg.TimeZone != "UTC" || cfg.BackendURL != "" || cfg.DatabaseURL != "postgres://x" {
		t.Errorf("defaults: %+v", cfg)
	}
	if _, err := pmgen.New(cfg); err != nil {
		t.Errorf("default config refused: %v", err)
	}
	for _, tt := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"PM_TIME_ZONE": "Asia/Tokyo"}, true},
		{map[string]string{"PM_TIME_ZONE": "Mars/Olympus_Mons"}, false},
		{map[string]string{"PM_TIME_ZONE": "Local"}, false},
		{map[string]string{"PM_BACKEND_URL": "http://127.0.0.1:9/api/v1/core/work-orders/", "PM_BACKEND_TOKEN": "t"}, true},
		{map[string]string{"PM_BACKEND_URL": "http://127.0.0.1:9/api/v1/core/work-orders/"}, false},
		{map[string]string{"PM_BACKEND_TOKEN": "t"}, false},
		{map[string]string{"PM_BACKEND_URL": "not a url", "PM_BACKEND_TOKEN": "t"}, false},
		{map[string]string{"SOURCE_SCHEMA": "cmms"}, true},
		// A mapped source is read-only: work orders must go to the backend.
		{map[string]string{"SOURCE_SCHEMA": "cmms_mapped"}, false},
		{map[string]string{"SOURCE_SCHEMA": "cmms_mapped", "PM_BACKEND_URL": "http://127.0.0.1:9/api/v1/core/work-orders/", "PM_BACKEND_TOKEN": "t"}, true},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://x"}
		for k, v := range tt.env {
			env[k] = v
		}
		var cfg pmgen.Config
		if err := config.LoadFrom(ctx, &cfg, env); err != nil {
			t.Fatal(err)
		}
		if _, err := pmgen.New(cfg); (err == nil) != tt.ok {
			t.Errorf("New with %v: error %v, want ok=%v", tt.env, err, tt.ok)
		}
	}
}

func TestMappedSourceNeedsBackendURL(t *testing.T) {
	_, err := pmgen.New(pmgen.Config{Common: config.Common{SourceSchema: "cmms_mapped"}, TimeZone: "UTC"})
	if err == nil || !strings.Contains(err.Error(), "PM_BACKEND_URL") || !strings.Contains(err.Error(), "cmms_mapped") {
		t.Errorf("mapped source without a backend: %v, want a refusal naming SOURCE_SCHEMA and PM_BACKEND_URL", err)
	}
}

// runBackend performs the step of run-1 in backend mode, with the backend at
// url, on pool.
func runBackend(t *testing.T, pool *pgxpool.Pool, url string) {
	t.Helper()
	h, err := pmgen.New(pmgen.Config{TimeZone: "UTC", BackendURL: url + "/api/v1/core/work-orders/", BackendToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	msg := runStarted(t, "run-1", events.PreventiveMaintenance, "2026-03-15T06:00:00Z", nil)
	eventingtest.Deliver(t, r, msg, eventing.Handled)
}

// With PM_BACKEND_URL the step POSTs the work orders instead of inserting them.
func TestBackendModeWiring(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Idempotency-Key") == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	pool := pgtest.New(t)
	seed(t, pool)
	runBackend(t, pool, srv.URL)
	if gen := generated(t, pool); len(gen) != 1 || gen[0].GetCreated() != 3 || gen[0].GetFailed() != 0 {
		t.Errorf("workorders.generated %v, want 3 created", gen)
	}
	if len(keys) != 3 {
		t.Errorf("backend received %d work orders, want 3", len(keys))
	}
	if n := count(t, pool, `SELECT count(*) FROM work_orders`); n != 0 {
		t.Errorf("%d local work orders in backend mode", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM maintenance_plans WHERE updated_at > created_at`); n != 3 {
		t.Errorf("%d plans advanced, want 3", n)
	}
}

// With a mapped SOURCE_SCHEMA the step POSTs the work orders and advances
// the ledger, and leaves the source (views over cmms here) alone.
func TestMappedModeWiring(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	ctx := context.Background()
	admin, dbURL := pgtest.NewWithURL(t)
	seed(t, admin)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA cmms_mapped;
		CREATE VIEW cmms_mapped.assets AS SELECT * FROM cmms.assets;
		CREATE VIEW cmms_mapped.maintenance_plans AS SELECT * FROM cmms.maintenance_plans;
		CREATE VIEW cmms_mapped.work_orders AS SELECT * FROM cmms.work_orders`); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Connect(ctx, pgtest.ReadOnlyLogin(t, admin, dbURL, "cmms_mapped"), db.WithSource("cmms_mapped"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	before := pgtest.Snapshot(t, admin, "maintenance_plans", "work_orders")
	h, err := pmgen.New(pmgen.Config{Common: config.Common{SourceSchema: "cmms_mapped"}, TimeZone: "UTC",
		BackendURL: srv.URL + "/api/v1/core/work-orders/", BackendToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	msg := runStarted(t, "run-1", events.PreventiveMaintenance, "2026-03-15T06:00:00Z", nil)
	eventingtest.Deliver(t, r, msg, eventing.Handled)
	if gen := generated(t, admin); len(gen) != 1 || gen[0].GetCreated() != 3 || len(keys) != 3 {
		t.Errorf("workorders.generated %v, %d POSTed; want 3", gen, len(keys))
	}
	if n := count(t, admin, `SELECT count(*) FROM cmmsflow.plan_ledger l JOIN cmmsflow.plan_occurrences o USING (plan_id)`); n != 3 {
		t.Errorf("%d plans in the ledger with their occurrence, want 3", n)
	}
	if pgtest.Snapshot(t, admin, "maintenance_plans", "work_orders") != before {
		t.Error("the mapped source changed")
	}
}

// A retried run (control's RetryRun) re-emits its run-started under a new
// id: pmgen performs the step again, and the ledger (one work order per plan
// occurrence) creates nothing twice.
func TestRetriedRunCreatesNoSecondWorkOrder(t *testing.T) {
	pool := pgtest.New(t)
	seed(t, pool)
	r := router(t, pool, "UTC")
	const runID = "scheduled__2026-03-15T06:00:00+00:00"
	msg := runStarted(t, runID, events.PreventiveMaintenance, "2026-03-15T06:00:00Z", nil)
	eventingtest.Deliver(t, r, msg, eventing.Handled)
	ev, err := eventing.FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ev.Reissue("")
	if err != nil {
		t.Fatal(err)
	}
	// Performed again, not a duplicate.
	eventingtest.Deliver(t, r, again.Message(), eventing.Handled)
	if n := count(t, pool, `SELECT count(*) FROM work_orders`); n != 3 {
		t.Errorf("%d work orders after the retry, want the first attempt's 3", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM work_orders WHERE run_id = $1`, runID); n != 3 {
		t.Errorf("%d work orders of the run, want 3", n)
	}
	gen := generated(t, pool)
	if len(gen) != 2 || gen[0].GetCreated() != 3 || gen[1].GetCreated() != 0 {
		t.Errorf("workorders.generated %v: want 3 created, then none", gen)
	}
}

// In backend mode the step keeps no transaction open while it calls the
// backend: the backend takes 2 s over each work order, and meanwhile no
// transaction on the database is older than 1 s.
func TestBackendCallsHoldNoTransaction(t *testing.T) {
	pool := pgtest.New(t)
	seed(t, pool)
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
		posts.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	longest := eventingtest.WatchTransactions(t, pool)
	runBackend(t, pool, srv.URL)
	if oldest := longest(); oldest > time.Second {
		t.Errorf("a transaction stayed open %s while the backend worked, want at most 1s", oldest)
	} else {
		t.Logf("oldest transaction seen during the 2 s POSTs: %s", oldest)
	}
	if posts.Load() != 3 {
		t.Fatalf("%d work orders POSTed, want 3", posts.Load())
	}
	if gen := generated(t, pool); len(gen) != 1 || gen[0].GetCreated() != 3 {
		t.Errorf("workorders.generated %v, want 3 created", gen)
	}
}

// The step's declared edges are the registry's, on cmmsflow's own tables
// (HandleStepTx) and in backend mode (HandleStep).
func TestRoutesMatchTheRegistry(t *testing.T) {
	pool := pgtest.New(t)
	eventingtest.CheckRoutes(t, router(t, pool, "UTC"), events.Pmgen)
	h, err := pmgen.New(pmgen.Config{TimeZone: "UTC", BackendURL: "http://127.0.0.1:1/api/v1/core/work-orders/", BackendToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	eventingtest.CheckRoutes(t, r, events.Pmgen)
}
