package local_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

// synthetic is assets assets with workOrders work orders over the three
// years before 2026-03-01.
func synthetic(assets, workOrders int) rawtest.Tables {
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
		t.WorkOrders = append(t.WorkOrders, w)
	}
	return t
}

// BenchmarkFeatures builds the features of 1,000,000 work orders of 50,000
// assets (three years, default 365-day lookback and 90-day label window)
// with the local engine, inputs and outputs in the bucket emulator.
//
//	go test -run '^$' -bench BenchmarkFeatures -benchtime 1x ./services/featurejob/internal/local/
func BenchmarkFeatures(b *testing.B) {
	store := objstoretest.New(b)
	raw := rawtest.Write(b, store, "runs/bench/raw/", synthetic(50_000, 1_000_000))
	eng := local.New(store, b.TempDir())
	ctx := context.Background()
	var out engine.Outputs
	var peak uint64
	for i := 0; b.Loop(); i++ {
		stop := peakHeap()
		var err error
		out, err = eng.Build(ctx, engine.Inputs{RunID: "bench", SnapshotDate: "2026-03-01", Raw: raw,
			OutPrefix: fmt.Sprintf("runs/bench/features%d/", i)})
		peak = max(peak, stop())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "wo-rows/s")
	b.ReportMetric(float64(out.Training.Rows), "training-rows")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func peakHeap() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}
