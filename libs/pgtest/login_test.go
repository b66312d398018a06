package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/db"
)

// TestReadOnlyLogin: the login reads the source and cannot write it (nor
// lock its rows), and writes the automation schema.
func TestReadOnlyLogin(t *testing.T) {
	ctx := context.Background()
	admin, dbURL := NewWithURL(t)
	if _, err := admin.Exec(ctx, `INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES ('VH-1', 'Van', 'van', '2020-01-01')`); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Connect(ctx, ReadOnlyLogin(t, admin, dbURL, db.OwnSourceSchema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM assets`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("read the source: %d rows, %v", n, err)
	}
	for _, sql := range []string{
		`UPDATE assets SET name = 'x'`,
		`INSERT INTO technicians (code, name, email) VALUES ('T', 'T', 't@example.com')`,
		`SELECT id FROM assets FOR NO KEY UPDATE`,
	} {
		if _, err := pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: %v, want permission denied", sql, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (event_id, event_type, topic, attributes, data) VALUES ('e', 't', 't', '{}', '')`); err != nil {
		t.Errorf("write the automation schema: %v", err)
	}
}
