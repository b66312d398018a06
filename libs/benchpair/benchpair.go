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
//	ours-cpu-s   CPU seconds of ours: this process and its children, and the
//	             process trees of Processes (the database server)
//	base-cpu-s   CPU seconds of the baseline, likewise
//	cpu-ratio    ours-cpu-s ÷ base-cpu-s
//	ours-steal-pct, base-steal-pct
//	             the share of the machine's CPU time that the hypervisor
//	             took (steal) while each side ran, in %
//
// The wall-time ratio is what a user waits for; on a shared virtual machine
// it moves with steal, which comes in bursts of seconds and can slow one
// side of a pair and not the other. CPU time leaves steal out
// (libs/benchcpu) but still rises while the host is busy (a vCPU that runs
// then runs slower), so the CPU-time ratio is a second view of the pair, not
// a steadier one. Each side's steal says how far to trust the pair.
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

	"github.com/cmmsflow/cmmsflow/libs/benchcpu"
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
	// Processes are the roots of process trees whose CPU time counts on
	// each side beside this process's: the PostgreSQL server
	// (libs/pgtest.ServerPID) where the work is queries.
	Processes []int

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
			ours.add(b, p.Ours, m, p)
			base.add(b, p.Base, m, p)
		} else {
			base.add(b, p.Base, m, p)
			ours.add(b, p.Ours, m, p)
		}
		p.pairs++
	}
	o, s := ours.took.Seconds()/float64(n), base.took.Seconds()/float64(n)
	m.ReportMetric(0, "ns/op")
	m.ReportMetric(o, "ours-s")
	m.ReportMetric(s, "base-s")
	m.ReportMetric(o/s, "ratio")
	m.ReportMetric(float64(oursFirst)/float64(n), "ours-first")
	oc, bc := ours.cpu.Seconds()/float64(n), base.cpu.Seconds()/float64(n)
	m.ReportMetric(oc, "ours-cpu-s")
	m.ReportMetric(bc, "base-cpu-s")
	m.ReportMetric(oc/bc, "cpu-ratio")
	m.ReportMetric(100*ours.steal/float64(n), "ours-steal-pct")
	m.ReportMetric(100*base.steal/float64(n), "base-steal-pct")
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

// sideTotals are one side's time, CPU time and steal share over the pairs
// of a run, and its largest peaks.
type sideTotals struct {
	took, cpu time.Duration
	steal     float64
	peak      benchmem.Peak
}

func (t *sideTotals) add(b *testing.B, s Side, m meter, p *Pair) {
	r, err := s.time(b, m, p.Memory, p.Processes)
	if err != nil {
		b.Fatal(err)
	}
	t.took += r.took
	t.cpu += r.cpu.CPU
	t.steal += r.cpu.Steal
	t.peak.Heap, t.peak.RSS = max(t.peak.Heap, r.peak.Heap), max(t.peak.RSS, r.peak.RSS)
}

// sideRun is what one run of a side measured, per run of Run.
type sideRun struct {
	took time.Duration
	cpu  benchcpu.Usage
	peak benchmem.Peak
}

// time prepares, runs and checks the side, timing the run only (its wall
// and CPU time), and with memory its peaks. The heap is collected first, as
// go test does before a benchmark, so that neither side pays for the
// other's garbage.
func (s Side) time(b *testing.B, m meter, memory bool, processes []int) (sideRun, error) {
	if s.Prepare != nil {
		s.Prepare(b)
	}
	reps := max(s.Reps, 1)
	var mem *benchmem.Meter
	if memory {
		var err error
		if mem, err = benchmem.Start(); err != nil { // collects the heap too
			return sideRun{}, err
		}
	} else {
		runtime.GC()
	}
	cpu, err := benchcpu.Start(processes...)
	if err != nil {
		return sideRun{}, err
	}
	m.StartTimer()
	start := time.Now()
	for range reps {
		s.Run(b)
	}
	r := sideRun{took: time.Since(start)}
	m.StopTimer()
	if r.cpu, err = cpu.Stop(); err != nil {
		return r, err
	}
	if mem != nil {
		if r.peak, err = mem.Stop(); err != nil {
			return r, err
		}
	}
	if s.Check != nil {
		s.Check(b)
	}
	r.took /= time.Duration(reps)
	r.cpu.CPU /= time.Duration(reps)
	return r, nil
}
