package local_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

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

// BenchmarkFeatures builds the features of FEATURES_WORK_ORDERS work orders
// (default 1,000,000) of FEATURES_ASSETS assets (default 50,000) over three
// years (default 365-day lookback and 90-day label window) with the local
// engine.
//
// The bucket emulator runs in a child process (this test binary started
// again, see TestMain) with its objects on disk, so neither the input
// objects nor the emulator's buffering of uploads are in this process's
// heap or RSS: peak-heap-MB (the heap's growth over the build, sampled) and
// peak-rss-MB (VmHWM, reset before the build; rss-base-MB is the RSS it was
// reset to) are the engine's, with the storage client's buffers.
// peak-tmp-MB is the most the engine's temporary directory held (sampled):
// on Cloud Run it is memory too. raw-MB is the three raw objects' size (the
// engine copies them there).
//
//	FEATURES_WORK_ORDERS=3000000 FEATURES_ASSETS=100000 \
//	  go test -run '^$' -bench BenchmarkFeatures -benchtime 1x ./services/featurejob/internal/local/
func BenchmarkFeatures(b *testing.B) {
	workOrders, assets := envInt(b, "FEATURES_WORK_ORDERS", 1_000_000), envInt(b, "FEATURES_ASSETS", 50_000)
	store := emulator(b)
	raw := synthetic(b, store, "runs/bench/raw/", assets, workOrders)
	tmp := b.TempDir()
	eng := local.New(store, tmp)
	ctx := context.Background()
	var out engine.Outputs
	var peak, rss, rssBase, tmpPeak uint64
	for i := 0; b.Loop(); i++ {
		rssBase = resetPeakRSS(b)
		stop, stopTmp := peakHeap(), peakDirBytes(tmp)
		var err error
		out, err = eng.Build(ctx, engine.Inputs{RunID: "bench", SnapshotDate: "2026-03-01", Raw: raw,
			OutPrefix: fmt.Sprintf("runs/bench/features%d/", i)})
		peak, tmpPeak = max(peak, stop()), max(tmpPeak, stopTmp())
		rss = max(rss, procStatus(b, "VmHWM"))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(workOrders)*float64(b.N)/b.Elapsed().Seconds(), "wo-rows/s")
	b.ReportMetric(float64(out.Training.Rows), "training-rows")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(rssBase)/(1<<20), "rss-base-MB")
	b.ReportMetric(float64(tmpPeak)/(1<<20), "peak-tmp-MB")
	var rawBytes int64
	for _, o := range raw {
		rawBytes += o.Bytes
	}
	b.ReportMetric(float64(rawBytes)/(1<<20), "raw-MB")
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// emulatorRootEnv, set, makes the test binary a bucket emulator over that
// directory: TestMain serves it on loopback, prints its host:port and stops
// when its standard input closes.
const emulatorRootEnv = "FEATUREJOB_BENCH_EMULATOR_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(emulatorRootEnv); root != "" {
		os.Exit(serveEmulator(root))
	}
	os.Exit(m.Run())
}

func serveEmulator(root string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// PublicHost: the emulator serves downloads to requests for that host.
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", StorageRoot: root,
		PublicHost: ln.Addr().String(), NoListener: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: objstoretest.Bucket})
	go func() { _ = http.Serve(ln, srv.HTTPHandler()) }()
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// emulator starts the bucket emulator in a child process and returns a
// store on it.
func emulator(b *testing.B) *objstore.Store {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), emulatorRootEnv+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	host, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bucket emulator: %v", err)
	}
	b.Setenv("STORAGE_EMULATOR_HOST", strings.TrimSpace(host))
	store, closeStore, err := objstore.Connect(context.Background(), objstoretest.Bucket)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = closeStore() })
	return store
}

// resetPeakRSS returns memory the runtime holds free to the OS, resets the
// process's peak RSS (VmHWM) to its current RSS by writing 5 to
// /proc/self/clear_refs, and returns that RSS.
func resetPeakRSS(b *testing.B) uint64 {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS: %v", err)
	}
	return procStatus(b, "VmRSS")
}

// procStatus is a memory figure of /proc/self/status, in bytes.
func procStatus(b *testing.B, field string) uint64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(s)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// peakDirBytes samples the total size of the files under dir every 10 ms
// until stop, which returns the largest.
func peakDirBytes(dir string) (stop func() uint64) {
	return sampleMax(10*time.Millisecond, func() uint64 {
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

// peakHeap samples the heap (live and not yet swept objects, HeapAlloc)
// every 2 ms until stop, which returns its largest growth over its size at
// the start, after a GC. runtime/metrics reads it without stopping the
// world (runtime.ReadMemStats would, every 2 ms).
func peakHeap() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := heap()
	return sampleMax(2*time.Millisecond, func() uint64 {
		if h := heap(); h > base {
			return h - base
		}
		return 0
	})
}

// sampleMax calls f every interval until stop, which returns the largest
// value f returned.
func sampleMax(interval time.Duration, f func() uint64) (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v := f(); v > peak.Load() {
				peak.Store(v)
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
