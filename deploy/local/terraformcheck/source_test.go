package terraformcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cmmsflow/cmmsflow/libs/db"
)

// sourceVars are the root variables of a deployment reading source_schema
// ("" keeps the default, cmmsflow's own tables).
func sourceVars(schema string) map[string]cty.Value {
	vars := map[string]cty.Value{
		"project_id":        cty.StringVal("acme-fleet"),
		"cloudsql_instance": cty.StringVal("acme-fleet:us-central1:cmms-pg"),
		"pm_backend_url":    cty.StringVal("https://cmms.acme.example/api"),
	}
	if schema != "" {
		vars["source_schema"] = cty.StringVal(schema)
	}
	return vars
}

// TestTerraformMappedSource: with cmmsflow's own tables and with a mapped
// source, every service reads SOURCE_SCHEMA as its own IAM user.
func TestTerraformMappedSource(t *testing.T) {
	for _, schema := range []string{"", "cmms_mapped"} {
		t.Run("schema="+schema, func(t *testing.T) {
			problems, err := CheckWith(terraformDir, expect(t), sourceVars(schema))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// TestTerraformDatabaseWiring spells out what the check derives: each
// service connects as its own IAM user without a password, control does not
// migrate, and the migrate job grants every role to its service's IAM user
// as the owner.
func TestTerraformDatabaseWiring(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, sourceVars("cmms_mapped"))
	wantArgs := []string{"migrate"}
	for _, svc := range expect(t).Services {
		wantArgs = append(wantArgs, "--login", svc+"=cmmsflow-"+svc+"@acme-fleet.iam")
		child := ev.Children[svc]
		if child == nil {
			t.Errorf("no module.%s", svc)
			continue
		}
		env, secrets := child.Locals["env"], child.Locals["secret_env"]
		url, _ := str(field(env, "DATABASE_URL"))
		pw, _ := str(field(secrets, "PGPASSWORD"))
		schema, _ := str(field(env, "SOURCE_SCHEMA"))
		want := "postgres://cmmsflow-" + svc + "%40acme-fleet.iam@/cmmsflow?host=/cloudsql/acme-fleet:us-central1:cmms-pg"
		if url != want || pw != "" || schema != "cmms_mapped" {
			t.Errorf("%s: DATABASE_URL %q, PGPASSWORD from %q, SOURCE_SCHEMA %q; want %s, no password, cmms_mapped",
				svc, url, pw, schema, want)
		}
		if mig, _ := str(field(env, "MIGRATE_ON_START")); svc == "control" && mig != "false" {
			t.Errorf("control: MIGRATE_ON_START %q, want false", mig)
		}
	}
	jobs := instances(ev, "google_cloud_run_v2_job")
	if len(jobs) != 1 {
		t.Fatalf("%d Cloud Run jobs, want the migrate job", len(jobs))
	}
	if got := jobArgs(ev, jobs[0]); !slices.Equal(got, wantArgs) {
		t.Errorf("migrate job args %q, want %q", got, wantArgs)
	}
	env, secrets := jobEnv(ev, jobs[0])
	url, _ := str(field(env, "DATABASE_URL"))
	if url != "postgres://cmmsflow@/cmmsflow?host=/cloudsql/acme-fleet:us-central1:cmms-pg" || secrets["PGPASSWORD"] != "cmmsflow-db-password" {
		t.Errorf("migrate job: DATABASE_URL %q, PGPASSWORD from %q; want the owner cmmsflow and cmmsflow-db-password", url, secrets["PGPASSWORD"])
	}
}

// TestCheckCatchesLoginMismatch breaks the login wiring one way at a time.
func TestCheckCatchesLoginMismatch(t *testing.T) {
	tests := []struct {
		name, schema, file, old, new, want string
	}{
		{"control migrates on start", "", "services.tf",
			`MIGRATE_ON_START   = "false"`, `MIGRATE_ON_START   = "true"`,
			`service control (module.control): MIGRATE_ON_START "true", want "false"`},
		{"control left at the default", "", "services.tf",
			`MIGRATE_ON_START   = "false"`, `LOG_LEVEL          = "info"`,
			`service control (module.control): MIGRATE_ON_START "", want "false"`},
		{"services share a login", "", "modules/service/main.tf",
			`iam_user     = "${var.platform.name_prefix}-${var.name}@`, `iam_user     = "${var.platform.name_prefix}-shared@`,
			`service extractor (module.extractor): shares the database login "cmmsflow-shared@acme-fleet.iam" with service control`},
		{"service with the owner's password", "", "modules/service/main.tf",
			"secret_env = var.secret_env", `secret_env = merge(var.secret_env, { PGPASSWORD = "${var.platform.name_prefix}-db-password" })`,
			`service pmgen (module.pmgen): PGPASSWORD from secret "cmmsflow-db-password": a service logs in as its IAM user, without a password`},
		{"service as the owner login", "cmms_mapped", "services.tf",
			`env             = { REPORT_TIME_ZONE = var.time_zone }`, `env             = { REPORT_TIME_ZONE = var.time_zone, DATABASE_URL = local.owner_database_url }`,
			`service reporter (module.reporter): connects as the owner login "cmmsflow" (database_user)`},
		{"SOURCE_SCHEMA not passed", "", "modules/service/main.tf",
			"SOURCE_SCHEMA        = var.platform.source_schema\n", "",
			`service reporter (module.reporter): SOURCE_SCHEMA "", want source_schema "cmms"`},
		{"IAM user missing", "", "modules/service/main.tf",
			"resource \"google_sql_user\" \"iam\" {\n", "resource \"google_sql_user\" \"iam\" {\n  count    = 0\n",
			`service featurejob (module.featurejob): Cloud SQL IAM users [], want exactly DATABASE_URL's user "cmmsflow-featurejob@acme-fleet.iam"`},
		{"proxy without automatic IAM authentication", "", "modules/service/main.tf",
			"\"--auto-iam-authn\",\n", "",
			"service featurejob (module.featurejob): IAM login: want one Cloud SQL Auth Proxy sidecar with --auto-iam-authn, found 0"},
		{"IAM user not DATABASE_URL's", "", "modules/service/main.tf",
			"name = local.iam_user", `name = "${var.name}@${var.platform.project_id}.iam"`,
			`service trainer (module.trainer): Cloud SQL IAM users ["trainer@acme-fleet.iam"], want exactly DATABASE_URL's user "cmmsflow-trainer@acme-fleet.iam"`},
		{"IAM login without instanceUser", "", "modules/service/main.tf",
			`role    = "roles/cloudsql.instanceUser"`, `role    = "roles/cloudsql.viewer"`,
			"service deployer (module.deployer): IAM login without roles/cloudsql.instanceUser"},
		{"IAM login without client", "", "modules/service/main.tf",
			`role    = "roles/cloudsql.client"`, `role    = "roles/cloudsql.viewer"`,
			"service notifier (module.notifier): IAM login without roles/cloudsql.client"},
		{"no migrate job", "", "migrate.tf",
			"args  = local.migrate_args", `args  = ["seed"]`,
			"migrate job: want one google_cloud_run_v2_job running `cmmsflow migrate`, found 0"},
		{"migrate job forgets a login", "", "migrate.tf",
			`for s in local.services : ["--login", "${s}=${local.iam_users[s]}"]`,
			`for s in local.services : ["--login", "${s}=${local.iam_users[s]}"] if s != "pmgen"`,
			"migrate job google_cloud_run_v2_job.migrate: no --login pmgen=cmmsflow-pmgen@acme-fleet.iam"},
		{"migrate job not the owner", "", "migrate.tf",
			"value = local.owner_database_url", `value = replace(local.owner_database_url, "cmmsflow@", "reader@")`,
			`migrate job google_cloud_run_v2_job.migrate: connects as "reader", want the owner login "cmmsflow"`},
		{"migrate job cannot read the owner's password", "", "migrate.tf",
			"secret_id = local.secret_ids.db_password", "secret_id = local.secret_ids.api_tokens",
			`migrate job google_cloud_run_v2_job.migrate: its account may not read secret "cmmsflow-db-password"`},
		{"IAM authentication flag not required", "", "migrate.tf",
			`f.name == "cloudsql.iam_authentication" && f.value == "on"`, `f.name == "cloudsql.iam_authentication"`,
			"migrate job google_cloud_run_v2_job.migrate: no lifecycle precondition requiring the instance flag cloudsql.iam_authentication=on"},
		{"migrate job as a service's account", "", "migrate.tf",
			"service_account = google_service_account.migrate.email", "service_account = module.control.service_account_email",
			"migrate job google_cloud_run_v2_job.migrate: runs as \"ref:google_service_account.this.email\", not a google_service_account of its own"},
	}
	exp := expect(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := mutate(t, tt.file, tt.old, tt.new)
			problems, err := CheckWith(dir, exp, sourceVars(tt.schema))
			wantProblem(t, problems, err, tt.want)
		})
	}
}

// mutate copies the configuration, replaces old by new once in file (which
// must contain it) and returns the copy's deploy/terraform.
func mutate(t *testing.T, file, old, new string) string {
	t.Helper()
	dir := copyTree(t)
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// wantProblem fails the test unless a problem contains want.
func wantProblem(t *testing.T, problems []string, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("no problem mentions %q; got:\n%s", want, strings.Join(problems, "\n"))
}

// TestSourceVariablesValidation: the variables' validation accepts exactly
// the source schemas libs/db accepts.
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
