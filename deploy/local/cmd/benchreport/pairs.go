package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// A comparison is one paired benchmark (libs/benchpair): ours and its
// baseline run in interleaved pairs on the same fixture, each pair on a
// line of go test's output with each side's seconds and their ratio. The
// report gives the median of the per-pair ratios with their spread (the
// lowest and the highest pair), beside each side's median time, and the
// same ratios from the previous run (reproducibility).
type comparison struct {
	Name string // the paired sub-benchmark, as parsed: "Generate100k/generate_vs_insert_select"
	Pkg  string // its package, from the repository root
	What string // the summary's label
	Base string // what the baseline is, after its time in the summary
	Unit string // the sides' rate unit ("plans" for ours-plans/s); "" for none
	Goal string // "" for none
	// met says whether the run meets Goal; nil when there is none.
	met func(s pairStats) bool
}

// comparisons are the paired benchmarks, in the summary's order.
var comparisons = []comparison{
	{Name: "Generate100k/generate_vs_insert_select", Pkg: "services/pmgen/internal/generate",
		What: "pmgen: 100,000 due plans → work orders (issue 3)", Base: "one `INSERT … SELECT … ON CONFLICT`", Unit: "plans",
		Goal: "< 10 s, ≤ 2× baseline", met: func(s pairStats) bool { return s.Ours.Median < 10 && s.Ratio.Median <= 2 }},
	{Name: "ImportUpsert1M/upsert_vs_copy", Pkg: "libs/fleet",
		What: "`cmmsflow import --upsert`: 1,000,000 work orders, 10% changed, into a copy holding them (issue 14)",
		Base: "the plain import (COPY) of the same file into a copy without them", Unit: "rows"},
	{Name: "Extract1M/work_orders_vs_copy_csv", Pkg: "services/extractor/internal/extract",
		What: "extractor: 1,000,000 work orders → Parquet in the bucket (issue 4)",
		Base: "`COPY (same query) TO STDOUT (FORMAT csv)`", Unit: "rows"},
	{Name: "Report1M/report_vs_sql_only", Pkg: "services/reporter/internal/reporter",
		What: "weekly KPI report over 1,000,000 work orders: SQL, charts, HTML, PDF, CSV (issue 5)", Base: "the KPI SQL alone",
		Goal: "< 5 s, mostly PostgreSQL", met: func(s pairStats) bool { return s.Ours.Median < 5 && s.Ratio.Median <= 2 }},
	{Name: "Steps/monitor_vs_copy", Pkg: "services/deployer/internal/deployer",
		What: "deployer: the monitoring step over 100,000 assets (issue 17)",
		Base: "a COPY of 100,000 scores into a table shaped as `model_scores` (the mean of 5)",
		Goal: "< 2 s", met: func(s pairStats) bool { return s.Ours.Median < 2 }},
	{Name: "Steps/etl_vs_copy", Pkg: "services/deployer/internal/deployer",
		What: "deployer: the ETL step's scoring of 100,000 assets (issue 17)",
		Base: "the same COPY of 100,000 scores (the mean of 5)"},
	{Name: "Monitor100k/monitor_vs_sort", Pkg: "libs/monitor",
		What: "drift and realized performance over 100,000 assets: PSI of 15 features and the score, ROC AUC (`libs/monitor`, issue 17)",
		Base: "sorting the 100,000 scores once"},
}

// pairsPattern is the -bench pattern of every comparison and nothing else:
// their parents, and in them the sub-benchmarks named ours_vs_baseline.
// It has no "$", which make would expand in BENCH_FLAGS.
func pairsPattern() string {
	var parents []string
	for _, c := range comparisons {
		parent, _, _ := strings.Cut(c.Name, "/")
		if !slices.Contains(parents, parent) {
			parents = append(parents, parent)
		}
	}
	return "^Benchmark(" + strings.Join(parents, "|") + ")/_vs_"
}

// reproTolerance is how far a ratio may move from one run to the next:
// issue 18 asks that a second run reproduce every ratio within ±15%.
const reproTolerance = 0.15

// stealGap is how far apart, in points of %, the two sides' steal may be
// before the report flags the pair: the host took more of one side's CPUs
// than of the other's, and the pair's wall-time ratio moved with it.
const stealGap = 5.0

// PairSample is one pair of a paired benchmark.
type PairSample struct {
	Ours, Base float64 // seconds
	Ratio      float64 // ours ÷ base
	OursFirst  bool    // the order of this pair
	// HasCPU says the pair has each side's CPU time and steal
	// (libs/benchcpu): outputs from before them do not.
	HasCPU               bool
	OursCPU, BaseCPU     float64 // CPU seconds
	CPURatio             float64 // OursCPU ÷ BaseCPU
	OursSteal, BaseSteal float64 // % of the machine's CPU time
}

// Uneven says whether the sides' steal differed by more than stealGap.
func (p PairSample) Uneven() bool {
	return p.HasCPU && math.Abs(p.OursSteal-p.BaseSteal) > stealGap
}

// Pairs are the pairs of the paired benchmark name, one per result line.
func (g *GoBench) Pairs(name string) []PairSample {
	if g == nil {
		return nil
	}
	var out []PairSample
	for _, s := range g.Results[name] {
		ours, ok1 := s["ours-s"]
		base, ok2 := s["base-s"]
		if !ok1 || !ok2 {
			continue
		}
		ratio, ok := s["ratio"]
		if !ok {
			ratio = ours / base
		}
		p := PairSample{Ours: ours, Base: base, Ratio: ratio, OursFirst: s["ours-first"] >= 0.5}
		if cpu, ok := s["cpu-ratio"]; ok {
			p.HasCPU, p.CPURatio, p.OursCPU, p.BaseCPU = true, cpu, s["ours-cpu-s"], s["base-cpu-s"]
			p.OursSteal, p.BaseSteal = s["ours-steal-pct"], s["base-steal-pct"]
		}
		out = append(out, p)
	}
	return out
}

// hasPairs says whether g holds any paired result.
func (g *GoBench) hasPairs() bool {
	for _, samples := range g.Results {
		for _, s := range samples {
			if _, ok := s["ratio"]; ok {
				return true
			}
		}
	}
	return false
}

// pairStats are one comparison's pairs in one run.
type pairStats struct {
	Pairs []PairSample
	// Ratio is ours ÷ baseline over the pairs; Ours and Base are each
	// side's seconds. CPURatio is the same of CPU time, OursCPU and BaseCPU
	// each side's CPU seconds, over the pairs that have them.
	Ratio, Ours, Base          spread
	CPURatio, OursCPU, BaseCPU spread
	// Uneven counts the pairs whose sides' steal differed by more than
	// stealGap.
	Uneven int
}

// Valid says whether the run has the comparison.
func (s pairStats) Valid() bool { return len(s.Pairs) > 0 }

func statsOf(ps []PairSample) pairStats {
	st := pairStats{Pairs: ps}
	var r, o, b []float64
	for _, p := range ps {
		r, o, b = append(r, p.Ratio), append(o, p.Ours), append(b, p.Base)
	}
	st.Ratio, st.Ours, st.Base = spreadOf(r), spreadOf(o), spreadOf(b)
	var cr, oc, bc []float64
	for _, p := range ps {
		if p.HasCPU {
			cr, oc, bc = append(cr, p.CPURatio), append(oc, p.OursCPU), append(bc, p.BaseCPU)
		}
		if p.Uneven() {
			st.Uneven++
		}
	}
	st.CPURatio, st.OursCPU, st.BaseCPU = spreadOf(cr), spreadOf(oc), spreadOf(bc)
	return st
}

// spread is a figure over pairs: the median and the extremes.
type spread struct {
	Median, Min, Max float64
	Valid            bool
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{Median: nan, Min: nan, Max: nan}
	}
	return spread{Median: median(xs), Min: slices.Min(xs), Max: slices.Max(xs), Valid: true}
}

// String is a ratio's "1.04× (0.97–1.12×)".
func (s spread) String() string {
	if !s.Valid {
		return dash
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f×)", s.Median, s.Min, s.Max)
}

// Secs is a time in seconds as "3.83 s (3.72 s–3.91 s)".
func (s spread) Secs() string {
	if !s.Valid {
		return dash
	}
	return secs(s.Median*1e9) + " (" + secs(s.Min*1e9) + "–" + secs(s.Max*1e9) + ")"
}

// pairRow is a comparison as the report shows it: this run's pairs and the
// previous run's.
type pairRow struct {
	comparison
	This, Previous pairStats
	Reproduce      string
}

// Change is this run's median ratio against the previous run's, in %
// (+4.2 when it is 4.2% higher); NaN when either run lacks it.
func (p pairRow) Change() float64 { return change(p.Previous.Ratio, p.This.Ratio) }

// ChangeCPU is Change of the CPU-time ratios.
func (p pairRow) ChangeCPU() float64 { return change(p.Previous.CPURatio, p.This.CPURatio) }

func change(previous, this spread) float64 {
	if !previous.Valid || !this.Valid {
		return nan
	}
	return (this.Median/previous.Median - 1) * 100
}

// Reproduced is "within ±15%", "**beyond ±15%**", or "—" without both runs.
func (p pairRow) Reproduced() string { return reproduced(p.Change()) }

// ReproducedCPU is Reproduced of the CPU-time ratios.
func (p pairRow) ReproducedCPU() string { return reproduced(p.ChangeCPU()) }

func reproduced(c float64) string {
	switch {
	case math.IsNaN(c):
		return dash
	case within(c):
		return "within ±15%"
	default:
		return "**beyond ±15%**"
	}
}

// within says whether a change in % is within the tolerance (the bound
// itself in, whatever the rounding of the division).
func within(change float64) bool { return math.Abs(change) <= reproTolerance*100+1e-9 }

// reproSummary counts the comparisons both runs have and those within the
// tolerance, of the wall-time ratios and of the CPU-time ones.
type reproSummary struct{ Both, Within, BothCPU, WithinCPU int }

func reproOf(rows []pairRow) reproSummary {
	var s reproSummary
	count := func(c float64, both, in *int) {
		if !math.IsNaN(c) {
			*both++
			if within(c) {
				*in++
			}
		}
	}
	for _, p := range rows {
		count(p.Change(), &s.Both, &s.Within)
		count(p.ChangeCPU(), &s.BothCPU, &s.WithinCPU)
	}
	return s
}

// percent formats a change as "+4.2%" or "−12.0%".
func percent(x float64) string {
	switch {
	case math.IsNaN(x):
		return dash
	case x < 0:
		return fmt.Sprintf("−%.1f%%", -x)
	default:
		return fmt.Sprintf("+%.1f%%", x)
	}
}

// keepPrevious moves the go step's last output (cur) to prev before a new
// run replaces it, when it holds paired results: a run that measured none
// (a narrower -bench) leaves the previous one in place.
func keepPrevious(cur, prev string) error {
	f, err := os.Open(cur)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	g, err := ParseGoBench(f, cur)
	f.Close()
	if err != nil || !g.hasPairs() {
		return nil // nothing to keep: the step removes it
	}
	return os.Rename(cur, prev)
}

// runLine says when and where the go step that wrote g ran, from its
// header: "started 2026-12-03 10:00 UTC at commit abc1234, -count 5, load
// average 0.52 0.61 0.70 at the start, 1.10 0.80 0.75 at the end".
func runLine(g *GoBench) string {
	if g == nil {
		return "none (no `.local/" + filePrevious + "`)"
	}
	h := g.Header
	if h["started"] == "" {
		return "no record of when and where it ran (an output from before issue 18)"
	}
	s := "started " + h["started"]
	if t, err := time.Parse(time.RFC3339, h["started"]); err == nil {
		s = "started " + t.UTC().Format("2006-01-02 15:04 MST")
	}
	if h["commit"] != "" {
		s += " at commit `" + h["commit"] + "`"
	}
	if h["count"] != "" {
		s += ", `-count " + h["count"] + "`"
	}
	if h["load-start"] != "" {
		s += ", load average " + h["load-start"] + " at the start"
		if h["load-end"] != "" {
			s += ", " + h["load-end"] + " at the end"
		}
	}
	return s
}
