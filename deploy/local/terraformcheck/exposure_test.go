package terraformcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// mutation is one edit of the real configuration and the problem the check
// must report for it.
type mutation struct {
	name, file, old, new string
	want                 string
}

// checkMutations applies each mutation to a copy of deploy/terraform and
// expects the check, with vars, to report its problem.
func checkMutations(t *testing.T, vars map[string]cty.Value, tests []mutation) {
	t.Helper()
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
			problems, err := CheckWith(dir, exp, vars)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("no problem mentions %q; got:\n%s", tt.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestCheckCatchesPublicControl: control public by default, a worker open
// to the internet, or a link missing between the internet and a private
// control (load balancer, IAP, certificate, invoker) is reported.
func TestCheckCatchesPublicControl(t *testing.T) {
	checkMutations(t, nil, []mutation{
		{"control_public defaults to true", "variables.tf",
			"  type        = bool\n  default     = false\n}\n\nvariable \"control_domain\"",
			"  type        = bool\n  default     = true\n}\n\nvariable \"control_domain\"",
			"variable control_public defaults to true: control must be private by default"},
		{"control_public defaults to true: control public", "variables.tf",
			"  type        = bool\n  default     = false\n}\n\nvariable \"control_domain\"",
			"  type        = bool\n  default     = true\n}\n\nvariable \"control_domain\"",
			`service control (module.control): public by default (ingress "INGRESS_TRAFFIC_ALL", allUsers may invoke it); only control_public = true may expose it`},
		{"allUsers always", "control.tf",
			`var.control_public ? ["allUsers"] : [local.iap_agent]`, `["allUsers", local.iap_agent]`,
			"service control (module.control): public by default (allUsers may invoke it)"},
		{"ingress from everywhere", "control.tf",
			`control_ingress = var.control_public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"`,
			`control_ingress = "INGRESS_TRAFFIC_ALL"`,
			`service control (module.control): public by default (ingress "INGRESS_TRAFFIC_ALL")`},
		{"a worker open to the internet", "modules/service/variables.tf",
			`default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"`, `default     = "INGRESS_TRAFFIC_ALL"`,
			`service extractor (module.extractor): public (ingress "INGRESS_TRAFFIC_ALL"); only control may face the internet`},
		{"internal ingress only: the load balancer cannot reach it", "control.tf",
			`control_ingress = var.control_public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"`,
			`control_ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"`,
			`service control (module.control): ingress "INGRESS_TRAFFIC_INTERNAL_ONLY", want INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER`},
		{"IAP agent not an invoker", "control.tf",
			`var.control_public ? ["allUsers"] : [local.iap_agent]`, `var.control_public ? ["allUsers"] : []`,
			"service control (module.control): the IAP service agent may not invoke it (roles/run.invoker)"},
		{"network endpoint group of another service", "control.tf",
			"service = module.control.name", "service = module.pmgen.name",
			"service control (module.control): private, but no serverless network endpoint group of it"},
		{"IAP disabled", "control.tf",
			"  iap {\n    enabled = true\n  }", "  iap {\n    enabled = false\n  }",
			"service control (module.control): no backend service with IAP enabled on its network endpoint group"},
		{"no IAP block", "control.tf",
			"  iap {\n    enabled = true\n  }", "",
			"service control (module.control): no backend service with IAP enabled"},
		{"URL map bypasses IAP", "control.tf",
			"  name            = \"${var.name_prefix}-control\"\n  default_service = google_compute_backend_service.control_iap[0].id",
			"  name            = \"${var.name_prefix}-control\"\n  default_service = google_compute_backend_service.control_machines[0].id",
			"service control (module.control): no URL map whose default service (and path matchers') is its IAP backend service"},
		{"path matcher bypasses IAP", "control.tf",
			"    name            = \"control\"\n    default_service = google_compute_backend_service.control_iap[0].id",
			"    name            = \"control\"\n    default_service = google_compute_backend_service.control_machines[0].id",
			"service control (module.control): no URL map whose default service (and path matchers') is its IAP backend service"},
		{"certificate not Google-managed", "control.tf",
			"ssl_certificates = [google_compute_managed_ssl_certificate.control[0].id]",
			`ssl_certificates = ["projects/p/global/sslCertificates/self-signed"]`,
			"service control (module.control): no HTTPS proxy with a Google-managed certificate on its URL map"},
		{"plain HTTP", "control.tf",
			`port_range            = "443"`, `port_range            = "80"`,
			"service control (module.control): no global forwarding rule on port 443 to its HTTPS proxy"},
	})
}

// controlVars are root variables of a private control with people, machine
// callers and alert recipients.
func controlVars() map[string]cty.Value {
	return map[string]cty.Value{
		"project_id":          cty.StringVal("acme-fleet"),
		"cloudsql_instance":   cty.StringVal("acme-fleet:us-central1:cmms-pg"),
		"control_domain":      cty.StringVal("cmmsflow.acme.example"),
		"control_iap_members": cty.TupleVal([]cty.Value{cty.StringVal("group:fleet-ops@acme.example")}),
		"control_machine_callers": cty.ObjectVal(map[string]cty.Value{
			"backend@acme-fleet.iam.gserviceaccount.com": cty.StringVal("admin"),
			"grafana@acme-fleet.iam.gserviceaccount.com": cty.StringVal("viewer"),
		}),
		"alert_emails": cty.TupleVal([]cty.Value{cty.StringVal("oncall@acme.example"), cty.StringVal("ops@acme.example")}),
	}
}

// TestTerraformPrivateControlWiring spells out a private control's wiring
// with people and machine callers: who may invoke it, who passes IAP, which
// ID tokens it accepts, and that the machines' route skips IAP only for
// requests carrying X-Serverless-Authorization.
func TestTerraformPrivateControlWiring(t *testing.T) {
	vars := controlVars()
	problems, err := CheckWith(terraformDir, expect(t), vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, vars)
	control := &service{eval: ev.Children["control"]}
	got := invokers(control)
	slices.Sort(got)
	want := []string{
		"serviceAccount:backend@acme-fleet.iam.gserviceaccount.com",
		"serviceAccount:cmmsflow-push@acme-fleet.iam.gserviceaccount.com",
		"serviceAccount:grafana@acme-fleet.iam.gserviceaccount.com",
		"serviceAccount:service-ref:data.google_project.this.number@gcp-sa-iap.iam.gserviceaccount.com",
	}
	if !slices.Equal(got, want) {
		t.Errorf("control's invokers %q, want %q", got, want)
	}
	var accessors []string
	for _, in := range instances(ev, "google_iap_web_backend_service_iam_member") {
		role, _ := str(attrOf(in.Value, "role"))
		member, _ := str(attrOf(in.Value, "member"))
		backend, _ := str(attrOf(in.Value, "web_backend_service"))
		accessors = append(accessors, role+" "+member+" on "+backend)
	}
	if want := []string{"roles/iap.httpsResourceAccessor group:fleet-ops@acme.example on cmmsflow-control-iap"}; !slices.Equal(accessors, want) {
		t.Errorf("IAP accessors %q, want %q", accessors, want)
	}
	env := control.eval.Locals["env"]
	aud, _ := str(field(env, "API_ID_TOKEN_AUDIENCE"))
	accounts, _ := str(field(env, "API_ID_TOKEN_ACCOUNTS"))
	if url, _ := str(control.eval.Outputs["url"]); aud != url {
		t.Errorf("API_ID_TOKEN_AUDIENCE %q, want control's URL %q", aud, url)
	}
	if want := "backend@acme-fleet.iam.gserviceaccount.com:admin,grafana@acme-fleet.iam.gserviceaccount.com:viewer"; accounts != want {
		t.Errorf("API_ID_TOKEN_ACCOUNTS %q, want %q", accounts, want)
	}
	if n := len(instances(ev, "google_compute_backend_service")); n != 2 {
		t.Errorf("%d backend services, want 2 (IAP, machines)", n)
	}
	urlMap := string(m.Resources[slices.IndexFunc(m.Resources, func(b *Block) bool { return b.Type == "google_compute_url_map" })].Range.Filename)
	src, _ := os.ReadFile(urlMap)
	for _, s := range []string{`header_name   = "X-Serverless-Authorization"`, "present_match = true", "service  = route_rules.value.id"} {
		if !strings.Contains(string(src), s) {
			t.Errorf("%s: the machines' route rule lacks %s", urlMap, s)
		}
	}
}

// TestTerraformPublicControlOnRequest: control_public = true, and only
// that, makes control public: the check accepts it, and control then has
// ingress from everywhere, allUsers as an invoker and no load balancer.
func TestTerraformPublicControlOnRequest(t *testing.T) {
	vars := controlVars()
	vars["control_public"] = cty.True
	problems, err := CheckWith(terraformDir, expect(t), vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, vars)
	c := &checker{root: ev}
	control := &service{eval: ev.Children["control"], run: instances(ev.Children["control"], "google_cloud_run_v2_service")[0]}
	if open := c.openings(control); len(open) != 2 {
		t.Errorf("public control open by %q, want ingress and allUsers", open)
	}
	for _, typ := range []string{"google_compute_region_network_endpoint_group", "google_compute_backend_service",
		"google_compute_global_forwarding_rule", "google_iap_web_backend_service_iam_member"} {
		if n := len(instances(ev, typ)); n != 0 {
			t.Errorf("public control: %d %s, want none", n, typ)
		}
	}
}
