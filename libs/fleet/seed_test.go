package fleet

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

var testNow = time.Date(2025, 6, 15, 10, 30, 0, 0, time.UTC)

// checksumSQL digests every seeded row by business keys (not ids).
const checksumSQL = `
SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
  SELECT concat_ws('|', 'T', code, name, email, phone, skill, active, created_at) AS x FROM technicians
  UNION ALL
  SELECT concat_ws('|', 'A', asset_tag, name, vehicle_type, make, model, year, status, commissioned_date,
         meter_reading, engine_hours, location, created_at, updated_at) FROM assets
  UNION ALL
  SELECT concat_ws('|', 'P', p.code, a.asset_tag, p.name, p.description, p.interval_value, p.interval_unit,
         p.meter_interval, p.meter_unit, p.lead_days, p.schedule_mode, p.next_due_date, p.next_due_meter,
         p.last_completed_date, p.last_completed_meter, p.end_date, p.priority, p.estimated_hours, t.code, p.active)
  FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id LEFT JOIN technicians t ON t.id = p.assigned_technician_id
  UNION ALL
  SELECT concat_ws('|', 'W', w.wo_number, a.asset_tag, p.code, w.due_date, w.type, w.status, w.priority, w.title,
         w.description, w.created_at, w.started_at, w.completed_at, w.repair_hours, t.code, w.skipped_occurrences)
  FROM work_orders w JOIN assets a ON a.id = w.asset_id LEFT JOIN maintenance_plans p ON p.id = w.plan_id
  LEFT JOIN technicians t ON t.id = w.assigned_technician_id
  UNION ALL
  SELECT concat_ws('|', 'I', sku, name, category, quantity, reorder_level, unit_cost, location, updated_at) FROM inventory_items
) s`

func seed(t *testing.T, o SeedOptions) (*pgxpool.Pool, Stats) {
	t.Helper()
	pool := pgtest.New(t)
	st, err := Seed(context.Background(), pool, o)
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return pool, st
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func tableCounts(t *testing.T, pool *pgxpool.Pool) Stats {
	t.Helper()
	return Stats{
		Technicians:      scalar[int64](t, pool, `SELECT count(*) FROM technicians`),
		Assets:           scalar[int64](t, pool, `SELECT count(*) FROM assets`),
		MaintenancePlans: scalar[int64](t, pool, `SELECT count(*) FROM maintenance_plans`),
		WorkOrders:       scalar[int64](t, pool, `SELECT count(*) FROM work_orders`),
		InventoryItems:   scalar[int64](t, pool, `SELECT count(*) FROM inventory_items`),
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	o, err := SeedOptions{Seed: 7, Now: testNow, Assets: 50}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	a, b := generate(o), generate(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same options generated different data")
	}
	o.Seed = 8
	if c := generate(o); reflect.DeepEqual(a.workOrders, c.workOrders) {
		t.Fatal("a different seed generated the same work orders")
	}
}

func TestSeedOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		o    SeedOptions
		want string
	}{
		{SeedOptions{Assets: -1}, "assets must be between 1 and 99999, got -1"},
		{SeedOptions{Technicians: 1000}, "technicians must be between 1 and 999, got 1000"},
		{SeedOptions{Years: 21}, "years must be between 1 and 20, got 21"},
		{SeedOptions{InventoryItems: -3}, "inventory items must be between 1 and 9999, got -3"},
	} {
		_, err := tc.o.normalized()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
	o, err := SeedOptions{Now: testNow}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	want := SeedOptions{Now: testNow, Assets: 300, Technicians: 12, Years: 2, InventoryItems: 60}
	if o != want {
		t.Fatalf("defaults: got %+v, want %+v", o, want)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	o := SeedOptions{Seed: 42, Now: testNow}
	p1, s1 := seed(t, o)
	p2, s2 := seed(t, o)
	if s1 != s2 {
		t.Fatalf("stats differ: %+v vs %+v", s1, s2)
	}
	if got := tableCounts(t, p1); got != s1 {
		t.Fatalf("stats %+v do not match the table counts %+v", s1, got)
	}
	c1, c2 := scalar[string](t, p1, checksumSQL), scalar[string](t, p2, checksumSQL)
	if c1 != c2 {
		t.Fatalf("checksums differ: %s vs %s", c1, c2)
	}
	p3, _ := seed(t, SeedOptions{Seed: 43, Now: testNow})
	if c3 := scalar[string](t, p3, checksumSQL); c3 == c1 {
		t.Fatal("seed 43 produced the same data as seed 42")
	}

	if s1.Assets != 300 || s1.Technicians != 12 || s1.InventoryItems != 60 {
		t.Errorf("default sizes: %+v", s1)
	}
	if s1.MaintenancePlans < 300 || s1.MaintenancePlans > 900 {
		t.Errorf("plans = %d, want 1–3 per asset", s1.MaintenancePlans)
	}
	if s1.WorkOrders < 2000 {
		t.Errorf("work orders = %d, want two years of history", s1.WorkOrders)
	}
}

// TestSeedDataIsConsistent checks the invariants the schema does not enforce
// but the pipelines rely on; each query counts violations.
func TestSeedDataIsConsistent(t *testing.T) {
	pool, _ := seed(t, SeedOptions{Seed: 3, Now: testNow})
	now := testNow
	violations := map[string]string{
		"completed before started":        `SELECT count(*) FROM work_orders WHERE completed_at < started_at`,
		"started before created":          `SELECT count(*) FROM work_orders WHERE started_at < created_at`,
		"created before commissioning":    `SELECT count(*) FROM work_orders w JOIN assets a ON a.id = w.asset_id WHERE w.created_at < a.commissioned_date`,
		"timestamps after now":            `SELECT count(*) FROM work_orders WHERE created_at > $1 OR started_at > $1 OR completed_at > $1`,
		"completed without times/hours":   `SELECT count(*) FROM work_orders WHERE status = 'COMPLETED' AND (started_at IS NULL OR completed_at IS NULL OR repair_hours IS NULL)`,
		"open but started":                `SELECT count(*) FROM work_orders WHERE status IN ('OPEN', 'CANCELLED') AND (started_at IS NOT NULL OR completed_at IS NOT NULL OR repair_hours IS NOT NULL)`,
		"in progress but not started":     `SELECT count(*) FROM work_orders WHERE status IN ('IN_PROGRESS', 'ON_HOLD') AND (started_at IS NULL OR completed_at IS NOT NULL)`,
		"preventive without occurrence":   `SELECT count(*) FROM work_orders WHERE type = 'PREVENTIVE' AND (plan_id IS NULL OR due_date IS NULL)`,
		"corrective with plan":            `SELECT count(*) FROM work_orders WHERE type = 'CORRECTIVE' AND (plan_id IS NOT NULL OR due_date IS NOT NULL)`,
		"plan of another asset":           `SELECT count(*) FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id WHERE p.asset_id <> w.asset_id`,
		"next due not after history":      `SELECT count(*) FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id WHERE w.due_date >= p.next_due_date`,
		"plan with inactive technician":   `SELECT count(*) FROM maintenance_plans p JOIN technicians t ON t.id = p.assigned_technician_id WHERE NOT t.active`,
		"active plan on idle asset":       `SELECT count(*) FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id WHERE p.active AND a.status IN ('RETIRED', 'INACTIVE')`,
		"calendar plan without due date":  `SELECT count(*) FROM maintenance_plans WHERE interval_value IS NOT NULL AND next_due_date IS NULL`,
		"meter plan without due meter":    `SELECT count(*) FROM maintenance_plans WHERE meter_interval IS NOT NULL AND next_due_meter IS NULL`,
		"plans per asset outside 1-3":     `SELECT count(*) FROM (SELECT a.id FROM assets a LEFT JOIN maintenance_plans p ON p.asset_id = a.id GROUP BY a.id HAVING count(p.id) NOT BETWEEN 1 AND 3) x`,
		"commissioned outside 0.5-12y":    `SELECT count(*) FROM assets WHERE commissioned_date > $1::date - 182 OR commissioned_date < $1::date - 4384`,
		"no odometer on a road vehicle":   `SELECT count(*) FROM assets WHERE vehicle_type <> 'forklift' AND meter_reading <= 0`,
		"no hours on a powered vehicle":   `SELECT count(*) FROM assets WHERE vehicle_type <> 'trailer' AND engine_hours <= 0`,
		"in maintenance without a job":    `SELECT count(*) FROM assets a WHERE status = 'IN_MAINTENANCE' AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.asset_id = a.id AND w.type = 'CORRECTIVE' AND w.status IN ('IN_PROGRESS', 'ON_HOLD'))`,
		"bad asset tag":                   `SELECT count(*) FROM assets WHERE asset_tag !~ '^VH-[0-9]{4}$'`,
		"bad wo number":                   `SELECT count(*) FROM work_orders WHERE wo_number !~ '^WO-[0-9]{6}$'`,
		"bad plan code":                   `SELECT count(*) FROM maintenance_plans WHERE code !~ '^PM-[0-9]{5}$'`,
		"bad technician code":             `SELECT count(*) FROM technicians WHERE code !~ '^T-[0-9]{3}$'`,
		"bad sku":                         `SELECT count(*) FROM inventory_items WHERE sku !~ '^SKU-[0-9]{4}$'`,
		"wo numbers not in created order": `SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY wo_number) AS bad FROM work_orders) x WHERE bad`,
	}
	for name, q := range violations {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, now)
		}
		if n := scalar[int64](t, pool, q, args...); n != 0 {
			t.Errorf("%s: %d rows", name, n)
		}
	}

	// The mix the pipelines and the model need is there.
	present := map[string]string{
		"every vehicle type":          `SELECT count(DISTINCT vehicle_type) = 6 FROM assets`,
		"every asset status":          `SELECT count(DISTINCT status) = 4 FROM assets`,
		"mostly active":               `SELECT avg((status = 'ACTIVE')::int) > 0.75 FROM assets`,
		"every priority":              `SELECT count(DISTINCT priority) = 4 FROM work_orders`,
		"failures skew high":          `SELECT avg((priority IN ('HIGH', 'CRITICAL'))::int) FILTER (WHERE type = 'CORRECTIVE') > avg((priority IN ('HIGH', 'CRITICAL'))::int) FILTER (WHERE type = 'PREVENTIVE') FROM work_orders`,
		"neglected occurrences":       `SELECT count(*) > 0 FROM work_orders WHERE type = 'PREVENTIVE' AND status = 'CANCELLED'`,
		"late completions":            `SELECT count(*) > 0 FROM work_orders WHERE type = 'PREVENTIVE' AND completed_at::date > due_date`,
		"mostly on time":              `SELECT avg((completed_at::date <= due_date)::int) > 0.7 FROM work_orders WHERE type = 'PREVENTIVE' AND status = 'COMPLETED'`,
		"open work":                   `SELECT count(DISTINCT status) = 3 FROM work_orders WHERE status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD')`,
		"calendar, meter, both plans": `SELECT count(DISTINCT (interval_value IS NULL, meter_interval IS NULL)) = 3 FROM maintenance_plans`,
		"floating and lead days":      `SELECT bool_or(schedule_mode = 'floating') AND bool_or(lead_days > 0) AND bool_or(meter_unit = 'hours') FROM maintenance_plans`,
		"two years of history":        `SELECT min(created_at) < $1::timestamptz - interval '23 months' FROM work_orders`,
		"assigned technicians":        `SELECT avg((assigned_technician_id IS NOT NULL)::int) > 0.9 FROM work_orders`,
		"items to reorder":            `SELECT count(*) FILTER (WHERE quantity <= reorder_level) BETWEEN 1 AND 30 FROM inventory_items`,
		"meters grow with age":        `SELECT corr(current_date - commissioned_date, meter_reading) > 0.4 FROM assets WHERE vehicle_type = 'truck'`,
	}
	for name, q := range present {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, now)
		}
		if !scalar[bool](t, pool, q, args...) {
			t.Errorf("missing: %s", name)
		}
	}

	// Ids came from the identity sequences: a plain insert does not collide.
	if _, err := pool.Exec(context.Background(),
		`INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES ('NEW-1', 'New', 'car', '2025-01-01')`); err != nil {
		t.Fatalf("insert after seed: %v", err)
	}
}

// dueShareSQL is the share of active plans due on $1 (see generate.go).
const dueShareSQL = `
SELECT avg(((p.next_due_date IS NOT NULL AND p.next_due_date - p.lead_days <= $1::date)
        OR (p.next_due_meter IS NOT NULL AND p.next_due_meter <=
            CASE p.meter_unit WHEN 'hours' THEN a.engine_hours ELSE a.meter_reading END))::int)
FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id WHERE p.active`

func TestSeedDueShare(t *testing.T) {
	for _, s := range []uint64{1, 2, 3} {
		pool, _ := seed(t, SeedOptions{Seed: s, Now: testNow})
		share := scalar[float64](t, pool, dueShareSQL, testNow)
		if share < 0.05 || share > 0.15 {
			t.Errorf("seed %d: %.1f%% of active plans due on Now, want 5–15%%", s, 100*share)
		}
		// Overdue plans have work to catch up on, not only plans due today.
		overdue := scalar[int64](t, pool, `SELECT count(*) FROM maintenance_plans WHERE active AND next_due_date - lead_days < $1::date`, testNow)
		if overdue == 0 {
			t.Errorf("seed %d: no overdue plans", s)
		}
	}
}

// TestSeedFailuresFollowAgeAndNeglect checks the signal a failure-risk model
// is meant to learn: corrective work orders per asset-year rise with age and
// with skipped preventive maintenance.
func TestSeedFailuresFollowAgeAndNeglect(t *testing.T) {
	pool, _ := seed(t, SeedOptions{Seed: 11, Now: testNow, Assets: 1200})
	const q = `
WITH x AS (
  SELECT ($1::date - a.commissioned_date) / 365.25 AS age,
         least(2, ($1::date - a.commissioned_date) / 365.25) AS exposure,
         count(w.id) FILTER (WHERE w.type = 'CORRECTIVE') AS failures,
         count(w.id) FILTER (WHERE w.type = 'PREVENTIVE' AND w.status = 'CANCELLED') AS skipped
  FROM assets a LEFT JOIN work_orders w ON w.asset_id = a.id
  WHERE a.status IN ('ACTIVE', 'IN_MAINTENANCE')
  GROUP BY a.id, a.commissioned_date)
SELECT (sum(failures) FILTER (WHERE age >= 8) / sum(exposure) FILTER (WHERE age >= 8))::float8,
       (sum(failures) FILTER (WHERE age <= 3) / sum(exposure) FILTER (WHERE age <= 3))::float8,
       (sum(failures) FILTER (WHERE skipped >= 2) / sum(exposure) FILTER (WHERE skipped >= 2))::float8,
       (sum(failures) FILTER (WHERE skipped = 0) / sum(exposure) FILTER (WHERE skipped = 0))::float8
FROM x`
	var old, young, neglected, maintained float64
	if err := pool.QueryRow(context.Background(), q, testNow).Scan(&old, &young, &neglected, &maintained); err != nil {
		t.Fatal(err)
	}
	t.Logf("failures per asset-year: age>=8 %.2f, age<=3 %.2f; >=2 skipped %.2f, none skipped %.2f", old, young, neglected, maintained)
	if old < 1.8*young {
		t.Errorf("old assets fail %.2f/yr, young %.2f/yr: want old at least 1.8× young", old, young)
	}
	if neglected < 1.4*maintained {
		t.Errorf("neglected assets fail %.2f/yr, maintained %.2f/yr: want at least 1.4×", neglected, maintained)
	}
}

func TestSeedRefusesNonEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	if empty, err := IsEmpty(ctx, pool); err != nil || !empty {
		t.Fatalf("fresh database: IsEmpty = %v, %v", empty, err)
	}
	first, err := Seed(ctx, pool, SeedOptions{Seed: 1, Now: testNow, Assets: 10})
	if err != nil {
		t.Fatal(err)
	}
	if empty, err := IsEmpty(ctx, pool); err != nil || empty {
		t.Fatalf("after seed: IsEmpty = %v, %v", empty, err)
	}
	if _, err := Seed(ctx, pool, SeedOptions{Seed: 2, Now: testNow, Assets: 10}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second Seed: got %v, want ErrNotEmpty", err)
	}
	if got := tableCounts(t, pool); got != first {
		t.Fatalf("second Seed changed the tables: %+v, want %+v", got, first)
	}

	// Any CMMS row counts, not only assets.
	other := pgtest.New(t)
	if _, err := other.Exec(ctx, `INSERT INTO inventory_items (sku, name) VALUES ('X-1', 'Gloves')`); err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(ctx, other, SeedOptions{Now: testNow, Assets: 5}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Seed over inventory: got %v, want ErrNotEmpty", err)
	}
}

func BenchmarkSeed5000(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		pool := pgtest.New(b)
		b.StartTimer()
		if _, err := Seed(context.Background(), pool, SeedOptions{Seed: 1, Now: testNow, Assets: 5000}); err != nil {
			b.Fatal(err)
		}
	}
}
