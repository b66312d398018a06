package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/benchscale"
)

// The scale curve (issue 18): each stage's BenchmarkScale at each point of
// libs/benchscale (1M, 3M and 10M work orders, 10,000 to 100,000 assets;
// pmgen at 100,000 to 1,000,000 due plans), a paired benchmark of ours and
// its same-run baseline with each side's peak memory. Each point's fixtures
// are built once, in the point's run of each package, and shared by its
// pairs. The report gives each stage's time, peak heap and peak RSS per
// point and its log-log slope of time against size, beside the baseline's.

// scaleStage is one stage's BenchmarkScale.
type scaleStage struct {
	Name string // "extractor"
	Pkg  string // its package, from the repository root
	Pair string // the paired sub-benchmark under the point: "work_orders_vs_copy_csv"
	Key  string // the size in its name: benchscale.KeyWorkOrders or KeyDuePlans
	Ours string // what ours is
	Base string // what its baseline is
}

// scaleStages are the stages, in the pipelines' order; the scale step runs
// their packages in this order at each point.
var scaleStages = []scaleStage{
	{Name: "extractor", Pkg: "services/extractor/internal/extract", Pair: "work_orders_vs_copy_csv", Key: benchscale.KeyWorkOrders,
		Ours: "the work orders → Parquet in the bucket (an emulator in a child process)",
		Base: "`COPY (same query) TO STDOUT (FORMAT csv)`, discarded"},
	{Name: "featurejob (local engine)", Pkg: "services/featurejob/internal/local", Pair: "features_vs_read", Key: benchscale.KeyWorkOrders,
		Ours: "the features of the raw tables (training and scoring rows) → Parquet in the bucket",
		Base: "the engine's own read of the three raw objects (copied to files, every row decoded), nothing computed"},
	{Name: "trainer", Pkg: "services/trainer/bench", Pair: "train_vs_read", Key: benchscale.KeyWorkOrders,
		Ours: "the trainer's step on the fleet's training features (22 monthly snapshots of every asset): read, split, fit (logistic), evaluate, artifact, profile, gate",
		Base: "a plain read of the same features (download and Parquet decode)"},
	{Name: "reporter", Pkg: "services/reporter/internal/reporter", Pair: "report_vs_sql_only", Key: benchscale.KeyWorkOrders,
		Ours: "the weekly KPI report (SQL, charts, HTML, PDF, CSV)",
		Base: "the KPI SQL alone, its rows read and dropped"},
	{Name: "pmgen", Pkg: "services/pmgen/internal/generate", Pair: "generate_vs_insert_select", Key: benchscale.KeyDuePlans,
		Ours: "work orders for every due plan (one per asset), plans advanced",
		Base: "one `INSERT … SELECT … ON CONFLICT` and the plans' `UPDATE`"},
}

// scalePointNames are the names of every point of the curve.
func scalePointNames() []string {
	names := make([]string, len(benchscale.Points))
	for i, p := range benchscale.Points {
		names[i] = p.Name
	}
	return names
}

// slopeGoal is the highest log-log slope issue 18 accepts between the
// lowest and the top point: time growing at most a little faster than the
// size.
const slopeGoal = 1.1

// scale runs every stage's BenchmarkScale at each point of the settings,
// one go test per point with the point's sizes in the environment, into
// fileScale between the step's header and footer. A point that fails is
// recorded and the next one still runs.
func (r *runner) scale(ctx context.Context) error {
	s := r.info.Settings
	f, err := os.Create(r.path(fileScale))
	if err != nil {
		return err
	}
	defer f.Close()
	w := io.MultiWriter(f, os.Stdout)
	writeHeader(w, r.info.Commit, s.Count)
	var errs []error
	for _, name := range s.ScalePoints {
		p, ok := benchscale.Lookup(name)
		if !ok {
			errs = append(errs, fmt.Errorf("no scale point %q", name))
			continue
		}
		fmt.Fprintf(w, "point: %s\nload-point: %s\n", p.Name, loadAverage())
		args := []string{"test", "-run", "^$", "-bench", "^BenchmarkScale$", "-benchtime", "1x",
			"-count", strconv.Itoa(s.Count), "-timeout", "3h"}
		for _, st := range scaleStages {
			args = append(args, "./"+st.Pkg+"/")
		}
		if err := r.commandTo(ctx, w, p.Env(), "go", args...); err != nil {
			errs = append(errs, fmt.Errorf("point %s: %w", p.Name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	writeFooter(w)
	return errors.Join(errs...)
}

// scalePoint is one stage's pairs at one size.
type scalePoint struct {
	Size int // its work orders (or due plans for pmgen)
	// Assets is the fleet: the scale step sets BENCH_ASSETS at the points'
	// proportion (libs/benchscale), and pmgen has a plan per asset.
	Assets int
	Pairs  pairStats
	// PeakHeap and PeakRSS are ours' largest over the pairs, MiB.
	PeakHeap, PeakRSS float64
}

// scaleRow is one stage's curve: its points in increasing size and the
// slopes between the lowest and the top one.
type scaleRow struct {
	scaleStage
	Points           []scalePoint
	Slope, BaseSlope float64 // NaN with fewer than two points
	// CPUSlope and BaseCPUSlope are the same of CPU time: steal does not
	// land on them, while it lands on the wall-time slopes, whose points
	// ran minutes apart.
	CPUSlope, BaseCPUSlope float64
}

// Met is "met" when the stage's slope is at most slopeGoal, "—" without one.
func (r scaleRow) Met() string { return verdict(r.Slope <= slopeGoal, r.Slope) }

// SizeLabel names the stage's size: "work orders" or "due plans".
func (r scaleRow) SizeLabel() string { return strings.ReplaceAll(r.Key, "_", " ") }

// Range is "1,000,000 → 10,000,000" (its lowest and top point), or the one
// size, or "—".
func (r scaleRow) Range() string {
	switch len(r.Points) {
	case 0:
		return dash
	case 1:
		return count(float64(r.Points[0].Size))
	}
	return count(float64(r.Points[0].Size)) + " → " + count(float64(r.Points[len(r.Points)-1].Size))
}

// scaleRows reads each stage's curve from g (the scale step's output).
func scaleRows(g *GoBench) []scaleRow {
	rows := make([]scaleRow, len(scaleStages))
	for i, st := range scaleStages {
		rows[i] = scaleRow{scaleStage: st, Slope: nan, BaseSlope: nan, CPUSlope: nan, BaseCPUSlope: nan}
	}
	if g == nil {
		return rows
	}
	for name := range g.Results {
		parts := strings.Split(name, "/")
		if len(parts) != 3 || parts[0] != "Scale" {
			continue
		}
		key, size, _ := strings.Cut(parts[1], "=")
		n, err := strconv.Atoi(size)
		i := slices.IndexFunc(scaleStages, func(st scaleStage) bool { return st.Pair == parts[2] && st.Key == key })
		if err != nil || i < 0 {
			continue
		}
		assets := n
		if key == benchscale.KeyWorkOrders {
			assets = n / benchscale.WorkOrdersPerAsset
		}
		rows[i].Points = append(rows[i].Points, scalePoint{Size: n, Assets: assets, Pairs: statsOf(g.Pairs(name)),
			PeakHeap: maxOf(g.Values(name, "ours-peak-heap-MB")), PeakRSS: maxOf(g.Values(name, "ours-peak-rss-MB"))})
	}
	for i := range rows {
		r := &rows[i]
		slices.SortFunc(r.Points, func(a, b scalePoint) int { return a.Size - b.Size })
		if k := len(r.Points); k >= 2 {
			lo, top := r.Points[0], r.Points[k-1]
			r.Slope = slope(float64(lo.Size), lo.Pairs.Ours.Median, float64(top.Size), top.Pairs.Ours.Median)
			r.BaseSlope = slope(float64(lo.Size), lo.Pairs.Base.Median, float64(top.Size), top.Pairs.Base.Median)
			r.CPUSlope = slope(float64(lo.Size), lo.Pairs.OursCPU.Median, float64(top.Size), top.Pairs.OursCPU.Median)
			r.BaseCPUSlope = slope(float64(lo.Size), lo.Pairs.BaseCPU.Median, float64(top.Size), top.Pairs.BaseCPU.Median)
		}
	}
	return rows
}

// slope is the log-log slope of a time against a size between two points,
// ln(t2/t1) ÷ ln(n2/n1): 1 when the time grows as the size, 2 when it grows
// as its square. NaN when either point lacks a positive figure or the sizes
// are the same.
func slope(n1, t1, n2, t2 float64) float64 {
	if !(n1 > 0 && n2 > 0 && t1 > 0 && t2 > 0) || n1 == n2 {
		return nan
	}
	return math.Log(t2/t1) / math.Log(n2/n1)
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return nan
	}
	return slices.Max(xs)
}

// scaleEstimate is how long the whole curve takes on a quiet 2-core
// machine (the Makefile's help and the README say the same): the sums of
// each point's package times in the run at commit 6fd7462 (load average
// 1-1.6), fixtures included; pmgen's 1M plans took 15 of the 10M point's 34.
const scaleEstimate = "about 47 minutes (1M: 3, 3M: 10, 10M: 34; measured on 2026-12-03)"

// writeHeader writes the lines a step's Go benchmark output starts with
// (headerKeys), so the file says when and where it ran.
func writeHeader(w io.Writer, commit string, count int) {
	fmt.Fprintf(w, "started: %s\ncommit: %s\nload-start: %s\ncount: %d\n",
		time.Now().UTC().Format(time.RFC3339), commit, loadAverage(), count)
}

// writeFooter writes the lines it ends with.
func writeFooter(w io.Writer) {
	fmt.Fprintf(w, "finished: %s\nload-end: %s\n", time.Now().UTC().Format(time.RFC3339), loadAverage())
}
