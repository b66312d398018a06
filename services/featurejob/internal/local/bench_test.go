package local_test

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/benchmem"
	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

// synthetic writes assets assets (and one plan each) and workOrders work
// orders over the three years before 2026-03-01 under prefix. The work
// orders are generated while they are written, so a large table is never
// held in memory.
func synthetic(tb testing.TB, store *objstore.Store, prefix string, assets, workOrders int) []*eventsv1.StoredObject {
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(-3, 0, 0)
	span := end.Sub(start).Microseconds()
	var t rawtest.Tables
	for i := range assets {
		t.Assets = append(t.Assets, features.Asset{ID: int64(i + 1), VehicleType: features.VehicleTypes[i%6],
			Status:           []string{"ACTIVE", "ACTIVE", "ACTIVE", "RETIRED", "IN_MAINTENANCE"}[i%5],
			CommissionedDate: features.Day(start.AddDate(0, 0, -rng.IntN(4000))), MeterReading: rng.Float64() * 3e5, EngineHours: rng.Float64() * 1e4})
		end := features.Day(end.AddDate(0, 0, -rng.IntN(300)))
		t.Plans = append(t.Plans, features.MaintenancePlan{ID: int64(i + 1), AssetID: int64(i + 1), EndDate: &end})
	}
	prios := []string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}
	wos := func(yield func(features.WorkOrder) bool) {
		for i := range workOrders {
			created := start.UnixMicro() + rng.Int64N(span)
			w := features.WorkOrder{ID: int64(i + 1), AssetID: int64(1 + rng.IntN(assets)), Type: "CORRECTIVE",
				Priority: prios[rng.IntN(4)], CreatedAt: created, Status: "OPEN"}
			if rng.IntN(3) == 0 {
				w.Type = "PREVENTIVE"
				due := features.Day(time.UnixMicro(created)) + int32(rng.IntN(20))
				w.DueDate = &due
			}
			if rng.IntN(10) > 0 {
				done := created + rng.Int64N(30*features.MicrosPerDay)
				hours := float64(rng.IntN(40)) / 4
				w.CompletedAt, w.RepairHours, w.Status = &done, &hours, "COMPLETED"
			}
			if !yield(w) {
				return
			}
		}
	}
	return []*eventsv1.StoredObject{
		rawtest.Put(tb, store, prefix+features.RawObject(features.TableAssets), slices.Values(t.Assets)),
		rawtest.Put(tb, store, prefix+features.RawObject(features.TableWorkOrders), wos),
		rawtest.Put(tb, store, prefix+features.RawObject(features.TableMaintenancePlans), slices.Values(t.Plans)),
	}
}

// BenchmarkFeatures builds the features of 1,000,000 work orders of 50,000
// assets over three years (default 365-day lookback and 90-day label
// window) with the local engine; BENCH_WORK_ORDERS and BENCH_ASSETS give
// another size (libs/benchscale).
//
// The bucket emulator runs in a child process (objstoretest.Subprocess)
// with its objects on disk, so neither the input objects nor the
// emulator's buffering of uploads are in this process's heap or RSS:
// peak-heap-MB (the heap's growth over the build, sampled) and peak-rss-MB
// (VmHWM, reset before the build; rss-base-MB is the RSS it was reset to)
// are the engine's, with the storage client's buffers (libs/benchmem).
// peak-tmp-MB is the most the engine's temporary directory held (sampled):
// on Cloud Run it is memory too. raw-MB is the three raw objects' size (the
// engine copies them there).
//
//	BENCH_WORK_ORDERS=3000000 BENCH_ASSETS=100000 \
//	  go test -run '^$' -bench BenchmarkFeatures -benchtime 1x ./services/featurejob/internal/local/
func BenchmarkFeatures(b *testing.B) {
	size := benchscale.Sized(b, benchscale.Size{WorkOrders: 1_000_000, Assets: 50_000})
	store := objstoretest.Subprocess(b)
	raw := synthetic(b, store, "runs/bench/raw/", size.Assets, size.WorkOrders)
	tmp := b.TempDir()
	eng := local.New(store, tmp)
	ctx := context.Background()
	var out engine.Outputs
	var peak benchmem.Peak
	var tmpPeak uint64
	for i := 0; b.Loop(); i++ {
		m, err := benchmem.Start()
		if err != nil {
			b.Fatal(err)
		}
		stopTmp := peakDirBytes(tmp)
		out, err = eng.Build(ctx, engine.Inputs{RunID: "bench", SnapshotDate: "2026-03-01", Raw: raw,
			OutPrefix: fmt.Sprintf("runs/bench/features%d/", i)})
		tmpPeak = max(tmpPeak, stopTmp())
		p, merr := m.Stop()
		if err = cmp.Or(err, merr); err != nil {
			b.Fatal(err)
		}
		peak.Heap, peak.RSS, peak.RSSBase = max(peak.Heap, p.Heap), max(peak.RSS, p.RSS), p.RSSBase
	}
	b.ReportMetric(float64(size.WorkOrders)*float64(b.N)/b.Elapsed().Seconds(), "wo-rows/s")
	b.ReportMetric(float64(out.Training.Rows), "training-rows")
	b.ReportMetric(benchmem.MiB(peak.Heap), "peak-heap-MB")
	b.ReportMetric(benchmem.MiB(peak.RSS), "peak-rss-MB")
	b.ReportMetric(benchmem.MiB(peak.RSSBase), "rss-base-MB")
	b.ReportMetric(float64(tmpPeak)/(1<<20), "peak-tmp-MB")
	var rawBytes int64
	for _, o := range raw {
		rawBytes += o.Bytes
	}
	b.ReportMetric(float64(rawBytes)/(1<<20), "raw-MB")
}

// peakDirBytes samples the total size of the files under dir every 10 ms
// until stop, which returns the largest.
func peakDirBytes(dir string) (stop func() uint64) {
	return benchmem.SampleMax(10*time.Millisecond, func() uint64 {
		var n uint64
		_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil // a file or folder removed while walking
			}
			if info, err := d.Info(); err == nil {
				n += uint64(info.Size())
			}
			return nil
		})
		return n
	})
}

// BenchmarkScale is featurejob's stage of the scale curve (make bench's
// scale step, libs/benchscale): the local engine's build of the features of
// BENCH_WORK_ORDERS work orders of BENCH_ASSETS assets, beside its floor,
// the engine's own read of the three raw objects (each copied from the
// bucket to a file and every row decoded, as a build reads them) with
// nothing sorted, computed or written, in interleaved pairs on one input
// with each side's peak memory (libs/benchpair). Skipped unless
// BENCH_WORK_ORDERS is set.
//
//	BENCH_WORK_ORDERS=1000000 go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/featurejob/internal/local/
func BenchmarkScale(b *testing.B) {
	size := benchscale.PointSize(b)
	b.Run(benchscale.Key(benchscale.KeyWorkOrders, size.WorkOrders), func(b *testing.B) {
		store := objstoretest.Subprocess(b)
		raw := synthetic(b, store, "runs/bench/raw/", size.Assets, size.WorkOrders)
		tmp := b.TempDir()
		eng := local.New(store, tmp)
		ctx := context.Background()
		in := engine.Inputs{RunID: "bench", SnapshotDate: "2026-03-01", Raw: raw, OutPrefix: "runs/bench/features/"}
		pair := &benchpair.Pair{Items: float64(size.WorkOrders), Unit: "wo", Memory: true,
			Ours: benchpair.Side{Run: func(b *testing.B) {
				if out, err := eng.Build(ctx, in); err != nil || out.Training.GetRows() == 0 {
					b.Fatalf("built %v (%v)", out.Training, err)
				}
			}},
			Base: benchpair.Side{Run: func(b *testing.B) {
				if n, err := eng.ReadRaw(ctx, in, tmp); err != nil || n < size.WorkOrders {
					b.Fatalf("read %d rows (%v), want the %d work orders and more", n, err, size.WorkOrders)
				}
			}},
		}
		b.Run("features_vs_read", pair.Run)
	})
}

func TestMain(m *testing.M) {
	objstoretest.ServeIfChild()
	os.Exit(m.Run())
}
