package db_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/repo"
)

// matrixDoc is the documented grant matrix.
const matrixDoc = "docs/database-roles.md"

// privileges are the table privileges the matrix names, by PostgreSQL's
// ACL letter.
var privileges = map[byte]string{'r': "SELECT", 'a': "INSERT", 'w': "UPDATE", 'd': "DELETE"}

// grants is a matrix: "schema.table" → service → privilege names.
type grants map[string]map[string][]string

// readMatrix parses the table between the matrix markers of matrixDoc.
func readMatrix(t *testing.T) grants {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, matrixDoc))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "<!-- matrix:begin -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- matrix:end -->")
	if !ok1 || !ok2 {
		t.Fatalf("%s: no <!-- matrix:begin --> … <!-- matrix:end --> section", matrixDoc)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	header := cells(lines[0])
	if !sameSet(header[1:], events.Services) {
		t.Fatalf("%s: the matrix's columns %v are not the services %v", matrixDoc, header[1:], events.Services)
	}
	m := grants{}
	for _, line := range lines[2:] {
		row := cells(line)
		if len(row) != len(header) {
			t.Fatalf("%s: row %q has %d cells, want %d", matrixDoc, line, len(row), len(header))
		}
		rel := strings.Trim(row[0], "`")
		m[rel] = map[string][]string{}
		for i, cell := range row[1:] {
			m[rel][header[i+1]] = letters(t, rel, cell)
		}
	}
	return m
}

func cells(line string) []string {
	parts := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func letters(t *testing.T, rel, cell string) []string {
	t.Helper()
	if cell == "·" {
		return nil
	}
	var out []string
	for i := range len(cell) {
		p, ok := privileges[cell[i]]
		if !ok {
			t.Fatalf("%s: %s: cell %q: want letters of rawd or ·", matrixDoc, rel, cell)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// actualGrants reads what the service roles hold on every relation outside
// the system schemas, from the catalog's ACLs.
func actualGrants(t *testing.T, pool *pgxpool.Pool) grants {
	t.Helper()
	roles := map[string]string{}
	for _, svc := range events.Services {
		roles[db.ServiceRole(svc)] = svc
	}
	rows, err := pool.Query(t.Context(), `
		SELECT n.nspname || '.' || c.relname, r.rolname, a.privilege_type
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		CROSS JOIN LATERAL aclexplode(c.relacl) a
		JOIN pg_roles r ON r.oid = a.grantee
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND r.rolname = ANY($1)`,
		slices.Collect(maps.Keys(roles)))
	if err != nil {
		t.Fatal(err)
	}
	got := grants{}
	var rel, role, priv string
	if _, err := pgx.ForEachRow(rows, []any{&rel, &role, &priv}, func() error {
		if got[rel] == nil {
			got[rel] = map[string][]string{}
		}
		got[rel][roles[role]] = append(got[rel][roles[role]], priv)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, bySvc := range got {
		for _, privs := range bySvc {
			slices.Sort(privs)
		}
	}
	return got
}

// migrated is a new, freshly migrated database (not a template's clone:
// CREATE DATABASE … TEMPLATE does not copy the database's own grants).
func migrated(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := emptyDatabase(t)
	pool, err := db.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := db.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatal(err)
	}
	return pool, dbURL
}

// The documented matrix is the database's: every table of cmms and
// cmmsflow has a row, and the service roles hold exactly its privileges,
// on those tables and nowhere else.
func TestServiceRoleGrantsAreTheMatrix(t *testing.T) {
	pool, _ := migrated(t)
	want := readMatrix(t)
	tables := tablesBySchema(t, pool)
	for _, schema := range []string{db.OwnSourceSchema, db.AutomationSchema} {
		for _, table := range tables[schema] {
			if _, ok := want[schema+"."+table]; !ok {
				t.Errorf("%s.%s has no row in %s: add one (· where a service has nothing)", schema, table, matrixDoc)
			}
		}
	}
	got := actualGrants(t, pool)
	for _, rel := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[rel]; !ok {
			t.Errorf("%s: granted %v, but it is not in %s", rel, got[rel], matrixDoc)
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		for _, svc := range events.Services {
			if w, g := want[rel][svc], got[rel][svc]; !slices.Equal(w, g) {
				t.Errorf("%s, %s: the database grants %v, %s says %v", rel, db.ServiceRole(svc), g, matrixDoc, w)
			}
		}
	}
}

// The roles are plain group roles, with CONNECT on the database, USAGE on
// cmmsflow, USAGE on cmms only when they read a CMMS relation, TEMPORARY
// only for the services that use temporary tables, and nothing else on the
// database or the schemas.
func TestServiceRolesDatabaseAndSchemaRights(t *testing.T) {
	pool, _ := migrated(t)
	want := readMatrix(t)
	for _, svc := range events.Services {
		role := db.ServiceRole(svc)
		var login, super bool
		if err := pool.QueryRow(t.Context(), `SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&login, &super); err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if login || super {
			t.Errorf("%s: login %v, superuser %v; want a NOLOGIN plain role", role, login, super)
		}
		wantDB := []string{"CONNECT"}
		if svc == events.Deployer || svc == events.Pmgen {
			wantDB = append(wantDB, "TEMPORARY")
		}
		if got := aclOf(t, pool, `SELECT datacl FROM pg_database WHERE datname = current_database()`, role); !slices.Equal(got, wantDB) {
			t.Errorf("%s on the database: %v, want %v", role, got, wantDB)
		}
		var source []string
		for rel, bySvc := range want {
			if strings.HasPrefix(rel, db.OwnSourceSchema+".") && len(bySvc[svc]) > 0 {
				source = []string{"USAGE"}
			}
		}
		for schema, w := range map[string][]string{db.AutomationSchema: {"USAGE"}, db.OwnSourceSchema: source, "public": nil} {
			got := aclOf(t, pool, `SELECT nspacl FROM pg_namespace WHERE nspname = '`+schema+`'`, role)
			if !slices.Equal(got, w) {
				t.Errorf("%s on schema %s: %v, want %v", role, schema, got, w)
			}
		}
	}
}

// aclOf is what role holds in the aclitem[] that query returns, sorted.
func aclOf(t *testing.T, pool *pgxpool.Pool, query, role string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT a.privilege_type FROM (`+query+`) q(acl)
		CROSS JOIN LATERAL aclexplode(q.acl) a
		WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1`, role)
	if err != nil {
		t.Fatal(err)
	}
	privs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return privs
}

// serviceLogin is a pool of a new login in service's role, as a
// deployment gives each service, reading the source as the services do.
func serviceLogin(t *testing.T, admin *pgxpool.Pool, dbURL, service string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Connect(t.Context(), pgtest.ServiceLogin(t, admin, dbURL, service))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// statements are the attempts made on each relation, by privilege: each
// needs that privilege and nothing more. TRUNCATE is granted to no one.
func statements(rel, column string) map[string]string {
	return map[string]string{
		"SELECT":   `SELECT count(*) FROM ` + rel,
		"INSERT":   `INSERT INTO ` + rel + ` DEFAULT VALUES`,
		"UPDATE":   `UPDATE ` + rel + ` SET ` + column + ` = DEFAULT WHERE false`,
		"DELETE":   `DELETE FROM ` + rel + ` WHERE false`,
		"TRUNCATE": `TRUNCATE ` + rel,
	}
}

// errRollback ends an attempt's transaction.
var errRollback = errors.New("rollback")

// allowed runs stmt as pool's login in a transaction it rolls back: true
// when the server let it run (it succeeded, or a constraint refused the
// row), false when it refused for want of a privilege.
func allowed(t *testing.T, pool *pgxpool.Pool, stmt string) bool {
	t.Helper()
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), stmt); err != nil {
			return err
		}
		return errRollback
	})
	var pg *pgconn.PgError
	switch {
	case errors.Is(err, errRollback):
		return true
	case errors.As(err, &pg) && pg.Code == "42501": // insufficient_privilege
		return false
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "23"): // integrity: checked after the privileges
		return true
	}
	t.Fatalf("%s: %v", stmt, err)
	return false
}

// Each service's login may do what the matrix grants it, and is refused
// every other read and write: pmgen cannot write runs, the reporter cannot
// write work orders, no one can truncate.
func TestServiceLoginsHaveExactlyTheMatrix(t *testing.T) {
	admin, dbURL := migrated(t)
	want := readMatrix(t)
	columns := map[string]string{}
	for rel := range want {
		var col string
		if err := admin.QueryRow(t.Context(), `SELECT attname FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1`, rel).Scan(&col); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		columns[rel] = pgx.Identifier{col}.Sanitize()
	}
	logins := map[string]*pgxpool.Pool{}
	for _, svc := range events.Services {
		pool := serviceLogin(t, admin, dbURL, svc)
		logins[svc] = pool
		for _, rel := range slices.Sorted(maps.Keys(want)) {
			for priv, stmt := range statements(rel, columns[rel]) {
				granted := slices.Contains(want[rel][svc], priv)
				if got := allowed(t, pool, stmt); got != granted {
					t.Errorf("%s: %s on %s allowed %v, want %v (%s)", svc, priv, rel, got, granted, stmt)
				}
			}
		}
		if allowed(t, pool, `SELECT count(*) FROM public.goose_db_version`) {
			t.Errorf("%s reads the migrations' version table", svc)
		}
	}
	// The examples of issue 16, spelled out.
	for svc, stmt := range map[string]string{
		events.Pmgen:    `UPDATE cmmsflow.runs SET state = 'failed' WHERE true`,
		events.Reporter: `INSERT INTO cmms.work_orders DEFAULT VALUES`,
		events.Notifier: `DELETE FROM cmmsflow.runs`,
		events.Trainer:  `DROP TABLE cmmsflow.models`,
	} {
		if allowed(t, logins[svc], stmt) {
			t.Errorf("%s may %s", svc, stmt)
		}
	}
}

// Many databases of one server migrate at once (parallel test packages,
// e2e stacks): the roles are created once, and every migration succeeds.
func TestServiceRolesMigrateConcurrently(t *testing.T) {
	urls := make([]string, 4)
	for i := range urls {
		urls[i] = emptyDatabase(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, u := range urls {
		wg.Go(func() {
			pool, err := db.Connect(t.Context(), u)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = db.Migrate(t.Context(), pool, nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// Migrating down from 00021 takes this database's grants away and leaves the
// roles (other databases may use them); up again restores them.
func TestServiceRolesDown(t *testing.T) {
	pool, _ := migrated(t)
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = "public"
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	fsys, err := fs.Sub(db.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(t.Context(), 20); err != nil {
		t.Fatal(err)
	}
	if got := actualGrants(t, pool); len(got) > 0 {
		t.Errorf("grants left after the down migration: %v", got)
	}
	role := db.ServiceRole(events.Pmgen)
	if got := aclOf(t, pool, `SELECT nspacl FROM pg_namespace WHERE nspname = 'cmmsflow'`, role); len(got) > 0 {
		t.Errorf("%s keeps %v on schema cmmsflow", role, got)
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil || !exists {
		t.Fatalf("role %s after the down migration: exists %v (%v)", role, exists, err)
	}
	if err := db.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatal(err)
	}
	if got := actualGrants(t, pool); len(got["cmmsflow.runs"]) != len(events.Services) {
		t.Errorf("after migrating up again, runs is granted to %v", got["cmmsflow.runs"])
	}
}

// GrantServiceLogin makes a login a member of its service's role once, and
// refuses what would defeat the matrix.
func TestGrantServiceLogin(t *testing.T) {
	pool, _ := migrated(t)
	ctx := t.Context()
	login := "t_grant_" + strings.ToLower(rand.Text()[:8])
	other := login + "_other"
	super := login + "_super"
	if _, err := pool.Exec(ctx, `CREATE ROLE `+login+` LOGIN; CREATE ROLE `+other+` LOGIN; CREATE ROLE `+super+` LOGIN SUPERUSER;
		GRANT cmmsflow_reporter TO `+other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP ROLE `+login+`, `+other+`, `+super); err != nil {
			t.Error(err)
		}
	})
	for range 2 {
		if err := db.GrantServiceLogin(ctx, pool, events.Pmgen, login); err != nil {
			t.Fatal(err)
		}
	}
	var member bool
	if err := pool.QueryRow(ctx, `SELECT pg_has_role($1, 'cmmsflow_pmgen', 'MEMBER')`, login).Scan(&member); err != nil || !member {
		t.Fatalf("%s a member of cmmsflow_pmgen: %v (%v)", login, member, err)
	}
	var self string
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&self); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ service, login, want string }{
		{"scheduler", login, `unknown service "scheduler"`},
		{events.Pmgen, login + "_missing", "no such login: create it first"},
		{events.Pmgen, super, "superuser, which bypasses every grant"},
		{events.Pmgen, self, "the login applying the migrations"},
		{events.Pmgen, other, "already a member of cmmsflow_reporter"},
	} {
		if err := db.GrantServiceLogin(ctx, pool, c.service, c.login); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("grant %s to %s: %v, want %q", c.service, c.login, err, c.want)
		}
	}
}

// A service's login cannot migrate, and says why.
func TestMigrateAsAServiceLoginIsDenied(t *testing.T) {
	admin, dbURL := migrated(t)
	pool := serviceLogin(t, admin, dbURL, events.Control)
	err := db.Migrate(t.Context(), pool, nil)
	if !errors.Is(err, db.ErrMigrationDenied) || !strings.Contains(err.Error(), "svc_control_") {
		t.Fatalf("migrate as control's login: %v, want %v naming the login", err, db.ErrMigrationDenied)
	}
}
