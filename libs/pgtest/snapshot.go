package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Snapshot returns every row of the tables as text, in a stable order: two
// snapshots are equal when nothing in the tables changed (a test of an
// operation that must change nothing compares one taken before with one
// taken after).
func Snapshot(t testing.TB, pool *pgxpool.Pool, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		rows, err := pool.Query(context.Background(),
			`SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t ORDER BY 1`)
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		b.WriteString(table + ":\n" + strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}
