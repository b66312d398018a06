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
// base-<unit>/s). ns/op is left out: it would be the two sides together.
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
	var ours, base time.Duration
	oursFirst := 0
	for range n {
		if p.pairs%2 == 0 {
			oursFirst++
			ours += p.Ours.time(b, m)
			base += p.Base.time(b, m)
		} else {
			base += p.Base.time(b, m)
			ours += p.Ours.time(b, m)
		}
		p.pairs++
	}
	o, s := ours.Seconds()/float64(n), base.Seconds()/float64(n)
	m.ReportMetric(0, "ns/op")
	m.ReportMetric(o, "ours-s")
	m.ReportMetric(s, "base-s")
	m.ReportMetric(o/s, "ratio")
	m.ReportMetric(float64(oursFirst)/float64(n), "ours-first")
	if p.Items > 0 && p.Unit != "" {
		m.ReportMetric(p.Items/o, "ours-"+p.Unit+"/s")
		m.ReportMetric(p.Items/s, "base-"+p.Unit+"/s")
	}
}

// time prepares, runs and checks the side, timing the run only. The heap is
// collected first, as go test does before a benchmark, so that neither side
// pays for the other's garbage.
func (s Side) time(b *testing.B, m meter) time.Duration {
	if s.Prepare != nil {
		s.Prepare(b)
	}
	reps := max(s.Reps, 1)
	runtime.GC()
	m.StartTimer()
	start := time.Now()
	for range reps {
		s.Run(b)
	}
	took := time.Since(start)
	m.StopTimer()
	if s.Check != nil {
		s.Check(b)
	}
	return took / time.Duration(reps)
}
