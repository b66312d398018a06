package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	localpubsub "github.com/cmmsflow/cmmsflow/deploy/local/pubsub"
	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// RunInfo is the machine and the settings of one `make bench`, written at
// the start of the run (bench-run.json) so the report states what the
// figures were measured on, not what the machine is when the doc is rendered.
type RunInfo struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Commit   string    `json:"commit"` // short hash, "+dirty" with uncommitted changes
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	// Errors are the steps that failed; the report lists them.
	Errors []string `json:"errors,omitempty"`
}

// Machine is read at run time.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemGiB    int    `json:"mem_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Postgres  string `json:"postgres"`
	PGFast    bool   `json:"pg_fast"` // fsync=off, synchronous_commit=off (testenv's server)
	Wrk       string `json:"wrk"`
	Python    string `json:"python"`
	LoadStart string `json:"load_start"` // /proc/loadavg at the start
}

// Settings are the knobs of the run.
type Settings struct {
	Steps        []string `json:"steps"`
	Bench        string   `json:"bench"`
	Benchtime    string   `json:"benchtime"`
	Count        int      `json:"count"`
	Packages     []string `json:"packages"`
	WrkDuration  string   `json:"wrk_duration"`
	WrkThreads   int      `json:"wrk_threads"`
	WrkConns     int      `json:"wrk_connections"`
	LatencyRuns  int      `json:"latency_runs"`
	LatencyFleet int      `json:"latency_assets"`
	// ScalePoints are the points of the scale curve the scale step
	// measures (libs/benchscale: "1M", "3M", "10M").
	ScalePoints []string `json:"scale_points,omitempty"`
	// Against and Pairs are, for an against run (against.go), the earlier
	// commit and how many interleaved pairs to measure.
	Against string `json:"against,omitempty"`
	Pairs   int    `json:"pairs,omitempty"`
}

// Raw output files under the state folder (.local).
const (
	fileRun      = "bench-run.json"
	fileGo       = "bench.txt"
	filePrevious = "bench-previous.txt" // the go step's output of the run before (keepPrevious)
	fileSplit    = "bench-split.csv"
	fileSklearn  = "bench-sklearn.txt"
	fileAPI      = "bench-api.txt"
	fileBaseline = "bench-api-baseline.txt"
	fileLatency  = "bench-latency.json"
	fileStackLog = "bench-stack.log"
	fileScale    = "bench-scale.txt"
)

// stepFiles are the raw outputs of each step.
var stepFiles = map[string][]string{
	"go":       {fileGo, fileSplit},
	"sklearn":  {fileSklearn},
	"api":      {fileAPI, "bench-api-get_runs.txt", "bench-api-trigger.txt"},
	"baseline": {fileBaseline},
	"latency":  {fileLatency},
	"scale":    {fileScale},
}

// Steps of a run, in order.
var allSteps = []string{"go", "sklearn", "api", "baseline", "latency", "scale"}

type runner struct {
	root, local string
	adminURL    string
	info        *RunInfo
	emulator    string
}

// measure runs the steps named in info.Settings.Steps, writing their raw
// output under r.local. A failed step is recorded in info.Errors and the
// others still run, so one broken package does not lose the rest.
func (r *runner) measure(ctx context.Context) error {
	if err := r.writeInfo(); err != nil {
		return err
	}
	for _, step := range r.info.Settings.Steps {
		t := time.Now()
		fmt.Fprintf(os.Stderr, "benchreport: == %s\n", step)
		if step == "go" {
			if err := keepPrevious(r.path(fileGo), r.path(filePrevious)); err != nil {
				return err
			}
		}
		// A failed step must not leave an earlier run's figures behind.
		for _, name := range stepFiles[step] {
			if err := os.Remove(r.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		var err error
		switch step {
		case "go":
			err = r.goBench(ctx)
		case "sklearn":
			err = r.sklearn(ctx)
		case "api":
			err = r.api(ctx)
		case "baseline":
			err = r.baseline(ctx)
		case "latency":
			err = r.latency(ctx)
		case "scale":
			err = r.scale(ctx)
		default:
			err = fmt.Errorf("unknown step %q (want %s)", step, strings.Join(allSteps, ", "))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s failed: %v\n", step, err)
			r.info.Errors = append(r.info.Errors, step+": "+firstLine(err.Error()))
		}
		fmt.Fprintf(os.Stderr, "benchreport: %s took %s\n", step, time.Since(t).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	r.info.Finished = time.Now().UTC()
	if err := r.writeInfo(); err != nil {
		return err
	}
	if len(r.info.Errors) > 0 {
		return fmt.Errorf("%d step(s) failed: %s", len(r.info.Errors), strings.Join(r.info.Errors, "; "))
	}
	return nil
}

func (r *runner) path(name string) string { return filepath.Join(r.local, name) }

func (r *runner) writeInfo() error { return writeJSON(r.path(fileRun), r.info) }

// command runs name args in the repository root with its output teed to
// out (a file under .local) and to stdout.
func (r *runner) command(ctx context.Context, out string, env []string, name string, args ...string) error {
	f, err := os.Create(r.path(out))
	if err != nil {
		return err
	}
	defer f.Close()
	return r.commandTo(ctx, io.MultiWriter(f, os.Stdout), env, name, args...)
}

// commandTo runs name args in the repository root with its output to w.
func (r *runner) commandTo(ctx context.Context, w io.Writer, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// goBench runs every benchmark of the workspace, as `make bench` always has
// (but the scale benchmarks, the scale step's): each paired one
// (libs/benchpair) -count interleaved pairs, the others -count runs. The output starts and ends with lines of its own (headerKeys)
// saying when and where it ran, so that it still says so once it is the
// previous run's. BenchmarkTrain writes the train/holdout split for the
// sklearn step.
func (r *runner) goBench(ctx context.Context) error {
	s := r.info.Settings
	f, err := os.Create(r.path(fileGo))
	if err != nil {
		return err
	}
	defer f.Close()
	w := io.MultiWriter(f, os.Stdout)
	writeHeader(w, r.info.Commit, s.Count)
	args := append([]string{"test", "-run", "^$", "-bench", s.Bench, "-benchtime", s.Benchtime,
		"-count", strconv.Itoa(s.Count), "-timeout", "60m"}, s.Packages...)
	// Each benchmark at its own size: the scale benchmarks, which run when
	// a size is set, are the scale step's.
	env := []string{"BENCH_OUT=" + r.path(fileSplit), benchscale.EnvWorkOrders + "=", benchscale.EnvDuePlans + "="}
	err = r.commandTo(ctx, w, env, "go", args...)
	writeFooter(w)
	return err
}

// loadAverage is the machine's 1-, 5- and 15-minute load averages, "" when
// unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// sklearn trains scikit-learn on BenchmarkTrain's split with
// services/trainer/bench/compare_sklearn.py, as many fits per model as the
// Go side had (-count); when python3 with scikit-learn and pandas is
// missing, the file says so and the report's row does too.
func (r *runner) sklearn(ctx context.Context) error {
	unavailable := func(why string) error {
		fmt.Fprintln(os.Stderr, "benchreport: sklearn comparison skipped:", why)
		return os.WriteFile(r.path(fileSklearn), []byte("unavailable: "+why+"\n"), 0o644)
	}
	py, version := findSklearn(ctx)
	if py == "" {
		return unavailable("no python3 with scikit-learn and pandas on this machine (Debian: apt-get install python3-sklearn python3-pandas)")
	}
	if _, err := os.Stat(r.path(fileSplit)); err != nil {
		return unavailable("BenchmarkTrain wrote no split in this run")
	}
	f, err := os.Create(r.path(fileSklearn))
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "version: scikit-learn %s, %s\n", version, py)
	cmd := exec.CommandContext(ctx, py, "services/trainer/bench/compare_sklearn.py", r.path(fileSplit), strconv.Itoa(r.info.Settings.Count))
	cmd.Dir = r.root
	cmd.Stdout, cmd.Stderr = io.MultiWriter(f, os.Stdout), os.Stderr
	return cmd.Run()
}

// findSklearn returns a python3 that imports sklearn and pandas (Debian's
// /usr/bin/python3 first: a pyenv python3 earlier on PATH may lack them).
func findSklearn(ctx context.Context) (python, version string) {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		out, err := exec.CommandContext(ctx, py, "-c", "import sklearn, pandas; print(sklearn.__version__)").Output()
		if err == nil {
			return py, strings.TrimSpace(string(out))
		}
	}
	return "", ""
}

// api runs services/control/bench/api.sh (wrk on control's HTTP API).
func (r *runner) api(ctx context.Context) error {
	s := r.info.Settings
	return r.command(ctx, fileAPI, wrkEnv(s), "bash", "services/control/bench/api.sh")
}

func wrkEnv(s Settings) []string {
	return []string{"BENCH_DURATION=" + s.WrkDuration, "BENCH_THREADS=" + strconv.Itoa(s.WrkThreads),
		"BENCH_CONNECTIONS=" + strconv.Itoa(s.WrkConns)}
}

// baselineBody is what the trivial handler answers a GET with: a fixed JSON
// body about the size of a 20-run page of GET /v1/runs.
var baselineBody = func() []byte {
	var b strings.Builder
	b.WriteString(`{"runs":[`)
	for i := 0; b.Len() < 6380; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"run_id":"scheduled__2026-11-27T%02d:00:00+00:00","state":"success"}`, i%24)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

// baseline runs the same wrk script, threads, connections and duration
// against a trivial net/http server in this process: the most this machine
// serves over loopback with wrk beside it, for GET and for POST.
func (r *runner) baseline(ctx context.Context) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (the api step installs it)")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(baselineBody)
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"run":{"run_id":"manual__2026-11-27T00:00:00+00:00","state":"queued"},"created":true}`)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	base := "http://" + l.Addr().String()

	f, err := os.Create(r.path(fileBaseline))
	if err != nil {
		return err
	}
	defer f.Close()
	s := r.info.Settings
	for _, c := range []struct{ name, method, path string }{
		{"baseline_get", "GET", "/v1/runs?page_size=20"},
		{"baseline_post", "POST", "/v1/pipelines/preventive_maintenance:trigger"},
	} {
		fmt.Fprintf(io.MultiWriter(f, os.Stdout), "\n== wrk -t%d -c%d -d%s --latency -s services/control/bench/api.lua (%s) %s%s (trivial net/http handler)\n",
			s.WrkThreads, s.WrkConns, s.WrkDuration, c.method, base, c.path)
		cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(s.WrkThreads), "-c"+strconv.Itoa(s.WrkConns), "-d"+s.WrkDuration,
			"--latency", "-s", "services/control/bench/api.lua", base+c.path)
		cmd.Dir = r.root
		cmd.Env = append(os.Environ(), "BENCH_TOKEN=baseline", "BENCH_METHOD="+c.method, "BENCH_NAME="+c.name)
		cmd.Stdout, cmd.Stderr = io.MultiWriter(f, os.Stdout), os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("wrk %s: %w", c.name, err)
		}
	}
	return nil
}

// latency measures trigger → last step on the local stack.
func (r *runner) latency(ctx context.Context) error {
	logf, err := os.Create(r.path(fileStackLog))
	if err != nil {
		return err
	}
	defer logf.Close()
	s := r.info.Settings
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	lat, err := measureLatency(ctx, latencyOptions{Root: r.root, AdminURL: r.adminURL, Runs: s.LatencyRuns,
		Assets: s.LatencyFleet, Emulator: r.emulator, Log: logf, RunTimeout: 5 * time.Minute})
	if err != nil {
		return fmt.Errorf("%w (stack logs in %s)", err, r.path(fileStackLog))
	}
	return writeJSON(r.path(fileLatency), lat)
}

func resolveEmulator(kind string) string {
	if kind == "" || kind == stack.EmulatorAuto {
		if localpubsub.CloudSDKAvailable() {
			return stack.EmulatorCloudSDK
		}
		return stack.EmulatorEmbedded
	}
	return kind
}

// readMachine reads the machine's description at run time.
func readMachine(ctx context.Context, adminURL string) Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = int(kb/(1<<20) + 0.5)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.LoadStart = loadAverage()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "wrk", "-v").CombinedOutput(); len(out) > 0 || err == nil {
		if f := strings.Fields(string(out)); len(f) >= 2 && f[0] == "wrk" {
			m.Wrk = f[0] + " " + f[1]
		}
	}
	if py, v := findSklearn(ctx); py != "" {
		if out, err := exec.CommandContext(ctx, py, "--version").Output(); err == nil {
			m.Python = strings.TrimSpace(string(out)) + ", scikit-learn " + v
		}
	}
	if adminURL != "" {
		if c, err := pgx.Connect(ctx, adminURL); err == nil {
			var fsync, sync string
			_ = c.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
				Scan(&m.Postgres, &fsync, &sync)
			m.Postgres, _, _ = strings.Cut(m.Postgres, " ")
			m.PGFast = fsync == "off" && sync == "off"
			_ = c.Close(ctx)
		}
	}
	return m
}

// commit is the checkout's short commit, "+dirty" with uncommitted changes.
func commit(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// adminURL is the test server's superuser URL that testenv passes.
func adminURL() string { return os.Getenv(pgtest.EnvVar) }
