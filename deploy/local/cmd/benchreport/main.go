// Command benchreport runs `make bench` and writes docs/benchmarks.md from
// its results, every figure beside its baseline from the same run.
//
//	benchreport -run    measure (under testenv: needs CMMSFLOW_TEST_DATABASE_URL),
//	                    writing the raw outputs to .local/, then render
//	benchreport -against REV
//	                    measure this checkout beside the earlier commit REV
//	                    (against.go; under testenv too), then render
//	benchreport         render docs/benchmarks.md from the last run's .local/ outputs
//
// The steps of a run: go (every Go benchmark in the workspace but the scale
// curve's, into .local/bench.txt, each comparison of ours and its baseline
// as -count interleaved pairs, libs/benchpair; the last run's output is kept
// as .local/bench-previous.txt for the report's reproducibility table),
// sklearn (services/trainer/bench/compare_sklearn.py on the split
// BenchmarkTrain wrote), api (services/control/bench/api.sh: wrk on
// control's HTTP API), baseline (the same wrk against a trivial net/http
// handler), latency (the local stack on the demo fleet: trigger → last step
// and the step-to-step hop per pipeline), scale (scale.go: each stage's
// BenchmarkScale at 1M, 3M and 10M work orders, paired with its baseline,
// into .local/bench-scale.txt; the longest step). An against run (make
// bench-against) is separate: the latency step and the pmgen benchmark of
// an earlier commit and of this checkout, interleaved in pairs; its section
// joins the report. The report's prose is the embedded report.md.tmpl;
// every number comes from the raw outputs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/repo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	measure                               bool
	steps, bench, benchtime, pkgs, wrkDur string
	count, wrkThreads, wrkConns           int
	latencyRuns, latencyFleet, pairs      int
	against, scalePoints                  string
	emulator, root, local, out            string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.BoolVar(&o.measure, "run", false, "measure first (else only render from the raw outputs of the last run)")
	fs.StringVar(&o.steps, "steps", strings.Join(allSteps, ","), "with -run: the steps to run, comma-separated")
	fs.StringVar(&o.bench, "bench", ".", "with -run: go test -bench regexp")
	fs.StringVar(&o.benchtime, "benchtime", "1x", "with -run: go test -benchtime")
	fs.IntVar(&o.count, "count", 5, "with -run: go test -count: the runs of each benchmark, the interleaved pairs of each paired one (at least 5), and scikit-learn's fits per model")
	fs.StringVar(&o.pkgs, "pkgs", "", "with -run: packages to benchmark, space-separated (default: every module of go.work)")
	fs.StringVar(&o.wrkDur, "wrk-duration", "30s", "with -run: wrk duration per endpoint")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 2, "with -run: wrk threads")
	fs.IntVar(&o.wrkConns, "wrk-connections", 16, "with -run: wrk connections")
	fs.IntVar(&o.latencyRuns, "latency-runs", 5, "with -run: end-to-end runs per pipeline")
	fs.IntVar(&o.latencyFleet, "latency-assets", 300, "with -run: demo fleet size for the end-to-end runs (make up's default)")
	fs.StringVar(&o.scalePoints, "scale-points", strings.Join(scalePointNames(), ","), "with -run: the points of the scale step, comma-separated (libs/benchscale)")
	fs.StringVar(&o.against, "against", "", "measure this checkout beside this earlier commit (any git revision) instead of a -run")
	fs.IntVar(&o.pairs, "pairs", 5, "with -against: interleaved pairs (the earlier commit, then ours)")
	fs.StringVar(&o.emulator, "emulator", stack.EmulatorAuto, "with -run: Pub/Sub emulator for the end-to-end runs: auto, cloudsdk or embedded")
	fs.StringVar(&o.root, "root", "", "repository root (default: the folder holding go.work above the working directory)")
	fs.StringVar(&o.local, "local", "", "folder of the raw outputs (default: <root>/.local)")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write, relative to the root; - for stdout")
	err := fs.Parse(args)
	return o, err
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	root, local, err := folders(o)
	if err != nil {
		return err
	}
	var runErr error
	if o.measure || o.against != "" {
		if o.measure && o.against != "" {
			return errors.New("-run and -against are separate runs: give one")
		}
		r, err := newRunner(ctx, o, root, local)
		if err != nil {
			return err
		}
		if o.measure {
			runErr = r.measure(ctx)
		} else {
			runErr = r.against(ctx)
		}
	}
	in := readInputs(local)
	doc, err := Render(in)
	if err != nil {
		return err
	}
	if o.measure && len(in.Missing) > 0 {
		// The doc says so too. A measuring run that lost figures of its own
		// steps fails; the other steps' figures are an earlier run's, and
		// their absence is only noted.
		if lost := lostInRun(in, strings.Split(o.steps, ",")); len(lost) > 0 {
			runErr = errors.Join(runErr, fmt.Errorf("raw outputs missing or unreadable: %s", strings.Join(lost, "; ")))
		} else {
			fmt.Fprintf(os.Stderr, "benchreport: figures of steps this run did not measure are missing, and marked so in the report: %s\n",
				strings.Join(in.Missing, "; "))
		}
	}
	if alt := againstOut(o, in, local); alt != "" {
		fmt.Fprintf(os.Stderr, "benchreport: %s not rewritten: the last make bench run's raw outputs are missing (%s), "+
			"so every other figure would be blank; the report with this run's section is %s. Run make bench, then make bench-report.\n",
			o.out, strings.Join(in.Missing, "; "), alt)
		o.out = alt
	}
	if err := writeReport(doc, root, o.out); err != nil {
		return err
	}
	return runErr
}

// againstOut is where an against run writes its report when the last full
// run's raw outputs are missing (under local, beside them), so that the
// comparison never blanks the figures docs/benchmarks.md holds; "" to
// write o.out as usual.
func againstOut(o options, in *Inputs, local string) string {
	if o.against == "" || len(in.Missing) == 0 || o.out == "-" {
		return ""
	}
	return filepath.Join(local, "benchmarks-against.md")
}

// folders are the repository root and the folder of the raw outputs,
// created if need be.
func folders(o options) (root, local string, err error) {
	root = o.root
	if root == "" {
		if root, err = repo.Root(); err != nil {
			return "", "", err
		}
	}
	local = o.local
	if local == "" {
		local = filepath.Join(root, ".local")
	}
	return root, local, os.MkdirAll(local, 0o755)
}

// newRunner is the runner of a measuring run with o's settings.
func newRunner(ctx context.Context, o options, root, local string) (*runner, error) {
	admin := adminURL()
	if admin == "" {
		return nil, fmt.Errorf("-run needs a PostgreSQL superuser URL in CMMSFLOW_TEST_DATABASE_URL: run it as `make bench` (or under go run ./deploy/local/cmd/testenv --)")
	}
	packages := strings.Fields(o.pkgs)
	if len(packages) == 0 {
		var err error
		if packages, err = modulePackages(ctx, root); err != nil {
			return nil, err
		}
	}
	info := &RunInfo{
		Started: time.Now().UTC(), Commit: commit(ctx, root), Machine: readMachine(ctx, admin),
		Settings: Settings{Steps: strings.Split(o.steps, ","), Bench: o.bench, Benchtime: o.benchtime, Count: o.count,
			Packages: packages, WrkDuration: o.wrkDur, WrkThreads: o.wrkThreads, WrkConns: o.wrkConns,
			LatencyRuns: o.latencyRuns, LatencyFleet: o.latencyFleet, Against: o.against, Pairs: o.pairs,
			ScalePoints: strings.Split(o.scalePoints, ",")},
	}
	return &runner{root: root, local: local, adminURL: admin, info: info, emulator: o.emulator}, nil
}

// writeReport writes doc to out (relative to root), or to stdout for "-".
func writeReport(doc []byte, root, out string) error {
	if out == "-" {
		_, err := os.Stdout.Write(doc)
		return err
	}
	name := out
	if !filepath.IsAbs(name) {
		name = filepath.Join(root, name)
	}
	if err := os.WriteFile(name, doc, 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "benchreport: wrote", name)
	return nil
}

// modulePackages is "./<module>/..." for every module of the workspace.
func modulePackages(ctx context.Context, root string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m: %w", err)
	}
	var pkgs []string
	for _, dir := range strings.Fields(string(b)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(rel)+"/...")
	}
	return pkgs, nil
}

// lostInRun are the missing raw outputs (with why) of the run's steps and
// of the run itself.
func lostInRun(in *Inputs, steps []string) []string {
	own := map[string]bool{fileRun: true}
	for _, step := range steps {
		for _, name := range stepFiles[step] {
			own[name] = true
		}
	}
	var lost []string
	for i, name := range in.MissingFiles {
		if own[name] {
			lost = append(lost, in.Missing[i])
		}
	}
	return lost
}
