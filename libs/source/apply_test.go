package source_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// djangoMapping is the shipped example mapping.
const djangoMapping = "../../deploy/source/django-cmms.sql"

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// djangoDatabase is a migrated database with the Django-style CMMS fixture
// in schema django.
func djangoDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := djangoDatabaseURL(t)
	return pool
}

// djangoDatabaseURL is djangoDatabase and its URL.
func djangoDatabaseURL(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	pool, url := pgtest.NewWithURL(t)
	if _, err := pool.Exec(t.Context(), readFile(t, "testdata/django.sql")); err != nil {
		t.Fatal(err)
	}
	return pool, url
}

// apply runs Apply and, when it finds nothing wrong, Record, then commits.
func apply(t *testing.T, pool *pgxpool.Pool, schema, mapping string) ([]source.Mismatch, error) {
	t.Helper()
	var got []source.Mismatch
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		if got, err = source.Apply(t.Context(), tx, schema, mapping); err != nil || len(got) > 0 {
			return err
		}
		sum := sha256.Sum256([]byte(mapping))
		return source.Record(t.Context(), tx, schema, hex.EncodeToString(sum[:]))
	})
	return got, err
}

// column runs a one-column text query and collects its values.
func column(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// The shipped mapping applies cleanly to the Django-style fixture; its
// views return the live rows in the contract's spellings, and Verify
// accepts the schema.
func TestApplyDjangoMapping(t *testing.T) {
	pool := djangoDatabase(t)
	if got, err := apply(t, pool, source.DefaultSchema, readFile(t, djangoMapping)); err != nil || len(got) > 0 {
		t.Fatalf("apply: %v %v", got, err)
	}
	for sql, want := range map[string][]string{
		`SELECT id || ' ' || asset_tag || ' ' || status || ' ' || vehicle_type || ' ' || location FROM cmms_mapped.assets ORDER BY id`: {
			"1 TRK-001 ACTIVE truck Depot A", "2 VAN-002 IN_MAINTENANCE van ", "3 BUS-003 RETIRED bus Depot B"},
		`SELECT wo_number || ' ' || type || ' ' || status || ' ' || priority || ' ' || coalesce(plan_id::text, '-') || ' ' || coalesce(repair_hours::text, '-') FROM cmms_mapped.work_orders ORDER BY id`: {
			"WO-1 PREVENTIVE COMPLETED HIGH 1 2.50", "WO-2 CORRECTIVE IN_PROGRESS CRITICAL - -",
			"WO-3 PREVENTIVE CANCELLED LOW - -", "WO-4 CORRECTIVE ON_HOLD MEDIUM - -"},
		`SELECT code || ' ' || coalesce(interval_unit, '-') || ' ' || coalesce(meter_unit, '-') || ' ' || schedule_mode || ' ' || priority || ' ' || active FROM cmms_mapped.maintenance_plans ORDER BY id`: {
			"PM-TRK-001-OIL months - fixed HIGH true", "PM-TRK-001-TYRES - km fixed MEDIUM true",
			"PM-VAN-002-SVC years hours floating LOW false"},
		`SELECT id || ' ' || name || ' ' || active FROM cmms_mapped.technicians ORDER BY id`:                  {"1 Ada Mechanic true", "2 Bo Welder false"},
		`SELECT sku || ' ' || quantity || ' ' || reorder_level FROM cmms_mapped.inventory_items ORDER BY sku`: {"OIL-5W30 40 10", "PAD-FR 2 4"},
	} {
		if got := column(t, pool, sql); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", sql, got, want)
		}
	}
	if err := source.Verify(t.Context(), pool, source.DefaultSchema); err != nil {
		t.Fatal(err)
	}
	if err := source.Verify(t.Context(), pool, "other_mapping"); err == nil || !strings.Contains(err.Error(), "no mapping has been applied") {
		t.Fatalf("verify a schema never applied: %v", err)
	}
}

// Apply refuses a schema of tables (it would drop them) and cmmsflow's own.
func TestApplyRefusesTableSchemas(t *testing.T) {
	pool := djangoDatabase(t)
	for schema, want := range map[string]string{
		"django":   "schema django holds 5 tables",
		"cmms":     "cmms cannot be a mapping schema",
		"cmmsflow": "want a lower-case identifier other than cmmsflow",
		"Bad-Name": "want a lower-case identifier",
	} {
		if _, err := apply(t, pool, schema, readFile(t, djangoMapping)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply to %s: %v, want %q", schema, err, want)
		}
	}
	if got := column(t, pool, `SELECT count(*)::text FROM django.assets_asset`); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("django's tables: %v", got)
	}
}

// A mapping may define PL/pgSQL helpers, but not end Apply's transaction:
// a COMMIT on a line of its own is refused before anything runs, one that
// slips through is reported.
func TestApplyTransactionControl(t *testing.T) {
	pool := djangoDatabase(t)
	helper := "CREATE FUNCTION shout(s text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$\nBEGIN\n    RETURN upper(s);\nEND;\n$$;\n"
	if got, err := apply(t, pool, source.DefaultSchema, helper+readFile(t, djangoMapping)); err != nil || len(got) > 0 {
		t.Fatalf("apply with a helper function: %v %v", got, err)
	}
	if got := column(t, pool, `SELECT cmms_mapped.shout('in_progress')`); !slices.Equal(got, []string{"IN_PROGRESS"}) {
		t.Fatalf("helper: %v", got)
	}
	for mapping, want := range map[string]string{
		"BEGIN;\n" + readFile(t, djangoMapping) + "COMMIT;\n": `must not control the transaction ("BEGIN;")`,
		"CREATE VIEW assets AS SELECT 1 AS id; COMMIT;":       "the mapping ended the transaction it runs in",
	} {
		if _, err := apply(t, pool, "other_mapping", mapping); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply %.30q: %v, want %q", mapping, err, want)
		}
	}
}
