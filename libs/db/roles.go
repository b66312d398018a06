package db

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
