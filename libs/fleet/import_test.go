package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// importErrors runs Import and returns its error lines; it fails the test
// when Import does not return an *ImportError.
func importErrors(t *testing.T, pool *pgxpool.Pool, dir string) []string {
	t.Helper()
	st, err := Import(context.Background(), pool, dir)
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("Import(%s) = %+v, %v; want an *ImportError", dir, st, err)
	}
	if st != (Stats{}) {
		t.Errorf("failed import reported stats %+v", st)
	}
	lines := make([]string, len(ie.Errors))
	for i, e := range ie.Errors {
		lines[i] = e.String()
	}
	return lines
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("errors differ\n--- got\n%s\n--- want\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

func TestImportGoodFiles(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	st, err := Import(ctx, pool, "testdata/good")
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	want := Stats{Technicians: 3, Assets: 3, MaintenancePlans: 4, WorkOrders: 3, InventoryItems: 3}
	if st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	if got := tableCounts(t, pool); got != want {
		t.Fatalf("table counts = %+v, want %+v", got, want)
	}

	// Values, defaults and derived fields as documented in docs/csv-format.md.
	checks := []struct {
		name, sql string
		want      string
	}{
		{"quoted name with comma", `SELECT name || '/' || skill || '/' || active FROM technicians WHERE code = 'T-102'`, "Okafor, James/electrical/true"},
		{"technician defaults", `SELECT phone || '/' || skill || '/' || active FROM technicians WHERE code = 'T-103'`, "/general/false"},
		{"BOM stripped, numbers", `SELECT asset_tag || '/' || meter_reading || '/' || engine_hours || '/' || year FROM assets WHERE name = 'Delivery van 1'`, "A-100/84500.5/2100.0/2021"},
		{"asset defaults", `SELECT status || '/' || meter_reading || '/' || coalesce(year::text, 'null') || '/' || location FROM assets WHERE asset_tag = 'A-102'`, "ACTIVE/0.0/null/"},
		{"multi-line description", `SELECT description FROM maintenance_plans WHERE code = 'P-1'`, "Oil and filter,\nwhichever comes first"},
		{"plan fields", `SELECT concat_ws('/', p.interval_value, p.interval_unit, p.meter_interval, p.meter_unit, p.lead_days, p.schedule_mode, p.next_due_date, p.next_due_meter, p.priority, p.estimated_hours, t.code, p.active) FROM maintenance_plans p JOIN technicians t ON t.id = p.assigned_technician_id WHERE p.code = 'P-1'`,
			"6/months/15000.0/km/7/floating/2025-07-01/90000.0/MEDIUM/1.50/T-101/t"},
		{"next due date from last completion", `SELECT next_due_date::text FROM maintenance_plans WHERE code = 'P-2'`, "2025-09-01"},
		{"next due meter from last completion", `SELECT next_due_meter::text || '/' || schedule_mode || '/' || (assigned_technician_id IS NULL) FROM maintenance_plans WHERE code = 'P-3'`, "620000.0/fixed/true"},
		{"plan on asset", `SELECT a.asset_tag FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id WHERE p.code = 'P-4'`, "A-102"},
		{"preventive by default with a plan", `SELECT w.type || '/' || p.code || '/' || w.due_date || '/' || w.repair_hours FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id WHERE wo_number = 'W-1'`, "PREVENTIVE/P-1/2025-01-01/1.50"},
		{"corrective by default, timestamp zone", `SELECT type || '/' || priority || '/' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || '/' || (plan_id IS NULL) FROM work_orders WHERE wo_number = 'W-2'`, "CORRECTIVE/CRITICAL/2025-06-01 08:15/true"},
		{"work order defaults", `SELECT priority || '/' || skipped_occurrences || '/' || (completed_at IS NULL) FROM work_orders WHERE wo_number = 'W-3'`, "MEDIUM/1/true"},
		{"inventory", `SELECT concat_ws('/', name, category, quantity, reorder_level, unit_cost, location) FROM inventory_items WHERE sku = 'P-OIL-5W30'`, "Engine oil 5W-30, 5 L/fluids/24/10/38.50/Central Stores"},
		{"inventory defaults", `SELECT concat_ws('/', category, quantity, reorder_level, unit_cost, location) FROM inventory_items WHERE sku = 'P-MISC'`, "general/0/0/0.00/"},
	}
	for _, c := range checks {
		if got := scalar[string](t, pool, c.sql); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}

	// A second import may reference rows of the first.
	st, err = Import(ctx, pool, "testdata/more")
	if err != nil {
		t.Fatalf("Import more: %v", err)
	}
	if want := (Stats{Assets: 1, WorkOrders: 2}); st != want {
		t.Fatalf("more: stats = %+v, want %+v", st, want)
	}
	if got := scalar[string](t, pool, `SELECT p.code || '/' || a.asset_tag || '/' || t.code FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id JOIN assets a ON a.id = w.asset_id JOIN technicians t ON t.id = w.assigned_technician_id WHERE wo_number = 'W-10'`); got != "P-2/A-100/T-102" {
		t.Errorf("W-10 references: %q", got)
	}

	// Ids came from the identity sequences: a plain insert does not collide.
	if _, err := pool.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ('T-NEW', 'New', 'n@example.com')`); err != nil {
		t.Fatalf("insert after import: %v", err)
	}
}

func TestImportTwiceFailsAndWritesNothing(t *testing.T) {
	pool := pgtest.New(t)
	if _, err := Import(context.Background(), pool, "testdata/good"); err != nil {
		t.Fatal(err)
	}
	before := tableCounts(t, pool)
	sumBefore := scalar[string](t, pool, checksumSQL)
	got := importErrors(t, pool, "testdata/good")
	diffLines(t, got, []string{
		`technicians.csv:2: code: technician "T-101" already exists in the database`,
		`technicians.csv:3: code: technician "T-102" already exists in the database`,
		`technicians.csv:4: code: technician "T-103" already exists in the database`,
		`assets.csv:2: asset_tag: asset "A-100" already exists in the database`,
		`assets.csv:3: asset_tag: asset "A-101" already exists in the database`,
		`assets.csv:4: asset_tag: asset "A-102" already exists in the database`,
		`maintenance_plans.csv:2: code: plan "P-1" already exists in the database`,
		`maintenance_plans.csv:4: code: plan "P-2" already exists in the database`,
		`maintenance_plans.csv:5: code: plan "P-3" already exists in the database`,
		`maintenance_plans.csv:6: code: plan "P-4" already exists in the database`,
		`work_orders.csv:2: wo_number: work order "W-1" already exists in the database`,
		`work_orders.csv:2: due_date: plan "P-1" already has a work order due 2025-01-01 in the database`,
		`work_orders.csv:3: wo_number: work order "W-2" already exists in the database`,
		`work_orders.csv:4: wo_number: work order "W-3" already exists in the database`,
		`work_orders.csv:4: due_date: plan "P-4" already has a work order due 2025-05-20 in the database`,
		`inventory.csv:2: sku: item "P-OIL-5W30" already exists in the database`,
		`inventory.csv:3: sku: item "P-FLT-01" already exists in the database`,
		`inventory.csv:4: sku: item "P-MISC" already exists in the database`,
	})
	if after := tableCounts(t, pool); after != before {
		t.Fatalf("failed re-import changed counts: %+v, want %+v", after, before)
	}
	if sum := scalar[string](t, pool, checksumSQL); sum != sumBefore {
		t.Fatal("failed re-import changed rows")
	}
}

// TestImportBadFixture runs a fixture with many kinds of errors in every
// file: all are reported, in file, line and column order, and nothing is
// written.
func TestImportBadFixture(t *testing.T) {
	pool := pgtest.New(t)
	got := importErrors(t, pool, "testdata/bad")
	diffLines(t, got, []string{
		`technicians.csv:2: active: invalid boolean "maybe": want true or false`,
		`technicians.csv:3: code: duplicate code "T-1" (first on line 2)`,
		`technicians.csv:3: email: invalid email "bo.example.com"`,
		`assets.csv:1: colour: unknown column (known: asset_tag, name, vehicle_type, make, model, year, status, commissioned_date, meter_reading, engine_hours, location)`,
		`assets.csv:2: vehicle_type: invalid value "lorry": want one of car, van, truck, bus, trailer, forklift`,
		`assets.csv:2: status: invalid value "active": want one of ACTIVE, INACTIVE, IN_MAINTENANCE, RETIRED`,
		`assets.csv:2: commissioned_date: invalid date "2024-13-01": want YYYY-MM-DD`,
		`assets.csv:2: meter_reading: must be between 0 and 99999999999.9`,
		`assets.csv:2: year: must be between 1900 and 2100`,
		`assets.csv:3: name: required`,
		`assets.csv:3: commissioned_date: invalid date "01/02/2024": want YYYY-MM-DD`,
		`assets.csv:3: meter_reading: invalid number "12.5.1"`,
		`assets.csv:4: has 6 fields, the header has 8`,
		`maintenance_plans.csv:2: asset_tag: unknown asset "A-9": not in assets.csv or the database`,
		`maintenance_plans.csv:2: interval_unit: required when interval_value is set`,
		`maintenance_plans.csv:2: technician_code: unknown technician "T-9": not in technicians.csv or the database`,
		`maintenance_plans.csv:3: meter_interval: must be greater than 0 and at most 99999999999.9`,
		`maintenance_plans.csv:4: interval_value: a plan needs a calendar interval (interval_value, interval_unit), a meter interval (meter_interval, meter_unit), or both`,
		`maintenance_plans.csv:5: next_due_date: required for a plan with a calendar interval (or give last_completed_date)`,
		`work_orders.csv:2: asset_tag: unknown asset "A-3": not in assets.csv or the database`,
		`work_orders.csv:2: plan_code: plan "P-4" belongs to asset "A-1", not "A-3"`,
		`work_orders.csv:2: created_at: invalid timestamp "2025-01-01 08:00": want RFC 3339, e.g. 2024-05-01T08:30:00Z`,
		`work_orders.csv:2: completed_at: is before started_at`,
		`work_orders.csv:3: due_date: plan "P-4" already has a work order due 2025-01-01 (line 2)`,
		`work_orders.csv:4: due_date: required when plan_code is set`,
		`work_orders.csv:4: completed_at: required when status is COMPLETED`,
		`work_orders.csv:5: wo_number: duplicate wo_number "W-3" (first on line 4)`,
		`work_orders.csv:5: plan_code: unknown plan "P-7": not in maintenance_plans.csv or the database`,
		`work_orders.csv:5: status: invalid value "DONE": want one of OPEN, IN_PROGRESS, ON_HOLD, COMPLETED, CANCELLED`,
		`work_orders.csv:5: title: required`,
	})
	if got := tableCounts(t, pool); got != (Stats{}) {
		t.Fatalf("failed import wrote rows: %+v", got)
	}
}

const (
	assetsHeader = "asset_tag,name,vehicle_type,commissioned_date\n"
	assetA1      = assetsHeader + "A-1,Van,van,2024-01-01\n"
	plansHeader  = "code,asset_tag,name,interval_value,interval_unit,meter_interval,meter_unit,next_due_date,next_due_meter,estimated_hours,lead_days\n"
	woHeader     = "wo_number,asset_tag,plan_code,due_date,title,status,repair_hours,skipped_occurrences,technician_code\n"
)

// TestImportRowErrors covers each kind of bad row with its exact message.
func TestImportRowErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown column", map[string]string{"inventory.csv": "sku,name,colour\nS-1,Gloves,blue\n"},
			[]string{"inventory.csv:1: colour: unknown column (known: sku, name, category, quantity, reorder_level, unit_cost, location)"}},
		{"duplicate column", map[string]string{"inventory.csv": "sku,name,Name\nS-1,Gloves,Mittens\n"},
			[]string{"inventory.csv:1: name: duplicate column"}},
		{"unnamed column", map[string]string{"inventory.csv": "sku,,name\nS-1,x,Gloves\n"},
			[]string{"inventory.csv:1: column 2 has no name"}},
		{"missing required column skips rows and references", map[string]string{
			"assets.csv":            "asset_tag,name,vehicle_type\nA-1,Van,lorry\n",
			"maintenance_plans.csv": plansHeader + "P-1,A-1,Oil,3,months,,,2025-01-01,,,\n"},
			[]string{"assets.csv:1: commissioned_date: missing required column"}},
		{"empty file", map[string]string{"assets.csv": ""},
			[]string{"assets.csv:1: empty file: a header row is required"}},
		{"unknown file", map[string]string{"asset.csv": assetA1, "inventory.csv": "sku,name\nS-1,Gloves\n"},
			[]string{"asset.csv: unknown file (expected technicians.csv, assets.csv, maintenance_plans.csv, work_orders.csv, inventory.csv)"}},
		{"field count", map[string]string{"inventory.csv": "sku,name\nS-1,Gloves\nS-2\nS-3,Boots,extra\n"},
			[]string{"inventory.csv:3: has 1 fields, the header has 2", "inventory.csv:4: has 3 fields, the header has 2"}},
		{"bare quote", map[string]string{"inventory.csv": "sku,name\nS-1,Gloves\nS-2,12\" wrench\nS-3,Boots\n"},
			[]string{`inventory.csv:3: bare " in non-quoted-field (the rest of the file was not read)`}},
		{"line numbers after a quoted newline", map[string]string{"inventory.csv": "sku,name,quantity\nS-1,\"Gloves,\nlarge\",4\nS-2,Boots,-1\n"},
			[]string{"inventory.csv:4: quantity: must be between 0 and 2147483647"}},
		{"invalid UTF-8 and NUL", map[string]string{"inventory.csv": "sku,name,location\nS-1,Gl\xffoves,a\x00b\n"},
			[]string{"inventory.csv:2: name: is not valid UTF-8", "inventory.csv:2: location: contains a NUL character"}},
		{"required values", map[string]string{"technicians.csv": "code,name,email\n , ,\n"},
			[]string{"technicians.csv:2: code: required", "technicians.csv:2: name: required", "technicians.csv:2: email: required"}},
		{"enum case", map[string]string{"assets.csv": assetsHeader + "A-1,Van,Van,2024-01-01\n"},
			[]string{"assets.csv:2: vehicle_type: invalid value \"Van\": want one of car, van, truck, bus, trailer, forklift"}},
		{"date with time", map[string]string{"assets.csv": assetsHeader + "A-1,Van,van,2024-01-01T00:00:00Z\n"},
			[]string{`assets.csv:2: commissioned_date: invalid date "2024-01-01T00:00:00Z": want YYYY-MM-DD`}},
		{"timestamp without zone", map[string]string{"assets.csv": assetA1,
			"work_orders.csv": "wo_number,asset_tag,title,started_at\nW-1,A-1,Fix,2024-05-01T08:00:00\n"},
			[]string{`work_orders.csv:2: started_at: timestamp "2024-05-01T08:00:00" has no time zone: pass --timezone with the export's zone (an IANA name, e.g. Europe/Paris), or write RFC 3339, e.g. 2024-05-01T08:30:00Z`}},
		{"numbers", map[string]string{"assets.csv": assetA1,
			"maintenance_plans.csv": plansHeader + "P-1,A-1,Oil,0,months,,,2025-01-01,,10000,-1\nP-2,A-1,Tyres,,,1e3,km,,x,,1.5\n",
			"work_orders.csv":       woHeader + "W-1,A-1,,,Fix,,1000000,-2,\n"},
			[]string{
				"maintenance_plans.csv:2: interval_value: must be between 1 and 2147483647",
				"maintenance_plans.csv:2: estimated_hours: must be between 0 and 9999.99",
				"maintenance_plans.csv:2: lead_days: must be between 0 and 2147483647",
				`maintenance_plans.csv:3: next_due_meter: invalid number "x"`,
				`maintenance_plans.csv:3: lead_days: invalid integer "1.5"`,
				"work_orders.csv:2: repair_hours: must be between 0 and 999999.99",
				"work_orders.csv:2: skipped_occurrences: must be between 0 and 2147483647",
			}},
		{"interval pairs", map[string]string{"assets.csv": assetA1,
			"maintenance_plans.csv": plansHeader + "P-1,A-1,Oil,,months,,,2025-01-01,,,\nP-2,A-1,Tyres,,,20000,,,,,\nP-3,A-1,Tyres,,,,km,,,,\nP-4,A-1,Tyres,,,20000,km,,,,\n"},
			[]string{
				"maintenance_plans.csv:2: interval_value: required when interval_unit is set",
				"maintenance_plans.csv:3: meter_unit: required when meter_interval is set",
				"maintenance_plans.csv:4: meter_interval: required when meter_unit is set",
				"maintenance_plans.csv:5: next_due_meter: required for a plan with a meter interval (or give last_completed_meter)",
			}},
		{"duplicate keys", map[string]string{
			"assets.csv":      assetA1 + "A-2,Car,car,2024-01-01\nA-1,Bus,bus,2024-01-01\n",
			"inventory.csv":   "sku,name\nS-1,Gloves\nS-1,Boots\n",
			"work_orders.csv": woHeader + "W-1,A-1,,,Fix,,,,\nW-1,A-2,,,Fix,,,,\n"},
			[]string{
				`assets.csv:4: asset_tag: duplicate asset_tag "A-1" (first on line 2)`,
				`work_orders.csv:3: wo_number: duplicate wo_number "W-1" (first on line 2)`,
				`inventory.csv:3: sku: duplicate sku "S-1" (first on line 2)`,
			}},
		{"unknown references", map[string]string{"assets.csv": assetA1,
			"work_orders.csv": woHeader + "W-1,A-2,P-1,2025-01-01,Fix,,,,T-1\n"},
			[]string{
				`work_orders.csv:2: asset_tag: unknown asset "A-2": not in assets.csv or the database`,
				`work_orders.csv:2: plan_code: unknown plan "P-1": not in maintenance_plans.csv or the database`,
				`work_orders.csv:2: technician_code: unknown technician "T-1": not in technicians.csv or the database`,
			}},
		{"one bad row among good ones writes nothing", map[string]string{
			"assets.csv":      assetA1 + "A-2,Car,car,2024-01-01\n",
			"work_orders.csv": woHeader + "W-1,A-1,,,Fix,OPEN,,,\nW-2,A-2,,,Fix,OPEN,,,\nW-3,A-2,,,Fix,open,,,\n"},
			[]string{`work_orders.csv:4: status: invalid value "open": want one of OPEN, IN_PROGRESS, ON_HOLD, COMPLETED, CANCELLED`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := pgtest.New(t)
			diffLines(t, importErrors(t, pool, writeFiles(t, tc.files)), tc.want)
			if got := tableCounts(t, pool); got != (Stats{}) {
				t.Fatalf("failed import wrote rows: %+v", got)
			}
		})
	}
}

// TestImportAgainstDatabase covers duplicates of and references to rows that
// are already in the database.
func TestImportAgainstDatabase(t *testing.T) {
	pool := pgtest.New(t)
	if _, err := Import(context.Background(), pool, "testdata/good"); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"assets.csv":            assetsHeader + "A-100,Dup,van,2024-01-01\nA-300,New,car,2024-01-01\n",
		"maintenance_plans.csv": plansHeader + "P-9,A-300,Oil,6,months,,,2025-01-01,,,\n",
		"work_orders.csv": woHeader +
			"W-20,A-101,P-1,2025-02-01,Oil,,,,\n" + // P-1 is A-100's plan
			"W-21,A-100,P-1,2025-01-01,Oil,,,,\n" + // P-1 already has a work order due 2025-01-01
			"W-22,A-300,P-9,2025-01-01,Oil,,,,T-103\n", // new asset and plan, existing technician: fine
	})
	diffLines(t, importErrors(t, pool, dir), []string{
		`assets.csv:2: asset_tag: asset "A-100" already exists in the database`,
		`work_orders.csv:2: plan_code: plan "P-1" belongs to asset "A-100", not "A-101"`,
		`work_orders.csv:3: due_date: plan "P-1" already has a work order due 2025-01-01 in the database`,
	})
	if got := scalar[int64](t, pool, `SELECT count(*) FROM assets`); got != 3 {
		t.Fatalf("assets = %d, want the 3 of the first import", got)
	}
}

func TestImportErrorListIsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(assetsHeader)
	for i := range 150 {
		fmt.Fprintf(&b, "A-%d,Van,lorry,2024-01-01\n", i)
	}
	pool := pgtest.New(t)
	_, err := Import(context.Background(), pool, writeFiles(t, map[string]string{"assets.csv": b.String()}))
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want *ImportError", err)
	}
	if ie.Total != 150 || len(ie.Errors) != MaxReportedErrors {
		t.Fatalf("Total = %d, len(Errors) = %d; want 150, %d", ie.Total, len(ie.Errors), MaxReportedErrors)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "fleet: import failed with 150 errors; nothing was written\nassets.csv:2: vehicle_type: ") ||
		!strings.HasSuffix(msg, "\nassets.csv:101: vehicle_type: invalid value \"lorry\": want one of car, van, truck, bus, trailer, forklift\nand 50 more") {
		t.Fatalf("message:\n%s", msg)
	}
}

func TestImportNeedsFiles(t *testing.T) {
	pool := pgtest.New(t)
	dir := writeFiles(t, map[string]string{"README.txt": "not a csv"})
	_, err := Import(context.Background(), pool, dir)
	var ie *ImportError
	if err == nil || errors.As(err, &ie) || !strings.Contains(err.Error(), "no CSV files in "+dir) {
		t.Fatalf("got %v, want a plain 'no CSV files' error", err)
	}
	if _, err := Import(context.Background(), pool, filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: got %v", err)
	}
}

func TestImportIntoSeededDatabase(t *testing.T) {
	pool, before := seed(t, SeedOptions{Seed: 5, Now: testNow, Assets: 20})
	// The synthetic keys are referenced like any others.
	dir := writeFiles(t, map[string]string{
		"work_orders.csv": woHeader + "X-1,VH-0001,,,Flat tyre,OPEN,,,T-001\n",
	})
	st, err := Import(context.Background(), pool, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{WorkOrders: 1}) {
		t.Fatalf("stats = %+v", st)
	}
	after := scalar[time.Time](t, pool, `SELECT created_at FROM work_orders WHERE wo_number = 'X-1'`)
	if time.Since(after) > time.Hour {
		t.Errorf("created_at defaulted to %v, want the import time", after)
	}
	if got := scalar[int64](t, pool, `SELECT count(*) FROM work_orders`); got != before.WorkOrders+1 {
		t.Fatalf("work orders = %d, want %d", got, before.WorkOrders+1)
	}
}
