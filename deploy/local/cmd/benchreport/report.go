package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed report.md.tmpl
var reportTemplate string

// Inputs are the raw outputs of one run; any may be nil when its step did
// not run, and the report says so instead of showing a number.
type Inputs struct {
	Info     *RunInfo
	Go       *GoBench
	Sklearn  *Sklearn
	API      *APIRun
	Baseline *APIRun
	Latency  *Latency
	// Previous is the go step's output of the run before (filePrevious);
	// nil when there is none.
	Previous *GoBench
	// Against is the last against step's result; nil when none ran.
	Against *Against
	// Scale is the scale step's output (fileScale).
	Scale *GoBench
	// Missing names the raw files that could not be read, with why;
	// MissingFiles are their names alone.
	Missing, MissingFiles []string
}

// readInputs reads the raw files under dir (.local).
func readInputs(dir string) *Inputs {
	in := &Inputs{}
	missing := func(name string, err error) {
		in.Missing = append(in.Missing, fmt.Sprintf("%s (%v)", filepath.Join(".local", name), err))
		in.MissingFiles = append(in.MissingFiles, name)
	}
	var info RunInfo
	if err := readJSON(filepath.Join(dir, fileRun), &info); err != nil {
		missing(fileRun, err)
	} else {
		in.Info = &info
	}
	open := func(name string, parse func(*os.File) error) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			missing(name, err)
			return
		}
		defer f.Close()
		if err := parse(f); err != nil {
			missing(name, err)
		}
	}
	open(fileGo, func(f *os.File) (err error) { in.Go, err = ParseGoBench(f, f.Name()); return })
	open(fileScale, func(f *os.File) (err error) { in.Scale, err = ParseGoBench(f, f.Name()); return })
	open(fileSklearn, func(f *os.File) (err error) { in.Sklearn, err = ParseSklearn(f); return })
	open(fileAPI, func(f *os.File) (err error) { in.API, err = ParseAPI(f); return })
	open(fileBaseline, func(f *os.File) (err error) { in.Baseline, err = ParseAPI(f); return })
	var lat Latency
	if err := readJSON(filepath.Join(dir, fileLatency), &lat); err != nil {
		missing(fileLatency, err)
	} else {
		in.Latency = &lat
	}
	// The first run has no previous one: no file is no figures.
	if f, err := os.Open(filepath.Join(dir, filePrevious)); err == nil {
		if in.Previous, err = ParseGoBench(f, f.Name()); err != nil {
			missing(filePrevious, err)
		}
		f.Close()
	}
	// The against step runs only when asked: no file is no section.
	var against Against
	if err := readJSON(filepath.Join(dir, fileAgainst), &against); err == nil {
		in.Against = &against
	} else if !errors.Is(err, os.ErrNotExist) {
		missing(fileAgainst, err)
	}
	return in
}

// Row is one line of the summary table: Ratio is ours ÷ the baseline,
// "—" when the row is no paired comparison and has no other ratio; CPU is
// the ratio of CPU time, "" for none.
type Row struct {
	What, Ratio, CPU, Ours, Baseline, Goal, Verdict, Reproduce string
}

// nan marks a figure this run does not have; every formatter prints "—"
// for it, so a missing number is never shown as 0.
var nan = math.NaN()

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return nan
	}
	return median(xs)
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return nan
	}
	return slices.Min(xs)
}

const dash = "—"

// secs formats nanoseconds as seconds.
func secs(ns float64) string {
	if math.IsNaN(ns) {
		return dash
	}
	s := ns / 1e9
	switch {
	case s >= 10:
		return fmt.Sprintf("%.1f s", s)
	case s >= 0.1:
		return fmt.Sprintf("%.2f s", s)
	default:
		return fmt.Sprintf("%.1f ms", s*1e3)
	}
}

// dur formats a duration for the latency tables.
func dur(d time.Duration) string {
	if d < 0 {
		return "−" + dur(-d)
	}
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
}

// num formats x rounded to three significant figures with thousands
// separators: 28409 → "28,400".
func num(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	if x == 0 {
		return "0"
	}
	mag := math.Pow(10, math.Floor(math.Log10(math.Abs(x)))-2)
	r := math.Round(x/mag) * mag
	if math.Abs(r) < 100 {
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	return thousands(int64(math.Round(r)))
}

// count formats an integer count exactly with separators.
func count(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return thousands(int64(math.Round(x)))
}

// thousands writes n with thousands separators: 1,234,567.
func thousands(n int64) string { return english.Sprintf("%d", n) }

var english = message.NewPrinter(language.English)

func fixed(prec int, x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

func ms(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	if x >= 100 {
		return fmt.Sprintf("%.0f ms", x)
	}
	return fmt.Sprintf("%.1f ms", x)
}

// times formats a/b as "1.28×".
func times(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return dash
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// verdict is "met", "**missed**", or "—" when a figure is missing.
func verdict(ok bool, figures ...float64) string {
	for _, f := range figures {
		if math.IsNaN(f) {
			return dash
		}
	}
	if ok {
		return "met"
	}
	return "**missed**"
}

// report holds what the template renders.
type report struct {
	*Inputs
	Summary  []Row
	Learners []learnerRow
	Lat      []latencyRow
	// HopsAll is every step-to-step hop of every pipeline.
	HopsAll statLine
	// Vs is the against section; nil without an against run.
	Vs *againstReport
	// Pairs are the paired comparisons, this run's beside the previous
	// run's; Repro counts how many reproduced.
	Pairs []pairRow
	Repro reproSummary
	// ScaleRows are the scale curve's stages.
	ScaleRows []scaleRow
}

type learnerRow struct {
	Name, Learner               string
	ROCAUC, PRAUC, TrainSeconds float64
	Fits                        int
}

type latencyRow struct {
	ID       string
	Steps    []string
	Runs     []LatencyRun
	Total    statLine // trigger → last step finished
	FirstHop statLine // trigger → first step started
	Hops     statLine // step finished → next step started
	Work     statLine // time inside the handlers
	PerHop   []hopStat
}

type hopStat struct {
	From, To string
	statLine
}

type statLine struct {
	N             int
	Median, P95   time.Duration
	Min, Max      time.Duration
	HasP95, Valid bool
}

func stats(ds []time.Duration) statLine {
	if len(ds) == 0 {
		return statLine{}
	}
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return statLine{N: len(ds), Median: time.Duration(median(xs)), P95: time.Duration(quantile(xs, 0.95)),
		Min: time.Duration(slices.Min(xs)), Max: time.Duration(slices.Max(xs)), Valid: true}
}

// String is "median 120 ms, p95 180 ms".
func (s statLine) String() string {
	if !s.Valid {
		return dash
	}
	return "median " + dur(s.Median) + ", p95 " + dur(s.P95)
}

// Render writes the report for in.
func Render(in *Inputs) ([]byte, error) {
	r := &report{Inputs: in}
	r.build()
	t, err := template.New("report").Funcs(template.FuncMap{
		"vals":  func(name, unit string) []float64 { return in.Go.Values(name, unit) },
		"med":   med,
		"min":   minOf,
		"secs":  secs,
		"num":   num,
		"count": count,
		"fixed": fixed,
		"ms":    ms,
		"times": times,
		"dur":   dur,
		"int":   func(n int) string { return thousands(int64(n)) },
		"join":  strings.Join,
		"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
		"inc":   func(i int) int { return i + 1 },
		"api":   r.api,
		"total": func(r LatencyRun) string { return dur(r.Total()) },
		"first": func(r LatencyRun) string { return dur(r.FirstHop()) },
		"hops": func(r LatencyRun) string {
			var s []string
			for _, h := range r.Hops() {
				s = append(s, dur(h))
			}
			return strings.Join(s, ", ")
		},
		"work":         func(r LatencyRun) string { return dur(r.Work()) },
		"mib":          mib,
		"mul":          func(a, b float64) float64 { return a * b },
		"pair":         r.pair,
		"pairsPattern": pairsPattern,
		// cell escapes the pipes of a table cell's text (GitHub splits a
		// cell at one even inside a code span).
		"cell":          func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
		"runLine":       runLine,
		"slope":         func(x float64) string { return fixed(2, x) },
		"slopeGoal":     func() string { return fixed(1, slopeGoal) },
		"scaleEstimate": func() string { return scaleEstimate },
		"percent":       percent,
		"secsList": func(xs []float64) string {
			if len(xs) == 0 {
				return dash
			}
			s := make([]string, len(xs))
			for i, x := range xs {
				s[i] = secs(x)
			}
			return strings.Join(s, " · ")
		},
		"trainRows": r.trainRowsText,
		"apiNames":  func() []string { return []string{"get_runs", "baseline_get", "trigger", "baseline_post"} },
		"apiLabel": func(name string) string {
			return map[string]string{
				"get_runs":      "control `GET /v1/runs?page_size=20`",
				"baseline_get":  "baseline: trivial handler, GET",
				"trigger":       "control `POST /v1/pipelines/preventive_maintenance:trigger`",
				"baseline_post": "baseline: trivial handler, POST",
			}[name]
		},
	}).Parse(reportTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// api returns the wrk result name from api.sh (control) or the baseline
// run; a zero WRK with NaN figures when absent.
func (r *report) api(name string) WRK {
	for _, a := range []*APIRun{r.API, r.Baseline} {
		if a == nil {
			continue
		}
		if w, ok := a.Results[name]; ok {
			return w
		}
	}
	return WRK{Name: name, Missing: true, ReqPerSec: nan, P50: nan, P90: nan, P99: nan, Max: nan, CPUCores: nan}
}

// pair is the comparison of the paired benchmark name (one of
// comparisons).
func (r *report) pair(name string) (pairRow, error) {
	for _, p := range r.Pairs {
		if p.Name == name {
			return p, nil
		}
	}
	return pairRow{}, fmt.Errorf("no comparison %q", name)
}

// reproduce is the command that reruns the Go benchmarks matching re in
// the package pkg (an import path) with this run's settings.
func (r *report) reproduce(re, pkg string) string {
	count, benchtime := 3, "1x"
	if r.Info != nil {
		count, benchtime = r.Info.Settings.Count, r.Info.Settings.Benchtime
	}
	return fmt.Sprintf("`go test -run '^$' -bench '%s' -benchtime %s -count %d %s`", re, benchtime, count, pkgDir(pkg))
}

const modulePrefix = "github.com/cmmsflow/cmmsflow/"

// pkgDir turns an import path of this repository into ./path.
func pkgDir(pkg string) string {
	if rest, ok := strings.CutPrefix(pkg, modulePrefix); ok {
		return "./" + rest + "/"
	}
	return pkg
}

func (r *report) pkg(name, fallback string) string {
	if r.Go != nil && r.Go.Pkg[name] != "" {
		return r.Go.Pkg[name]
	}
	return modulePrefix + fallback
}

// build computes the summary rows and the derived tables, in the order the
// summary shows them.
func (r *report) build() {
	r.pairRows()
	r.seedRow()
	r.extractorRows()
	r.featureRow()
	r.trainerRows()
	r.apiRows()
	r.latencyTables()
	r.latencyRows()
	r.ScaleRows = scaleRows(r.Scale)
	r.Vs = newAgainstReport(r.Against)
}

// median is the median of the Go benchmark name's metric unit; NaN when
// the run has none.
func (r *report) median(name, unit string) float64 { return med(r.Go.Values(name, unit)) }

// withRate is "**<ns as seconds>** (<rate> <unit>)", the rate left out when
// NaN; a dash when ns is.
func withRate(ns, rate float64, unit string) string {
	if math.IsNaN(ns) {
		return dash
	}
	if math.IsNaN(rate) {
		return "**" + secs(ns) + "**"
	}
	return "**" + secs(ns) + "** (" + num(rate) + " " + unit + ")"
}

// pairRows: the paired comparisons, first in the summary, each with the
// previous run's pairs for the reproducibility table.
func (r *report) pairRows() {
	for _, c := range comparisons {
		p := pairRow{comparison: c, This: statsOf(r.Go.Pairs(c.Name)), Previous: statsOf(r.Previous.Pairs(c.Name)),
			Reproduce: r.reproduce(benchPattern(c.Name), r.pkg(c.Name, c.Pkg))}
		r.Pairs = append(r.Pairs, p)
		r.Summary = append(r.Summary, p.summary(r.Go))
	}
	r.Repro = reproOf(r.Pairs)
}

// benchPattern is the -bench pattern of exactly the (sub-)benchmark name:
// "A/b" → "^BenchmarkA$/^b$".
func benchPattern(name string) string {
	parts := strings.Split(name, "/")
	parts[0] = "Benchmark" + parts[0]
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	return strings.Join(parts, "/")
}

// summary is the comparison's row: the median ratio over the pairs with the
// lowest and highest, and each side's median time (and rate).
func (p pairRow) summary(g *GoBench) Row {
	s := p.This
	rate := func(side string) float64 {
		if p.Unit == "" {
			return nan
		}
		return med(g.Values(p.Name, side+"-"+p.Unit+"/s"))
	}
	row := Row{What: p.What, Ratio: dash, Goal: dash, Verdict: dash, Reproduce: p.Reproduce,
		Ours:     withRate(s.Ours.Median*1e9, rate("ours"), p.Unit+"/s"),
		Baseline: withRate(s.Base.Median*1e9, rate("base"), p.Unit+"/s") + ", " + p.Base}
	if s.Valid() {
		row.Ratio = fmt.Sprintf("**%.2f×** (%.2f–%.2f×), %d pairs", s.Ratio.Median, s.Ratio.Min, s.Ratio.Max, len(s.Pairs))
		if s.Uneven > 0 {
			row.Ratio += fmt.Sprintf(", %d with uneven steal", s.Uneven)
		}
	}
	row.CPU = s.CPURatio.String()
	if p.Goal != "" {
		row.Goal = p.Goal
	}
	if p.met != nil {
		row.Verdict = verdict(s.Valid() && p.met(s), s.Ratio.Median, s.Ours.Median)
	}
	return row
}

// seedRow: the demo fleet's seeding, no baseline.
func (r *report) seedRow() {
	r.Summary = append(r.Summary, Row{
		What:      "demo fleet seeding: 5,000 vehicles with plans and history (COPY)",
		Ratio:     dash,
		Ours:      withRate(r.median("Seed5000", "ns/op"), nan, ""),
		Baseline:  "none (setup cost of `make up`)",
		Goal:      dash,
		Verdict:   dash,
		Reproduce: r.reproduce("Seed5000", r.pkg("Seed5000", "libs/fleet")),
	})
}

// extractorRows: the extractor's speed and memory (issue 4).
func (r *report) extractorRows() {
	v := r.median
	all := v("Extract1M/parquet", "ns/op")
	r.Summary = append(r.Summary, Row{
		What:  "extractor: all 3 tables in parallel (50,000 assets, 1M work orders), peak heap",
		Ratio: dash,
		Ours: withRate(all, nan, "") + ", peak heap " + mib(v("Extract1M/parquet", "peak-heap-MB")) +
			" (incl. the in-process bucket emulator)",
		Baseline:  dash,
		Goal:      dash,
		Verdict:   dash,
		Reproduce: r.reproduce(benchPattern("Extract1M/parquet"), r.pkg("Extract1M/parquet", "services/extractor/internal/extract")),
	})
	small, large := v("Extract/work_orders=200000", "peak-heap-MB"), v("Extract/work_orders=1000000", "peak-heap-MB")
	r.Summary = append(r.Summary, Row{
		What:      "extractor memory as work orders grow 5× (to a discard sink)",
		Ratio:     dash,
		Ours:      "peak heap " + mib(small) + " at 200k → **" + mib(large) + "** at 1M",
		Baseline:  dash,
		Goal:      "flat (streaming)",
		Verdict:   verdict(large <= 1.5*small, small, large),
		Reproduce: r.reproduce("Extract$", r.pkg("Extract/work_orders=200000", "services/extractor/internal/extract")),
	})
}

// featureRow: the feature job's local engine (issue 4).
func (r *report) featureRow() {
	v := r.median
	feat := v("Features", "ns/op")
	r.Summary = append(r.Summary, Row{
		What:  "featurejob (local engine): 1,000,000 work orders → training rows",
		Ratio: dash,
		Ours: withRate(feat, v("Features", "wo-rows/s"), "work orders/s") + ", " + count(v("Features", "training-rows")) +
			" training rows, peak heap " + mib(v("Features", "peak-heap-MB")),
		Baseline:  "none in the same run",
		Goal:      dash,
		Verdict:   dash,
		Reproduce: r.reproduce("Features", r.pkg("Features", "services/featurejob/internal/local")),
	})
}

// apiRows: the control API under wrk beside a trivial handler (issue 6).
func (r *report) apiRows() {
	for _, c := range []struct{ name, base, what string }{
		{"get_runs", "baseline_get", "control API: `GET /v1/runs?page_size=20` under wrk (issue 6)"},
		{"trigger", "baseline_post", "control API: `POST /v1/pipelines/…:trigger` under wrk (issue 6)"},
	} {
		ours, base := r.api(c.name), r.api(c.base)
		row := Row{
			What:      c.what,
			Ratio:     dash,
			Ours:      wrkFigures(ours, true),
			Baseline:  wrkFigures(base, false) + ", trivial net/http handler",
			Reproduce: "`bash services/control/bench/api.sh`; the baseline: `make bench` (its step `baseline`)",
		}
		if r := times(ours.ReqPerSec, base.ReqPerSec); r != dash {
			row.Ratio = r + " of its req/s (one wrk run each, not paired)"
		}
		if c.name == "get_runs" {
			row.Goal = "≥ 5,000 req/s, p99 < 20 ms"
			row.Verdict = verdict(ours.ReqPerSec >= 5000 && ours.P99 < 20, ours.ReqPerSec, ours.P99)
		} else {
			row.Goal, row.Verdict = dash, dash
		}
		r.Summary = append(r.Summary, row)
	}
}

// wrkFigures is "<req/s> req/s, p99 <ms>", the rate in bold if bold; a dash
// when w is missing.
func wrkFigures(w WRK, bold bool) string {
	if w.Missing {
		return dash
	}
	s := num(w.ReqPerSec) + " req/s"
	if bold {
		s = "**" + s + "**"
	}
	return s + ", p99 " + ms(w.P99)
}

// latencyTables computes each pipeline's end-to-end latency row and every
// hop of every pipeline.
func (r *report) latencyTables() {
	var allHops []time.Duration
	if r.Latency != nil {
		for _, p := range r.Latency.Pipelines {
			lr, hops := pipelineLatency(p)
			allHops = append(allHops, hops...)
			r.Lat = append(r.Lat, lr)
		}
	}
	r.HopsAll = stats(allHops)
}

// pipelineLatency is p's latency row and all its runs' hops.
func pipelineLatency(p PipelineLatency) (latencyRow, []time.Duration) {
	lr := latencyRow{ID: p.ID, Steps: p.Steps, Runs: p.Runs}
	var total, first, hops, work []time.Duration
	per := make([][]time.Duration, max(len(p.Steps)-1, 0))
	for _, run := range p.Runs {
		total = append(total, run.Total())
		first = append(first, run.FirstHop())
		work = append(work, run.Work())
		for i, h := range run.Hops() {
			hops = append(hops, h)
			if i < len(per) {
				per[i] = append(per[i], h)
			}
		}
	}
	lr.Total, lr.FirstHop, lr.Hops, lr.Work = stats(total), stats(first), stats(hops), stats(work)
	for i, hs := range per {
		lr.PerHop = append(lr.PerHop, hopStat{From: p.Steps[i], To: p.Steps[i+1], statLine: stats(hs)})
	}
	return lr, hops
}

// latencyRows: one summary row per pipeline's end-to-end latency, or one
// saying it was not measured.
func (r *report) latencyRows() {
	for _, lr := range r.Lat {
		r.Summary = append(r.Summary, Row{
			What:      "end to end, `" + lr.ID + "` (" + strings.Join(lr.Steps, " → ") + ") on the demo fleet: trigger → last step finished",
			Ratio:     dash,
			Ours:      "**" + lr.Total.String() + "**; step → next step " + lr.Hops.String() + " (" + strconv.Itoa(lr.Total.N) + " runs)",
			Baseline:  "Airflow: seconds per task for scheduling alone (typical, not measured here)",
			Goal:      dash,
			Verdict:   dash,
			Reproduce: "`make bench` (its step `latency`)",
		})
	}
	if r.Latency == nil {
		r.Summary = append(r.Summary, Row{What: "end to end per pipeline: trigger → last step finished", Ratio: dash, Ours: dash + " (not measured in this run)",
			Baseline: dash, Goal: dash, Verdict: dash, Reproduce: "`make bench` (its step `latency`)"})
	}
}

// trainerRows pairs each Go learner with its scikit-learn counterpart.
func (r *report) trainerRows() {
	fits := 0
	best := map[string]learnerRow{}
	var learners []Learner
	if r.Go != nil {
		learners = append(learners, r.Go.Learners...)
	}
	if r.Sklearn != nil {
		learners = append(learners, r.Sklearn.Learners...)
	}
	for _, l := range learners {
		b, ok := best[l.Learner]
		if !ok || l.TrainSeconds < b.TrainSeconds {
			b.TrainSeconds = l.TrainSeconds
		}
		b.Learner, b.ROCAUC, b.PRAUC = l.Learner, l.ROCAUC, l.PRAUC
		b.Fits++
		best[l.Learner] = b
		if strings.HasPrefix(l.Learner, "go-") {
			fits = max(fits, b.Fits)
		}
	}
	get := func(name, label string) learnerRow {
		b, ok := best[name]
		if !ok {
			return learnerRow{Name: label, Learner: name, ROCAUC: nan, PRAUC: nan, TrainSeconds: nan}
		}
		b.Name = label
		return b
	}
	gl, gg := get("go-logistic", "Go L2 logistic regression (default)"), get("go-gbt", "Go boosted trees (`MODEL_KIND=gbt`)")
	sl, sh := get("sklearn-logistic", "scikit-learn `LogisticRegression`"), get("sklearn-hgb", "scikit-learn `HistGradientBoostingClassifier`")
	r.Learners = []learnerRow{gl, gg, sl, sh}
	skl := func(l learnerRow) string {
		if r.Sklearn == nil || r.Sklearn.Unavailable != "" {
			why := "not run"
			if r.Sklearn != nil {
				why = r.Sklearn.Unavailable
			}
			return "not measured: " + why
		}
		return "AUC " + fixed(4, l.ROCAUC) + ", fit " + secs(l.TrainSeconds*1e9)
	}
	bestSk := math.Max(sl.ROCAUC, sh.ROCAUC)
	if math.IsNaN(sl.ROCAUC) || math.IsNaN(sh.ROCAUC) {
		bestSk = nan
	}
	rowFor := func(what string, g, s learnerRow) Row {
		ours := dash
		if g.Fits > 0 {
			ours = "**AUC " + fixed(4, g.ROCAUC) + "**, fit " + secs(g.TrainSeconds*1e9) + " (best of " + strconv.Itoa(fits) + ")"
		}
		return Row{
			What:      what,
			Ratio:     dash,
			Ours:      ours,
			Baseline:  skl(s),
			Goal:      "AUC within 0.02 of the better sklearn model",
			Verdict:   verdict(g.ROCAUC >= bestSk-0.02, g.ROCAUC, bestSk),
			Reproduce: r.reproduce("Train", r.pkg("Train/logistic", "services/trainer/bench")) + " then `compare_sklearn.py`",
		}
	}
	r.Summary = append(r.Summary,
		rowFor("trainer: failure-risk model, holdout ROC AUC and fit time, logistic (issue 4)", gl, sl),
		rowFor("trainer: boosted trees vs `HistGradientBoostingClassifier`", gg, sh))
}

// trainRowsText is "N training rows, M holdout rows" from BenchmarkTrain.
func (r *report) trainRowsText() string {
	if r.Go == nil || len(r.Go.Learners) == 0 {
		return "row counts: " + dash
	}
	l := r.Go.Learners[0]
	return count(float64(l.RowsTrain)) + " training rows, " + count(float64(l.RowsHoldout)) + " holdout rows"
}

// mib formats a MiB figure (the benchmarks' "-MB" metrics are MiB).
func mib(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return num(x) + " MiB"
}

// Partial lists the steps this run did not make, when it made only some.
func (r *report) Partial() string {
	if r.Info == nil {
		return ""
	}
	var skipped []string
	for _, s := range allSteps {
		if !slices.Contains(r.Info.Settings.Steps, s) {
			skipped = append(skipped, "`"+s+"`")
		}
	}
	return strings.Join(skipped, ", ")
}
