package db_test

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// cmmsRelations are the CMMS relations, read from the source schema.
var cmmsRelations = []string{"assets", "inventory_items", "maintenance_plans", "technicians", "work_orders"}

// emptyDatabase is a new database with nothing in it, dropped at the end.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(pgtest.EnvVar)
	if admin == "" {
		t.Fatalf("%s is not set: run the tests with `make test`", pgtest.EnvVar)
	}
	url, drop, err := pgtest.CreateDatabase(t.Context(), admin, "dbschema")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return url
}

// tablesBySchema lists the tables of each schema, sorted.
func tablesBySchema(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT schemaname, tablename FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var schema, table string
	if _, err := pgx.ForEachRow(rows, []any{&schema, &table}, func() error {
		out[schema] = append(out[schema], table)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A migrated database keeps the CMMS relations in cmms, the automation
// tables in cmmsflow and only goose's version table in public; migrating
// again changes nothing.
func TestSchemasAfterMigrate(t *testing.T) {
	pool, err := db.Connect(t.Context(), emptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for range 2 {
		if err := db.Migrate(t.Context(), pool, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := tablesBySchema(t, pool)
	if !slices.Equal(got[db.OwnSourceSchema], cmmsRelations) || !slices.Equal(got["public"], []string{"goose_db_version"}) {
		t.Fatalf("tables by schema: %v", got)
	}
	for _, want := range []string{"runs", "steps", "outbox", "processed_events", "notifications", "reports", "models", "ml_predictions"} {
		if !slices.Contains(got[db.AutomationSchema], want) {
			t.Errorf("%s is not in %s: %v", want, db.AutomationSchema, got)
		}
	}
	// No automation table refers to a row of cmms: a mapped source's ids
	// are not there.
	var keys []string
	rows, err := pool.Query(t.Context(), `SELECT conname FROM pg_constraint
		WHERE contype = 'f' AND connamespace = $1::regnamespace
		  AND confrelid IN (SELECT oid FROM pg_class WHERE relnamespace = $2::regnamespace)`,
		db.AutomationSchema, db.OwnSourceSchema)
	if err == nil {
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(keys) > 0 {
		t.Fatalf("foreign keys from %s into %s: %v %v", db.AutomationSchema, db.OwnSourceSchema, keys, err)
	}
}

// A pool pointed at another source reads the CMMS relations from it and
// nowhere else; the automation tables stay reachable.
func TestSourceIsTheOnlyPlaceCMMSRelationsAreRead(t *testing.T) {
	url := emptyDatabase(t)
	own, err := db.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := db.Migrate(t.Context(), own, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Exec(t.Context(), `CREATE SCHEMA mapped; CREATE VIEW mapped.assets AS SELECT 7::bigint AS id`); err != nil {
		t.Fatal(err)
	}
	mapped, err := db.Connect(t.Context(), url, db.WithSource("mapped"))
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	var id int64
	if err := mapped.QueryRow(t.Context(), `SELECT id FROM assets`).Scan(&id); err != nil || id != 7 {
		t.Fatalf("assets through the mapped source: %d %v", id, err)
	}
	if _, err := mapped.Exec(t.Context(), `SELECT 1 FROM work_orders`); err == nil || !strings.Contains(err.Error(), `relation "work_orders" does not exist`) {
		t.Fatalf("a relation the source lacks was found elsewhere: %v", err)
	}
	if _, err := mapped.Exec(t.Context(), `SELECT 1 FROM runs`); err != nil {
		t.Fatalf("automation tables through the mapped source's pool: %v", err)
	}
	for _, bad := range []string{"Mapped", "a;drop", db.AutomationSchema, ""} {
		if _, err := db.SearchPath(bad); err == nil {
			t.Errorf("source schema %q accepted", bad)
		}
	}
}

// A database migrated before the schemas existed (its tables in public)
// keeps its rows when 00015 moves them.
func TestUpgradeMovesTablesWithTheirRows(t *testing.T) {
	url := emptyDatabase(t)
	pool, err := db.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = "public"
	old := stdlib.OpenDB(*cfg)
	defer old.Close()
	fsys, err := fs.Sub(db.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, old, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES ('V-1', 'van one', 'van', '2020-01-01');
		INSERT INTO pipelines (id) VALUES ('preventive_maintenance')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatal(err)
	}
	var tag, pipeline string
	if err := pool.QueryRow(t.Context(), `SELECT (SELECT asset_tag FROM cmms.assets), (SELECT id FROM cmmsflow.pipelines)`).Scan(&tag, &pipeline); err != nil ||
		tag != "V-1" || pipeline != "preventive_maintenance" {
		t.Fatalf("after the upgrade: asset %q, pipeline %q (%v)", tag, pipeline, err)
	}
	if got := tablesBySchema(t, pool)["public"]; !slices.Equal(got, []string{"goose_db_version"}) {
		t.Fatalf("left in public: %v", got)
	}
}
