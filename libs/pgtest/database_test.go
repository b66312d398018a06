package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestCreateDatabase: an empty database of that prefix, reachable at the
// URL returned, and gone (with a connection still open) after drop.
func TestCreateDatabase(t *testing.T) {
	admin := os.Getenv(EnvVar)
	if admin == "" {
		t.Fatalf("%s is not set: run the tests with `make test`", EnvVar)
	}
	ctx := t.Context()
	dbURL, drop, err := CreateDatabase(ctx, admin, "pgtest_probe")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		drop()
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var name string
	var tables int
	if err := conn.QueryRow(ctx, `SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'cmms', 'cmmsflow'))`).Scan(&name, &tables); err != nil {
		drop()
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "pgtest_probe_") || tables != 0 {
		drop()
		t.Fatalf("database %q with %d tables", name, tables)
	}
	drop()
	a, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	var n int
	if err := a.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still there after drop (%d, %v)", name, n, err)
	}
}
