// Package benchmem measures a benchmark's peak memory while it runs: the
// heap's largest growth (sampled through runtime/metrics, which does not
// stop the world as runtime.ReadMemStats would) and the process's peak
// resident set (VmHWM of /proc/self/status, reset before the work by
// writing 5 to /proc/self/clear_refs). Linux only (the RSS figures).
//
//	m, err := benchmem.Start()
//	... the work ...
//	peak, err := m.Stop() // peak.Heap, peak.RSS, peak.RSSBase in bytes
//
// Whatever else the process does meanwhile is counted too: a benchmark
// whose fixture (a bucket emulator, say) would grow the process with the
// work runs it in another process (libs/objstoretest.Subprocess).
package benchmem

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HeapInterval is how often Start samples the heap.
const HeapInterval = 2 * time.Millisecond

// Peak is what a Meter measured, in bytes.
type Peak struct {
	// Heap is the heap's largest growth over its size at Start (after a
	// GC): live and not yet swept objects, as HeapAlloc.
	Heap uint64
	// RSS is the process's peak resident set (VmHWM) since Start; RSSBase
	// is the resident set Start reset it to.
	RSS, RSSBase uint64
}

// MiB is bytes in MiB, as the benchmarks report their "-MB" metrics.
func MiB(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

// Meter is a measurement in progress.
type Meter struct {
	rssBase  uint64
	stopHeap func() uint64
}

// Start returns the memory the runtime holds free to the OS (a GC
// first), resets the peak RSS to the current RSS and starts sampling the
// heap every HeapInterval.
func Start() (*Meter, error) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, fmt.Errorf("benchmem: reset the peak RSS: %w", err)
	}
	base, err := procStatus("VmRSS")
	if err != nil {
		return nil, err
	}
	return &Meter{rssBase: base, stopHeap: heapGrowth()}, nil
}

// Stop ends the sampling and returns the peaks.
func (m *Meter) Stop() (Peak, error) {
	heap := m.stopHeap()
	rss, err := procStatus("VmHWM")
	return Peak{Heap: heap, RSS: rss, RSSBase: m.rssBase}, err
}

// heapGrowth samples the heap every HeapInterval until stop, which returns
// its largest growth over its size now, after a GC.
func heapGrowth() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := heap()
	return SampleMax(HeapInterval, func() uint64 {
		if h := heap(); h > base {
			return h - base
		}
		return 0
	})
}

// SampleMax calls f now and every interval until stop, which returns the
// largest value f returned.
func SampleMax(interval time.Duration, f func() uint64) (stop func() uint64) {
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

// procStatus is a memory figure of /proc/self/status ("VmRSS", "VmHWM"),
// in bytes.
func procStatus(field string) (uint64, error) {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("benchmem: %w", err)
	}
	for line := range strings.Lines(string(s)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("benchmem: /proc/self/status %s: %w", field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("benchmem: /proc/self/status has no %s", field)
}
