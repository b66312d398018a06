package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pairedOutput is go test's output of two paired benchmarks (libs/benchpair)
// as the go step writes it, its header and footer around it: real lines of
// a run on the project's machine (2 cores, shared), -count 2.
const pairedOutput = `started: 2026-12-03T09:12:40Z
commit: 4a6f435+dirty
load-start: 10.41 9.18 7.00
count: 2
goos: linux
goarch: amd64
pkg: github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer
cpu: Intel(R) Xeon(R) Processor
BenchmarkSteps/etl_vs_copy-2         	       1	         0.2866 base-s	         1.000 ours-first	         2.793 ours-s	         9.746 ratio
BenchmarkSteps/etl_vs_copy-2         	       1	         0.2742 base-s	         0 ours-first	         2.436 ours-s	         8.884 ratio
BenchmarkSteps/monitor_vs_copy-2     	       1	         0.1788 base-s	         1.000 ours-first	         2.007 ours-s	        11.22 ratio
BenchmarkSteps/monitor_vs_copy-2     	       1	         0.2246 base-s	         0 ours-first	         2.337 ours-s	        10.41 ratio
PASS
ok  	github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer	17.221s
goos: linux
goarch: amd64
pkg: github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter
cpu: Intel(R) Xeon(R) Processor
BenchmarkReport1M/report_vs_sql_only-2         	       1	         3.144 base-s	         1.000 ours-first	         3.248 ours-s	         1.033 ratio
BenchmarkReport1M/report_vs_sql_only-2         	       1	         2.837 base-s	         0 ours-first	         2.790 ours-s	         0.9832 ratio
PASS
ok  	github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter	79.600s
finished: 2026-12-03T09:15:02Z
load-end: 9.95 9.40 7.71
`

func parsePaired(t *testing.T, out string) *GoBench {
	t.Helper()
	g, err := ParseGoBench(strings.NewReader(out), "paired")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParsePairs(t *testing.T) {
	g := parsePaired(t, pairedOutput)
	got := g.Pairs("Steps/monitor_vs_copy")
	want := []PairSample{{Ours: 2.007, Base: 0.1788, Ratio: 11.22, OursFirst: true}, {Ours: 2.337, Base: 0.2246, Ratio: 10.41}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("pairs = %+v, want %+v", got, want)
	}
	if n := len(g.Pairs("Report1M/report_vs_sql_only")); n != 2 {
		t.Errorf("%d report pairs, want 2", n)
	}
	if g.Pairs("Generate100k/generate_vs_insert_select") != nil || (*GoBench)(nil).Pairs("x") != nil {
		t.Error("pairs of a benchmark not run")
	}
	for k, v := range map[string]string{"started": "2026-12-03T09:12:40Z", "commit": "4a6f435+dirty", "count": "2",
		"load-start": "10.41 9.18 7.00", "finished": "2026-12-03T09:15:02Z", "load-end": "9.95 9.40 7.71"} {
		if g.Header[k] != v {
			t.Errorf("header %s = %q, want %q", k, g.Header[k], v)
		}
	}
	// The header's lines are no benchmarks and no failures.
	if len(g.Results) != 3 || len(g.Failed) != 0 {
		t.Errorf("results %v, failed %v", g.Results, g.Failed)
	}
	if got := runLine(g); got != "started 2026-12-03 09:12 UTC at commit `4a6f435+dirty`, `-count 2`, load average 10.41 9.18 7.00 at the start, 9.95 9.40 7.71 at the end" {
		t.Errorf("run line = %q", got)
	}
	if got := runLine(parsePaired(t, "BenchmarkX-2 1 1.0 ratio\n")); !strings.Contains(got, "no record") {
		t.Errorf("run line without a header = %q", got)
	}
	// A pair without its ratio (not printed by benchpair, but possible in
	// hand-made output) gets ours ÷ base.
	if ps := parsePaired(t, "BenchmarkX/a_vs_b-2 1 3 ours-s 2 base-s\n").Pairs("X/a_vs_b"); len(ps) != 1 || ps[0].Ratio != 1.5 {
		t.Errorf("pairs without a ratio = %+v", ps)
	}
}

func TestPairStats(t *testing.T) {
	// Five pairs: the median ratio is the middle pair's, not the ratio of
	// the medians (3.0 ÷ 2.0 = 1.5 here).
	ps := []PairSample{
		{Ours: 3.0, Base: 2.5, Ratio: 1.2}, {Ours: 2.6, Base: 2.0, Ratio: 1.3}, {Ours: 3.3, Base: 2.2, Ratio: 1.5},
		{Ours: 3.2, Base: 1.6, Ratio: 2.0}, {Ours: 2.8, Base: 1.75, Ratio: 1.6},
	}
	s := statsOf(ps)
	if !s.Valid() || s.Ratio.Median != 1.5 || s.Ratio.Min != 1.2 || s.Ratio.Max != 2.0 {
		t.Fatalf("ratio %+v", s.Ratio)
	}
	if s.Ours.Median != 3.0 || s.Base.Median != 2.0 || s.Base.Min != 1.6 || s.Base.Max != 2.5 {
		t.Errorf("ours %+v, base %+v", s.Ours, s.Base)
	}
	if got := s.Ratio.String(); got != "1.50× (1.20–2.00×)" {
		t.Errorf("ratio = %q", got)
	}
	if got := s.Ours.Secs(); got != "3.00 s (2.60 s–3.30 s)" {
		t.Errorf("ours = %q", got)
	}
	// An even number of pairs: the mean of the middle two.
	if got := statsOf(ps[:4]).Ratio.Median; math.Abs(got-1.4) > 1e-12 {
		t.Errorf("median of 4 = %v, want 1.4", got)
	}
	none := statsOf(nil)
	if none.Valid() || none.Ratio.String() != dash || none.Ours.Secs() != dash || !math.IsNaN(none.Ratio.Median) {
		t.Errorf("no pairs: %+v", none)
	}
}

func TestReproducibility(t *testing.T) {
	row := func(prev, this float64) pairRow {
		var p pairRow
		if !math.IsNaN(prev) {
			p.Previous = statsOf([]PairSample{{Ours: prev, Base: 1, Ratio: prev}})
		}
		if !math.IsNaN(this) {
			p.This = statsOf([]PairSample{{Ours: this, Base: 1, Ratio: this}})
		}
		return p
	}
	for _, c := range []struct {
		prev, this      float64
		change, verdict string
	}{
		{1.24, 1.24, "+0.0%", "within ±15%"},
		{1.20, 1.38, "+15.0%", "within ±15%"}, // the bound is in
		{2.00, 1.70, "−15.0%", "within ±15%"},
		{1.24, 2.29, "+84.7%", "**beyond ±15%**"}, // issue 18's pmgen: the doc against a second machine
		{1.66, 1.16, "−30.1%", "**beyond ±15%**"},
		{nan, 1.3, "—", "—"}, // no previous run
		{1.3, nan, "—", "—"}, // not measured in this run
	} {
		p := row(c.prev, c.this)
		if got := percent(p.Change()); got != c.change {
			t.Errorf("%v → %v: change %s, want %s", c.prev, c.this, got, c.change)
		}
		if got := p.Reproduced(); got != c.verdict {
			t.Errorf("%v → %v: %s, want %s", c.prev, c.this, got, c.verdict)
		}
	}
	s := reproOf([]pairRow{row(1.24, 1.3), row(1.24, 2.29), row(nan, 1), row(1.0, 0.9)})
	if s != (reproSummary{Both: 3, Within: 2}) {
		t.Errorf("summary %+v, want 2 of 3", s)
	}
}

// Every comparison is a sub-benchmark named ours_vs_baseline, so that one
// pattern selects them all and nothing else.
func TestPairsPattern(t *testing.T) {
	for _, c := range comparisons {
		parent, sub, ok := strings.Cut(c.Name, "/")
		if !ok || !strings.Contains(sub, "_vs_") || strings.Contains(sub, "/") {
			t.Errorf("%s: want Parent/ours_vs_baseline", c.Name)
		}
		if !strings.Contains(pairsPattern(), "|"+parent+"|") && !strings.Contains(pairsPattern(), "("+parent+"|") &&
			!strings.Contains(pairsPattern(), "|"+parent+")") {
			t.Errorf("%s is not in %s", parent, pairsPattern())
		}
	}
	if got := pairsPattern(); got != "^Benchmark(Generate100k|ImportUpsert1M|Extract1M|Report1M|Steps|Monitor100k)/_vs_" {
		t.Errorf("pattern = %s", got)
	}
}

func TestBenchPattern(t *testing.T) {
	for name, want := range map[string]string{
		"Generate100k/generate_vs_insert_select": "^BenchmarkGenerate100k$/^generate_vs_insert_select$",
		"Seed5000":                               "^BenchmarkSeed5000$",
	} {
		if got := benchPattern(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// The go step's last output becomes the previous one when it has pairs;
// one without (a narrower -bench) leaves the previous in place.
func TestKeepPrevious(t *testing.T) {
	dir := t.TempDir()
	cur, prev := filepath.Join(dir, fileGo), filepath.Join(dir, filePrevious)
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			return "(" + err.Error() + ")"
		}
		return string(b)
	}
	if err := keepPrevious(cur, prev); err != nil { // the first run: nothing yet
		t.Fatal(err)
	}
	write(cur, pairedOutput)
	if err := keepPrevious(cur, prev); err != nil {
		t.Fatal(err)
	}
	if read(prev) != pairedOutput {
		t.Fatalf("previous = %q", read(prev))
	}
	if _, err := os.Stat(cur); !os.IsNotExist(err) {
		t.Errorf("the last output is still there (%v)", err)
	}
	write(cur, "BenchmarkSeed5000-2 1 1579877956 ns/op\n")
	if err := keepPrevious(cur, prev); err != nil {
		t.Fatal(err)
	}
	if read(prev) != pairedOutput {
		t.Errorf("an output without pairs replaced the previous: %q", read(prev))
	}
}

// Pairs with CPU times (libs/benchcpu): each side's CPU seconds and steal,
// their CPU-time ratio's spread, the pairs whose sides' steal was more than
// stealGap apart, and the CPU-time ratios' reproducibility beside the
// wall-time ones'.
func TestPairsCPU(t *testing.T) {
	g := parsePaired(t, `BenchmarkX/a_vs_b-2 1 1.3 base-s 1.2 base-cpu-s 30 base-steal-pct 2.0 ours-s 2.9 ours-cpu-s 2.5 ours-steal-pct 1.54 ratio 2.42 cpu-ratio 1 ours-first
BenchmarkX/a_vs_b-2 1 1.2 base-s 1.1 base-cpu-s 3 base-steal-pct 2.1 ours-s 3.0 ours-cpu-s 7.9 ours-steal-pct 1.75 ratio 2.73 cpu-ratio 0 ours-first
BenchmarkX/a_vs_b-2 1 1.0 base-s 2.0 ours-s 2.0 ratio 1 ours-first
`)
	ps := g.Pairs("X/a_vs_b")
	want := PairSample{Ours: 2.0, Base: 1.3, Ratio: 1.54, OursFirst: true,
		HasCPU: true, OursCPU: 2.9, BaseCPU: 1.2, CPURatio: 2.42, OursSteal: 2.5, BaseSteal: 30}
	if len(ps) != 3 || ps[0] != want || ps[2].HasCPU {
		t.Fatalf("pairs %+v, want the first %+v and the last without CPU", ps, want)
	}
	if !ps[0].Uneven() || ps[1].Uneven() || ps[2].Uneven() {
		t.Errorf("uneven: %v %v %v, want only the first (2.5%% beside 30%%)", ps[0].Uneven(), ps[1].Uneven(), ps[2].Uneven())
	}
	s := statsOf(ps)
	if s.Uneven != 1 || s.CPURatio.Median != (2.42+2.73)/2 || s.CPURatio.Min != 2.42 || s.OursCPU.Max != 3.0 || s.BaseCPU.Min != 1.1 {
		t.Errorf("stats %+v: want 1 uneven, the CPU spreads of the two pairs with CPU", s)
	}
	if got := statsOf(ps[2:]).CPURatio.String(); got != dash {
		t.Errorf("CPU ratio without CPU times: %q", got)
	}

	withCPU := func(wall, cpu float64) pairStats {
		return statsOf([]PairSample{{Ours: wall, Base: 1, Ratio: wall, HasCPU: true, OursCPU: cpu, BaseCPU: 1, CPURatio: cpu}})
	}
	rows := []pairRow{
		{Previous: withCPU(0.76, 2.0), This: withCPU(1.49, 2.1)}, // the extractor's wall time with steal; its CPU time steady
		{Previous: withCPU(1.2, 1.1), This: withCPU(1.25, 1.5)},
		{Previous: statsOf([]PairSample{{Ours: 1, Base: 1, Ratio: 1}}), This: withCPU(1, 1)}, // a previous run without CPU
	}
	if got := percent(rows[0].ChangeCPU()); got != "+5.0%" || rows[0].ReproducedCPU() != "within ±15%" || rows[0].Reproduced() != "**beyond ±15%**" {
		t.Errorf("CPU change %s (%s), wall %s", got, rows[0].ReproducedCPU(), rows[0].Reproduced())
	}
	if rows[2].ReproducedCPU() != dash {
		t.Errorf("without the previous run's CPU: %s", rows[2].ReproducedCPU())
	}
	if got := reproOf(rows); got != (reproSummary{Both: 3, Within: 2, BothCPU: 2, WithinCPU: 1}) {
		t.Errorf("summary %+v", got)
	}
}
