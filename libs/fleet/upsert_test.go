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

// copyDir copies the files of testdata/<name> to a temporary directory.
func copyDir(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// edit replaces old (which must occur once) with new in dir's file.
func edit(t *testing.T, dir, file, old, new string) {
	t.Helper()
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), old) != 1 {
		t.Fatalf("%s: %q occurs %d times", file, old, strings.Count(string(b), old))
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func upsert(t *testing.T, pool *pgxpool.Pool, dir string, dryRun bool) Changes {
	t.Helper()
	ch, err := ImportWith(context.Background(), pool, dir, ImportOptions{Upsert: true, DryRun: dryRun})
	if err != nil {
		t.Fatalf("upsert %s: %v", dir, err)
	}
	return ch
}

// upsertErrors runs an upsert that must fail and returns its error lines.
func upsertErrors(t *testing.T, pool *pgxpool.Pool, dir string) []string {
	t.Helper()
	ch, err := ImportWith(context.Background(), pool, dir, ImportOptions{Upsert: true})
	var ie *ImportError
	if !errors.As(err, &ie) || ch != nil {
		t.Fatalf("upsert %s = %v, %v; want an *ImportError", dir, ch, err)
	}
	var lines []string
	for _, e := range ie.Errors {
		lines = append(lines, e.String())
	}
	return lines
}

// counts is "table:inserted/updated/unchanged" per table.
func counts(ch Changes) []string {
	var out []string
	for _, c := range ch {
		out = append(out, fmt.Sprintf("%s:%d/%d/%d", c.Table, c.Inserted, c.Updated, c.Unchanged))
	}
	return out
}

// versions digests where every CMMS row version lies: a row that was
// updated (even to the same values) moves.
const versionsSQL = `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
	SELECT 'T' || ctid::text AS x FROM technicians UNION ALL SELECT 'A' || ctid::text FROM assets
	UNION ALL SELECT 'P' || ctid::text FROM maintenance_plans UNION ALL SELECT 'W' || ctid::text FROM work_orders
	UNION ALL SELECT 'I' || ctid::text FROM inventory_items) s`

func TestUpsertSameFilesTwice(t *testing.T) {
	pool := pgtest.New(t)
	ch := upsert(t, pool, "testdata/good", false)
	diffLines(t, counts(ch), []string{"technicians:3/0/0", "assets:3/0/0", "maintenance_plans:4/0/0",
		"work_orders:3/0/0", "inventory_items:3/0/0"})
	if got, want := tableCounts(t, pool), (Stats{3, 3, 4, 3, 3}); got != want {
		t.Fatalf("table counts = %+v, want %+v", got, want)
	}
	sum, versions := scalar[string](t, pool, checksumSQL), scalar[string](t, pool, versionsSQL)

	ch = upsert(t, pool, "testdata/good", false)
	diffLines(t, counts(ch), []string{"technicians:0/0/3", "assets:0/0/3", "maintenance_plans:0/0/4",
		"work_orders:0/0/3", "inventory_items:0/0/3"})
	if s := scalar[string](t, pool, checksumSQL); s != sum {
		t.Error("an unchanged upsert changed values (updated_at included)")
	}
	if v := scalar[string](t, pool, versionsSQL); v != versions {
		t.Error("an unchanged upsert wrote new row versions")
	}
}

func TestUpsertOneChangedStatus(t *testing.T) {
	pool := pgtest.New(t)
	upsert(t, pool, "testdata/good", false)
	dir := copyDir(t, "good")
	edit(t, dir, "work_orders.csv", "W-2,A-101,,,,OPEN,", "W-2,A-101,,,,IN_PROGRESS,")

	// A dry run counts the change and writes nothing.
	sum := scalar[string](t, pool, checksumSQL)
	want := []string{"technicians:0/0/3", "assets:0/0/3", "maintenance_plans:0/0/4", "work_orders:0/1/2", "inventory_items:0/0/3"}
	diffLines(t, counts(upsert(t, pool, dir, true)), want)
	if s := scalar[string](t, pool, checksumSQL); s != sum {
		t.Fatal("a dry run changed the database")
	}

	diffLines(t, counts(upsert(t, pool, dir, false)), want)
	if got := scalar[string](t, pool, `SELECT status FROM work_orders WHERE wo_number = 'W-2'`); got != "IN_PROGRESS" {
		t.Fatalf("W-2 status = %s", got)
	}
	// Its created_at came from the file, and it stays what the file says.
	if got := scalar[time.Time](t, pool, `SELECT created_at FROM work_orders WHERE wo_number = 'W-2'`); !got.Equal(time.Date(2025, 6, 1, 8, 15, 0, 0, time.UTC)) {
		t.Fatalf("W-2 created_at = %v", got)
	}
}

// An update keeps a row's id (so references stay), its created_at, and
// bumps updated_at; new keys are inserted beside updated ones.
func TestUpsertUpdatesInPlace(t *testing.T) {
	pool := pgtest.New(t)
	upsert(t, pool, "testdata/good", false)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE assets SET created_at = '2020-01-01Z', updated_at = '2020-01-01Z'`); err != nil {
		t.Fatal(err)
	}
	idBefore := scalar[int64](t, pool, `SELECT id FROM assets WHERE asset_tag = 'A-101'`)
	dir := copyDir(t, "good")
	edit(t, dir, "assets.csv", "612000,10200.5,Harbour Depot", "615000,10210,Harbour Depot")
	edit(t, dir, "assets.csv", "A-102,Yard forklift,forklift", "A-103,Car,car,,,,,2024-01-01,,,\nA-102,Yard forklift,forklift")
	edit(t, dir, "maintenance_plans.csv", "P-3,A-101,Tyre rotation,,,,20000,km", "P-3,A-103,Tyre rotation,,,,20000,km")
	diffLines(t, counts(upsert(t, pool, dir, false)), []string{"technicians:0/0/3", "assets:1/1/2",
		"maintenance_plans:0/1/3", "work_orders:0/0/3", "inventory_items:0/0/3"})

	got := scalar[string](t, pool, `SELECT concat_ws('/', id = $1, meter_reading, engine_hours, created_at = '2020-01-01Z', updated_at > '2020-01-01Z')
		FROM assets WHERE asset_tag = 'A-101'`, idBefore)
	if got != "t/615000.0/10210.0/t/t" {
		t.Errorf("A-101 after the update: %s", got)
	}
	if got := scalar[string](t, pool, `SELECT a.asset_tag FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id WHERE p.code = 'P-3'`); got != "A-103" {
		t.Errorf("P-3 is on %s, want the new A-103", got)
	}
	if got := scalar[bool](t, pool, `SELECT updated_at = '2020-01-01Z' FROM assets WHERE asset_tag = 'A-100'`); !got {
		t.Error("an unchanged asset's updated_at moved")
	}
}

// A work order without created_at in the file gets now() when new and
// keeps its created_at when it is already in the database.
func TestUpsertKeepsCreatedAt(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	files := map[string]string{"assets.csv": assetA1, "work_orders.csv": woHeader + "W-1,A-1,,,Fix,OPEN,,,\n"}
	upsert(t, pool, writeFiles(t, files), false)
	if _, err := pool.Exec(ctx, `UPDATE work_orders SET created_at = '2024-02-01Z'`); err != nil {
		t.Fatal(err)
	}
	diffLines(t, counts(upsert(t, pool, writeFiles(t, files), false)), []string{"technicians:0/0/0", "assets:0/0/1",
		"maintenance_plans:0/0/0", "work_orders:0/0/1", "inventory_items:0/0/0"})
	if got := scalar[bool](t, pool, `SELECT created_at = '2024-02-01Z' FROM work_orders`); !got {
		t.Error("W-1's created_at moved")
	}
}

// A bad line fails the whole upsert: the good changes and new rows of the
// same files are not written either, and the error names file and line.
func TestUpsertBadLineWritesNothing(t *testing.T) {
	pool := pgtest.New(t)
	upsert(t, pool, "testdata/good", false)
	sum, versions, before := scalar[string](t, pool, checksumSQL), scalar[string](t, pool, versionsSQL), tableCounts(t, pool)
	dir := copyDir(t, "good")
	edit(t, dir, "work_orders.csv", "W-2,A-101,,,,OPEN,", "W-2,A-101,,,,IN_PROGRESS,")
	edit(t, dir, "inventory.csv", "P-MISC,Cable ties,,,,,", "P-MISC,Cable ties,,,,,\nP-NEW,Gloves,,5,,,")
	edit(t, dir, "technicians.csv", "lena.berg@example.com,,,false", "lena.berg@example.com,,,false\nT-104,Ann Bell,ann.example.com,,,")
	diffLines(t, upsertErrors(t, pool, dir), []string{`technicians.csv:5: email: invalid email "ann.example.com"`})
	if s, v, c := scalar[string](t, pool, checksumSQL), scalar[string](t, pool, versionsSQL), tableCounts(t, pool); s != sum || v != versions || c != before {
		t.Fatalf("a failed upsert wrote: counts %+v, want %+v", c, before)
	}
}

// Keys that exist are updated, but the other checks against the database
// still hold: a work order may not take a plan occurrence another one has.
func TestUpsertChecksAgainstDatabase(t *testing.T) {
	pool := pgtest.New(t)
	upsert(t, pool, "testdata/good", false)
	dir := writeFiles(t, map[string]string{"work_orders.csv": woHeader +
		"W-9,A-100,P-1,2025-01-01,Oil,,,,\n" + // W-1's occurrence
		"W-3,A-101,P-4,2025-05-20,Hydraulic service,,,,\n"}) // P-4 is A-102's plan
	diffLines(t, upsertErrors(t, pool, dir), []string{
		`work_orders.csv:2: due_date: plan "P-1" already has a work order due 2025-01-01 in the database`,
		`work_orders.csv:3: plan_code: plan "P-4" belongs to asset "A-102", not "A-101"`,
	})
}

// A plain import with DryRun counts the rows it would insert and writes
// nothing.
func TestImportDryRun(t *testing.T) {
	pool := pgtest.New(t)
	ch, err := ImportWith(context.Background(), pool, "testdata/good", ImportOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st, want := ch.Stats(), (Stats{3, 3, 4, 3, 3}); st != want {
		t.Fatalf("dry run stats = %+v, want %+v", st, want)
	}
	if got := tableCounts(t, pool); got != (Stats{}) {
		t.Fatalf("a dry run wrote %+v", got)
	}
	if !slices.Equal(counts(ch), counts(upsert(t, pool, "testdata/good", false))) {
		t.Error("the dry run's counts differ from a real run's")
	}
}
