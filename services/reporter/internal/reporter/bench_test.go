package reporter_test

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
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/render"
)

// The 1,000,000-work-order report (issue 5, goal: under 5 s). Setup makes
// 20,000 assets and 1,000,000 work orders over two years before the
// reported week (2026-W47) with generate_series (benchSeed), plus inventory
// and a prediction per asset. Run with
//
//	go test -run '^$' -bench Report1M -benchtime 1x -count 5 ./services/reporter/internal/reporter/
//
// The report and its baseline run in interleaved pairs on the one fixture
// (libs/benchpair): one pair per run, so -count 5 gives five pairs.
//
// Benchmarks do not run under a plain go test.
const benchSeed = `
INSERT INTO assets (asset_tag, name, vehicle_type, status, commissioned_date)
SELECT 'VH-' || g, 'Vehicle ' || g, (ARRAY['car', 'van', 'truck', 'bus', 'trailer', 'forklift'])[1 + g % 6],
       CASE WHEN g % 50 = 0 THEN 'RETIRED' ELSE 'ACTIVE' END, DATE '2018-01-01' + (g % 3000)
FROM generate_series(1, {assets}) g;
INSERT INTO work_orders (wo_number, asset_id, type, status, priority, title, created_at, started_at, completed_at,
                         due_date, repair_hours)
SELECT 'WO-' || g, 1 + g % {assets},
       CASE WHEN g % 3 = 0 THEN 'PREVENTIVE' ELSE 'CORRECTIVE' END,
       CASE WHEN g % 97 = 0 THEN 'CANCELLED' WHEN c.at < TIMESTAMPTZ '2026-11-20' THEN 'COMPLETED'
            WHEN g % 2 = 0 THEN 'IN_PROGRESS' ELSE 'OPEN' END,
       (ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[1 + g % 4], 'Work order ' || g,
       c.at, c.at + interval '2 hours',
       CASE WHEN g % 97 <> 0 AND c.at < TIMESTAMPTZ '2026-11-20' THEN c.at + (2 + g % 72) * interval '1 hour' END,
       CASE WHEN g % 3 = 0 THEN (c.at + interval '5 days')::date END,
       CASE WHEN c.at < TIMESTAMPTZ '2026-11-20' THEN 0.5 + (g % 16) * 0.5 END
FROM generate_series(1, {work_orders}) g
CROSS JOIN LATERAL (SELECT TIMESTAMPTZ '2024-11-23 00:00Z' + (g * {spacing}) * interval '1 second' AS at) c;
INSERT INTO inventory_items (sku, name, quantity, reorder_level, unit_cost)
SELECT 'SKU-' || g, 'Part ' || g, g % 40, 10, 1 + g % 100 FROM generate_series(1, 2000) g;
INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level, predicted_at)
SELECT g, 'v1', (g % 1000) / 1000.0, (ARRAY['low', 'medium', 'high', 'critical'])[1 + (g % 1000) / 250], TIMESTAMPTZ '2026-11-20'
FROM generate_series(1, {assets}) g;
VACUUM ANALYZE assets, work_orders, inventory_items, ml_predictions;`

// seed fills a new database with benchSeed: assets assets and workOrders
// work orders spread evenly over the two years (730 days) to 2026-11-23.
func seed(b *testing.B, assets, workOrders int) *pgxpool.Pool {
	pool := pgtest.New(b)
	ctx := context.Background()
	t0 := time.Now()
	sql := strings.NewReplacer("{assets}", strconv.Itoa(assets), "{work_orders}", strconv.Itoa(workOrders),
		"{spacing}", strconv.FormatFloat(730*86400/float64(workOrders), 'g', -1, 64)).Replace(benchSeed)
	for _, stmt := range splitStatements(sql) {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM work_orders`).Scan(&n); err != nil || n != workOrders {
		b.Fatalf("%d work orders (%v)", n, err)
	}
	b.Logf("setup: %d work orders of %d assets in %s", workOrders, assets, time.Since(t0).Round(time.Millisecond))
	return pool
}

func BenchmarkReport1M(b *testing.B) {
	pool := seed(b, 20_000, 1_000_000)
	b.Run("report_vs_sql_only", reportPair(b, pool).Run)
}

// BenchmarkScale is the reporter's stage of the scale curve (make bench's
// scale step, libs/benchscale): the weekly report over BENCH_WORK_ORDERS
// work orders of BENCH_ASSETS assets (benchSeed's two years, filled once)
// beside the KPI SQL alone, in interleaved pairs with each side's peak
// memory (this process's: PostgreSQL's is not in it). Skipped unless
// BENCH_WORK_ORDERS is set.
//
//	BENCH_WORK_ORDERS=1000000 go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/reporter/internal/reporter/
func BenchmarkScale(b *testing.B) {
	size := benchscale.PointSize(b)
	b.Run(benchscale.Key(benchscale.KeyWorkOrders, size.WorkOrders), func(b *testing.B) {
		pair := reportPair(b, seed(b, size.Assets, size.WorkOrders))
		pair.Memory = true
		b.Run("report_vs_sql_only", pair.Run)
	})
}

// reportPair is the report of 2026-W47 on pool beside the KPI SQL alone.
func reportPair(b *testing.B, pool *pgxpool.Pool) *benchpair.Pair {
	ctx := context.Background()
	w, _ := kpi.ParseWeek("2026-W47")
	// Ours: the whole report — KPI queries, charts, HTML, PDF and CSV.
	report := func(b *testing.B) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			r, err := kpi.Compute(ctx, tx, kpi.Params{Week: w})
			if err != nil {
				return err
			}
			if r.Current.WorkOrders.Opened == 0 || !r.Current.MTTR.Valid {
				return fmt.Errorf("empty report: %+v", r.Current.WorkOrders)
			}
			_, err = render.All(r)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Baseline: the same KPI statements alone, as psql would run them, with
	// their rows read and thrown away.
	args := kpi.BaselineArgs(kpi.Params{Week: w})
	sqlOnly := func(b *testing.B) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for i, q := range kpi.Queries() {
				rows, err := tx.Query(ctx, q, args[i]...)
				if err != nil {
					return err
				}
				for rows.Next() {
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return &benchpair.Pair{Ours: benchpair.Side{Run: report}, Base: benchpair.Side{Run: sqlOnly},
		Processes: []int{pgtest.ServerPID(b)}}
}

func splitStatements(s string) []string {
	var out []string
	for _, st := range splitKeep(s) {
		if st != "" {
			out = append(out, st)
		}
	}
	return out
}

// splitKeep splits on ";\n" (the seed has no semicolons inside statements).
func splitKeep(s string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ';' && s[i+1] == '\n' {
			out = append(out, s[start:i])
			start = i + 2
		}
	}
	return append(out, s[start:])
}
