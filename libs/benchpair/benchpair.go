// Package benchpair times a comparison, ours beside its baseline, as
// interleaved pairs. Each iteration of a paired benchmark runs one pair:
// both sides once, on the same fixture, in an order that alternates from
// one pair to the next (ours first, then the baseline first, …), so that a
// drift in the machine's speed, and whatever one side leaves behind for the
// next, land on both sides instead of on all the runs of one of them.
//
// A pair reports, per iteration (one pair with -benchtime 1x):
//
//	ours-s       seconds of ours
//	base-s       seconds of the baseline
//	ratio        ours-s ÷ base-s
//	ours-first   the share of the pairs in which ours ran first (1 or 0 with 1x)
//
// and, with Items and Unit set, each side's rate (ours-<unit>/s and
// base-<unit>/s); with Memory set, each side's peak memory (libs/benchmem):
//
//	ours-peak-heap-MB, base-peak-heap-MB   the heap's largest growth, MiB
//	ours-peak-rss-MB, base-peak-rss-MB     the process's peak RSS, MiB
//
// ns/op is left out: it would be the two sides together.
//
// A benchmark with an expensive fixture builds it once and runs the pair as
// a sub-benchmark, which -count repeats on that fixture (go test runs the
// parent once and each sub-benchmark -count times), so
// `-benchtime 1x -count 5` prints five lines, one pair each:
//
//	func BenchmarkReport1M(b *testing.B) {
//		pool := seed(b)
//		p := &benchpair.Pair{Ours: benchpair.Side{Run: report}, Base: benchpair.Side{Run: sqlOnly}}
//		b.Run("report_vs_sql_only", p.Run)
//	}
package benchpair

import (
	"runtime"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/benchmem"
)

// Side is one side of a pair.
type Side struct {
	// Prepare, when set, readies the fixture for Run, untimed: what the
	// other side or an earlier run changed, put back.
	Prepare func(b *testing.B)
	// Run is the work timed.
	Run func(b *testing.B)
	// Reps, when above 1, is how many times Run runs in a row in one
	// side's timing, its seconds then being per run: a side of a few
	// milliseconds repeats to be timed above the noise of the clock and of
	// the scheduler.
	Reps int
	// Check, when set, verifies what Run did, untimed.
	Check func(b *testing.B)
}

// Pair is a comparison: Ours beside Base, its baseline. Keep one Pair for
// every run of its benchmark (make it in the parent benchmark): the order
// alternates with the pairs it has run.
type Pair struct {
	Ours, Base Side
	// Items is the work of one run of a side in Unit ("plans", "rows"):
	// with both set, each side's rate is reported too.
	Items float64
	Unit  string
	// Memory, set, measures each side's peak memory: before the side, the
	// memory the runtime holds free goes back to the OS and the peak RSS is
	// reset (untimed); while it runs, the heap is sampled every 2 ms, on
	// both sides alike. A run of several pairs reports the largest peaks.
	Memory bool

	pairs int // pairs run so far
}

// Run runs b.N pairs and reports their figures; use it as the function of
// a sub-benchmark (b.Run(name, p.Run)).
func (p *Pair) Run(b *testing.B) { p.run(b, b, b.N) }

// meter is what Run uses of a *testing.B besides handing it to the sides.
type meter interface {
	StartTimer()
	StopTimer()
	ReportMetric(n float64, unit string)
}

func (p *Pair) run(b *testing.B, m meter, n int) {
	m.StopTimer()
	var ours, base sideTotals
	oursFirst := 0
	for range n {
		if p.pairs%2 == 0 {
			oursFirst++
			ours.add(b, p.Ours, m, p.Memory)
			base.add(b, p.Base, m, p.Memory)
		} else {
			base.add(b, p.Base, m, p.Memory)
			ours.add(b, p.Ours, m, p.Memory)
		}
		p.pairs++
	}
	o, s := ours.took.Seconds()/float64(n), base.took.Seconds()/float64(n)
	m.ReportMetric(0, "ns/op")
	m.ReportMetric(o, "ours-s")
	m.ReportMetric(s, "base-s")
	m.ReportMetric(o/s, "ratio")
	m.ReportMetric(float64(oursFirst)/float64(n), "ours-first")
	if p.Items > 0 && p.Unit != "" {
		m.ReportMetric(p.Items/o, "ours-"+p.Unit+"/s")
		m.ReportMetric(p.Items/s, "base-"+p.Unit+"/s")
	}
	if p.Memory {
		for _, side := range []struct {
			name string
			peak benchmem.Peak
		}{{"ours", ours.peak}, {"base", base.peak}} {
			m.ReportMetric(benchmem.MiB(side.peak.Heap), side.name+"-peak-heap-MB")
			m.ReportMetric(benchmem.MiB(side.peak.RSS), side.name+"-peak-rss-MB")
		}
	}
}

// sideTotals are one side's time over the pairs of a run and its largest
// peaks.
type sideTotals struct {
	took time.Duration
	peak benchmem.Peak
}

func (t *sideTotals) add(b *testing.B, s Side, m meter, memory bool) {
	took, peak, err := s.time(b, m, memory)
	if err != nil {
		b.Fatal(err)
	}
	t.took += took
	t.peak.Heap, t.peak.RSS = max(t.peak.Heap, peak.Heap), max(t.peak.RSS, peak.RSS)
}

// time prepares, runs and checks the side, timing the run only, and with
// memory its peaks. The heap is collected first, as go test does before a
// benchmark, so that neither side pays for the other's garbage.
func (s Side) time(b *testing.B, m meter, memory bool) (time.Duration, benchmem.Peak, error) {
	if s.Prepare != nil {
		s.Prepare(b)
	}
	reps := max(s.Reps, 1)
	var mem *benchmem.Meter
	if memory {
		var err error
		if mem, err = benchmem.Start(); err != nil { // collects the heap too
			return 0, benchmem.Peak{}, err
		}
	} else {
		runtime.GC()
	}
	m.StartTimer()
	start := time.Now()
	for range reps {
		s.Run(b)
	}
	took := time.Since(start)
	m.StopTimer()
	var peak benchmem.Peak
	if mem != nil {
		var err error
		if peak, err = mem.Stop(); err != nil {
			return 0, peak, err
		}
	}
	if s.Check != nil {
		s.Check(b)
	}
	return took / time.Duration(reps), peak, nil
}
