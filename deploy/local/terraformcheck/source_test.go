package terraformcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cmmsflow/cmmsflow/libs/db"
)

// sourceVars are the root variables of a deployment reading a mapped source
// through login ("" keeps source_schema's default, cmmsflow's own tables).
func sourceVars(login string) map[string]cty.Value {
	vars := map[string]cty.Value{
		"project_id":        cty.StringVal("acme-fleet"),
		"cloudsql_instance": cty.StringVal("acme-fleet:us-central1:cmms-pg"),
		"pm_backend_url":    cty.StringVal("https://cmms.acme.example/api"),
	}
	if login != "" {
		vars["source_schema"] = cty.StringVal("cmms_mapped")
		vars["source_login"] = cty.StringVal(login)
	}
	return vars
}

// TestTerraformMappedSource: with each kind of login the services read
// SOURCE_SCHEMA through it, control through the owner login.
func TestTerraformMappedSource(t *testing.T) {
	for _, login := range []string{"", "password", "iam"} {
		t.Run("login="+login, func(t *testing.T) {
			problems, err := CheckWith(terraformDir, expect(t), sourceVars(login))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// TestTerraformMappedSourceWiring spells out, for the password login, what
// the check derives: who connects as whom, with which secret.
func TestTerraformMappedSourceWiring(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, sourceVars("password"))
	for _, svc := range expect(t).Services {
		child := ev.Children[svc]
		if child == nil {
			t.Errorf("no module.%s", svc)
			continue
		}
		env, secrets := child.Locals["env"], child.Locals["secret_env"]
		url, _ := str(field(env, "DATABASE_URL"))
		pw, _ := str(field(secrets, "PGPASSWORD"))
		schema, _ := str(field(env, "SOURCE_SCHEMA"))
		wantUser, wantSecret := "cmmsflow_reader@", "cmmsflow-source-db-password"
		if svc == "control" {
			wantUser, wantSecret = "cmmsflow@", "cmmsflow-db-password"
		}
		if !strings.HasPrefix(url, "postgres://"+wantUser+"/cmmsflow?host=/cloudsql/acme-fleet:us-central1:cmms-pg") ||
			pw != wantSecret || schema != "cmms_mapped" {
			t.Errorf("%s: DATABASE_URL %q, PGPASSWORD from %q, SOURCE_SCHEMA %q; want user %s, secret %s, cmms_mapped",
				svc, url, pw, schema, strings.TrimSuffix(wantUser, "@"), wantSecret)
		}
	}
	if got := field(ev.Locals["secrets"], "source_password"); got == cty.NilVal {
		t.Error("local.secrets: no source_password secret with source_login = password")
	}
	if got := field(Evaluate(m, sourceVars("iam")).Locals["secrets"], "source_password"); got != cty.NilVal {
		t.Error("local.secrets: a source_password secret with source_login = iam")
	}
}

// TestCheckCatchesLoginMismatch breaks the login wiring one way at a time.
func TestCheckCatchesLoginMismatch(t *testing.T) {
	tests := []struct {
		name, login, file, old, new, want string
	}{
		{"control reads through the read-only login", "password", "services.tf",
			"owner_login             = true", "owner_login             = false",
			`service control (module.control): connects as "cmmsflow_reader", want the owner login "cmmsflow"`},
		{"SOURCE_SCHEMA not passed", "", "modules/service/main.tf",
			"SOURCE_SCHEMA        = var.platform.source_schema\n", "",
			`service reporter (module.reporter): SOURCE_SCHEMA "", want source_schema "cmms"`},
		{"read-only login with the owner's password", "password", "services.tf",
			`local.reader_login == "password" ? local.secret_ids.source_password : ""`, `local.secret_ids.db_password`,
			`service pmgen (module.pmgen): PGPASSWORD from secret "cmmsflow-db-password", want "cmmsflow-source-db-password"`},
		{"mapped source read as the owner", "password", "main.tf",
			`reader_login  = local.source_mapped ? var.source_login : "owner"`, `reader_login  = "owner"`,
			`service extractor (module.extractor): connects as "cmmsflow", want the password login "cmmsflow_reader"`},
		{"read-only password secret not created", "password", "secrets.tf",
			`!(k == "source_password" && local.reader_login != "password")`, `!(k == "source_password")`,
			`service notifier (module.notifier): PGPASSWORD secret "cmmsflow-source-db-password": no google_secret_manager_secret`},
		{"proxy without automatic IAM authentication", "iam", "modules/service/main.tf",
			"\"--auto-iam-authn\",\n", "",
			"service featurejob (module.featurejob): IAM login: want one Cloud SQL Auth Proxy sidecar with --auto-iam-authn, found 0"},
		{"IAM user not DATABASE_URL's", "iam", "modules/service/main.tf",
			"name = local.iam_user", `name = "${var.name}@${var.platform.project_id}.iam"`,
			`service trainer (module.trainer): Cloud SQL IAM users ["trainer@acme-fleet.iam"], want exactly DATABASE_URL's user "cmmsflow-trainer@acme-fleet.iam"`},
		{"IAM login without instanceUser", "iam", "modules/service/main.tf",
			`role    = "roles/cloudsql.instanceUser"`, `role    = "roles/cloudsql.viewer"`,
			"service deployer (module.deployer): IAM login without roles/cloudsql.instanceUser"},
	}
	exp := expect(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyTree(t)
			path := filepath.Join(dir, tt.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.old) {
				t.Fatalf("%s does not contain %q", tt.file, tt.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			problems, err := CheckWith(dir, exp, sourceVars(tt.login))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", tt.want, strings.Join(problems, "\n"))
		})
	}
}

// TestSourceVariablesValidation: the variables' validation accepts exactly
// the source schemas libs/db accepts, and the two logins.
func TestSourceVariablesValidation(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, schema := range []string{"cmms", "cmms_mapped", "_x", "cmmsflow", "CMMS", "cmms-mapped", "1cmms", "", "a b",
		strings.Repeat("s", 63), strings.Repeat("s", 64), "public"} {
		_, dbErr := db.SearchPath(schema)
		ok, err := valid(m, "source_schema", cty.StringVal(schema))
		if err != nil {
			t.Fatal(err)
		}
		if ok != (dbErr == nil) {
			t.Errorf("source_schema %q: Terraform accepts it: %v, libs/db: %v", schema, ok, dbErr)
		}
	}
	for login, want := range map[string]bool{"iam": true, "password": true, "owner": false, "": false, "IAM": false} {
		if ok, err := valid(m, "source_login", cty.StringVal(login)); err != nil || ok != want {
			t.Errorf("source_login %q: valid %v (%v), want %v", login, ok, err, want)
		}
	}
}

// valid evaluates the variable's validation conditions for v.
func valid(m *Module, name string, v cty.Value) (bool, error) {
	b, ok := m.Variables[name]
	if !ok {
		return false, fmt.Errorf("no variable %q", name)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: v})},
		Functions: functions(m.Dir),
	}
	n := 0
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		n++
		got, diags := vb.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			return false, fmt.Errorf("variable %q: %s", name, diags.Error())
		}
		if got.False() {
			return false, nil
		}
	}
	if n == 0 {
		return false, fmt.Errorf("variable %q has no validation", name)
	}
	return true, nil
}
