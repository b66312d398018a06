package source_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// newLogin creates a plain login role on the test server, dropped when the
// test ends (after the databases it was granted rights in).
func newLogin(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "reader_" + hex.EncodeToString(b)
	admin := os.Getenv(pgtest.EnvVar)
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(t.Context(), "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), "DROP ROLE "+role); err != nil {
			t.Log(err)
		}
	})
	return role
}

// asLogin is dbURL with role as the user.
func asLogin(t *testing.T, dbURL, role string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "42501" { // insufficient_privilege
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

// A login granted on the mapping schema reads the views (and the record,
// for the start-up check) and cannot write to the views, the CMMS's own
// tables or the record. Applying the mapping again keeps its rights.
func TestGrantReadOnlyLogin(t *testing.T) {
	role := newLogin(t)
	pool, dbURL := djangoDatabaseURL(t)
	mapping := readFile(t, djangoMapping)
	if got, err := apply(t, pool, source.DefaultSchema, mapping); err != nil || len(got) > 0 {
		t.Fatalf("apply: %v %v", got, err)
	}
	if err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		return source.Grant(t.Context(), tx, source.DefaultSchema, role)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := apply(t, pool, source.DefaultSchema, mapping); err != nil || len(got) > 0 {
		t.Fatalf("apply again: %v %v", got, err)
	}
	ro, err := db.Connect(t.Context(), asLogin(t, dbURL, role), db.WithSource(source.DefaultSchema))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var assets, runs int
	if err := ro.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM assets), (SELECT count(*) FROM runs)`).Scan(&assets, &runs); err != nil || assets != 3 {
		t.Fatalf("read through the login: %d assets, %v", assets, err)
	}
	if err := source.Verify(t.Context(), ro, source.DefaultSchema); err != nil {
		t.Fatalf("start-up check through the login: %v", err)
	}
	for what, sql := range map[string]string{
		// Writes the views' owner could make (through their plain columns).
		"update a view":         `UPDATE assets SET year = year`,
		"insert into a view":    `INSERT INTO technicians (active) VALUES (true)`,
		"delete from a view":    `DELETE FROM inventory_items`,
		"update django's table": `UPDATE django.assets_asset SET status = 'retired'`,
		"insert django's table": `INSERT INTO django.work_orders_workorder (number, asset_id, kind, title) VALUES ('WO-X', 1, 'corrective', 'x')`,
		"create in the mapping": `CREATE VIEW cmms_mapped.extra AS SELECT 1`,
		"update the record":     `UPDATE source_contract SET contract_version = 0`,
	} {
		_, err := ro.Exec(t.Context(), sql)
		wantDenied(t, what, err)
	}
}
