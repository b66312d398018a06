package terraformcheck

import (
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// IAMAuthFlag is the Cloud SQL for PostgreSQL flag that lets IAM users log in.
const IAMAuthFlag = "cloudsql.iam_authentication"

// migrateJob checks the root module has one Cloud Run job running
// `cmmsflow migrate` as the owner login (DATABASE_URL's user database_user,
// PGPASSWORD from <prefix>-db-password, readable by the job's account), under
// a service account of its own, with --login SERVICE=<its IAM user> for
// every service, and refusing to plan while the instance lacks IAMAuthFlag.
func (c *checker) migrateJob() {
	v := func(name string) string { s, _ := str(c.root.Vars[name]); return s }
	var jobs []*Instance
	c.unevaluated(c.root, "google_cloud_run_v2_job")
	for _, in := range instances(c.root, "google_cloud_run_v2_job") {
		if args := jobArgs(c.root, in); len(args) > 0 && args[0] == MigrateCommand {
			jobs = append(jobs, in)
		}
	}
	if len(jobs) != 1 {
		c.fail("migrate job: want one google_cloud_run_v2_job running `cmmsflow %s`, found %d", MigrateCommand, len(jobs))
		return
	}
	in := jobs[0]
	where := "migrate job " + in.addr()
	account, _ := str(c.attr(c.root, in, "template", "template", "service_account"))
	c.jobAccount(where, account)
	env, secrets := jobEnv(c.root, in)
	if user, ok := c.databaseUser(where, env); ok && user != v("database_user") {
		c.fail("%s: connects as %q, want the owner login %q (database_user)", where, user, v("database_user"))
	}
	owner := v("name_prefix") + "-db-password"
	switch secret := secrets["PGPASSWORD"]; {
	case secret != owner:
		c.fail("%s: PGPASSWORD from secret %q, want the owner's %q", where, secret, owner)
	case !c.rootSecretReadable(secret, "serviceAccount:"+account):
		c.fail("%s: its account may not read secret %q (roles/secretmanager.secretAccessor)", where, secret)
	}
	if !requiresFlag(in, IAMAuthFlag) {
		c.fail("%s: no lifecycle precondition requiring the instance flag %s=on (the services' IAM logins need it)", where, IAMAuthFlag)
	}
	args := jobArgs(c.root, in)
	for _, name := range c.exp.Services {
		s, ok := c.svcs[name]
		if !ok {
			continue
		}
		want := name + "=" + c.iamUser(s)
		found := false
		for i := 1; i+1 < len(args); i++ {
			found = found || (args[i] == LoginFlag && args[i+1] == want)
		}
		if !found {
			c.fail("%s: no %s %s: %s's IAM user would not be a member of its role", where, LoginFlag, want, name)
		}
	}
}

// jobAccount checks the job runs as a service account of the root module's,
// none of the services'.
func (c *checker) jobAccount(where, account string) {
	sa, attr, ok := resolve(c.root, account)
	if !ok || attr != "email" || sa.Block.Type != "google_service_account" {
		c.fail("%s: runs as %q, not a google_service_account of its own", where, account)
		return
	}
	id, _ := str(attrOf(sa.Value, "account_id"))
	for name, s := range c.svcs {
		for _, own := range instances(s.eval, "google_service_account") {
			if other, _ := str(attrOf(own.Value, "account_id")); other == id {
				c.fail("%s: runs as service %s's account %q", where, name, id)
			}
		}
	}
}

// rootSecretReadable reports whether member holds secretAccessor on the
// secret in the root module, and the secret is one the root creates.
func (c *checker) rootSecretReadable(secret, member string) bool {
	created := false
	for _, in := range instances(c.root, "google_secret_manager_secret") {
		id, _ := str(attrOf(in.Value, "secret_id"))
		created = created || id == secret
	}
	for _, m := range instances(c.root, "google_secret_manager_secret_iam_member") {
		role, _ := str(attrOf(m.Value, "role"))
		id, _ := str(attrOf(m.Value, "secret_id"))
		who, _ := str(attrOf(m.Value, "member"))
		if created && role == "roles/secretmanager.secretAccessor" && id == secret && who == member {
			return true
		}
	}
	return false
}

// jobContainer is the body of the job's (first) container.
func jobContainer(in *Instance) *hclsyntax.Body {
	body := in.Block.Body
	for _, typ := range []string{"template", "template", "containers"} {
		i := slices.IndexFunc(body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == typ })
		if i < 0 {
			return nil
		}
		body = body.Blocks[i].Body
	}
	return body
}

// jobArgs is the job container's args (nil when unknown).
func jobArgs(ev *Eval, in *Instance) []string {
	body := jobContainer(in)
	if body == nil || body.Attributes["args"] == nil {
		return nil
	}
	val, diags := body.Attributes["args"].Expr.Value(ev.ctx(in))
	if diags.HasErrors() || !val.IsWhollyKnown() || val.IsNull() || !val.CanIterateElements() {
		return nil
	}
	var out []string
	for it := val.ElementIterator(); it.Next(); {
		_, x := it.Element()
		s, _ := str(x)
		out = append(out, s)
	}
	return out
}

// jobEnv is the job container's plain environment (an object, as a
// service's local.env) and its secret environment (name → secret id).
func jobEnv(ev *Eval, in *Instance) (cty.Value, map[string]string) {
	plain, secrets := map[string]cty.Value{}, map[string]string{}
	body := jobContainer(in)
	if body == nil {
		return cty.EmptyObjectVal, secrets
	}
	ctx := ev.ctx(in)
	for _, b := range body.Blocks {
		if b.Type != "env" {
			continue
		}
		name, _ := str(value(b.Body.Attributes["name"], ctx))
		if x := value(b.Body.Attributes["value"], ctx); x != cty.NilVal {
			plain[name] = x
		}
		for _, vs := range b.Body.Blocks {
			for _, ref := range vs.Body.Blocks {
				if vs.Type == "value_source" && ref.Type == "secret_key_ref" {
					secrets[name], _ = str(value(ref.Body.Attributes["secret"], ctx))
				}
			}
		}
	}
	return cty.ObjectVal(plain), secrets
}

// value evaluates the attribute (cty.NilVal when absent or in error).
func value(a *hclsyntax.Attribute, ctx *hcl.EvalContext) cty.Value {
	if a == nil {
		return cty.NilVal
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal
	}
	return v
}

// requiresFlag reports whether a lifecycle precondition of the instance
// compares a database flag named flag with "on".
func requiresFlag(in *Instance, flag string) bool {
	for _, lc := range in.Block.Body.Blocks {
		for _, pc := range lc.Body.Blocks {
			cond := pc.Body.Attributes["condition"]
			if lc.Type != "lifecycle" || pc.Type != "precondition" || cond == nil {
				continue
			}
			strs := map[string]bool{}
			_ = hclsyntax.VisitAll(cond.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
				if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok {
					if s, ok := str(lit.Val); ok {
						strs[s] = true
					}
				}
				return nil
			})
			if strs[flag] && strs["on"] {
				return true
			}
		}
	}
	return false
}
