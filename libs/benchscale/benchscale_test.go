package benchscale

import (
	"slices"
	"strings"
	"testing"
)

// Sized: the defaults, each replaced by the variable that is set (an
// underscore-grouped number too); an empty variable is unset.
func TestSized(t *testing.T) {
	def := Size{WorkOrders: 1_000_000, Assets: 50_000, DuePlans: 7}
	t.Setenv(EnvWorkOrders, "3_000_000")
	t.Setenv(EnvAssets, "")
	if got, want := Sized(t, def), (Size{WorkOrders: 3_000_000, Assets: 50_000, DuePlans: 7}); got != want {
		t.Fatalf("Sized: %+v, want %+v", got, want)
	}
}

// PointSize: skipped without a size; what the environment leaves out at
// the points' proportions; every named point as its own variables give it.
func TestPointSize(t *testing.T) {
	for _, name := range []string{EnvWorkOrders, EnvAssets, EnvDuePlans} {
		t.Setenv(name, "")
	}
	ran := false
	t.Run("unset", func(t *testing.T) {
		PointSize(t)
		ran = true
	})
	if ran {
		t.Fatal("PointSize did not skip without BENCH_WORK_ORDERS or BENCH_DUE_PLANS")
	}
	t.Setenv(EnvWorkOrders, "2000000")
	if got, want := PointSize(t), (Size{WorkOrders: 2_000_000, Assets: 20_000, DuePlans: 200_000}); got != want {
		t.Errorf("work orders only: %+v, want %+v", got, want)
	}
	t.Setenv(EnvWorkOrders, "")
	t.Setenv(EnvDuePlans, "50000")
	if got, want := PointSize(t), (Size{WorkOrders: 500_000, Assets: 5_000, DuePlans: 50_000}); got != want {
		t.Errorf("due plans only: %+v, want %+v", got, want)
	}
	for _, p := range Points {
		for _, kv := range p.Env() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		if got := PointSize(t); got != p.Size {
			t.Errorf("point %s: %+v, want %+v", p.Name, got, p.Size)
		}
		if q, ok := Lookup(p.Name); !ok || q != p {
			t.Errorf("Lookup(%q) = %+v, %v", p.Name, q, ok)
		}
		if p.WorkOrders != p.Assets*WorkOrdersPerAsset || p.WorkOrders != p.DuePlans*WorkOrdersPerDuePlan {
			t.Errorf("point %s %+v: not at the curve's proportions", p.Name, p.Size)
		}
	}
	if top := Points[len(Points)-1]; top.WorkOrders != 10_000_000 || top.Assets != 100_000 || top.DuePlans != 1_000_000 {
		t.Errorf("top point %+v: issue 18 asks for 10M work orders of 100,000 assets, 1M due plans", top)
	}
	if !slices.IsSortedFunc(Points, func(a, b Point) int { return a.WorkOrders - b.WorkOrders }) {
		t.Error("the points are not in increasing size")
	}
	if got := Key(KeyDuePlans, 300_000); got != "due_plans=300000" {
		t.Errorf("Key: %q", got)
	}
}
