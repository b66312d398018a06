package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtureLatency is testdata's latency step with every step-to-step hop
// multiplied by f (the steps' own durations kept).
func fixtureLatency(t *testing.T, f float64) *Latency {
	t.Helper()
	var lat Latency
	if err := readJSON(filepath.Join("testdata", fileLatency), &lat); err != nil {
		t.Fatal(err)
	}
	for _, p := range lat.Pipelines {
		for _, run := range p.Runs {
			prevEnd := run.Steps[0].EndedAt // as read, before any shift
			for i := 1; i < len(run.Steps); i++ {
				s := &run.Steps[i]
				hop, work := s.StartedAt.Sub(prevEnd), s.EndedAt.Sub(s.StartedAt)
				prevEnd = s.EndedAt
				s.StartedAt = run.Steps[i-1].EndedAt.Add(time.Duration(float64(hop) * f))
				s.EndedAt = s.StartedAt.Add(work)
			}
		}
	}
	return &lat
}

func TestAgainstReport(t *testing.T) {
	base := fixtureLatency(t, 1)
	a := &Against{Base: "f58d9bb", Ours: "abc1234", Started: time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 12, 2, 18, 20, 0, 0, time.UTC)}
	// Ours: hops half as long in every pair; pmgen 0.9×, 0.75×, 1.2× of the
	// earlier commit's, against baselines of 2 s.
	for _, pm := range [][2]float64{{4e9, 3.6e9}, {4e9, 3e9}, {5e9, 6e9}} {
		a.Pairs = append(a.Pairs, AgainstPair{
			Base: AgainstSide{Latency: base, PMGen: pm[0], PMGenBaseline: 2e9},
			Ours: AgainstSide{Latency: fixtureLatency(t, 0.5), PMGen: pm[1], PMGenBaseline: 2e9},
		})
	}
	rep := newAgainstReport(a)
	if got := rep.HopRatio.String(); got != "0.50× (0.50–0.50×)" {
		t.Errorf("hop ratio = %s", got)
	}
	if got := rep.PMGenRatio.String(); got != "0.90× (0.75–1.20×)" {
		t.Errorf("pmgen ratio = %s", got)
	}
	if got := rep.PMGenVsBaselineOurs.String(); got != "1.80× (1.50–3.00×)" {
		t.Errorf("ours vs its baseline = %s", got)
	}
	if rep.HopsBase.N != 3*rep.Pairs[0].HopBase.N || rep.HopsOurs.Median*2 != rep.HopsBase.Median {
		t.Errorf("pooled hops: base %+v, ours %+v", rep.HopsBase, rep.HopsOurs)
	}
	if len(rep.Totals) != len(base.Pipelines) || rep.Totals[0].Base.N != 3*len(base.Pipelines[0].Runs) {
		t.Errorf("totals = %+v", rep.Totals)
	}

	in := readInputs("testdata")
	in.Against = a
	b, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"## Against an earlier commit: `f58d9bb` → `abc1234`",
		"in 3 interleaved pairs",
		"| **0.50× (0.50–0.50×)** (the pair's median hop) |",
		"| pmgen `Generate100k` | 4.00 s · 4.00 s · 5.00 s | 3.60 s · 3.00 s · 6.00 s | **0.90× (0.75–1.20×)** |",
		"| 3 | " + dur(rep.Pairs[2].HopBase.Median) + " | " + dur(rep.Pairs[2].HopOurs.Median) + " | 5.00 s | 6.00 s | 2.50× | 3.00× |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(doc, "<no value>") || strings.Contains(doc, "%!") {
		t.Error("report has a template or format error")
	}
}

// No against run: no section and nothing missing. An unreadable one is
// listed as missing, never shown.
func TestAgainstInput(t *testing.T) {
	dir := t.TempDir()
	in := readInputs(dir)
	if in.Against != nil || strings.Contains(strings.Join(in.Missing, " "), fileAgainst) {
		t.Fatalf("against = %v, missing = %v", in.Against, in.Missing)
	}
	if b, _ := Render(in); strings.Contains(string(b), "Against an earlier commit") {
		t.Error("section rendered without an against run")
	}
	if err := os.WriteFile(filepath.Join(dir, fileAgainst), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	in = readInputs(dir)
	if in.Against != nil || !strings.Contains(strings.Join(in.Missing, " "), fileAgainst) {
		t.Fatalf("against = %v, missing = %v", in.Against, in.Missing)
	}
}

// An against run on a machine without a full run's outputs writes its
// report beside the raw outputs, not over docs/benchmarks.md.
func TestAgainstOut(t *testing.T) {
	full := readInputs("testdata")
	empty := readInputs(t.TempDir())
	for _, c := range []struct {
		o    options
		in   *Inputs
		want string
	}{
		{options{against: "f58d9bb", out: "docs/benchmarks.md"}, empty, filepath.Join("L", "benchmarks-against.md")},
		{options{against: "f58d9bb", out: "docs/benchmarks.md"}, full, ""},
		{options{against: "f58d9bb", out: "-"}, empty, ""},
		{options{measure: true, out: "docs/benchmarks.md"}, empty, ""},
	} {
		if got := againstOut(c.o, c.in, "L"); got != c.want {
			t.Errorf("againstOut(%+v, %d missing) = %q, want %q", c.o, len(c.in.Missing), got, c.want)
		}
	}
}

// Each side's pmgen figures come from its own benchmark: the paired one
// since issue 18, the two stand-alone ones of an earlier commit.
func TestReadPMGen(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, out  string
		ours, base float64
	}{
		{"paired", "BenchmarkGenerate100k/generate_vs_insert_select-2 1 4.12 base-s 1.000 ours-first 5.01 ours-s 1.216 ratio\n", 5.01e9, 4.12e9},
		{"earlier", "BenchmarkGenerate100k-2 1 6145654700 ns/op 16353 plans/s\nBenchmarkBaselineInsertSelect100k-2 1 3873161066 ns/op 26075 plans/s\n", 6145654700, 3873161066},
	} {
		name := filepath.Join(dir, c.name+".txt")
		if err := os.WriteFile(name, []byte(c.out), 0o644); err != nil {
			t.Fatal(err)
		}
		var s AgainstSide
		if err := s.readPMGen(name); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.PMGen != c.ours || s.PMGenBaseline != c.base {
			t.Errorf("%s: pmgen %v, baseline %v; want %v, %v", c.name, s.PMGen, s.PMGenBaseline, c.ours, c.base)
		}
	}
	name := filepath.Join(dir, "none.txt")
	if err := os.WriteFile(name, []byte("FAIL\tgithub.com/cmmsflow/cmmsflow/services/pmgen/internal/generate [build failed]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var s AgainstSide
	if err := s.readPMGen(name); err == nil {
		t.Error("an output without pmgen figures read without error")
	}
}
