package fleet

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// assetState is what Shift changes of an asset, with its corrective work
// orders in the lookback window before testNow: the seeded ones and Shift's.
type assetState struct {
	Tag, Status                 string
	Commissioned                time.Time
	Year                        *int32
	Km, Hours                   float64
	PlanKm, PlanHours           *float64 // sum of the plans' next due meters by unit
	Corrective, ShiftCorrective int64
}

const assetStateSQL = `
SELECT a.asset_tag, a.status, a.commissioned_date, a.year, a.meter_reading::float8, a.engine_hours::float8,
       (SELECT sum(next_due_meter)::float8 FROM maintenance_plans p WHERE p.asset_id = a.id AND p.meter_unit = 'km'),
       (SELECT sum(next_due_meter)::float8 FROM maintenance_plans p WHERE p.asset_id = a.id AND p.meter_unit = 'hours'),
       (SELECT count(*) FROM work_orders w WHERE w.asset_id = a.id AND w.type = 'CORRECTIVE' AND w.wo_number NOT LIKE 'SHIFT-%'
          AND w.created_at >= greatest($1::timestamptz, a.commissioned_date::timestamptz) AND w.created_at < $2),
       (SELECT count(*) FROM work_orders w WHERE w.asset_id = a.id AND w.type = 'CORRECTIVE' AND w.wo_number LIKE 'SHIFT-%'
          AND w.created_at >= greatest($1::timestamptz, a.commissioned_date::timestamptz) AND w.created_at < $2)
FROM assets a ORDER BY a.asset_tag`

func assetStates(t *testing.T, pool *pgxpool.Pool) []assetState {
	t.Helper()
	rows, err := pool.Query(context.Background(), assetStateSQL, testNow.AddDate(-1, 0, 0), testNow)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[assetState])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func shift(t *testing.T, pool *pgxpool.Pool, o ShiftOptions) ShiftStats {
	t.Helper()
	st, err := Shift(context.Background(), pool, o)
	if err != nil {
		t.Fatalf("Shift(%+v): %v", o, err)
	}
	return st
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestShiftAgesTheFleet(t *testing.T) {
	pool, _ := seed(t, SeedOptions{Seed: 42, Now: testNow, Assets: 80})
	before := assetStates(t, pool)
	st := shift(t, pool, ShiftOptions{AgeYears: 6, Seed: 1, Now: testNow})
	after := assetStates(t, pool)
	if st.AssetsAged != int64(len(before)) || st.WorkOrdersAdded != 0 || st.WorkOrdersRemoved != 0 {
		t.Fatalf("stats = %+v, want every one of %d assets aged and no work orders", st, len(before))
	}
	today := time.Date(testNow.Year(), testNow.Month(), testNow.Day(), 0, 0, 0, 0, time.UTC)
	const days = 2191 // int(6 × 365.25)
	for i, b := range before {
		a := after[i]
		if got := int(b.Commissioned.Sub(a.Commissioned) / day); got != days {
			t.Errorf("%s: commissioned %s → %s, %d days earlier, want %d", b.Tag, b.Commissioned, a.Commissioned, got, days)
		}
		if *a.Year-*b.Year != int32(a.Commissioned.Year()-b.Commissioned.Year()) {
			t.Errorf("%s: model year %d → %d, commissioned %d → %d", b.Tag, *b.Year, *a.Year, b.Commissioned.Year(), a.Commissioned.Year())
		}
		// The usage model: meters grow linearly from commissioning.
		ratio := today.Sub(a.Commissioned).Hours() / today.Sub(b.Commissioned).Hours()
		if !near(a.Km, b.Km*ratio, 0.051) || !near(a.Hours, b.Hours*ratio, 0.051) {
			t.Errorf("%s: meters %.1f km %.1f h → %.1f km %.1f h, want ×%.3f", b.Tag, b.Km, b.Hours, a.Km, a.Hours, ratio)
		}
		if ratio < 1.4 || a.Km <= b.Km && b.Km > 0 {
			t.Errorf("%s: ratio %.3f, km %.1f → %.1f: the asset did not age", b.Tag, ratio, b.Km, a.Km)
		}
		// The plans moved with the asset's meters.
		checkPlanMeter(t, b.Tag+" km plans", b.PlanKm, a.PlanKm, a.Km-b.Km)
		checkPlanMeter(t, b.Tag+" hour plans", b.PlanHours, a.PlanHours, a.Hours-b.Hours)
		if a.Corrective != b.Corrective || a.ShiftCorrective != 0 {
			t.Errorf("%s: an age shift changed the breakdowns: %+v → %+v", b.Tag, b, a)
		}
	}
}

// checkPlanMeter checks that the sum of an asset's plans' next due meters
// (nil without such plans) moved by delta per plan; the sum moves by a
// multiple of delta.
func checkPlanMeter(t *testing.T, what string, before, after *float64, delta float64) {
	t.Helper()
	if (before == nil) != (after == nil) {
		t.Fatalf("%s: %v → %v", what, before, after)
	}
	if before == nil || delta == 0 {
		return
	}
	n := math.Round((*after - *before) / delta)
	if n < 1 || !near(*after-*before, n*delta, 0.001) {
		t.Errorf("%s: next due meters %.1f → %.1f, not moved by a multiple of %.1f", what, *before, *after, delta)
	}
}

func TestShiftMultipliesBreakdowns(t *testing.T) {
	pool, _ := seed(t, SeedOptions{Seed: 42, Now: testNow, Assets: 80})
	before := assetStates(t, pool)
	st := shift(t, pool, ShiftOptions{FailureRate: 3, Seed: 1, Now: testNow})
	after := assetStates(t, pool)
	var base, added int64
	for i, b := range before {
		a := after[i]
		if a.Commissioned != b.Commissioned || a.Km != b.Km {
			t.Errorf("%s: a failure shift aged the asset: %+v → %+v", b.Tag, b, a)
		}
		want := 2 * b.Corrective // (3 − 1) × n, no fraction
		if b.Status != "ACTIVE" && b.Status != "IN_MAINTENANCE" {
			want = 0
		}
		if a.ShiftCorrective != want || a.Corrective != b.Corrective {
			t.Errorf("%s (%s): %d corrective work orders in the window, %d added, want %d added",
				b.Tag, b.Status, b.Corrective, a.ShiftCorrective, want)
		}
		base += b.Corrective
		added += a.ShiftCorrective
	}
	if st.WorkOrdersAdded != added || added < 20 {
		t.Fatalf("stats %+v, %d added in the windows over %d seeded: want a fleet with breakdowns, all counted", st, added, base)
	}
	// Added like the generator's breakdowns: numbered in order of creation,
	// valid statuses (the schema's CHECKs passed), some still open at Now.
	if got := scalar[int64](t, pool, `SELECT count(*) FROM work_orders WHERE wo_number LIKE 'SHIFT-%'
		AND type = 'CORRECTIVE' AND plan_id IS NULL AND title <> '' AND created_at < $1`, testNow); got != added {
		t.Fatalf("%d SHIFT- corrective work orders before Now, want %d", got, added)
	}
	latest := scalar[string](t, pool, `SELECT wo_number FROM work_orders WHERE wo_number LIKE 'SHIFT-%' ORDER BY created_at DESC, wo_number DESC LIMIT 1`)
	if want := fmt.Sprintf("SHIFT-%06d", added); latest != want {
		t.Fatalf("the latest added work order is %s, want %s", latest, want)
	}
}

// TestShiftIsDeterministicAndIdempotent: the same seed and options give the
// same rows on two databases; shifting again changes nothing; another shift
// replaces it, and the zero shift restores the seeded fleet.
func TestShiftIsDeterministicAndIdempotent(t *testing.T) {
	so := SeedOptions{Seed: 42, Now: testNow, Assets: 60}
	o := ShiftOptions{AgeYears: 6, FailureRate: 2.5, Seed: 9, Now: testNow}
	p1, _ := seed(t, so)
	p2, _ := seed(t, so)
	seeded := scalar[string](t, p1, checksumSQL)
	seededStates := assetStates(t, p1)
	first := shift(t, p1, o)
	shift(t, p2, o)
	c1, c2 := scalar[string](t, p1, checksumSQL), scalar[string](t, p2, checksumSQL)
	if c1 != c2 || c1 == seeded {
		t.Fatalf("checksums: seeded %s, shifted %s and %s: want two equal shifted fleets", seeded, c1, c2)
	}
	again := shift(t, p1, o)
	if got := scalar[string](t, p1, checksumSQL); got != c1 {
		t.Fatal("shifting twice with the same options changed the fleet")
	}
	if again.AssetsAged != 0 || again.WorkOrdersRemoved != first.WorkOrdersAdded || again.WorkOrdersAdded != first.WorkOrdersAdded {
		t.Fatalf("second shift %+v after %+v: want no asset moved and the same work orders replaced", again, first)
	}
	if shift(t, p2, ShiftOptions{FailureRate: 2.5, Seed: 10, Now: testNow}); scalar[string](t, p2, checksumSQL) == c1 {
		t.Fatal("another seed drew the same breakdowns")
	}
	shift(t, p1, ShiftOptions{Now: testNow})
	restored := assetStates(t, p1)
	for i, s := range seededStates {
		r := restored[i]
		if r.Commissioned != s.Commissioned || *r.Year != *s.Year || r.ShiftCorrective != 0 ||
			!near(r.Km, s.Km, 0.11) || !near(r.Hours, s.Hours, 0.11) {
			t.Errorf("%s: seeded %+v, restored %+v", s.Tag, s, r)
		}
	}
}

func TestShiftOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		o    ShiftOptions
		want string
	}{
		{ShiftOptions{AgeYears: -1}, "age shift must be between 0 and 20 years, got -1"},
		{ShiftOptions{AgeYears: math.NaN()}, "age shift must be between 0 and 20 years, got NaN"},
		{ShiftOptions{FailureRate: 0.5}, "failure rate factor must be between 1 and 10, got 0.5"},
		{ShiftOptions{FailureRate: 11}, "failure rate factor must be between 1 and 10, got 11"},
	} {
		if _, err := tc.o.normalized(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
	o, err := ShiftOptions{Now: testNow}.normalized()
	if err != nil || o.FailureRate != 1 {
		t.Fatalf("defaults: %+v, %v: want failure rate 1", o, err)
	}
}
