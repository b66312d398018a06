package fleet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

const benchAssets = 1_000

// benchWorkOrders is the benchmark's number of work orders: 1,000,000, or
// BENCH_WORK_ORDERS (libs/benchscale) for a quick look.
func benchWorkOrders(b *testing.B) int {
	n := benchscale.Sized(b, benchscale.Size{WorkOrders: 1_000_000}).WorkOrders
	if n < 10 {
		b.Fatalf("%s=%d: want at least 10", benchscale.EnvWorkOrders, n)
	}
	return n
}

// writeBenchFile writes dir/name with header and n lines from line(i).
func writeBenchFile(b *testing.B, dir, name, header string, n int, line func(w *bufio.Writer, i int)) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(header)
	for i := range n {
		line(w, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchFiles writes three directories: the assets; n work orders; the same
// work orders with every tenth one's status changed.
func benchFiles(b *testing.B, n int) (assets, before, after string) {
	root := b.TempDir()
	assets = writeBenchFile(b, filepath.Join(root, "assets"), "assets.csv", assetsHeader, benchAssets, func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "VH-%04d,Vehicle %d,van,2020-01-01\n", i, i)
	})
	workOrders := func(changed bool) func(w *bufio.Writer, i int) {
		return func(w *bufio.Writer, i int) {
			status := "OPEN"
			if changed && i%10 == 0 {
				status = "IN_PROGRESS"
			}
			at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
			fmt.Fprintf(w, "WO-%07d,VH-%04d,%s,Repair %d,Driver reports a fault,%s,%s\n", i, i%benchAssets, status, i%50, at, "MEDIUM")
		}
	}
	const header = "wo_number,asset_tag,status,title,description,created_at,priority\n"
	before = writeBenchFile(b, filepath.Join(root, "before"), "work_orders.csv", header, n, workOrders(false))
	after = writeBenchFile(b, filepath.Join(root, "after"), "work_orders.csv", header, n, workOrders(true))
	return assets, before, after
}

// benchDB is a fresh database with the assets imported and, with dirs, the
// files of dirs too.
func benchDB(b *testing.B, dirs ...string) *pgxpool.Pool {
	pool := pgtest.New(b)
	for _, dir := range dirs {
		if _, err := Import(context.Background(), pool, dir); err != nil {
			b.Fatal(err)
		}
	}
	return pool
}

// BenchmarkImportUpsert1M upserts 1,000,000 work orders of which 10% have a
// changed status into a database that holds them all, beside the baseline:
// the plain import (COPY) of the same file into a database without them,
// in interleaved pairs (libs/benchpair: one pair per run, -count 5 gives
// five). Only the imports are timed, each into a fresh database made in the
// side's untimed Prepare.
//
//	BENCH_WORK_ORDERS=100000 go test -run '^$' -bench ImportUpsert1M -benchtime 1x -count 5 ./libs/fleet/
func BenchmarkImportUpsert1M(b *testing.B) {
	n := benchWorkOrders(b)
	assets, before, after := benchFiles(b, n)
	ctx := context.Background()
	var pool *pgxpool.Pool
	pair := &benchpair.Pair{Items: float64(n), Unit: "rows", Processes: []int{pgtest.ServerPID(b)},
		Ours: benchpair.Side{
			Prepare: func(b *testing.B) { pool = benchDB(b, assets, before) },
			Run: func(b *testing.B) {
				ch, err := ImportWith(ctx, pool, after, ImportOptions{Upsert: true})
				if err != nil {
					b.Fatal(err)
				}
				if wo := ch[3]; wo.Inserted != 0 || wo.Updated != int64(n/10) || wo.Unchanged != int64(n-n/10) {
					b.Fatalf("work orders %+v, want %d updated and %d unchanged", wo, n/10, n-n/10)
				}
			},
		},
		Base: benchpair.Side{
			Prepare: func(b *testing.B) { pool = benchDB(b, assets) },
			Run: func(b *testing.B) {
				st, err := Import(ctx, pool, after)
				if err != nil {
					b.Fatal(err)
				}
				if st.WorkOrders != int64(n) {
					b.Fatalf("imported %d work orders, want %d", st.WorkOrders, n)
				}
			},
		},
	}
	b.Run("upsert_vs_copy", pair.Run)
}
