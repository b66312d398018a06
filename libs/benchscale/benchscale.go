// Package benchscale sizes the benchmarks from the environment, the same
// way in every module, and names the points of the scale curve that `make
// bench` measures (issue 18):
//
//	BENCH_WORK_ORDERS  work orders
//	BENCH_ASSETS       assets (vehicles)
//	BENCH_DUE_PLANS    maintenance plans due (pmgen)
//
// A benchmark of one size reads them with Sized, its own sizes as the
// defaults. The scale benchmarks (BenchmarkScale in each stage's package)
// read them with PointSize and run only when BENCH_WORK_ORDERS or
// BENCH_DUE_PLANS is set: make bench's run of every benchmark
// (-bench .) leaves them out, and its scale step runs them once per point:
//
//	BENCH_WORK_ORDERS=3000000 BENCH_ASSETS=30000 BENCH_DUE_PLANS=300000 \
//	  go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/extractor/internal/extract/
package benchscale

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// The environment variables.
const (
	EnvWorkOrders = "BENCH_WORK_ORDERS"
	EnvAssets     = "BENCH_ASSETS"
	EnvDuePlans   = "BENCH_DUE_PLANS"
)

// Size is a benchmark's size.
type Size struct {
	WorkOrders, Assets, DuePlans int
}

// A Point of the scale curve: a size and its name.
type Point struct {
	Name string // "1M": its work orders
	Size
}

// Points are the scale curve's points. The fleet grows with its history:
// 100 work orders per asset over three years at every point, up to 10M work
// orders of 100,000 assets. pmgen's size is its due plans (one per asset),
// 100,000 to 1,000,000.
var Points = []Point{
	{"1M", Size{WorkOrders: 1_000_000, Assets: 10_000, DuePlans: 100_000}},
	{"3M", Size{WorkOrders: 3_000_000, Assets: 30_000, DuePlans: 300_000}},
	{"10M", Size{WorkOrders: 10_000_000, Assets: 100_000, DuePlans: 1_000_000}},
}

// Per asset and per due plan at a point of the curve: PointSize fills in what
// the environment leaves out with these.
const (
	WorkOrdersPerAsset   = 100
	WorkOrdersPerDuePlan = 10
)

// The keys of a scale benchmark's size in its name: a stage sized by its
// work orders runs BenchmarkScale/work_orders=<n>/<ours>_vs_<baseline>,
// pmgen BenchmarkScale/due_plans=<n>/… (Key).
const (
	KeyWorkOrders = "work_orders"
	KeyDuePlans   = "due_plans"
)

// Key is the part of a scale benchmark's name that gives its size:
// Key(KeyWorkOrders, 1000000) is "work_orders=1000000".
func Key(key string, n int) string { return key + "=" + strconv.Itoa(n) }

// Lookup is the point named name ("1M").
func Lookup(name string) (Point, bool) {
	for _, p := range Points {
		if p.Name == name {
			return p, true
		}
	}
	return Point{}, false
}

// Env is s as the environment variables ("BENCH_WORK_ORDERS=1000000", …).
func (s Size) Env() []string {
	return []string{EnvWorkOrders + "=" + strconv.Itoa(s.WorkOrders), EnvAssets + "=" + strconv.Itoa(s.Assets),
		EnvDuePlans + "=" + strconv.Itoa(s.DuePlans)}
}

// Sized is def with each size the environment sets instead.
func Sized(tb testing.TB, def Size) Size {
	tb.Helper()
	s := def
	for _, v := range []struct {
		name string
		n    *int
	}{{EnvWorkOrders, &s.WorkOrders}, {EnvAssets, &s.Assets}, {EnvDuePlans, &s.DuePlans}} {
		if n, ok := lookup(tb, v.name); ok {
			*v.n = n
		}
	}
	return s
}

// PointSize is the size of a scale benchmark's run: the environment's,
// what it leaves out taken from the rest at the points' proportions (100
// work orders per asset, 10 per due plan). It skips the benchmark when
// neither BENCH_WORK_ORDERS nor BENCH_DUE_PLANS is set.
func PointSize(tb testing.TB) Size {
	tb.Helper()
	s := Sized(tb, Size{})
	switch {
	case s.WorkOrders == 0 && s.DuePlans == 0:
		tb.Skipf("a scale benchmark: set %s or %s (make bench runs it at each point of the curve)", EnvWorkOrders, EnvDuePlans)
	case s.WorkOrders == 0:
		s.WorkOrders = s.DuePlans * WorkOrdersPerDuePlan
	case s.DuePlans == 0:
		s.DuePlans = max(1, s.WorkOrders/WorkOrdersPerDuePlan)
	}
	if s.Assets == 0 {
		s.Assets = max(1, s.WorkOrders/WorkOrdersPerAsset)
	}
	return s
}

// lookup reads a positive integer ("1_000_000" allowed) from the
// environment; unset or empty is not set.
func lookup(tb testing.TB, name string) (int, bool) {
	v := os.Getenv(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n, true
}
