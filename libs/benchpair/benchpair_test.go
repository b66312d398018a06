package benchpair

import (
	"slices"
	"testing"
	"time"
)

// recorder is a meter that logs the timer's calls beside the sides' and
// keeps the metrics of the last run.
type recorder struct {
	log     *[]string
	metrics map[string]float64
}

func (r *recorder) StartTimer() { *r.log = append(*r.log, "start") }
func (r *recorder) StopTimer()  { *r.log = append(*r.log, "stop") }
func (r *recorder) ReportMetric(n float64, unit string) {
	r.metrics[unit] = n
}

// The sides run in an order that alternates from one pair to the next,
// across the runs of a benchmark (-count): each prepared, then timed, then
// checked; the report has each side's figures and their ratio.
func TestPairAlternatesAndReports(t *testing.T) {
	var log []string
	side := func(name string) Side {
		return Side{
			Prepare: func(*testing.B) { log = append(log, "prepare "+name) },
			Run:     func(*testing.B) { log = append(log, name) },
			Check:   func(*testing.B) { log = append(log, "check "+name) },
		}
	}
	p := &Pair{Ours: side("ours"), Base: side("base"), Items: 100, Unit: "rows"}
	timed := func(name string) []string {
		return []string{"prepare " + name, "start", name, "stop", "check " + name}
	}
	oursFirst := slices.Concat(timed("ours"), timed("base"))
	baseFirst := slices.Concat(timed("base"), timed("ours"))
	for run, want := range [][]string{oursFirst, baseFirst, oursFirst} { // as -count 3 runs it
		log = nil
		r := &recorder{log: &log, metrics: map[string]float64{}}
		p.run(nil, r, 1)
		if got := log[1:]; !slices.Equal(got, want) { // log[0] is the stop before the pair
			t.Fatalf("run %d: %v, want %v", run+1, got, want)
		}
		for _, unit := range []string{"ns/op", "ours-s", "base-s", "ratio", "ours-first", "ours-rows/s", "base-rows/s"} {
			if _, ok := r.metrics[unit]; !ok {
				t.Errorf("run %d: no %s in %v", run+1, unit, r.metrics)
			}
		}
		m := r.metrics
		if m["ns/op"] != 0 || m["ratio"] != m["ours-s"]/m["base-s"] || m["ours-rows/s"] != 100/m["ours-s"] {
			t.Errorf("run %d: metrics %v: want ns/op 0 (left out), ratio ours-s ÷ base-s, rate 100 ÷ ours-s", run+1, m)
		}
		if want := float64(1 - run%2); m["ours-first"] != want {
			t.Errorf("run %d: ours-first %v, want %v", run+1, m["ours-first"], want)
		}
	}
	// Two pairs in one run (b.N = 2): one in each order.
	log = nil
	r := &recorder{log: &log, metrics: map[string]float64{}}
	p.run(nil, r, 2)
	if got := log[1:]; !slices.Equal(got, slices.Concat(baseFirst, oursFirst)) {
		t.Fatalf("two pairs: %v", got)
	}
	if r.metrics["ours-first"] != 0.5 {
		t.Errorf("ours-first %v, want 0.5", r.metrics["ours-first"])
	}
	// A side with Reps runs that many times within its one timing (the
	// sixth pair: the baseline first).
	p.Base.Reps = 3
	log = nil
	p.run(nil, &recorder{log: &log, metrics: map[string]float64{}}, 1)
	if got, want := log[1:], slices.Concat([]string{"prepare base", "start", "base", "base", "base", "stop", "check base"}, timed("ours")); !slices.Equal(got, want) {
		t.Fatalf("with reps: %v, want %v", got, want)
	}
}

var held []byte

// With Memory, each side reports its peak heap and RSS: ours holds and
// writes 32 MiB, the baseline nothing.
func TestPairMemory(t *testing.T) {
	const size = 32 << 20
	p := &Pair{Memory: true,
		Ours: Side{Run: func(*testing.B) {
			held = make([]byte, size)
			for i := range held {
				held[i] = 1
			}
		}, Check: func(*testing.B) { held = nil }},
		Base: Side{Run: func(*testing.B) {}},
	}
	var log []string
	r := &recorder{log: &log, metrics: map[string]float64{}}
	p.run(nil, r, 1)
	m := r.metrics
	if m["ours-peak-heap-MB"] < 32 || m["ours-peak-rss-MB"] < 32 {
		t.Errorf("ours: peak heap %.1f MiB, RSS %.1f MiB: want the 32 MiB it held in both", m["ours-peak-heap-MB"], m["ours-peak-rss-MB"])
	}
	if m["base-peak-heap-MB"] >= 16 || m["base-peak-rss-MB"] <= 0 || m["base-peak-rss-MB"] >= m["ours-peak-rss-MB"] {
		t.Errorf("base: peak heap %.1f MiB, RSS %.1f MiB: want little heap and a smaller RSS than ours (%.1f MiB)",
			m["base-peak-heap-MB"], m["base-peak-rss-MB"], m["ours-peak-rss-MB"])
	}
}

// Each side reports its CPU time and the steal while it ran: ours spins
// for 200 ms, the baseline sleeps as long.
func TestPairCPU(t *testing.T) {
	p := &Pair{
		Ours: Side{Run: func(*testing.B) {
			for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
			}
		}},
		Base: Side{Run: func(*testing.B) { time.Sleep(200 * time.Millisecond) }},
	}
	var log []string
	r := &recorder{log: &log, metrics: map[string]float64{}}
	p.run(nil, r, 1)
	m := r.metrics
	if m["ours-cpu-s"] < 0.1 || m["ours-cpu-s"] > 0.3 || m["base-cpu-s"] > 0.05 {
		t.Errorf("CPU: ours %.3f s, base %.3f s: want ours near 0.2 s (less what steal took) and the baseline near 0", m["ours-cpu-s"], m["base-cpu-s"])
	}
	if m["cpu-ratio"] != m["ours-cpu-s"]/m["base-cpu-s"] {
		t.Errorf("cpu-ratio %v, want ours-cpu-s ÷ base-cpu-s", m["cpu-ratio"])
	}
	for _, unit := range []string{"ours-steal-pct", "base-steal-pct"} {
		if v, ok := m[unit]; !ok || v < 0 || v > 100 {
			t.Errorf("%s: %v (reported: %v), want 0 to 100", unit, v, ok)
		}
	}
}
