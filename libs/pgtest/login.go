package pgtest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
)

// ReadOnlyLogin creates a login role on the test database of pool (URL
// dbURL) that may only read the schemas readOnly (USAGE, and SELECT on the
// tables and views they hold now) and may read and write the automation
// schema's tables and sequences, as a service of a mapped source runs. It
// returns dbURL with that login. Call it after the relations exist; the role
// is dropped when the test ends (close pools of it in a later t.Cleanup).
func ReadOnlyLogin(t testing.TB, pool *pgxpool.Pool, dbURL string, readOnly ...string) string {
	t.Helper()
	ctx := context.Background()
	role, password := "ro_"+randSuffix(), randSuffix()+randSuffix()
	name := pgx.Identifier{role}.Sanitize()
	stmts := []string{
		"CREATE ROLE " + name + " LOGIN PASSWORD '" + password + "'",
		"GRANT USAGE, CREATE ON SCHEMA " + db.AutomationSchema + " TO " + name,
		"GRANT ALL ON ALL TABLES IN SCHEMA " + db.AutomationSchema + " TO " + name,
		"GRANT ALL ON ALL SEQUENCES IN SCHEMA " + db.AutomationSchema + " TO " + name,
	}
	for _, s := range readOnly {
		schema := pgx.Identifier{s}.Sanitize()
		stmts = append(stmts, "GRANT USAGE ON SCHEMA "+schema+" TO "+name,
			"GRANT SELECT ON ALL TABLES IN SCHEMA "+schema+" TO "+name)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP OWNED BY "+name+"; DROP ROLE "+name); err != nil {
			t.Logf("pgtest: drop role %s: %v", role, err)
		}
	})
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("pgtest: %s: %v", s, err)
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: database URL: %v", err)
	}
	u.User = url.UserPassword(role, password)
	return u.String()
}
