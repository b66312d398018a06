// Command benchreport runs `make bench` and writes docs/benchmarks.md from
// its results, every figure beside its baseline from the same run.
//
//	benchreport -run    measure (under testenv: needs CMMSFLOW_TEST_DATABASE_URL),
//	                    writing the raw outputs to .local/, then render
//	benchreport         render docs/benchmarks.md from the last run's .local/ outputs
//
// The steps of a run: go (every Go benchmark in the workspace, into
// .local/bench.txt), sklearn (services/trainer/bench/compare_sklearn.py on
// the split BenchmarkTrain wrote), api (services/control/bench/api.sh: wrk
// on control's HTTP API), baseline (the same wrk against a trivial net/http
// handler), latency (the local stack on the demo fleet: trigger → last step
// and the step-to-step hop per pipeline). The report's prose is the
// embedded report.md.tmpl; every number comes from the raw outputs.
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

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	var (
		measure   = fs.Bool("run", false, "measure first (else only render from the raw outputs of the last run)")
		steps     = fs.String("steps", strings.Join(allSteps, ","), "with -run: the steps to run, comma-separated")
		bench     = fs.String("bench", ".", "with -run: go test -bench regexp")
		benchtime = fs.String("benchtime", "1x", "with -run: go test -benchtime")
		count     = fs.Int("count", 3, "with -run: go test -count (and scikit-learn fits per model)")
		pkgs      = fs.String("pkgs", "", "with -run: packages to benchmark, space-separated (default: every module of go.work)")
		wrkDur    = fs.String("wrk-duration", "30s", "with -run: wrk duration per endpoint")
		wrkT      = fs.Int("wrk-threads", 2, "with -run: wrk threads")
		wrkC      = fs.Int("wrk-connections", 16, "with -run: wrk connections")
		latRuns   = fs.Int("latency-runs", 5, "with -run: end-to-end runs per pipeline")
		latFleet  = fs.Int("latency-assets", 300, "with -run: demo fleet size for the end-to-end runs (make up's default)")
		emulator  = fs.String("emulator", stack.EmulatorAuto, "with -run: Pub/Sub emulator for the end-to-end runs: auto, cloudsdk or embedded")
		rootFlag  = fs.String("root", "", "repository root (default: the folder holding go.work above the working directory)")
		localFlag = fs.String("local", "", "folder of the raw outputs (default: <root>/.local)")
		out       = fs.String("out", "docs/benchmarks.md", "report to write, relative to the root; - for stdout")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	root := *rootFlag
	if root == "" {
		var err error
		if root, err = repo.Root(); err != nil {
			return err
		}
	}
	local := *localFlag
	if local == "" {
		local = filepath.Join(root, ".local")
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	var runErr error
	if *measure {
		admin := adminURL()
		if admin == "" {
			return fmt.Errorf("-run needs a PostgreSQL superuser URL in CMMSFLOW_TEST_DATABASE_URL: run it as `make bench` (or under go run ./deploy/local/cmd/testenv --)")
		}
		packages := strings.Fields(*pkgs)
		if len(packages) == 0 {
			var err error
			if packages, err = modulePackages(ctx, root); err != nil {
				return err
			}
		}
		info := &RunInfo{
			Started: time.Now().UTC(), Commit: commit(ctx, root), Machine: readMachine(ctx, admin),
			Settings: Settings{Steps: strings.Split(*steps, ","), Bench: *bench, Benchtime: *benchtime, Count: *count,
				Packages: packages, WrkDuration: *wrkDur, WrkThreads: *wrkT, WrkConns: *wrkC,
				LatencyRuns: *latRuns, LatencyFleet: *latFleet},
		}
		r := &runner{root: root, local: local, adminURL: admin, info: info, emulator: *emulator}
		runErr = r.measure(ctx)
	}
	in := readInputs(local)
	doc, err := Render(in)
	if err != nil {
		return err
	}
	if *measure && len(in.Missing) > 0 {
		// The doc says so too; a measuring run that lost figures fails.
		runErr = errors.Join(runErr, fmt.Errorf("raw outputs missing or unreadable: %s", strings.Join(in.Missing, "; ")))
	}
	if *out == "-" {
		_, err = os.Stdout.Write(doc)
	} else {
		name := *out
		if !filepath.IsAbs(name) {
			name = filepath.Join(root, name)
		}
		if err = os.WriteFile(name, doc, 0o644); err == nil {
			fmt.Fprintln(os.Stderr, "benchreport: wrote", name)
		}
	}
	if err != nil {
		return err
	}
	return runErr
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
