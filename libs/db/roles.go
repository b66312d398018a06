package db

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Database roles (migration 00021, docs/database-roles.md). The login that
// applies the migrations (`cmmsflow migrate`) owns the schemas and their
// tables; no service needs it. Each service instead connects as a login of
// its own that is a member of the service's group role, a NOLOGIN role the
// migrations create and grant exactly the tables the service reads and
// writes. Roles are cluster-wide: every database of a server shares them,
// each with its own grants.

// ServiceRolePrefix starts the name of every service's group role.
const ServiceRolePrefix = "cmmsflow_"

// ServiceRole is the group role of service (a name of events.Services):
// cmmsflow_pmgen for pmgen. A deployment makes the service's login a member:
// GRANT cmmsflow_pmgen TO pmgen_login.
func ServiceRole(service string) string { return ServiceRolePrefix + service }

// GrantServiceLogin makes login, an existing role, a member of service's
// group role, so that it holds exactly the service's grants. It refuses an
// unknown service, a login that does not exist, a superuser (it bypasses
// every grant), the login running it (the owner must not be a service's)
// and a member of another service's role. Granting again is a no-op.
func GrantServiceLogin(ctx context.Context, pool *pgxpool.Pool, service, login string) error {
	if !slices.Contains(events.Services, service) {
		return fmt.Errorf("db: grant a login: unknown service %q (want one of %v)", service, events.Services)
	}
	var super, self bool
	var other string
	err := pool.QueryRow(ctx, `SELECT r.rolsuper, r.rolname = current_user,
		coalesce((SELECT string_agg(g.rolname, ', ') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
		          WHERE m.member = r.oid AND g.rolname LIKE 'cmmsflow\_%' AND g.rolname <> $2), '')
		FROM pg_roles r WHERE r.rolname = $1`, login, ServiceRole(service)).Scan(&super, &self, &other)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("db: grant %s to %q: no such login: create it first (CREATE ROLE … LOGIN, or a Cloud SQL IAM user)", ServiceRole(service), login)
	case err != nil:
		return fmt.Errorf("db: grant %s to %q: %w", ServiceRole(service), login, err)
	case self:
		return fmt.Errorf("db: grant %s to %q: that is the login applying the migrations, which owns the schema: give %s a login of its own", ServiceRole(service), login, service)
	case super:
		return fmt.Errorf("db: grant %s to %q: the login is a superuser, which bypasses every grant: give %s a plain login", ServiceRole(service), login, service)
	case other != "":
		return fmt.Errorf("db: grant %s to %q: the login is already a member of %s: give each service a login of its own", ServiceRole(service), login, other)
	}
	if _, err := pool.Exec(ctx, "GRANT "+ServiceRole(service)+" TO "+pgx.Identifier{login}.Sanitize()); err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "42501" {
			return fmt.Errorf("db: grant %s to %q: %w: the login applying the migrations needs CREATEROLE (or ADMIN OPTION on %[1]s)", ServiceRole(service), login, err)
		}
		return fmt.Errorf("db: grant %s to %q: %w", ServiceRole(service), login, err)
	}
	return nil
}
