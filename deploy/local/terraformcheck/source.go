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

// The logins a service may connect as (deploy/terraform/source.tf).
const (
	loginOwner    = "owner"    // database_user, PGPASSWORD from <prefix>-db-password
	loginPassword = "password" // source_database_user, PGPASSWORD from <prefix>-source-db-password
	loginIAM      = "iam"      // the runtime service account, through the Auth Proxy sidecar
)

// OwnSourceSchema is the source schema of cmmsflow's own tables (libs/db).
const OwnSourceSchema = "cmms"

// database checks every service reads the CMMS from source_schema and
// connects with the login it should: the migrator (control) and, while the
// source is cmmsflow's own tables, every service as the owner; with a mapped
// source every other service as the read-only login of source_login.
func (c *checker) database() {
	v := func(name string) string { s, _ := str(c.root.Vars[name]); return s }
	schema := v("source_schema")
	secrets := map[string]bool{}
	for _, in := range instances(c.root, "google_secret_manager_secret") {
		if id, ok := str(attrOf(in.Value, "secret_id")); ok {
			secrets[id] = true
		}
	}
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
		want := loginOwner
		if name != c.exp.Migrator && schema != OwnSourceSchema {
			want = v("source_login")
		}
		raw, _ := str(field(env, "DATABASE_URL"))
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "postgres" || u.User == nil {
			c.fail("%s: DATABASE_URL %q: want postgres://<user>@/<database>?host=/cloudsql/<instance>", where, raw)
			continue
		}
		if host := "/cloudsql/" + v("cloudsql_instance"); u.Query().Get("host") != host || u.Path != "/"+v("database_name") {
			c.fail("%s: DATABASE_URL %q: want database %s on host %s", where, raw, v("database_name"), host)
		}
		user := u.User.Username()
		if _, set := u.User.Password(); set {
			c.fail("%s: DATABASE_URL carries a password", where)
		}
		secret, _ := str(field(s.eval.Locals["secret_env"], "PGPASSWORD"))
		var wantUser, wantSecret string
		switch want {
		case loginOwner:
			wantUser, wantSecret = v("database_user"), v("name_prefix")+"-db-password"
		case loginPassword:
			wantUser, wantSecret = v("source_database_user"), v("name_prefix")+"-source-db-password"
			if wantUser == v("database_user") {
				c.fail("%s: the read-only login source_database_user is database_user %q, the owner login", where, wantUser)
			}
		case loginIAM:
			wantUser = c.iamUser(s)
		}
		if user != wantUser {
			c.fail("%s: connects as %q, want the %s login %q (source_schema %q)", where, user, want, wantUser, schema)
		}
		if secret != wantSecret {
			c.fail("%s: PGPASSWORD from secret %q, want %q (the %s login)", where, secret, wantSecret, want)
		}
		if secret != "" {
			if !secrets[secret] {
				c.fail("%s: PGPASSWORD secret %q: no google_secret_manager_secret", where, secret)
			}
			if !c.grantedSecret(s, secret) {
				c.fail("%s: may not read secret %q (roles/secretmanager.secretAccessor)", where, secret)
			}
		}
		c.iamLogin(where, s, want == loginIAM, user)
	}
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

func (c *checker) grantedSecret(s *service, secret string) bool {
	for _, m := range instances(s.eval, "google_secret_manager_secret_iam_member") {
		role, _ := str(attrOf(m.Value, "role"))
		id, _ := str(attrOf(m.Value, "secret_id"))
		if role == "roles/secretmanager.secretAccessor" && id == secret {
			return true
		}
	}
	return false
}

// iamLogin checks what the IAM login needs (a CLOUD_IAM_SERVICE_ACCOUNT user
// named as DATABASE_URL's user, roles/cloudsql.instanceUser, an Auth Proxy
// sidecar with automatic IAM authentication) is there exactly when the
// service uses it.
func (c *checker) iamLogin(where string, s *service, want bool, user string) {
	var users []string
	for _, in := range instances(s.eval, "google_sql_user") {
		if typ, _ := str(attrOf(in.Value, "type")); typ == "CLOUD_IAM_SERVICE_ACCOUNT" {
			name, _ := str(attrOf(in.Value, "name"))
			users = append(users, name)
		}
	}
	login := false
	for _, in := range instances(s.eval, "google_project_iam_member") {
		role, _ := str(attrOf(in.Value, "role"))
		login = login || role == "roles/cloudsql.instanceUser"
	}
	proxies := c.proxySidecars(s)
	if !want {
		if len(users) > 0 || login || proxies > 0 {
			c.fail("%s: has a Cloud SQL IAM user, instanceUser role or Auth Proxy sidecar but does not use the IAM login", where)
		}
		return
	}
	if !slices.Equal(users, []string{user}) {
		c.fail("%s: Cloud SQL IAM users %q, want exactly DATABASE_URL's user %q", where, users, user)
	}
	if !login {
		c.fail("%s: IAM login without roles/cloudsql.instanceUser", where)
	}
	if proxies != 1 {
		c.fail("%s: IAM login: want one Cloud SQL Auth Proxy sidecar with --auto-iam-authn, found %d", where, proxies)
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
