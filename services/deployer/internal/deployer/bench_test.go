package deployer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
)

// BenchmarkSteps times the two steps over a fleet of 100,000 assets on the
// local engine, each in interleaved pairs with the same baseline on the one
// fixture (libs/benchpair; -count 5 gives five pairs of each): the
// baseline, a COPY of 100,000 scores into a table shaped as model_scores
// (no foreign key); etl, the ETL step's scoring (deploy, score,
// predictions, scorings); and monitor, the monitoring step, which also
// evaluates the ETL's scoring of 100,000 assets against their work orders
// (a corrective one for every tenth asset in its 30-day window) and
// measures drift against the champion's profile.
//
//	go test -run '^$' -bench Steps -benchtime 1x -count 5 ./services/deployer/internal/deployer/
func BenchmarkSteps(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	f := setupWith(b, engine.Local, map[string]string{"LABEL_WINDOW_DAYS": "30"})
	if _, err := f.pool.Exec(ctx, `INSERT INTO assets (id, asset_tag, name, vehicle_type, status, commissioned_date)
		SELECT g, 'B-' || g, 'Bus ' || g, 'bus', 'ACTIVE', '2020-01-01' FROM generate_series($1::int, $2::int) g`, activeAssets+2, n); err != nil {
		b.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO work_orders (wo_number, asset_id, type, title, created_at)
		SELECT 'WO-' || g, g, 'CORRECTIVE', 'bench', '2026-11-10' FROM generate_series(1, $1::int, 10) g`, n); err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	f.rows = testmodel.Rows(7, ids)
	testmodel.PutScoring(b, f.store, "run-1", f.rows)
	f.deployV1(b) // scores 2026-11-01, evaluable from 2026-12-01

	// Each side's message is made in its Prepare, untimed; the monitoring
	// runs are a day apart, from 2026-12-01.
	var msg eventing.Message
	step := func(next func(b *testing.B) eventing.Message) benchpair.Side {
		return benchpair.Side{
			Prepare: func(b *testing.B) { msg = next(b) },
			Run:     func(b *testing.B) { f.process(b, msg, eventing.Handled) },
		}
	}
	etl := step(func(b *testing.B) eventing.Message { return message(b, trained("v1", true, "")) })
	days := 0
	monitor := step(func(b *testing.B) eventing.Message {
		day := time.Date(2026, 12, 1+days, 0, 0, 0, 0, time.UTC).Format(features.DateLayout)
		days++
		return f.monitorMessage(b, fmt.Sprintf("mon-%d", days), f.dated(day, 0))
	})
	monitor.Check = func(b *testing.B) {
		var realized bool
		if err := f.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM model_performance WHERE labelled = $1)`, n).Scan(&realized); err != nil || !realized {
			b.Fatalf("no realized performance over the fleet (%v)", err)
		}
	}
	base := benchCopy(f, n)
	server := []int{pgtest.ServerPID(b)}
	b.Run("etl_vs_copy", (&benchpair.Pair{Ours: etl, Base: base, Processes: server}).Run)
	b.Run("monitor_vs_copy", (&benchpair.Pair{Ours: monitor, Base: base, Processes: server}).Run)
}

// benchCopyReps is how many COPYs one side of the baseline times.
const benchCopyReps = 5

// benchCopy is the benchmark's baseline, what the machine's database does
// in the meantime: a COPY of n scores into a table shaped as model_scores
// (its primary key and checks, no foreign key), emptied before each side.
// A COPY takes about a tenth of a step, so each side times benchCopyReps of
// them in a row, each a scoring of its own, and reports their mean: one
// COPY alone was timed within the scheduler's noise (its pair ratios
// spread over 2x).
func benchCopy(f *fixture, n int) benchpair.Side {
	ctx := context.Background()
	levels := []string{"low", "medium", "high", "critical"}
	var scoring int64
	return benchpair.Side{
		Prepare: func(b *testing.B) {
			if _, err := f.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_scores (LIKE model_scores INCLUDING ALL);
				TRUNCATE bench_scores`); err != nil {
				b.Fatal(err)
			}
		},
		Reps: benchCopyReps,
		Run: func(b *testing.B) {
			scoring++
			copied, err := f.pool.CopyFrom(ctx, pgx.Identifier{"bench_scores"}, []string{"scoring_id", "asset_id", "failure_probability", "risk_level"},
				pgx.CopyFromSlice(n, func(k int) ([]any, error) {
					return []any{scoring, int64(k + 1), float64(k) / float64(n), levels[k%4]}, nil
				}))
			if err != nil || copied != int64(n) {
				b.Fatalf("copied %d of %d scores (%v)", copied, n, err)
			}
		},
	}
}
