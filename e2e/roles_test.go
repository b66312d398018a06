package e2e

import (
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The stack runs as a deployment does: every service is connected as a
// login of its own, a plain member of its group role, and none as the
// owner (the pipelines the other tests run therefore need no more than
// docs/database-roles.md grants).
func TestServicesConnectAsTheirOwnLogins(t *testing.T) {
	for _, svc := range events.Services {
		login := sys.Login(svc)
		var conns int
		var super, member, owner bool
		err := pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()),
			       r.rolsuper, pg_has_role(r.oid, $2, 'MEMBER'),
			       pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'cmmsflow.runs'::regclass), 'MEMBER')
			FROM pg_roles r WHERE r.rolname = $1`, login, db.ServiceRole(svc)).Scan(&conns, &super, &member, &owner)
		if err != nil {
			t.Fatalf("%s's login %s: %v", svc, login, err)
		}
		if conns == 0 || super || !member || owner {
			t.Errorf("%s's login %s: %d connections, superuser %v, member of %s %v, owner %v; want connected, a plain member, not the owner",
				svc, login, conns, super, db.ServiceRole(svc), member, owner)
		}
	}
}
