package generate_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

// The 100,000-plan run (issue 3, "Scale"): every plan of 100,000 ACTIVE
// assets is due on benchAsOf — due dates spread over the 19 days before it
// and its 7-day lead window, across the end of February. Run with
//
//	go test -run '^$' -bench Generate100k -benchtime 1x -count 5 ./services/pmgen/internal/generate/
//
// Benchmarks do not run under a plain go test.

const (
	benchPlans = 100_000
	benchAsOf  = "2026-03-15"
)

// seedAssetsSQL makes {n} ACTIVE assets and 100 technicians, on an empty
// database.
const seedAssetsSQL = `
TRUNCATE work_orders, maintenance_plans, assets, technicians RESTART IDENTITY CASCADE;
INSERT INTO technicians (code, name, email)
SELECT 'T-' || g, 'Technician ' || g, 't' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO assets (asset_tag, name, vehicle_type, status, commissioned_date, meter_reading, engine_hours)
SELECT 'VH-' || g, 'Vehicle ' || g, (ARRAY['car', 'van', 'truck', 'bus', 'trailer', 'forklift'])[1 + g % 6],
       'ACTIVE', DATE '2020-01-01' + g % 1000, 10000 + g, 500 + g % 1000
FROM generate_series(1, {n}) g;`

// seedPlansSQL replaces the work orders and plans with {n} plans, one per
// asset, every one due on benchAsOf.
const seedPlansSQL = `
TRUNCATE work_orders, maintenance_plans RESTART IDENTITY CASCADE;
INSERT INTO maintenance_plans (code, asset_id, name, description, interval_value, interval_unit, lead_days,
                               schedule_mode, next_due_date, priority, assigned_technician_id)
SELECT 'PM-' || g, g, 'Service ' || g, 'Monthly inspection and service.', 1, 'months', 7,
       'fixed', DATE '2026-03-15' + (g % 27) - 19, (ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[1 + g % 4], 1 + g % 100
FROM generate_series(1, {n}) g;`

// baselineSQL is the same work as one hand-written statement: the due plans'
// work orders inserted with ON CONFLICT, and their plans advanced one month
// (PostgreSQL's date + interval clamps at month end like pmgen).
const baselineSQL = `
WITH due AS (
	SELECT p.id, p.asset_id, p.next_due_date, p.priority, p.name, p.description, p.assigned_technician_id, a.asset_tag
	FROM maintenance_plans p
	JOIN assets a ON a.id = p.asset_id
	WHERE p.active AND a.status = 'ACTIVE'
	  AND (p.end_date IS NULL OR p.end_date >= $1)
	  AND p.next_due_date - p.lead_days <= $1
	  AND p.id NOT IN (SELECT w.plan_id FROM work_orders w
	                   WHERE w.plan_id IS NOT NULL AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
), ins AS (
	INSERT INTO work_orders (wo_number, asset_id, plan_id, due_date, type, status, priority, title, description,
	                         assigned_technician_id, skipped_occurrences, run_id)
	SELECT 'PM-' || d.id || '-' || to_char(d.next_due_date, 'YYYYMMDD'), d.asset_id, d.id, d.next_due_date,
	       'PREVENTIVE', 'OPEN', d.priority, d.name || ' (' || d.asset_tag || ')', d.description,
	       d.assigned_technician_id, 0, $2
	FROM due d
	ON CONFLICT (plan_id, due_date) WHERE plan_id IS NOT NULL DO NOTHING
	RETURNING plan_id
)
UPDATE maintenance_plans p
SET next_due_date = (p.next_due_date + make_interval(months => p.interval_value))::date,
    schedule_anchor_day = extract(day FROM p.next_due_date),
    updated_at = now()
FROM ins
WHERE p.id = ins.plan_id`

// benchSetup seeds the database anew: plans assets, each with its due plan.
func benchSetup(b *testing.B, pool *pgxpool.Pool, plans int) {
	b.Helper()
	exec(b, pool, sized(seedAssetsSQL, plans)+sized(seedPlansSQL, plans),
		`VACUUM ANALYZE technicians, assets, maintenance_plans, work_orders`)
}

// resetPlans puts back the plans (one per asset of benchSetup) and removes
// the work orders a run made, the assets kept.
func resetPlans(b *testing.B, pool *pgxpool.Pool, plans int) {
	b.Helper()
	exec(b, pool, sized(seedPlansSQL, plans), `VACUUM ANALYZE maintenance_plans, work_orders`)
}

// sized is sql with n for {n}.
func sized(sql string, n int) string { return strings.ReplaceAll(sql, "{n}", strconv.Itoa(n)) }

func exec(b *testing.B, pool *pgxpool.Pool, sqls ...string) {
	b.Helper()
	for _, sql := range sqls {
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCheck checks that the run made a work order for each of the plans
// and advanced every one.
func benchCheck(b *testing.B, pool *pgxpool.Pool, plans int) {
	b.Helper()
	var wos, advanced int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM work_orders WHERE run_id = 'bench'),
		       (SELECT count(*) FROM maintenance_plans WHERE next_due_date > '2026-03-22')`).Scan(&wos, &advanced); err != nil {
		b.Fatal(err)
	}
	if wos != plans || advanced != plans {
		b.Fatalf("%d work orders and %d plans advanced, want %d of each", wos, advanced, plans)
	}
}

// BenchmarkGenerate100k compares the generator with the baseline SQL in
// interleaved pairs on one database, seeded anew before each side
// (libs/benchpair): one pair per run, so -count 5 gives five pairs.
func BenchmarkGenerate100k(b *testing.B) {
	pool := pgtest.New(b)
	b.Run("generate_vs_insert_select", generatePair(b, pool, benchPlans, func(b *testing.B) { benchSetup(b, pool, benchPlans) }).Run)
}

// BenchmarkScale is pmgen's stage of the scale curve (make bench's scale
// step, libs/benchscale): BENCH_DUE_PLANS due plans of as many assets, the
// generator beside the baseline SQL in interleaved pairs with each side's
// peak memory (this process's: PostgreSQL's is not in it). The assets are
// made once; before each side the plans are put back and the work orders
// removed (resetPlans, untimed). Skipped unless BENCH_DUE_PLANS or
// BENCH_WORK_ORDERS is set.
//
//	BENCH_DUE_PLANS=100000 go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/pmgen/internal/generate/
func BenchmarkScale(b *testing.B) {
	plans := benchscale.PointSize(b).DuePlans
	b.Run(benchscale.Key(benchscale.KeyDuePlans, plans), func(b *testing.B) {
		pool := pgtest.New(b)
		benchSetup(b, pool, plans)
		pair := generatePair(b, pool, plans, func(b *testing.B) { resetPlans(b, pool, plans) })
		pair.Memory = true
		b.Run("generate_vs_insert_select", pair.Run)
	})
}

// generatePair is the generator beside the baseline SQL on pool, each side
// after prepare (which makes plans plans due on benchAsOf) and checked to
// have made their work orders.
func generatePair(b *testing.B, pool *pgxpool.Pool, plans int, prepare func(b *testing.B)) *benchpair.Pair {
	asOf, err := schedule.ParseDate(benchAsOf)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	side := func(run func(ctx context.Context, tx pgx.Tx) error) benchpair.Side {
		return benchpair.Side{
			Prepare: prepare,
			Run: func(b *testing.B) {
				if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return run(ctx, tx) }); err != nil {
					b.Fatal(err)
				}
			},
			Check: func(b *testing.B) { benchCheck(b, pool, plans) },
		}
	}
	return &benchpair.Pair{Items: float64(plans), Unit: "plans", Processes: []int{pgtest.ServerPID(b)},
		Ours: side(func(ctx context.Context, tx pgx.Tx) error {
			res, err := generate.Run(ctx, tx, generate.Request{AsOf: asOf, Location: time.UTC, RunID: "bench"})
			if err == nil && res.Created != plans {
				return fmt.Errorf("created %d, want %d", res.Created, plans)
			}
			return err
		}),
		Base: side(func(ctx context.Context, tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, baselineSQL, benchAsOf, "bench")
			if err == nil && tag.RowsAffected() != int64(plans) {
				return fmt.Errorf("advanced %d plans, want %d", tag.RowsAffected(), plans)
			}
			return err
		}),
	}
}
