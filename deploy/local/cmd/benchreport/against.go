package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
)

// An against run measures this checkout beside an earlier commit of the
// project (-against REV, `make bench-against BASE=REV`), interleaved: for
// each of -pairs pairs the earlier commit's end-to-end latency step and
// pmgen benchmark run first, then this checkout's, so drift in the
// machine's speed lands on both sides. Each side is measured by its own
// code (its benchreport's latency step, its pmgen benchmark and its own
// same-run baseline), so a runtime change is judged against what it
// replaced rather than against a figure from another day.

const (
	dirAgainst  = "bench-against" // under .local: the earlier checkout and each side's raw outputs
	fileAgainst = "bench-against.json"
	// pmgenBench is the pmgen benchmark and its same-run baseline: since
	// issue 18 one paired benchmark (pmgenPair), before it two.
	pmgenBench = "^Benchmark(Generate100k|BaselineInsertSelect100k)$"
	pmgenPair  = "Generate100k/generate_vs_insert_select"
	pmgenPkg   = "./services/pmgen/internal/generate/"
)

// Against is an against run's result, written after every pair so an
// interrupted run keeps the pairs it finished. It is apart from
// bench-run.json: the full run's figures and machine stay as they were.
type Against struct {
	Base     string        `json:"base"` // the earlier commit
	Ours     string        `json:"ours"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Machine  Machine       `json:"machine"`
	Pairs    []AgainstPair `json:"pairs"`
}

// AgainstPair is one interleaved pair: the earlier commit, then ours.
type AgainstPair struct {
	Base AgainstSide `json:"base"`
	Ours AgainstSide `json:"ours"`
}

// AgainstSide is one side's figures in one pair.
type AgainstSide struct {
	Latency *Latency `json:"latency"`
	// PMGen and PMGenBaseline are BenchmarkGenerate100k and its same-run
	// baseline BenchmarkBaselineInsertSelect100k, in ns.
	PMGen         float64 `json:"pmgen_ns"`
	PMGenBaseline float64 `json:"pmgen_baseline_ns"`
}

// against runs the pairs; see the comment at the top of this file.
func (r *runner) against(ctx context.Context) error {
	s := r.info.Settings
	if s.Against == "" {
		return fmt.Errorf("an against run needs -against REV (make bench-against BASE=REV)")
	}
	base, err := r.checkoutAgainst(ctx, s.Against)
	if err != nil {
		return err
	}
	// A failed run must not leave an earlier run's pairs behind.
	if err := os.Remove(r.path(fileAgainst)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	sides := []struct{ name, dir string }{{"base", base}, {"ours", r.root}}
	for _, side := range sides {
		if err := r.run(ctx, side.dir, nil, "make", "bins"); err != nil {
			return fmt.Errorf("%s: %w", side.name, err)
		}
	}
	res := Against{Base: commit(ctx, base), Ours: r.info.Commit, Started: r.info.Started, Machine: r.info.Machine}
	for i := range s.Pairs {
		var pair AgainstPair
		for _, side := range sides {
			fig, err := r.measureSide(ctx, side.dir, fmt.Sprintf("%s-%d", side.name, i+1))
			if err != nil {
				return fmt.Errorf("pair %d, %s: %w", i+1, side.name, err)
			}
			if side.name == "base" {
				pair.Base = fig
			} else {
				pair.Ours = fig
			}
		}
		res.Pairs = append(res.Pairs, pair)
		res.Finished = time.Now().UTC()
		if err := writeJSON(r.path(fileAgainst), res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "benchreport: against %s: pair %d of %d done (hop median %s base, %s ours)\n",
			res.Base, i+1, s.Pairs, dur(pair.Base.hops().Median), dur(pair.Ours.hops().Median))
	}
	return nil
}

// checkoutAgainst is a detached worktree of rev under .local, made anew
// unless it is already at rev.
func (r *runner) checkoutAgainst(ctx context.Context, rev string) (string, error) {
	dir := filepath.Join(r.local, dirAgainst, "src")
	want, err := gitOutput(ctx, r.root, "rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("-against %s: %w", rev, err)
	}
	if have, err := gitOutput(ctx, dir, "rev-parse", "HEAD"); err == nil && have == want {
		return dir, nil
	}
	_, _ = gitOutput(ctx, r.root, "worktree", "remove", "--force", dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if _, err := gitOutput(ctx, r.root, "worktree", "add", "--detach", dir, want); err != nil {
		return "", err
	}
	return dir, nil
}

// measureSide runs one side's latency step (its own benchreport, on its
// own binaries) and its pmgen benchmark, raw outputs under
// .local/bench-against/<name>/.
func (r *runner) measureSide(ctx context.Context, dir, name string) (AgainstSide, error) {
	out := filepath.Join(r.local, dirAgainst, name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return AgainstSide{}, err
	}
	s := r.info.Settings
	env := []string{stack.BinDirEnv + "=" + filepath.Join(dir, ".local", "bin")}
	// That run exits 1 for the raw outputs of the steps it did not run; the
	// latency step removes its own file first, so the file is this run's.
	runErr := r.run(ctx, dir, env, "go", "run", "./deploy/local/cmd/benchreport", "-run", "-steps", "latency",
		"-latency-runs", strconv.Itoa(s.LatencyRuns), "-latency-assets", strconv.Itoa(s.LatencyFleet),
		"-emulator", r.emulator, "-local", out, "-out", filepath.Join(out, "report.md"))
	var fig AgainstSide
	if err := readJSON(filepath.Join(out, fileLatency), &fig.Latency); err != nil {
		return AgainstSide{}, errors.Join(runErr, err)
	}
	bench := filepath.Join(out, "pmgen.txt")
	f, err := os.Create(bench)
	if err != nil {
		return AgainstSide{}, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", pmgenBench, "-benchtime", "1x", "-count", "1", pmgenPkg)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, os.Stderr
	if err := cmd.Run(); err != nil {
		return AgainstSide{}, fmt.Errorf("pmgen benchmark (%s): %w", bench, err)
	}
	return fig, fig.readPMGen(bench)
}

// readPMGen fills the pmgen figures from go test's output in name.
func (s *AgainstSide) readPMGen(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	g, err := ParseGoBench(f, name)
	if err != nil {
		return err
	}
	if ps := statsOf(g.Pairs(pmgenPair)); ps.Valid() {
		s.PMGen, s.PMGenBaseline = ps.Ours.Median*1e9, ps.Base.Median*1e9
	} else { // a commit before issue 18
		s.PMGen, s.PMGenBaseline = med(g.Values("Generate100k", "ns/op")), med(g.Values("BaselineInsertSelect100k", "ns/op"))
	}
	if len(g.Failed) > 0 || s.PMGen != s.PMGen || s.PMGenBaseline != s.PMGenBaseline {
		return fmt.Errorf("%s: no pmgen figures (%s)", name, strings.Join(g.Failed, "; "))
	}
	return nil
}

// run runs name args in dir with its output on stderr.
func (r *runner) run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s (in %s): %w", name, strings.Join(args, " "), dir, err)
	}
	return nil
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

func writeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

// hops is every step-to-step hop of the side's runs.
func (s AgainstSide) hops() statLine {
	if s.Latency == nil {
		return statLine{}
	}
	var all []time.Duration
	for _, p := range s.Latency.Pipelines {
		_, h := pipelineLatency(p)
		all = append(all, h...)
	}
	return stats(all)
}

// pmgenRatio is the side's pmgen time over its same-run baseline.
func (s AgainstSide) pmgenRatio() float64 { return s.PMGen / s.PMGenBaseline }

// againstReport is what the report's against section shows.
type againstReport struct {
	*Against
	Pairs []againstPairRow
	// Ours ÷ the earlier commit, per pair: the median hop, the pmgen time.
	HopRatio, PMGenRatio spread
	// Every hop of every pair, pooled, per side.
	HopsBase, HopsOurs statLine
	// Each pair's pmgen time (ns), per side.
	PMGenBase, PMGenOurs []float64
	// Each side's pmgen time over its own same-run baseline, per pair.
	PMGenVsBaselineBase, PMGenVsBaselineOurs spread
	Totals                                   []againstTotal
}

type againstPairRow struct {
	N                    int
	HopBase, HopOurs     statLine
	PMGenBase, PMGenOurs float64 // ns
	PMGenRatioBase       float64 // pmgen ÷ its baseline
	PMGenRatioOurs       float64
}

// againstTotal is one pipeline's trigger → last step finished, every run of
// every pair pooled, per side.
type againstTotal struct {
	ID         string
	Base, Ours statLine
}

func newAgainstReport(a *Against) *againstReport {
	if a == nil || len(a.Pairs) == 0 {
		return nil
	}
	rep := &againstReport{Against: a}
	var hopRatio, pmRatio, pmBase, pmOurs []float64
	var hopsBase, hopsOurs []time.Duration
	totals := map[string]*[2][]time.Duration{}
	var ids []string
	for i, p := range a.Pairs {
		row := againstPairRow{N: i + 1, HopBase: p.Base.hops(), HopOurs: p.Ours.hops(),
			PMGenBase: p.Base.PMGen, PMGenOurs: p.Ours.PMGen,
			PMGenRatioBase: p.Base.pmgenRatio(), PMGenRatioOurs: p.Ours.pmgenRatio()}
		rep.Pairs = append(rep.Pairs, row)
		hopRatio = append(hopRatio, float64(row.HopOurs.Median)/float64(row.HopBase.Median))
		pmRatio = append(pmRatio, p.Ours.PMGen/p.Base.PMGen)
		rep.PMGenBase, rep.PMGenOurs = append(rep.PMGenBase, p.Base.PMGen), append(rep.PMGenOurs, p.Ours.PMGen)
		pmBase, pmOurs = append(pmBase, row.PMGenRatioBase), append(pmOurs, row.PMGenRatioOurs)
		for side, s := range []AgainstSide{p.Base, p.Ours} {
			if s.Latency == nil {
				continue
			}
			for _, pl := range s.Latency.Pipelines {
				if totals[pl.ID] == nil {
					totals[pl.ID] = &[2][]time.Duration{}
					ids = append(ids, pl.ID)
				}
				for _, run := range pl.Runs {
					totals[pl.ID][side] = append(totals[pl.ID][side], run.Total())
				}
				_, h := pipelineLatency(pl)
				if side == 0 {
					hopsBase = append(hopsBase, h...)
				} else {
					hopsOurs = append(hopsOurs, h...)
				}
			}
		}
	}
	rep.HopRatio, rep.PMGenRatio = spreadOf(hopRatio), spreadOf(pmRatio)
	rep.PMGenVsBaselineBase, rep.PMGenVsBaselineOurs = spreadOf(pmBase), spreadOf(pmOurs)
	rep.HopsBase, rep.HopsOurs = stats(hopsBase), stats(hopsOurs)
	for _, id := range ids {
		rep.Totals = append(rep.Totals, againstTotal{ID: id, Base: stats(totals[id][0]), Ours: stats(totals[id][1])})
	}
	return rep
}
