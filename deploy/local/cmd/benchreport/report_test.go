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
// (-count 1 -wrk-duration 5s -latency-runs 2) on the project's machine.

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
		{"Generate100k", "ns/op", 6145654700},
		{"Generate100k", "plans/s", 16353},
		{"BaselineInsertSelect100k", "ns/op", 3873161066},
		{"Seed5000", "ns/op", 1579877956},
		// Custom metrics keep the unit the benchmark printed (benchfmt
		// would tidy "…-MB" into bytes).
		{"Extract/work_orders=200000", "peak-heap-MB", 47.71},
		{"Extract1M/copy-csv-baseline", "csv-MB", 126.7},
		{"Extract1M/copy-csv-baseline", "rows/s", 863794},
		{"Features", "training-rows", 1072783},
		{"Train/logistic", "auc", 0.6799},
		{"Report1M/sql_only", "ns/op", 526246055},
	} {
		got := g.Values(c.name, c.unit)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s %s = %v, want [%v]", c.name, c.unit, got, c.want)
		}
	}
	if got := g.Pkg["Report1M/report"]; got != "github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter" {
		t.Errorf("pkg of Report1M/report = %q", got)
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
	var rows []string
	for _, line := range strings.Split(rest, "\n")[3:] {
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
	if len(rows) != 15 {
		t.Fatalf("%d summary rows, want 15:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	// With every raw output present, every "ours" and every baseline that
	// exists has its number: no figure is left out.
	for _, row := range rows {
		cells := strings.Split(row, " | ")
		if strings.HasPrefix(cells[1], "—") || strings.Contains(cells[1], "**—") {
			t.Errorf("summary row without its figure: %s", row)
		}
	}
	for _, want := range []string{
		// issue 3: median, rate and ratio from bench.txt
		"| pmgen: 100,000 due plans → work orders (issue 3) | **6.15 s** (16,400 plans/s) | **3.87 s** (26,100 plans/s), one `INSERT … SELECT … ON CONFLICT`; ours = 1.59× | < 10 s, ≤ 2× baseline | met |",
		"| **1.56 s** (640,000 rows/s) | **1.16 s** (864,000 rows/s)",
		// issue 14: the medians of the interleaved pair
		"| `import --upsert` | 30.8 s · 29.9 s · 30.3 s | **30.3 s** (33,000 rows/s) |",
		"10% changed, into a copy holding them (issue 14) | **30.3 s** (33,000 rows/s) | **27.0 s** (37,000 rows/s), the plain import (COPY) of the same file into a copy without them, interleaved; ours = 1.12× |",
		"peak heap 47.7 MiB at 200k → **46.5 MiB** at 1M | — | flat (streaming) | met |",
		"**AUC 0.6799**, fit 45.0 ms (best of 1) | AUC 0.6799, fit 94.8 ms |",
		"| **0.65 s** | **0.53 s**, the KPI SQL alone; ours = 1.23× | < 5 s, mostly PostgreSQL | met |",
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
		"| end to end per pipeline: trigger → last step finished | — (not measured in this run) |",
		"- .local/bench-latency.json (",
		"| not measured: no python3 here | AUC within 0.02 of the better sklearn model | — |",
		"| scikit-learn `LogisticRegression` | — | — | — |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
