package terraformcheck

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// ---- database logins -------------------------------------------------------------

// OwnSourceSchema is the source schema of cmmsflow's own tables (libs/db).
const OwnSourceSchema = "cmms"

// MigrateCommand is the cmmsflow CLI command that applies the migrations and,
// with LoginFlag SERVICE=LOGIN, makes a service's login a member of its role.
const (
	MigrateCommand = "migrate"
	LoginFlag      = "--login"
)

// database checks every service reads the CMMS from source_schema and
// connects as a login of its own: its runtime service account's Cloud SQL IAM
// user, without a password, never the owner (database_user) nor another
// service's login; that the migrator does not migrate on start; and that the
// migrate job applies the migrations as the owner and grants each service's
// role to its IAM user.
func (c *checker) database() {
	v := func(name string) string { s, _ := str(c.root.Vars[name]); return s }
	schema := v("source_schema")
	users := map[string]string{} // DATABASE_URL user → service
	for _, name := range c.exp.Services {
		s, ok := c.svcs[name]
		if !ok {
			continue
		}
		where := fmt.Sprintf("service %s (module.%s)", name, s.call)
		env := s.eval.Locals["env"]
		if got, _ := str(field(env, "SOURCE_SCHEMA")); got != schema {
			c.fail("%s: SOURCE_SCHEMA %q, want source_schema %q", where, got, schema)
		}
		if got, set := str(field(env, "MIGRATE_ON_START")); (name == c.exp.Migrator || set) && got != "false" {
			c.fail("%s: MIGRATE_ON_START %q, want \"false\": the migrate job applies the migrations as the owner; a service's login may not", where, got)
		}
		user, ok := c.databaseUser(where, env)
		if !ok {
			continue
		}
		if secret, _ := str(field(s.eval.Locals["secret_env"], "PGPASSWORD")); secret != "" {
			c.fail("%s: PGPASSWORD from secret %q: a service logs in as its IAM user, without a password", where, secret)
		}
		switch {
		case user == v("database_user"):
			c.fail("%s: connects as the owner login %q (database_user)", where, user)
		case users[user] != "":
			c.fail("%s: shares the database login %q with service %s", where, user, users[user])
		default:
			users[user] = name
		}
		if want := c.iamUser(s); user != want {
			c.fail("%s: connects as %q, want its own IAM user %q", where, user, want)
		}
		c.iamLogin(where, s, user)
	}
	c.migrateJob()
}

// databaseUser is the user of DATABASE_URL in env, which must name the
// database on the instance's socket and carry no password.
func (c *checker) databaseUser(where string, env cty.Value) (string, bool) {
	v := func(name string) string { s, _ := str(c.root.Vars[name]); return s }
	raw, _ := str(field(env, "DATABASE_URL"))
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "postgres" || u.User == nil {
		c.fail("%s: DATABASE_URL %q: want postgres://<user>@/<database>?host=/cloudsql/<instance>", where, raw)
		return "", false
	}
	if host := "/cloudsql/" + v("cloudsql_instance"); u.Query().Get("host") != host || u.Path != "/"+v("database_name") {
		c.fail("%s: DATABASE_URL %q: want database %s on host %s", where, raw, v("database_name"), host)
	}
	if _, set := u.User.Password(); set {
		c.fail("%s: DATABASE_URL carries a password", where)
	}
	return u.User.Username(), true
}

// iamUser is the PostgreSQL IAM user of the service's runtime account.
func (c *checker) iamUser(s *service) string {
	sas := instances(s.eval, "google_service_account")
	if len(sas) != 1 {
		return ""
	}
	id, _ := str(attrOf(sas[0].Value, "account_id"))
	project, _ := str(c.root.Vars["project_id"])
	return id + "@" + project + ".iam"
}

// iamLogin checks the service has what its IAM login needs: a
// CLOUD_IAM_SERVICE_ACCOUNT user named as DATABASE_URL's user,
// roles/cloudsql.client and roles/cloudsql.instanceUser, and an Auth Proxy
// sidecar with automatic IAM authentication.
func (c *checker) iamLogin(where string, s *service, user string) {
	var users []string
	for _, in := range instances(s.eval, "google_sql_user") {
		if typ, _ := str(attrOf(in.Value, "type")); typ == "CLOUD_IAM_SERVICE_ACCOUNT" {
			name, _ := str(attrOf(in.Value, "name"))
			users = append(users, name)
		}
	}
	roles := map[string]bool{}
	for _, in := range instances(s.eval, "google_project_iam_member") {
		role, _ := str(attrOf(in.Value, "role"))
		roles[role] = true
	}
	if !slices.Equal(users, []string{user}) {
		c.fail("%s: Cloud SQL IAM users %q, want exactly DATABASE_URL's user %q", where, users, user)
	}
	for _, role := range []string{"roles/cloudsql.client", "roles/cloudsql.instanceUser"} {
		if !roles[role] {
			c.fail("%s: IAM login without %s", where, role)
		}
	}
	if n := c.proxySidecars(s); n != 1 {
		c.fail("%s: IAM login: want one Cloud SQL Auth Proxy sidecar with --auto-iam-authn, found %d", where, n)
	}
}

// proxySidecars counts the Cloud Run service's containers (plain or
// dynamic blocks, expanded) run with --auto-iam-authn.
func (c *checker) proxySidecars(s *service) int {
	var tmpl *hclsyntax.Body
	for _, b := range s.run.Block.Body.Blocks {
		if b.Type == "template" {
			tmpl = b.Body
		}
	}
	if tmpl == nil {
		return 0
	}
	ctx := s.eval.ctx(s.run)
	n := 0
	for _, b := range tmpl.Blocks {
		switch {
		case b.Type == "containers":
			if hasArg(b.Body.Attributes["args"], ctx, "--auto-iam-authn") {
				n++
			}
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == "containers":
			fe, ok := b.Body.Attributes["for_each"]
			if !ok {
				continue
			}
			each, diags := fe.Expr.Value(ctx)
			if diags.HasErrors() || !each.IsWhollyKnown() || each.IsNull() || !each.CanIterateElements() {
				continue
			}
			for _, content := range b.Body.Blocks {
				if content.Type != "content" {
					continue
				}
				for it := each.ElementIterator(); it.Next(); {
					k, val := it.Element()
					vars := make(map[string]cty.Value, len(ctx.Variables)+1)
					for name, x := range ctx.Variables {
						vars[name] = x
					}
					vars["containers"] = cty.ObjectVal(map[string]cty.Value{"key": k, "value": val})
					if hasArg(content.Body.Attributes["args"], &hcl.EvalContext{Variables: vars, Functions: ctx.Functions}, "--auto-iam-authn") {
						n++
					}
				}
			}
		}
	}
	return n
}

// hasArg reports whether the args attribute evaluates to a list holding arg.
func hasArg(a *hclsyntax.Attribute, ctx *hcl.EvalContext, arg string) bool {
	if a == nil {
		return false
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || !v.CanIterateElements() {
		return false
	}
	for it := v.ElementIterator(); it.Next(); {
		_, x := it.Element()
		if s, ok := str(x); ok && s == arg {
			return true
		}
	}
	return false
}

// field is the element name of an object or a map (cty.NilVal if absent).
func field(v cty.Value, name string) cty.Value {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		return cty.NilVal
	}
	if v.Type().IsMapType() {
		if v.HasIndex(cty.StringVal(name)).True() {
			return v.Index(cty.StringVal(name))
		}
		return cty.NilVal
	}
	return attrOf(v, name)
}
