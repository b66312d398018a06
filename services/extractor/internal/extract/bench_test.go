package extract_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/benchcpu"
	"github.com/cmmsflow/cmmsflow/libs/benchmem"
	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extract"
)

// fill writes assets, one maintenance plan per asset and workOrders work
// orders spread over three years, with generate_series on the server.
func fill(tb testing.TB, pool *pgxpool.Pool, assets, workOrders int) {
	tb.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO assets (id, asset_tag, name, vehicle_type, status, commissioned_date, meter_reading, engine_hours, location)
		SELECT i, 'VH-' || i, 'Vehicle ' || i, (ARRAY['car','van','truck','bus','trailer','forklift'])[1 + i % 6],
		       CASE WHEN i % 20 = 0 THEN 'RETIRED' ELSE 'ACTIVE' END,
		       date '2014-01-01' + (i * 37) % 3650, (i * 13) % 300000, (i * 7) % 20000, 'Depot ' || i % 7
		FROM generate_series(1, $1::int) i`, assets)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO maintenance_plans (code, asset_id, name, interval_value, interval_unit, next_due_date)
		SELECT 'PM-' || i, i, 'Service', 6, 'months', date '2026-01-01' + i % 180
		FROM generate_series(1, $1::int) i`, assets)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO work_orders (wo_number, asset_id, due_date, type, status, priority, title,
		                         created_at, started_at, completed_at, repair_hours)
		SELECT 'WO-' || i, 1 + i % $1::int, CASE WHEN i % 3 = 0 THEN (t + interval '10 days')::date END,
		       CASE WHEN i % 3 = 0 THEN 'PREVENTIVE' ELSE 'CORRECTIVE' END,
		       CASE WHEN i % 10 = 0 THEN 'OPEN' ELSE 'COMPLETED' END,
		       (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + i % 4], 'Repair ' || i % 50,
		       t, CASE WHEN i % 10 <> 0 THEN t + interval '2 hours' END,
		       CASE WHEN i % 10 <> 0 THEN t + interval '5 hours' END,
		       CASE WHEN i % 10 <> 0 THEN (i % 16) * 0.25 END
		FROM generate_series(1, $2::int) i,
		     LATERAL (SELECT timestamptz '2023-03-01' + (i % 1095) * interval '1 day' + (i % 600) * interval '1 minute' AS t) ts`,
		assets, workOrders)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		tb.Fatal(err)
	}
}

func setupBench(b *testing.B, assets, workOrders int) *pgxpool.Pool {
	b.Helper()
	pool := pgtest.New(b)
	fill(b, pool, assets, workOrders)
	return pool
}

// BenchmarkExtract shows memory staying flat as the work orders grow
// fivefold (assets fixed at 50,000): peak-heap-MB is about the same for 200k
// and 1M: each table holds at most one row group in memory. The objects go to
// a sink that counts bytes (the in-process bucket emulator would hold them in
// this process's heap). Each size's database is filled once, for every run
// of its sub-benchmark (-count).
//
//	go test -run '^$' -bench BenchmarkExtract$ -benchtime 1x ./services/extractor/internal/extract/
func BenchmarkExtract(b *testing.B) {
	for _, n := range []int{200_000, 1_000_000} {
		pool := setupBench(b, 50_000, n)
		b.Run(fmt.Sprintf("work_orders=%d", n), func(b *testing.B) {
			store := sink{}
			ctx := context.Background()
			var peak uint64
			var rows int64
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m := startMem(b)
				objs, err := extract.Run(ctx, pool, store, fmt.Sprintf("runs/b%d/raw/", i), extract.Tables)
				peak = max(peak, stopMem(b, m))
				if err != nil {
					b.Fatal(err)
				}
				rows = 0
				for _, o := range objs {
					rows += o.Rows
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// BenchmarkExtract1M extracts 1,000,000 work orders of 50,000 assets: all
// three tables in parallel to Parquet in the bucket emulator (parquet), and
// the work orders alone beside the baseline, the same query as CSV through
// COPY TO STDOUT (what psql's \copy does), discarded, in interleaved pairs
// on the one fixture (work_orders_vs_copy_csv, libs/benchpair); and the work
// orders alone to a sink with this process's CPU time and allocations
// (work_orders_cpu).
//
//	go test -run '^$' -bench BenchmarkExtract1M -benchtime 1x -count 5 ./services/extractor/internal/extract/
func BenchmarkExtract1M(b *testing.B) {
	pool := setupBench(b, 50_000, 1_000_000)
	ctx := context.Background()
	b.Run("parquet", func(b *testing.B) {
		store := objstoretest.New(b)
		var peak uint64
		var woRows, woBytes int64
		var woTook time.Duration
		for i := 0; b.Loop(); i++ {
			m := startMem(b)
			objs, err := extract.Run(ctx, pool, store, fmt.Sprintf("runs/b%d/raw/", i), extract.Tables)
			peak = max(peak, stopMem(b, m))
			if err != nil {
				b.Fatal(err)
			}
			woRows, woBytes, woTook = objs[1].Rows, objs[1].Bytes, objs[1].Took
		}
		b.ReportMetric(float64(woRows)/woTook.Seconds(), "wo-rows/s")
		b.ReportMetric(float64(woBytes)/(1<<20), "wo-MB")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	})
	b.Run("work_orders_cpu", func(b *testing.B) { benchCPU(b, pool, 1_000_000) })
	// Each extraction writes the same object, replacing the last one, so
	// the emulator holds one.
	pair, csvBytes := workOrdersPair(pool, objstoretest.New(b), 1_000_000)
	pair.Processes = []int{pgtest.ServerPID(b)}
	b.Run("work_orders_vs_copy_csv", func(b *testing.B) {
		pair.Run(b)
		b.ReportMetric(float64(*csvBytes)/(1<<20), "csv-MB")
	})
}

// benchCPU extracts the work orders (rows of them) alone to a sink and
// reports this process's CPU time per million rows (libs/benchcpu, the
// server's left out), the allocations and the object's size: the client's
// share of the work, which wall time on a shared 2-core machine (the server
// busy on the other core) hides.
func benchCPU(b *testing.B, pool *pgxpool.Pool, rows int64) {
	ctx := context.Background()
	b.ReportAllocs()
	var cpu time.Duration
	var size int64
	for b.Loop() {
		m, err := benchcpu.Start()
		if err != nil {
			b.Fatal(err)
		}
		objs, err := extract.Run(ctx, pool, sink{}, "runs/cpu/raw/", extract.Tables[1:2])
		u, uerr := m.Stop()
		if uerr != nil {
			b.Fatal(uerr)
		}
		cpu += u.CPU
		if err != nil || objs[0].Rows != rows {
			b.Fatalf("extracted %v (%v), want %d work orders", objs, err, rows)
		}
		size = objs[0].Bytes
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6/float64(rows), "cpu-s/1M-rows")
	b.ReportMetric(float64(size)/(1<<20), "wo-MB")
}

// workOrdersPair is the extraction of the work orders (rows of them) to
// Parquet in store beside the baseline, the same query as CSV through COPY
// TO STDOUT, discarded; csvBytes is the CSV's size.
func workOrdersPair(pool *pgxpool.Pool, store extract.Bucket, rows int64) (pair *benchpair.Pair, csvBytes *int64) {
	ctx := context.Background()
	csvBytes = new(int64)
	return &benchpair.Pair{Items: float64(rows), Unit: "rows",
		Ours: benchpair.Side{Run: func(b *testing.B) {
			objs, err := extract.Run(ctx, pool, store, "runs/pair/raw/", extract.Tables[1:2])
			if err != nil || objs[0].Rows != rows {
				b.Fatalf("extracted %v (%v), want %d work orders", objs, err, rows)
			}
		}},
		Base: benchpair.Side{Run: func(b *testing.B) {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			cw := &objstore.CountingWriter{W: io.Discard}
			tag, err := conn.Conn().PgConn().CopyTo(ctx, cw, "COPY ("+extract.WorkOrdersQuery+") TO STDOUT (FORMAT csv)")
			if err != nil || tag.RowsAffected() != rows {
				b.Fatalf("copied %d rows (%v), want %d", tag.RowsAffected(), err, rows)
			}
			*csvBytes = cw.N
		}},
	}, csvBytes
}

// BenchmarkScale is the extractor's stage of the scale curve (make bench's
// scale step, libs/benchscale): the work orders of BENCH_WORK_ORDERS (of
// BENCH_ASSETS assets, one plan each, over three years; the database filled
// once with generate_series) to Parquet in the bucket beside COPY of the
// same query, in interleaved pairs with each side's peak memory. The bucket
// emulator runs in a child process (objstoretest.Subprocess), so the
// objects are not in this process's memory. Skipped unless
// BENCH_WORK_ORDERS is set.
//
//	BENCH_WORK_ORDERS=1000000 go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/extractor/internal/extract/
func BenchmarkScale(b *testing.B) {
	size := benchscale.PointSize(b)
	b.Run(benchscale.Key(benchscale.KeyWorkOrders, size.WorkOrders), func(b *testing.B) {
		pool := setupBench(b, size.Assets, size.WorkOrders)
		pair, _ := workOrdersPair(pool, objstoretest.Subprocess(b), int64(size.WorkOrders))
		pair.Memory, pair.Processes = true, []int{pgtest.ServerPID(b)}
		b.Run("work_orders_vs_copy_csv", pair.Run)
	})
}

// startMem starts measuring the memory (libs/benchmem), untimed.
func startMem(b *testing.B) *benchmem.Meter {
	b.StopTimer()
	defer b.StartTimer()
	m, err := benchmem.Start()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// stopMem is m's peak heap.
func stopMem(b *testing.B, m *benchmem.Meter) uint64 {
	p, err := m.Stop()
	if err != nil {
		b.Fatal(err)
	}
	return p.Heap
}

func TestMain(m *testing.M) {
	objstoretest.ServeIfChild()
	os.Exit(m.Run())
}

// sink is a bucket that discards what is written.
type sink struct{}

func (sink) Create(context.Context, string, string) io.WriteCloser {
	return nopCloser{&objstore.CountingWriter{W: io.Discard}}
}

func (sink) URI(name string) string { return "sink:///" + name }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
