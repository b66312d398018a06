package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// ReadOnlyLogin creates a login role on the test database of pool (URL
// dbURL) granted as 'cmmsflow source grant' grants a service's login
// (source.Grant) for each schema of readOnly: SELECT on the tables and
// views it holds now, and read-write on the automation schema's tables and
// sequences, as a service of a mapped source runs. It
// returns dbURL with that login. Call it after the relations exist; the role
// is dropped when the test ends (close pools of it in a later t.Cleanup).
func ReadOnlyLogin(t testing.TB, pool *pgxpool.Pool, dbURL string, readOnly ...string) string {
	t.Helper()
	ctx := context.Background()
	// The grants are owned objects of the role: DROP OWNED goes first.
	role, u := login(t, pool, dbURL, "ro_"+randSuffix(), "DROP OWNED BY %[1]s; DROP ROLE %[1]s")
	// The product's grants (cmmsflow source grant), one per schema read.
	for _, schema := range readOnly {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return source.Grant(ctx, tx, schema, role) }); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	return u
}

// ServiceLogin creates a login on the server of pool (URL dbURL) that is a
// member of service's group role (db.ServiceRole, granted by the
// migrations), as a deployment gives each service a login of its own, and
// returns dbURL with that login. The login is dropped when the test ends
// (close pools of it in a later t.Cleanup).
func ServiceLogin(t testing.TB, pool *pgxpool.Pool, dbURL, service string) string {
	t.Helper()
	role, u := login(t, pool, dbURL, "svc_"+service+"_"+randSuffix(), "DROP ROLE %[1]s")
	if err := db.GrantServiceLogin(context.Background(), pool, service, role); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// login creates the login role with a random password and returns it with
// dbURL logging in as it; drop (a format with the quoted role name as %[1]s)
// removes it when the test ends.
func login(t testing.TB, pool *pgxpool.Pool, dbURL, role, drop string) (string, string) {
	t.Helper()
	password := randSuffix() + randSuffix()
	name := pgx.Identifier{role}.Sanitize()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, fmt.Sprintf(drop, name)); err != nil {
			t.Logf("pgtest: drop role %s: %v", role, err)
		}
	})
	if _, err := pool.Exec(context.Background(), "CREATE ROLE "+name+" LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatalf("pgtest: create role: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: database URL: %v", err)
	}
	u.User = url.UserPassword(role, password)
	return role, u.String()
}
