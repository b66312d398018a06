package cli

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// The shipped mapping and the Django-style CMMS it is tested against.
const (
	djangoMapping = "../../../../deploy/source/django-cmms.sql"
	djangoFixture = "../../../../libs/source/testdata/django.sql"
)

// djangoDatabase is a migrated database holding the Django-style CMMS.
func djangoDatabase(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	pool, dbURL := pgtest.NewWithURL(t)
	b, err := os.ReadFile(djangoFixture)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), string(b)); err != nil {
		t.Fatal(err)
	}
	return pool, dbURL
}

// mappingState is what apply changes: the mapping schema's views and the
// record of the mapping.
func mappingState(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(t.Context(), `
		SELECT coalesce((SELECT string_agg(viewname || ': ' || definition, E'\n' ORDER BY viewname)
		                 FROM pg_views WHERE schemaname = 'cmms_mapped'), 'no views') || E'\n' ||
		       coalesce((SELECT string_agg(format('%s v%s %s %s %s', schema_name, contract_version, file_sha256, applied_at, applied_by), E'\n')
		                 FROM source_contract), 'no record')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeMapping writes the shipped mapping with each old string replaced by
// its new one, into a temporary file.
func writeMapping(t *testing.T, oldNew ...string) string {
	t.Helper()
	b, err := os.ReadFile(djangoMapping)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("the mapping has no %q", oldNew[i])
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	name := filepath.Join(t.TempDir(), "mapping.sql")
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// check changes nothing; apply creates the views and records the mapping.
func TestSourceCheckAndApply(t *testing.T) {
	pool, dbURL := djangoDatabase(t)
	r := run(t, nil, "source", "check", djangoMapping, "--database-url", dbURL)
	if r.code != ExitOK || !strings.Contains(r.stdout, "meets source contract version 1; nothing changed") {
		t.Fatalf("check: %+v", r)
	}
	if got := mappingState(t, pool); got != "no views\nno record" {
		t.Fatalf("after check: %s", got)
	}
	r = run(t, nil, "source", "apply", djangoMapping, "--database-url", dbURL)
	b, _ := os.ReadFile(djangoMapping)
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	if r.code != ExitOK || !strings.Contains(r.stdout, "applied "+djangoMapping+" to schema cmms_mapped (source contract version 1, sha256 "+sum+")") {
		t.Fatalf("apply: %+v", r)
	}
	var version int
	var fileSum string
	var by bool
	if err := pool.QueryRow(t.Context(), `SELECT contract_version, file_sha256, applied_by = session_user::text
		FROM source_contract WHERE schema_name = 'cmms_mapped'`).Scan(&version, &fileSum, &by); err != nil {
		t.Fatal(err)
	}
	if version != 1 || fileSum != sum || !by {
		t.Fatalf("record: version %d, sha256 %s, applied by this login %v", version, fileSum, by)
	}
	if n := count(t, pool, "cmms_mapped.work_orders"); n != 4 {
		t.Fatalf("%d work orders in the mapping, want 4", n)
	}
}

// A mapping with a missing column, a wrong type and unknown enum values:
// check and apply list each by relation and column, exit 1, and leave the
// mapping applied before (its views and its record) as it was. So does a
// mapping whose SQL fails.
func TestSourceBadMapping(t *testing.T) {
	pool, dbURL := djangoDatabase(t)
	if r := run(t, nil, "source", "apply", djangoMapping, "--database-url", dbURL); r.code != ExitOK {
		t.Fatalf("apply: %+v", r)
	}
	before := mappingState(t, pool)
	bad := writeMapping(t,
		"       coalesce(a.site, '')::text  AS location,\n", "",
		"a.commissioned_on           AS commissioned_date", "a.commissioned_on::text     AS commissioned_date",
		"upper(w.status)::text            AS status", "w.status::text AS status")
	for _, cmd := range []string{"check", "apply"} {
		r := run(t, nil, "source", cmd, bad, "--database-url", dbURL)
		want := []string{
			"assets.location: column missing (want text)",
			"assets.commissioned_date: type text, want date",
			`work_orders.status: unknown values "cancelled", "completed", "in_progress", "on_hold" (allowed: OPEN, IN_PROGRESS, ON_HOLD, COMPLETED, CANCELLED)`,
			"3 problems with source contract version 1; nothing changed",
		}
		if r.code != ExitError || r.stdout != "" || strings.Count(r.stderr, "\n") != len(want) {
			t.Errorf("%s: %+v", cmd, r)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, r.stderr)
			}
		}
		if got := mappingState(t, pool); got != before {
			t.Errorf("%s changed the mapping:\n%s\nwas\n%s", cmd, got, before)
		}
	}
	broken := writeMapping(t, "FROM django.inventory_inventoryitem i", "FROM django.inventory_item i")
	r := run(t, nil, "source", "apply", broken, "--database-url", dbURL)
	if r.code != ExitError || !strings.Contains(r.stderr, `the mapping failed: ERROR: relation "django.inventory_item" does not exist`) ||
		!strings.Contains(r.stderr, "nothing changed") {
		t.Errorf("apply a failing mapping: %+v", r)
	}
	if got := mappingState(t, pool); got != before {
		t.Errorf("a failing mapping changed the mapping:\n%s", got)
	}
}

// grant gives a plain login SELECT on the views and no write; it refuses a
// superuser and a role that does not exist.
func TestSourceGrant(t *testing.T) {
	role := "reader_" + strings.ToLower(t.Name()[4:])
	admin := os.Getenv(pgtest.EnvVar)
	adminPool, err := pgxpool.New(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	// Dropped after the database (cleanups run last first).
	t.Cleanup(func() {
		defer adminPool.Close()
		if _, err := adminPool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Log(err)
		}
	})
	if _, err := adminPool.Exec(t.Context(), "DROP ROLE IF EXISTS "+role+"; CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	pool, dbURL := djangoDatabase(t)
	if r := run(t, nil, "source", "apply", djangoMapping, "--database-url", dbURL); r.code != ExitOK {
		t.Fatalf("apply: %+v", r)
	}
	r := run(t, nil, "source", "grant", role, "--database-url", dbURL)
	if r.code != ExitOK || !strings.Contains(r.stdout, "granted "+role+": SELECT on schema cmms_mapped") {
		t.Fatalf("grant: %+v", r)
	}
	var read, write, django bool
	if err := pool.QueryRow(t.Context(), `SELECT has_table_privilege($1, 'cmms_mapped.assets', 'SELECT'),
		has_table_privilege($1, 'cmms_mapped.assets', 'INSERT, UPDATE, DELETE'),
		has_table_privilege($1, 'django.assets_asset', 'SELECT, INSERT, UPDATE, DELETE')`, role).Scan(&read, &write, &django); err != nil {
		t.Fatal(err)
	}
	if !read || write || django {
		t.Fatalf("after grant: read %v, write %v, django %v", read, write, django)
	}
	for who, want := range map[string]string{"postgres": "is a superuser", "nobody_here": `no role "nobody_here"`} {
		if r := run(t, nil, "source", "grant", who, "--database-url", dbURL); r.code != ExitError || !strings.Contains(r.stderr, want) {
			t.Errorf("grant %s: %+v", who, r)
		}
	}
}
