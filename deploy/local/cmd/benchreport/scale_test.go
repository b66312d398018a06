package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// The log-log slope: 1 when time grows as the size, 2 as its square, 0 when
// flat, below 0 when it falls; NaN without two positive points at two
// sizes.
func TestSlope(t *testing.T) {
	for _, c := range []struct {
		n1, t1, n2, t2, want float64
	}{
		{1e6, 2, 1e7, 20, 1},
		{1e6, 2, 1e7, 200, 2},
		{1e6, 3, 1e7, 3, 0},
		{1e5, 4, 1e6, 2, -math.Log10(2)},
		{1e6, 2, 3e6, 2 * math.Pow(3, 1.1), 1.1},
		{1e6, 1.5, 1e7, 16.8, math.Log10(16.8 / 1.5)},
	} {
		if got := slope(c.n1, c.t1, c.n2, c.t2); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("slope(%g, %g, %g, %g) = %v, want %v", c.n1, c.t1, c.n2, c.t2, got, c.want)
		}
	}
	for _, c := range [][4]float64{{1e6, 2, 1e6, 3}, {1e6, 0, 1e7, 3}, {0, 1, 1e7, 3}, {1e6, 2, 1e7, nan}} {
		if got := slope(c[0], c[1], c[2], c[3]); !math.IsNaN(got) {
			t.Errorf("slope(%v) = %v, want NaN", c, got)
		}
	}
}

// pairLine is one pair of a scale benchmark as go test prints it, ours
// taking twice its time in CPU time (its work in parallel with the
// server's), the baseline as much as its time.
func pairLine(name string, ours, base, heap, rss float64) string {
	return fmt.Sprintf("BenchmarkScale/%s-2 \t 1\t %g base-peak-heap-MB\t 40 base-peak-rss-MB\t %g base-s\t 1 ours-first\t %g ours-peak-heap-MB\t %g ours-peak-rss-MB\t %g ours-s\t %g ratio\t %g ours-cpu-s\t %g base-cpu-s\t %g cpu-ratio\n",
		name, heap/10, base, heap, rss, ours, ours/base, 2*ours, base, 2*ours/base)
}

// scaleRows: each stage's points in increasing size whatever the order of
// the output, its time the median over the pairs and its memory the
// largest; the slope between the lowest and the top point, the middle one
// left out; a stage with one point has no slope; benchmarks of no stage
// are ignored.
func TestScaleRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("pkg: github.com/cmmsflow/cmmsflow/services/extractor/internal/extract\n")
	for _, p := range []struct {
		n          int
		ours, base []float64
	}{
		{10_000_000, []float64{21, 20, 22}, []float64{10, 10.5, 9.5}},
		{1_000_000, []float64{2, 2.2, 1.9}, []float64{1, 1.1, 0.9}},
		{3_000_000, []float64{99, 99, 99}, []float64{1, 1, 1}},
	} {
		for i := range p.ours {
			b.WriteString(pairLine(fmt.Sprintf("work_orders=%d/work_orders_vs_copy_csv", p.n), p.ours[i], p.base[i], float64(50+i), float64(100+i)))
		}
	}
	b.WriteString("pkg: github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate\n")
	b.WriteString(pairLine("due_plans=100000/generate_vs_insert_select", 9, 7, 300, 400))
	b.WriteString(pairLine("work_orders=100000/generate_vs_insert_select", 9, 7, 300, 400)) // not pmgen's key
	b.WriteString(pairLine("work_orders=100000/something_else", 9, 7, 300, 400))
	g, err := ParseGoBench(strings.NewReader(b.String()), "scale")
	if err != nil {
		t.Fatal(err)
	}
	rows := scaleRows(g)
	if len(rows) != len(scaleStages) {
		t.Fatalf("%d rows, want one per stage", len(rows))
	}
	ex := rows[0]
	if ex.Name != "extractor" || len(ex.Points) != 3 || ex.Points[0].Size != 1_000_000 || ex.Points[2].Size != 10_000_000 {
		t.Fatalf("extractor: %+v", ex.Points)
	}
	lo, top := ex.Points[0], ex.Points[2]
	if lo.Pairs.Ours.Median != 2 || top.Pairs.Base.Median != 10 || lo.PeakHeap != 52 || top.PeakRSS != 102 || lo.Assets != 10_000 {
		t.Errorf("extractor's points: %+v, %+v", lo, top)
	}
	if want := math.Log10(21.0 / 2); math.Abs(ex.Slope-want) > 1e-12 || math.Abs(ex.BaseSlope-1) > 1e-12 {
		t.Errorf("extractor's slopes %v and %v, want %v and 1", ex.Slope, ex.BaseSlope, want)
	}
	if want := math.Log10(42.0 / 4); math.Abs(ex.CPUSlope-want) > 1e-12 || math.Abs(ex.BaseCPUSlope-1) > 1e-12 || top.Pairs.CPURatio.Median != 4.2 {
		t.Errorf("extractor's CPU: slopes %v and %v, want %v and 1; top CPU ratio %v, want 4.2", ex.CPUSlope, ex.BaseCPUSlope, want, top.Pairs.CPURatio.Median)
	}
	if ex.Met() != "met" || ex.Range() != "1,000,000 → 10,000,000" || ex.SizeLabel() != "work orders" {
		t.Errorf("extractor: %q, %q, %q", ex.Met(), ex.Range(), ex.SizeLabel())
	}
	pm := rows[len(rows)-1]
	if pm.Name != "pmgen" || len(pm.Points) != 1 || pm.Points[0].Assets != 100_000 || !math.IsNaN(pm.Slope) || pm.Met() != dash {
		t.Errorf("pmgen: %+v, slope %v, %q", pm.Points, pm.Slope, pm.Met())
	}
	if pm.Range() != "100,000" || pm.SizeLabel() != "due plans" {
		t.Errorf("pmgen: %q %q", pm.Range(), pm.SizeLabel())
	}
	for _, r := range rows[1 : len(rows)-1] {
		if len(r.Points) != 0 || r.Met() != dash || r.Range() != dash {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	// Steeper than the goal is missed.
	steep := scaleRow{Slope: 1.25}
	if steep.Met() != "**missed**" {
		t.Errorf("slope 1.25: %q", steep.Met())
	}
	if rows := scaleRows(nil); len(rows) != len(scaleStages) || len(rows[0].Points) != 0 {
		t.Errorf("no output: %+v", rows)
	}
}

// testdata/bench-scale.txt is a real output of the scale step: its header,
// its 1M point and its footer from `benchreport -run -steps scale
// -scale-points 1M` (-count 5) on 2026-12-03, the machine's 2 cores shared
// (load average about 5), and before the 1M point a reduced one run just
// after with go test alone, as the step runs each point (300,000 work
// orders of 3,000 assets, 30,000 due plans, -count 3).
func TestScaleFixture(t *testing.T) {
	in := readInputs("testdata")
	if in.Scale == nil {
		t.Fatalf("no scale output: %v", in.Missing)
	}
	rows := scaleRows(in.Scale)
	for _, r := range rows {
		if len(r.Points) != 2 || len(r.Points[0].Pairs.Pairs) != 3 || len(r.Points[1].Pairs.Pairs) != 5 {
			t.Fatalf("%s: %d points: %+v", r.Name, len(r.Points), r.Points)
		}
		if math.IsNaN(r.Slope) || math.IsNaN(r.BaseSlope) || math.IsNaN(r.Points[1].PeakHeap) || math.IsNaN(r.Points[1].PeakRSS) {
			t.Errorf("%s: a figure is missing: %+v", r.Name, r)
		}
	}
	// extractor: the medians of its pairs (3, then 5) at each point
	if ex := rows[0]; math.Abs(ex.Slope-math.Log(3.627/1.121)/math.Log(1e6/3e5)) > 1e-9 {
		t.Errorf("extractor's slope %v", ex.Slope)
	}
	b, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"- measured: started 2026-12-03 07:51 UTC at commit `584f125+dirty`, `-count 5`, load average 4.93 5.22 7.11 at the start",
		"| extractor | work orders 300,000 → 1,000,000 | **0.98** | 0.97 | met |",
		"| pmgen | due plans 30,000 → 100,000 | **1.02** | 0.92 | met |",
		"| 1,000,000 | 10,000 | **3.63 s (3.23 s–4.19 s)** | 62.6 MiB | 114 MiB | 2.89 s (2.57 s–3.32 s) | 1.41× (1.03–1.56×) |",
		"| 100,000 | 100,000 | **7.52 s (6.93 s–8.32 s)** | 325 MiB | 479 MiB | 5.77 s (5.24 s–6.05 s) | 1.32× (1.28–1.44×) |",
		"Slope: **1.02**, its baseline's 0.92: met.",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Without the file, the section says so.
	in.Scale = nil
	if b, err = Render(in); err != nil || !strings.Contains(string(b), "Not measured: `.local/bench-scale.txt` is missing.") {
		t.Errorf("without the scale output: %v", err)
	}
}
