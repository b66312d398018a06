package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/backend"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

const mappedSchema = "cmms_mapped"

// sourceTables are the CMMS relations, snapshotted to prove pmgen leaves a
// mapped source alone.
var sourceTables = []string{"technicians", "assets", "maintenance_plans", "work_orders", "inventory_items"}

// mapped is a database with a demo fleet in cmmsflow's own tables and a
// mapped source over them: the schema cmms_mapped of one view per CMMS
// relation, as an operator's mapping file makes, read through a login that
// may only SELECT from it.
type mapped struct {
	admin *pgxpool.Pool // superuser, source cmms
	pool  *pgxpool.Pool // read-only login, source cmms_mapped
}

func newMapped(t *testing.T) *mapped {
	t.Helper()
	admin, dbURL := pgtest.NewWithURL(t)
	seedFleet(t, admin)
	ddl := "CREATE SCHEMA " + mappedSchema + ";"
	for _, table := range sourceTables {
		ddl += "CREATE VIEW " + mappedSchema + "." + table + " AS SELECT * FROM cmms." + table + ";"
	}
	if _, err := admin.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Connect(context.Background(), pgtest.ReadOnlyLogin(t, admin, dbURL, mappedSchema), db.WithSource(mappedSchema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &mapped{admin: admin, pool: pool}
}

// seedFleet fills cmmsflow's own tables with the same fleet every time.
func seedFleet(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	if _, err := fleet.Seed(ctx, pool, fleet.SeedOptions{Seed: 11, Now: now, Assets: 120}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, variety); err != nil {
		t.Fatal(err)
	}
}

// record does what the CMMS does with the work orders it was sent: they
// are in its tables, so the mapped source shows them (open, they hold back
// their plans' next occurrences).
func record(t *testing.T, pool *pgxpool.Pool, orders []backend.Payload) {
	t.Helper()
	for _, p := range orders {
		if _, err := pool.Exec(context.Background(), `
			INSERT INTO cmms.work_orders (wo_number, asset_id, plan_id, due_date, type, status, priority, title, description,
			                              assigned_technician_id, skipped_occurrences, run_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (wo_number) DO NOTHING`,
			p.WONumber, p.AssetID, p.PlanID, p.DueDate, p.Type, p.Status, p.Priority, p.Title, p.Description,
			p.AssignedTechnicianID, p.SkippedOccurrences, p.RunID); err != nil {
			t.Fatal(err)
		}
	}
}

// variety adds to the demo fleet, as of 2026-03-15: two due occurrences
// whose work orders were made elsewhere (completed), three plans with
// missed occurrences, and a floating plan completed yesterday (re-anchored).
const variety = `
WITH due AS (
	SELECT p.id, p.asset_id, p.next_due_date
	FROM cmms.maintenance_plans p JOIN cmms.assets a ON a.id = p.asset_id
	WHERE p.active AND a.status = 'ACTIVE' AND p.schedule_mode = 'fixed'
	  AND p.next_due_date - p.lead_days <= DATE '2026-03-15'
	  AND NOT EXISTS (SELECT 1 FROM cmms.work_orders w WHERE w.plan_id = p.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
	ORDER BY p.id LIMIT 2
)
INSERT INTO cmms.work_orders (wo_number, asset_id, plan_id, due_date, type, status, title, started_at, completed_at)
SELECT 'ELSEWHERE-' || id, asset_id, id, next_due_date, 'PREVENTIVE', 'COMPLETED', 'done elsewhere',
       '2026-03-14 09:00Z', '2026-03-14 10:00Z'
FROM due;
UPDATE cmms.maintenance_plans SET next_due_date = DATE '2024-12-20'
WHERE id IN (SELECT p.id FROM cmms.maintenance_plans p JOIN cmms.assets a ON a.id = p.asset_id
             WHERE p.active AND a.status = 'ACTIVE' AND p.schedule_mode = 'fixed' AND p.interval_value IS NOT NULL
               AND p.next_due_date > DATE '2026-03-25'
               AND NOT EXISTS (SELECT 1 FROM cmms.work_orders w WHERE w.plan_id = p.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
             ORDER BY p.id LIMIT 3);
INSERT INTO cmms.work_orders (wo_number, asset_id, plan_id, type, status, title, started_at, completed_at)
SELECT 'FLOATING-' || id, asset_id, id, 'PREVENTIVE', 'COMPLETED', 'done', '2026-03-14 09:00Z', '2026-03-14 10:00Z'
FROM cmms.maintenance_plans
WHERE id = (SELECT min(id) FROM cmms.maintenance_plans WHERE active AND schedule_mode = 'floating' AND interval_value IS NOT NULL
                                                          AND last_completed_date < DATE '2026-03-14')`

func run(pool *pgxpool.Pool, asOf schedule.Date, runID string, b generate.Backend) (generate.Result, error) {
	req := generate.Request{AsOf: asOf, Location: time.UTC, RunID: runID, Backend: b, Ledger: b != nil}
	if b != nil {
		return runBackend(context.Background(), pool, req, nil)
	}
	var res generate.Result
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		res, err = generate.Run(context.Background(), tx, req)
		return err
	})
	return res, err
}

// payloads are the backend's work orders, by number.
func (f *fakeBackend) payloads() []backend.Payload {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(func(yield func(backend.Payload) bool) {
		for _, p := range f.orders {
			if !yield(p) {
				return
			}
		}
	})
	slices.SortFunc(out, func(a, b backend.Payload) int { return strings.Compare(a.WONumber, b.WONumber) })
	return out
}

// inserted are the work orders default mode inserted, as the backend would
// have received them.
func inserted(t *testing.T, pool *pgxpool.Pool) []backend.Payload {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT w.wo_number, w.asset_id, a.asset_tag, w.plan_id, p.code, w.due_date::text, w.type, w.status, w.priority,
		       w.title, w.description, w.assigned_technician_id, w.skipped_occurrences, w.run_id
		FROM work_orders w JOIN assets a ON a.id = w.asset_id JOIN maintenance_plans p ON p.id = w.plan_id
		WHERE w.run_id LIKE 'run-%'
		ORDER BY w.wo_number`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[backend.Payload])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The plans' schedules in the ledger, and (ownSchedulesSQL) in cmmsflow's
// own maintenance_plans for the plans $1.
const (
	ledgerSchedulesSQL = `
		SELECT concat_ws(' ', plan_id, next_due_date, next_due_meter, schedule_anchor_day, last_completed_date, last_completed_meter)
		FROM cmmsflow.plan_ledger ORDER BY plan_id`
	ownSchedulesSQL = `
		SELECT concat_ws(' ', id, next_due_date, next_due_meter, schedule_anchor_day, last_completed_date, last_completed_meter)
		FROM cmms.maintenance_plans WHERE id::text = ANY($1) ORDER BY id`
)

func strs(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var mappedDays = []schedule.Date{schedule.D(2026, 3, 15), schedule.D(2026, 3, 28), schedule.D(2026, 4, 10), schedule.D(2026, 4, 25)}

// TestMappedSource runs pmgen on a mapped source over four days, each run
// twice: the work orders go to the backend, the ledger advances, no run
// changes the source, and a second run of a day creates nothing. Between
// days the CMMS records the work orders it received. The same fleet in
// default mode inserts the very work orders the backend received and
// advances its plans to the ledger's schedules.
func TestMappedSource(t *testing.T) {
	m := newMapped(t)
	f, srv := newFake(t)
	c := client(t, srv.URL, token, 5)
	heldBack := 0
	for i, day := range mappedDays {
		res := mappedDay(t, m, f, c, day)
		if i == 0 && (res.Created < 10 || res.MissedOccurrences < 3 || res.AlreadyGenerated != 2 || res.Reanchored == 0) {
			t.Fatalf("%s: %+v, want work orders (some folding missed occurrences), 2 made elsewhere, a re-anchored plan", day, res)
		}
		if i > 0 && res.Created == 0 {
			t.Fatalf("%s: %+v, want work orders", day, res)
		}
		heldBack += res.SkippedOpen
		record(t, m.admin, f.payloads())
	}
	if heldBack == 0 {
		t.Error("no plan was held back by the work order the CMMS recorded")
	}
	checkOccurrences(t, m.admin, f.payloads())

	// Default mode on the same fleet.
	own := pgtest.New(t)
	seedFleet(t, own)
	for _, day := range mappedDays {
		for range 2 {
			if _, err := run(own, day, "run-"+day.String(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := inserted(t, own), f.payloads(); !slices.EqualFunc(got, want, sameJSON) {
		t.Errorf("default mode inserted:\n%s\nthe backend received:\n%s", lines(got), lines(want))
	}
	ledger := strs(t, m.admin, ledgerSchedulesSQL)
	if plans := strs(t, own, ownSchedulesSQL, strs(t, m.admin, `SELECT plan_id::text FROM cmmsflow.plan_ledger`)); !slices.Equal(plans, ledger) {
		t.Errorf("default mode's plans:\n%s\nthe ledger:\n%s", strings.Join(plans, "\n"), strings.Join(ledger, "\n"))
	}
}

// mappedDay runs pmgen on the mapped source twice as of day and checks
// that the source did not change, the backend received what was created,
// and the second run did nothing.
func mappedDay(t *testing.T, m *mapped, f *fakeBackend, c *backend.Client, day schedule.Date) generate.Result {
	t.Helper()
	runID := "run-" + day.String()
	source := pgtest.Snapshot(t, m.admin, sourceTables...)
	ordersBefore, _ := f.counts()
	res, err := run(m.pool, day, runID, c)
	if err != nil || res.Failed != 0 {
		t.Fatalf("%s: %+v, %v", day, res, err)
	}
	orders, posts := f.counts()
	if orders != ordersBefore+res.Created {
		t.Fatalf("%s: the backend has %d orders, want %d", day, orders, ordersBefore+res.Created)
	}
	ledger := pgtest.Snapshot(t, m.admin, "plan_ledger", "plan_occurrences")
	again, err := run(m.pool, day, runID, c)
	if err != nil || again.Created != 0 || again.Failed != 0 {
		t.Fatalf("%s again: %+v, %v; want nothing created", day, again, err)
	}
	if _, n := f.counts(); n != posts {
		t.Errorf("%s again: %d more POSTs", day, n-posts)
	}
	if pgtest.Snapshot(t, m.admin, "plan_ledger", "plan_occurrences") != ledger {
		t.Errorf("%s again: the ledger changed", day)
	}
	if pgtest.Snapshot(t, m.admin, sourceTables...) != source {
		t.Fatalf("%s: pmgen changed the mapped source's tables", day)
	}
	return res
}

// checkOccurrences: one occurrence recorded per work order the backend has,
// with its number and run.
func checkOccurrences(t *testing.T, pool *pgxpool.Pool, orders []backend.Payload) {
	t.Helper()
	got := strs(t, pool, `
		SELECT plan_id || ' ' || due_date || ' ' || wo_number || ' ' || run_id FROM cmmsflow.plan_occurrences ORDER BY wo_number`)
	var want []string
	for _, p := range orders {
		want = append(want, strings.Join([]string{strconv.FormatInt(p.PlanID, 10), p.DueDate, p.WONumber, p.RunID}, " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("occurrences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMappedSourceExactlyOnce: a run whose transaction is lost after its
// POSTs is repeated without a second work order (the idempotency keys), and
// two concurrent runs of the next day create each work order once between
// them (the ledger).
func TestMappedSourceExactlyOnce(t *testing.T) {
	m := newMapped(t)
	before := pgtest.Snapshot(t, m.admin, sourceTables...)
	f, srv := newFake(t)
	c := client(t, srv.URL, token, 5)
	ctx := context.Background()
	day := mappedDays[0]
	errLost := errors.New("crash after the POSTs")
	res, err := runBackend(ctx, m.pool, generate.Request{AsOf: day, Location: time.UTC, RunID: "run-1", Backend: c, Ledger: true}, errLost)
	if !errors.Is(err, errLost) || res.Created == 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	lost, _ := f.counts()
	if n := len(strs(t, m.admin, `SELECT plan_id::text FROM cmmsflow.plan_ledger`)); n != 0 {
		t.Fatalf("%d ledger rows after a lost transaction", n)
	}
	res, err = run(m.pool, day, "run-1", c)
	if err != nil || res.Created != lost || res.Failed != 0 {
		t.Fatalf("repeated run: %+v, %v; want the %d work orders again", res, err, lost)
	}
	if orders, _ := f.counts(); orders != lost {
		t.Fatalf("the backend has %d orders, want %d", orders, lost)
	}

	// Two deliveries at once: no lock is held while they POST, so both may
	// POST the same occurrences (created once, by their keys); the second
	// to commit finds its plans advanced and is retried, as a redelivery.
	var wg sync.WaitGroup
	results := make([]generate.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for range 5 {
				if results[i], err = run(m.pool, mappedDays[1], "run-2", c); !errors.Is(err, generate.ErrPlansChanged) {
					break
				}
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	orders, posts := f.counts()
	both := results[0].Created + results[1].Created
	if both == 0 || orders != lost+both || posts < lost*2+both || posts > lost*2+2*both || results[0].Failed+results[1].Failed != 0 {
		t.Errorf("concurrent runs %+v: %d orders after %d POSTs, want %d after %d to %d",
			results, orders, posts, lost+both, lost*2+both, lost*2+2*both)
	}
	if n := len(strs(t, m.admin, `SELECT wo_number FROM cmmsflow.plan_occurrences`)); n != orders {
		t.Errorf("%d occurrences recorded, want %d", n, orders)
	}
	if got := pgtest.Snapshot(t, m.admin, sourceTables...); got != before {
		t.Fatal("pmgen changed the mapped source's tables")
	}
}

// The CMMS shows the work orders it accepted at once, as the plans' open
// work orders: that is the run's own doing, not a change of the plans, and
// the commit records the occurrences and advances the ledger.
func TestMappedSourceShowsPostedOrders(t *testing.T) {
	m := newMapped(t)
	f, srv := newFake(t)
	ctx := context.Background()
	p, err := generate.Plan(ctx, m.pool, generate.Request{AsOf: mappedDays[0], Location: time.UTC, RunID: "run-1",
		Backend: client(t, srv.URL, token, 5), Ledger: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Post(ctx); err != nil || p.Result().Created == 0 {
		t.Fatalf("%+v, %v", p.Result(), err)
	}
	record(t, m.admin, f.payloads())
	if err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error { return p.Commit(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if n := len(strs(t, m.admin, `SELECT wo_number FROM cmmsflow.plan_occurrences`)); n != p.Result().Created {
		t.Errorf("%d occurrences recorded, want %d", n, p.Result().Created)
	}
}

func lines(ps []backend.Payload) string {
	var b strings.Builder
	for _, p := range ps {
		j, _ := json.Marshal(p)
		b.Write(append(j, '\n'))
	}
	return b.String()
}
