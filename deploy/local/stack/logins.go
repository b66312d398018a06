package stack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// sourceReaders are the services that read the CMMS relations: with a
// mapped source their roles get SELECT on it (docs/database-roles.md).
var sourceReaders = []string{events.Control, events.Extractor, events.Deployer, events.Pmgen, events.Notifier, events.Reporter}

// loginName is the login of service on the database of dbURL: one per
// service and database, so stacks on different databases of one server
// (the tests') do not share logins.
func loginName(service, dbURL string) string {
	database := "cmmsflow"
	if u, err := url.Parse(dbURL); err == nil && strings.TrimPrefix(u.Path, "/") != "" {
		database = strings.TrimPrefix(u.Path, "/")
	}
	name := "svc_" + service + "_" + strings.ToLower(database)
	if len(name) > 63 || !isIdent(name) {
		sum := sha256.Sum256([]byte(database))
		name = "svc_" + service + "_" + hex.EncodeToString(sum[:6])
	}
	return name
}

func isIdent(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// createLogins gives every service a login of its own, a member of its
// group role and nothing else, as a deployment does (made on the first
// start, given a new password on each), and sets s.serviceURLs, each
// service's DATABASE_URL. With a mapped source, the roles of the services
// that read it get SELECT on it (an apply recreates the schema).
func (s *Stack) createLogins(ctx context.Context, pool *pgxpool.Pool) error {
	s.serviceURLs = map[string]string{}
	for _, svc := range events.Services {
		login := loginName(svc, s.DatabaseURL)
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		password := hex.EncodeToString(b)
		ident := pgx.Identifier{login}.Sanitize()
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, login).Scan(&exists); err != nil {
			return err
		}
		stmt := "CREATE ROLE " + ident + " LOGIN PASSWORD '" + password + "'"
		if exists {
			stmt = "ALTER ROLE " + ident + " LOGIN PASSWORD '" + password + "'"
		}
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("login of %s: %w", svc, err)
		}
		if err := db.GrantServiceLogin(ctx, pool, svc, login); err != nil {
			return err
		}
		u, err := url.Parse(s.DatabaseURL)
		if err != nil {
			return fmt.Errorf("database URL: %w", err)
		}
		u.User = url.UserPassword(login, password)
		s.serviceURLs[svc] = u.String()
		s.logins = append(s.logins, login)
	}
	if !s.DjangoSource {
		return nil
	}
	roles := make([]string, len(sourceReaders))
	for i, svc := range sourceReaders {
		roles[i] = db.ServiceRole(svc)
	}
	list := strings.Join(roles, ", ")
	_, err := pool.Exec(ctx, "GRANT USAGE ON SCHEMA "+source.DefaultSchema+" TO "+list+
		"; GRANT SELECT ON ALL TABLES IN SCHEMA "+source.DefaultSchema+" TO "+list)
	if err != nil {
		return fmt.Errorf("grant the mapped source: %w", err)
	}
	return nil
}

// dropLogins drops the services' logins once they have stopped; the next
// start makes them again.
func (s *Stack) dropLogins() {
	if len(s.logins) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		s.Log.Warn("drop the services' logins", "error", err)
		return
	}
	defer conn.Close(ctx)
	for _, login := range s.logins {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{login}.Sanitize()); err != nil {
			s.Log.Warn("drop a service's login", "login", login, "error", err)
		}
	}
	s.logins = nil
}

// Login is the login service connects as: its own, a member of its group
// role (db.ServiceRole) only.
func (s *Stack) Login(service string) string { return loginName(service, s.DatabaseURL) }
