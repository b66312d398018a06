package source_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// ownColumn is a column of one of cmmsflow's own cmms tables.
type ownColumn struct {
	typ     string
	notNull bool
	checks  []string // the definitions of its single-column CHECK constraints
}

func ownColumns(t *testing.T, pool *pgxpool.Pool, rel string) map[string]ownColumn {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT a.attname, a.atttypid::regtype::text, a.attnotnull,
		       coalesce((SELECT array_agg(pg_get_constraintdef(k.oid)) FROM pg_constraint k
		                 WHERE k.conrelid = a.attrelid AND k.contype = 'c' AND k.conkey = ARRAY[a.attnum]), '{}')
		FROM pg_attribute a
		WHERE a.attrelid = ($1 || '.' || $2)::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
		db.OwnSourceSchema, rel)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]ownColumn{}
	for rows.Next() {
		var name string
		var c ownColumn
		if err := rows.Scan(&name, &c.typ, &c.notNull, &c.checks); err != nil {
			t.Fatal(err)
		}
		out[name] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLiterals are the quoted values of a column's IN (...) CHECK.
func checkLiterals(checks []string) []string {
	var out []string
	for _, c := range checks {
		for _, m := range regexp.MustCompile(`'([^']*)'::text`).FindAllStringSubmatch(c, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// The contract is cmmsflow's own tables: every column there with the same
// type, NULL only where the table allows it, and the enum values of the
// tables' CHECK constraints.
func TestContractMatchesOwnTables(t *testing.T) {
	pool := pgtest.New(t)
	for _, rel := range source.Contract {
		own := ownColumns(t, pool, rel.Name)
		if len(own) == 0 {
			t.Fatalf("%s: no such table in %s", rel.Name, db.OwnSourceSchema)
		}
		for _, c := range rel.Columns {
			o, ok := own[c.Name]
			switch {
			case !ok:
				t.Errorf("%s.%s: not a column of %s.%s", rel.Name, c.Name, db.OwnSourceSchema, rel.Name)
			case o.typ != c.Type:
				t.Errorf("%s.%s: contract type %s, table %s", rel.Name, c.Name, c.Type, o.typ)
			case o.notNull == c.Null:
				t.Errorf("%s.%s: contract Null %v, table NOT NULL %v", rel.Name, c.Name, c.Null, o.notNull)
			}
			lits := checkLiterals(o.checks)
			if (len(lits) > 0 || c.Values != nil) && !slices.Equal(lits, c.Values) {
				t.Errorf("%s.%s: contract values %v, CHECK constraint %v", rel.Name, c.Name, c.Values, lits)
			}
		}
	}
}

// The default source, seeded with the demo fleet, passes the check.
func TestCheckOwnTables(t *testing.T) {
	pool := pgtest.New(t)
	if _, err := fleet.Seed(t.Context(), pool, fleet.SeedOptions{
		Seed: 1, Now: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), Assets: 40, Technicians: 4, Years: 1, InventoryItems: 10,
	}); err != nil {
		t.Fatal(err)
	}
	got, err := source.Check(t.Context(), pool, db.OwnSourceSchema)
	if err != nil || len(got) != 0 {
		t.Fatalf("check %s: %v %v", db.OwnSourceSchema, got, err)
	}
}
