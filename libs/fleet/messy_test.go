package fleet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// Timestamps without a zone are wall clock time in ImportOptions.Location,
// daylight saving time included; ones with a zone keep it.
func TestImportTimezone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.New(t)
	dir := writeFiles(t, map[string]string{"assets.csv": assetA1, "work_orders.csv": "wo_number,asset_tag,title,created_at,started_at,completed_at\n" +
		"W-1,A-1,Fix,2024-01-15 10:00:00,2024-07-01T10:00:00,2024-07-01T12:00:00Z\n"})
	if _, err := ImportWith(context.Background(), pool, dir, ImportOptions{Location: paris}); err != nil {
		t.Fatal(err)
	}
	got := scalar[string](t, pool, `SELECT concat_ws(' / ', created_at, started_at, completed_at) FROM work_orders`)
	if want := "2024-01-15 09:00:00+00 / 2024-07-01 08:00:00+00 / 2024-07-01 12:00:00+00"; got != want {
		t.Fatalf("timestamps %q, want %q", got, want)
	}

	bad := writeFiles(t, map[string]string{"work_orders.csv": "wo_number,asset_tag,title,created_at\n" +
		"W-2,A-1,Fix,2024-07-01 25:00:00\nW-3,A-1,Fix,2024-07-01 10:00\n"})
	_, err = ImportWith(context.Background(), pool, bad, ImportOptions{Location: paris})
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an *ImportError", err)
	}
	var lines []string
	for _, e := range ie.Errors {
		lines = append(lines, e.String())
	}
	diffLines(t, lines, []string{
		`work_orders.csv:2: created_at: invalid timestamp "2024-07-01 25:00:00": want RFC 3339, e.g. 2024-05-01T08:30:00Z, or YYYY-MM-DD HH:MM:SS (in Europe/Paris)`,
		`work_orders.csv:3: created_at: invalid timestamp "2024-07-01 10:00": want RFC 3339, e.g. 2024-05-01T08:30:00Z, or YYYY-MM-DD HH:MM:SS (in Europe/Paris)`,
	})
	// Without a zone such a value is an error that says what to do.
	diffLines(t, importErrors(t, pool, writeFiles(t, map[string]string{"work_orders.csv": "wo_number,asset_tag,title,created_at\nW-4,A-1,Fix,2024-07-01 10:00:00\n"})),
		[]string{`work_orders.csv:2: created_at: timestamp "2024-07-01 10:00:00" has no time zone: pass --timezone with the export's zone (an IANA name, e.g. Europe/Paris), or write RFC 3339, e.g. 2024-05-01T08:30:00Z`})
}

func writeAliases(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "columns.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An export whose headers have other names imports through an alias file;
// row errors name the documented column and the file's line.
func TestImportColumnAliases(t *testing.T) {
	aliases, err := ReadColumnAliases(writeAliases(t, `# Our CMMS's export
work_orders.WO Number = wo_number
work_orders. Equipment ID =asset_tag
work_orders.Summary = title
work_orders.State = status

assets.Equipment ID = asset_tag
assets.Kind = vehicle_type
assets.In service since = commissioned_date
`))
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.New(t)
	dir := writeFiles(t, map[string]string{
		"assets.csv":      "Equipment ID,name,Kind,In Service Since\nA-1,Van,van,2024-01-01\n",
		"work_orders.csv": "wo number,Equipment ID,Summary,State\nW-1,A-1,Fix,OPEN\nW-2,A-1,Brakes,COMPLETED\n",
	})
	_, err = ImportWith(context.Background(), pool, dir, ImportOptions{Columns: aliases})
	var ie *ImportError
	if !errors.As(err, &ie) || len(ie.Errors) != 1 || ie.Errors[0].String() != `work_orders.csv:3: completed_at: required when status is COMPLETED` {
		t.Fatalf("got %v, want one error on work_orders.csv:3", err)
	}
	// Without the aliases the headers are unknown.
	if lines := importErrors(t, pool, dir); len(lines) != 13 || !strings.HasPrefix(lines[0], `assets.csv:1: equipment id: unknown column`) {
		t.Fatalf("without aliases: %q", lines)
	}

	edit(t, dir, "work_orders.csv", "COMPLETED", "ON_HOLD")
	if _, err := ImportWith(context.Background(), pool, dir, ImportOptions{Columns: aliases}); err != nil {
		t.Fatal(err)
	}
	got := scalar[string](t, pool, `SELECT string_agg(concat_ws('/', w.wo_number, a.asset_tag, a.vehicle_type, w.title, w.status), ' ' ORDER BY w.wo_number)
		FROM work_orders w JOIN assets a ON a.id = w.asset_id`)
	if got != "W-1/A-1/van/Fix/OPEN W-2/A-1/van/Brakes/ON_HOLD" {
		t.Fatalf("imported %q", got)
	}
}

func TestColumnAliasFileErrors(t *testing.T) {
	_, err := ReadColumnAliases(writeAliases(t, `work_orders.WO Number = wo_number
orders.Number = wo_number
work_orders.State = state
work_orders = status
.x = sku
work_orders.wo number = title
`))
	want := `fleet: column aliases:
columns.txt:2: unknown file "orders" (known: technicians, assets, maintenance_plans, work_orders, inventory)
columns.txt:3: unknown column "state" of work_orders.csv (known: wo_number, asset_tag, plan_code, due_date, type, status, priority, title, description, created_at, started_at, completed_at, repair_hours, technician_code, skipped_occurrences)
columns.txt:4: "work_orders = status": want file.header = column, e.g. work_orders.WO Number = wo_number
columns.txt:5: ".x = sku": want file.header = column, e.g. work_orders.WO Number = wo_number
columns.txt:6: header "wo number" of work_orders.csv is already an alias of wo_number`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	if _, err := ReadColumnAliases(filepath.Join(t.TempDir(), "missing.txt")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}
