package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/ holds real outputs of one reduced `make bench` run
// (-count 1 -wrk-duration 5s -latency-runs 2) on the project's machine,
// 2026-11-27, except for the paired benchmarks (libs/benchpair): their lines
// in bench.txt, with the go step's header and footer, come from a run of
// those alone on 2026-12-03 (-count 5, the import at 100,000 work orders
// with BENCH_UPSERT_WORK_ORDERS, now BENCH_WORK_ORDERS, the machine's 2
// cores shared with other work: load average 9–10), and bench-previous.txt is the run before it
// (-count 3, load average 8–13), as the go step kept it.

func TestParseGoBench(t *testing.T) {
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := ParseGoBench(f, f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"Seed5000", "ns/op", 1579877956},
		// Custom metrics keep the unit the benchmark printed (benchfmt
		// would tidy "…-MB" into bytes).
		{"Extract/work_orders=200000", "peak-heap-MB", 47.71},
		{"Extract1M/parquet", "wo-MB", 34.48},
		{"Features", "training-rows", 1072783},
		{"Train/logistic", "auc", 0.6799},
	} {
		got := g.Values(c.name, c.unit)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s %s = %v, want [%v]", c.name, c.unit, got, c.want)
		}
	}
	// The paired benchmarks: five pairs each, with each side's figures.
	for _, c := range comparisons {
		if n := len(g.Pairs(c.Name)); n != 5 {
			t.Errorf("%s: %d pairs, want 5", c.Name, n)
		}
	}
	if got := g.Pairs("Generate100k/generate_vs_insert_select")[4]; got != (PairSample{Ours: 9.582, Base: 9.833, Ratio: 0.9745, OursFirst: true}) {
		t.Errorf("pmgen's fifth pair = %+v", got)
	}
	if got := g.Values("Extract1M/work_orders_vs_copy_csv", "csv-MB"); len(got) != 5 || got[0] != 126.7 {
		t.Errorf("csv-MB = %v", got)
	}
	if got := g.Pkg["Report1M/report_vs_sql_only"]; got != "github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter" {
		t.Errorf("pkg of Report1M/report_vs_sql_only = %q", got)
	}
	if g.Header["count"] != "5" || g.Header["started"] != "2026-12-03T07:13:20Z" {
		t.Errorf("header = %v", g.Header)
	}
	if g.CPU != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpu = %q", g.CPU)
	}
	if len(g.Learners) != 2 || g.Learners[1].Learner != "go-logistic" || g.Learners[1].RowsTrain != 42754 ||
		math.Abs(g.Learners[1].ROCAUC-0.6799436534361777) > 1e-12 {
		t.Errorf("learners = %+v", g.Learners)
	}
	if len(g.Failed) != 0 {
		t.Errorf("failed = %v", g.Failed)
	}
}

func TestParseGoBenchFailures(t *testing.T) {
	in := "goos: linux\npkg: example.com/p\nBenchmarkX-2 \t 1\t 100 ns/op\nFAIL\texample.com/q [build failed]\n"
	g, err := ParseGoBench(strings.NewReader(in), "in")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Failed) != 1 || !strings.Contains(g.Failed[0], "build failed") {
		t.Fatalf("failed = %v", g.Failed)
	}
	if _, err := ParseGoBench(strings.NewReader("BenchmarkY-2 1 x ns/op\n"), "bad"); err == nil {
		t.Fatal("a malformed benchmark line parsed without error")
	}
}

func TestParseAPI(t *testing.T) {
	f, err := os.Open("testdata/bench-api.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := ParseAPI(f)
	if err != nil {
		t.Fatal(err)
	}
	get, ok := a.Results["get_runs"]
	if !ok || get.ReqPerSec <= 0 || get.P99 <= 0 || get.Requests <= 0 || get.CPUCores <= 0 {
		t.Fatalf("get_runs = %+v (%v)", get, ok)
	}
	if _, ok := a.Results["trigger"]; !ok {
		t.Fatal("no trigger result")
	}
	if a.Remote != "none" || a.LoadBefore == "" {
		t.Errorf("summary lines: remote %q, load %q", a.Remote, a.LoadBefore)
	}
	if _, err := parseResultLine("RESULT x req/s=abc"); err == nil {
		t.Error("a malformed RESULT line parsed without error")
	}
}

func TestLatencyRun(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := LatencyRun{QueuedAt: at(0), EndedAt: at(1000), Steps: []StepTiming{
		{Step: "pmgen", StartedAt: at(100), EndedAt: at(600)},
		{Step: "notifier", StartedAt: at(650), EndedAt: at(1000)},
	}}
	if r.Total() != time.Second || r.FirstHop() != 100*time.Millisecond || r.Work() != 850*time.Millisecond {
		t.Fatalf("total %s, first hop %s, work %s", r.Total(), r.FirstHop(), r.Work())
	}
	if h := r.Hops(); len(h) != 1 || h[0] != 50*time.Millisecond {
		t.Fatalf("hops %v", h)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{num(28409), "28,400"},
		{num(863794), "864,000"},
		{num(47.71), "47.7"},
		{num(math.NaN()), "—"},
		{count(1072783), "1,072,783"},
		{secs(3514068901), "3.51 s"},
		{secs(44995457), "45.0 ms"},
		{secs(12.34e9), "12.3 s"},
		{times(6145654700, 3873161066), "1.59×"},
		{times(1, math.NaN()), "—"},
		{dur(1500 * time.Microsecond), "1.5 ms"},
		{dur(1234 * time.Millisecond), "1.23 s"},
		{verdict(true, 1, 2), "met"},
		{verdict(false, 1), "**missed**"},
		{verdict(true, math.NaN()), "—"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if q := quantile([]float64{1, 2, 3, 4, 5}, 0.95); math.Abs(q-4.8) > 1e-9 {
		t.Errorf("p95 = %v, want 4.8", q)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
}

// summary returns the rendered summary table's rows.
func summary(t *testing.T, doc string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "## Summary\n")
	if !ok {
		t.Fatal("no summary section")
	}
	_, table, ok := strings.Cut(rest, "\n| what |")
	if !ok {
		t.Fatal("no summary table")
	}
	var rows []string
	for _, line := range strings.Split(table, "\n")[2:] { // after the header's end and the separator
		if !strings.HasPrefix(line, "| ") {
			break
		}
		rows = append(rows, line)
	}
	return rows
}

func TestRenderFixture(t *testing.T) {
	in := readInputs("testdata")
	if len(in.Missing) != 0 {
		t.Fatalf("fixture incomplete: %v", in.Missing)
	}
	b, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows := summary(t, doc)
	if len(rows) != 18 {
		t.Fatalf("%d summary rows, want 18:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	// With every raw output present, every "ours" and every baseline that
	// exists has its number: no figure is left out. The paired comparisons
	// come first, each with its ratio.
	for i, row := range rows {
		cells := strings.Split(row, " | ")
		if strings.HasPrefix(cells[3], "—") || strings.Contains(cells[3], "**—") {
			t.Errorf("summary row without its figure: %s", row)
		}
		if paired := i < len(comparisons); paired != strings.HasSuffix(cells[1], ", 5 pairs") {
			t.Errorf("row %d (paired %v) has the ratio %q", i+1, paired, cells[1])
		}
	}
	for _, want := range []string{
		// issue 3: the median of the pairs' ratios (not the ratio of the
		// medians, 9.58 ÷ 7.45 = 1.29), its spread, each side's median time
		// and rate
		"| pmgen: 100,000 due plans → work orders (issue 3) | **1.26×** (0.97–1.49×), 5 pairs | — | **9.58 s** (10,400 plans/s) | **7.45 s** (13,400 plans/s), one `INSERT … SELECT … ON CONFLICT` | < 10 s, ≤ 2× baseline | met |",
		"| **6.56 s** (152,000 rows/s) | **4.08 s** (245,000 rows/s), `COPY (same query) TO STDOUT (FORMAT csv)` | — | — | `go test -run '^$' -bench '^BenchmarkExtract1M$/^work_orders_vs_copy_csv$' -benchtime 1x -count 1 ./services/extractor/internal/extract/` |",
		// each pair, in its order
		"| 2 | the baseline, then ours | 10.7 s | 7.19 s | 1.49× | — | — | — | — |",
		"| 1 | ours, then the baseline | 2.03 s | 3.31 s | 0.61× | — | — | — | — |",
		"| median (lowest–highest) | | **9.58 s (9.00 s–10.7 s)** | **7.45 s (7.14 s–9.83 s)** | **1.26× (0.97–1.49×)** | — | — | **—** | |",
		// with CPU times (libs/benchcpu): their ratio's median and spread,
		// and each pair's
		"| weekly KPI report over 1,000,000 work orders: SQL, charts, HTML, PDF, CSV (issue 5) | **1.08×** (0.94–1.17×), 5 pairs | 1.13× (0.94–1.25×) | **1.36 s** | **1.22 s**, the KPI SQL alone | < 5 s, mostly PostgreSQL | met |",
		"| 2 | the baseline, then ours | 1.42 s | 1.22 s | 1.17× | 1.39 s | 1.22 s | 1.14× | 0% / 0% |",
		"| median (lowest–highest) | | **1.36 s (1.11 s–1.42 s)** | **1.22 s (1.15 s–1.45 s)** | **1.08× (0.94–1.17×)** | 1.37 s (1.08 s–1.42 s) | 1.18 s (1.09 s–1.45 s) | **1.13× (0.94–1.25×)** | |",
		"| deployer: the monitoring step over 100,000 assets (issue 17) | **12.79×** (11.99–20.57×), 5 pairs | — | **3.53 s** | **0.24 s**, a COPY of 100,000 scores into a table shaped as `model_scores` (the mean of 5) | < 2 s | **missed** |",
		// the previous run beside this one
		"- run 1 (the previous): started 2026-12-03 07:04 UTC at commit `4a6f435+dirty`, `-count 3`, load average 12.71 11.21 8.68 at the start, 7.87 9.22 8.79 at the end",
		"| pmgen: 100,000 due plans → work orders (issue 3) | 1.16× (0.60–1.93×) | 1.26× (0.97–1.49×) | +8.6% | within ±15% |",
		"| deployer: the monitoring step over 100,000 assets (issue 17) | 8.32× (6.94–15.89×) | 12.79× (11.99–20.57×) | +53.8% | **beyond ±15%** |",
		"| weekly KPI report over 1,000,000 work orders: SQL, charts, HTML, PDF, CSV (issue 5) | 1.21× (0.64–1.22×) | 1.08× (0.94–1.17×) | −10.0% | within ±15% | — | 1.13× (0.94–1.25×) | — | — |",
		"**3 of the 7 wall-time ratios both runs have are within ±15%; the previous run has no CPU times (an output from before `libs/benchcpu`).**",
		"peak heap 47.7 MiB at 200k → **46.5 MiB** at 1M | — | flat (streaming) | met |",
		"**AUC 0.6799**, fit 45.0 ms (best of 1) | AUC 0.6799, fit 94.8 ms |",
		"| Go boosted trees (`MODEL_KIND=gbt`) | 0.6735 | 0.5617 | 0.41 s (1) |",
		"42,754 training rows, 13,836 holdout rows",
		"| CPU | " + in.Info.Machine.CPU + ", ",
		"end to end, `preventive_maintenance` (pmgen → notifier)",
		"end to end, `etl_ml_training` (extractor → featurejob → trainer → deployer → notifier)",
		"| `weekly_kpi_report` | reporter → notifier |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(doc, "<no value>") || strings.Contains(doc, "%!") {
		t.Error("report has a template or format error")
	}
}

// A raw output that is missing shows as "—" and is listed, never as a
// number.
func TestRenderMissing(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{fileRun, fileGo, fileSklearn, fileAPI, fileBaseline} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, fileSklearn), []byte("unavailable: no python3 here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := readInputs(dir)
	b, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"| end to end per pipeline: trigger → last step finished | — | — | — (not measured in this run) |",
		"there is no previous run in `.local/` (the first `make bench` there)",
		"| pmgen: 100,000 due plans → work orders (issue 3) | — | 1.26× (0.97–1.49×) | — | — |",
		"- .local/bench-latency.json (",
		"| not measured: no python3 here | AUC within 0.02 of the better sklearn model | — |",
		"| scikit-learn `LogisticRegression` | — | — | — |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// A run that made only some steps says so at the top, rather than that
// every figure comes from it; a whole run says every figure does.
func TestRenderPartialRun(t *testing.T) {
	in := readInputs("testdata")
	in.Info.Settings.Steps = allSteps
	whole, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Info.Settings.Steps = []string{"scale"}
	part, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		doc     []byte
		want    string
		wantNot string
	}{
		{whole, "Every figure below comes from one `make bench` run started", "The last run, which made only some"},
		{part, "each section says which run measured\nit. The last run, which made only some of the steps (below), started", "Every figure below comes from one"},
		{part, "**This run skipped the steps `go`, `sklearn`, `api`, `baseline`, `latency`**", ""},
	} {
		if !strings.Contains(string(c.doc), c.want) {
			t.Errorf("report lacks %q", c.want)
		}
		if c.wantNot != "" && strings.Contains(string(c.doc), c.wantNot) {
			t.Errorf("report has %q", c.wantNot)
		}
	}
}
