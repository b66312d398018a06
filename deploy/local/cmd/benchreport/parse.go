package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// GoBench is the parsed output of `go test -bench`: every result of every
// benchmark, by name without the GOMAXPROCS suffix (e.g.
// "Extract1M/work_orders_vs_copy_csv"), one Sample per -count run.
type GoBench struct {
	Results map[string][]Sample
	Pkg     map[string]string // benchmark name → import path
	CPU     string            // the "cpu:" line go test prints
	// Learners are the JSON lines BenchmarkTrain prints per learner and run.
	Learners []Learner
	// Failed lists the "--- FAIL" (a benchmark) and "FAIL\t<package>"
	// (its package, or its build) lines.
	Failed []string
	// Header is what the go step wrote around go test's output (headerKeys):
	// when it started and finished, the commit, the load averages, -count.
	Header map[string]string
}

// headerKeys are the lines "key: value" the go step writes before and after
// go test's output (benchfmt reads the first ones as configuration too).
var headerKeys = []string{"started", "finished", "commit", "load-start", "load-end", "count"}

// Sample is one benchmark result: value by unit, as printed (ns/op,
// plans/s, peak-heap-MB, ...).
type Sample map[string]float64

// Learner is one model's holdout quality and training time, from
// BenchmarkTrain (learner "go-…") or compare_sklearn.py ("sklearn-…").
type Learner struct {
	Learner      string  `json:"learner"`
	ROCAUC       float64 `json:"roc_auc"`
	PRAUC        float64 `json:"pr_auc"`
	TrainSeconds float64 `json:"train_seconds_best"`
	RowsTrain    int     `json:"rows_train"`
	RowsHoldout  int     `json:"rows_holdout"`
}

// ParseGoBench reads go test -bench output with golang.org/x/perf/benchfmt;
// custom units from b.ReportMetric are kept as printed.
func ParseGoBench(r io.Reader, name string) (*GoBench, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	g := &GoBench{Results: map[string][]Sample{}, Pkg: map[string]string{}, Header: map[string]string{}}
	br := benchfmt.NewReader(bytes.NewReader(data), name)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.Result:
			key := benchName(rec.Name)
			s := Sample{}
			for _, v := range rec.Values {
				// Reader tidies ns/op to sec/op and MB to B; keep the units
				// the benchmarks print.
				if v.OrigUnit != "" {
					s[v.OrigUnit] = v.OrigValue
				} else {
					s[v.Unit] = v.Value
				}
			}
			g.Results[key] = append(g.Results[key], s)
			g.Pkg[key] = rec.GetConfig("pkg")
			if cpu := rec.GetConfig("cpu"); cpu != "" {
				g.CPU = cpu
			}
		case *benchfmt.SyntaxError:
			return nil, rec
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	// The lines benchfmt ignores: learner JSON (keys sorted, so "learner"
	// is not first), failures, and the step's header.
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "{") && strings.Contains(line, `"learner"`):
			var l Learner
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				return nil, fmt.Errorf("%s: learner line %q: %w", name, line, err)
			}
			g.Learners = append(g.Learners, l)
		case strings.HasPrefix(line, "FAIL\t") || strings.HasPrefix(line, "--- FAIL"):
			g.Failed = append(g.Failed, line)
		default:
			if k, v, ok := strings.Cut(line, ": "); ok && slices.Contains(headerKeys, k) {
				g.Header[k] = v
			}
		}
	}
	return g, sc.Err()
}

// benchName is a benchmark's full name without "Benchmark" and without the
// trailing -GOMAXPROCS.
func benchName(n benchfmt.Name) string {
	base, parts := n.Parts()
	var b strings.Builder
	b.Write(base)
	for _, p := range parts {
		if len(p) > 0 && p[0] == '-' {
			continue
		}
		b.Write(p)
	}
	return b.String()
}

// Values returns the values of unit over the runs of benchmark name.
func (g *GoBench) Values(name, unit string) []float64 {
	if g == nil {
		return nil
	}
	var out []float64
	for _, s := range g.Results[name] {
		if v, ok := s[unit]; ok {
			out = append(out, v)
		}
	}
	return out
}

// WRK is one RESULT line of services/control/bench/api.lua.
type WRK struct {
	Name         string
	ReqPerSec    float64
	P50, P90     float64 // ms
	P99, Max     float64 // ms
	Requests     int
	SocketErrors int
	Non2xx       int
	CPUCores     float64 // control's CPU over the run (api.sh); 0 if absent
	Missing      bool    // not in this run's outputs
}

// APIRun is what api.sh (and the baseline run) printed.
type APIRun struct {
	Results     map[string]WRK
	LoadBefore  string // "load average before the runs: …"
	Remote      string // control's non-loopback connections ("none")
	Seeded      string // "seeded runs: …" line
	MachineLine string
}

// ParseAPI reads wrk RESULT lines and api.sh's summary lines.
func ParseAPI(r io.Reader) (*APIRun, error) {
	a := &APIRun{Results: map[string]WRK{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "RESULT "):
			w, err := parseResultLine(line)
			if err != nil {
				return nil, err
			}
			a.Results[w.Name] = w
		case strings.HasPrefix(line, "load average before the runs: "):
			a.LoadBefore, _, _ = strings.Cut(strings.TrimPrefix(line, "load average before the runs: "), " (")
		case strings.HasPrefix(line, "control's connections to anything but loopback: "):
			a.Remote = strings.TrimPrefix(line, "control's connections to anything but loopback: ")
		case strings.HasPrefix(line, "seeded runs: "):
			a.Seeded = line
		case strings.HasPrefix(line, "machine: "):
			a.MachineLine = strings.TrimPrefix(line, "machine: ")
		}
	}
	return a, sc.Err()
}

func parseResultLine(line string) (WRK, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return WRK{}, fmt.Errorf("short RESULT line %q", line)
	}
	w := WRK{Name: f[1]}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return WRK{}, fmt.Errorf("RESULT line %q: field %q", line, kv)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return WRK{}, fmt.Errorf("RESULT line %q: %s: %w", line, k, err)
		}
		switch k {
		case "req/s":
			w.ReqPerSec = x
		case "p50_ms":
			w.P50 = x
		case "p90_ms":
			w.P90 = x
		case "p99_ms":
			w.P99 = x
		case "max_ms":
			w.Max = x
		case "requests":
			w.Requests = int(x)
		case "socket_errors":
			w.SocketErrors = int(x)
		case "non2xx":
			w.Non2xx = int(x)
		case "control_cpu_cores":
			w.CPUCores = x
		}
	}
	return w, nil
}

// Sklearn is compare_sklearn.py's output: its learners, or why it did not
// run (a line "unavailable: …").
type Sklearn struct {
	Learners    []Learner
	Unavailable string
	Version     string // "sklearn 1.2.1"
}

// ParseSklearn reads the file the sklearn step wrote.
func ParseSklearn(r io.Reader) (*Sklearn, error) {
	s := &Sklearn{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "{"):
			var l Learner
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				return nil, fmt.Errorf("sklearn line %q: %w", line, err)
			}
			s.Learners = append(s.Learners, l)
		case strings.HasPrefix(line, "unavailable: "):
			s.Unavailable = strings.TrimPrefix(line, "unavailable: ")
		case strings.HasPrefix(line, "version: "):
			s.Version = strings.TrimPrefix(line, "version: ")
		}
	}
	return s, sc.Err()
}

// readJSON decodes the JSON file name into v.
func readJSON(name string, v any) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// median of xs (xs is not modified); NaN-free input assumed. 0 when empty.
func median(xs []float64) float64 {
	return quantile(xs, 0.5)
}

// quantile is the q-quantile of xs by linear interpolation between the
// closest ranks (what benchstat and most tools do for the median); 0 when
// empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}
