package terraformcheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// TestCheckCatchesMissingAlerting: each alert policy issue 16 asks for
// (failed run, missed schedule, dead letter, outbox backlog, 5xx) missing,
// on the wrong metric, disabled or not notifying, and the dashboard missing
// or short of a chart, is reported.
func TestCheckCatchesMissingAlerting(t *testing.T) {
	const forEach = "  for_each              = local.alerts\n"
	without := func(key string) string {
		return fmt.Sprintf("  for_each              = { for k, v in local.alerts : k => v if k != %q }\n", key)
	}
	checkMutations(t, controlVars(), []mutation{
		{"no failed-run alert", "monitoring.tf", forEach, without("failed_run"),
			`alert failed run: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_runs_finished_total{state="failed"}`},
		{"no missed-schedule alert", "monitoring.tf", forEach, without("missed_schedule"),
			"alert missed schedule: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_schedule_missed_total"},
		{"no dead-letter alert", "monitoring.tf", forEach, without("dead_letter"),
			"alert dead letter: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_events_dead_letters_total"},
		{"no outbox alert", "monitoring.tf", forEach, without("outbox_backlog"),
			"alert outbox backlog: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_outbox_oldest_pending_age_seconds"},
		{"no 5xx alert", "monitoring.tf", forEach, without("server_errors"),
			`alert 5xx answers: no google_monitoring_alert_policy with a PromQL condition on run_googleapis_com:request_count{response_code_class="5xx"}`},
		{"no alert policies at all", "monitoring.tf", forEach, "  for_each              = {}\n",
			"alert failed run: no google_monitoring_alert_policy"},
		{"failed-run alert on successes", "monitoring.tf",
			`"cmmsflow_runs_finished_total{state=\"failed\"}"`, `"cmmsflow_runs_finished_total{state=\"success\"}"`,
			`alert failed run: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_runs_finished_total{state="failed"}`},
		{"outbox metric without its unit suffix", "monitoring.tf",
			"max(cmmsflow_outbox_oldest_pending_age_seconds)", "max(cmmsflow_outbox_oldest_pending_age)",
			"alert outbox backlog: no google_monitoring_alert_policy"},
		{"dead-letter metric without _total", "monitoring.tf",
			`"service, event_type", "cmmsflow_events_dead_letters_total"`, `"service, event_type", "cmmsflow_events_dead_letters"`,
			"alert dead letter: no google_monitoring_alert_policy"},
		{"alerts disabled", "monitoring.tf",
			"  enabled               = true\n", "  enabled               = false\n",
			"alert dead letter (google_monitoring_alert_policy.alert[dead_letter]): disabled"},
		{"alerts notify nobody", "monitoring.tf",
			"notification_channels = [for c in google_monitoring_notification_channel.email : c.id]", "notification_channels = []",
			"alert missed schedule (google_monitoring_alert_policy.alert[missed_schedule]): does not notify google_monitoring_notification_channel.email[ops@acme.example].id"},
		{"no dashboard", "monitoring.tf",
			"resource \"google_monitoring_dashboard\" \"cmmsflow\" {\n", "resource \"google_monitoring_dashboard\" \"cmmsflow\" {\n  count = 0\n",
			"dashboard: no google_monitoring_dashboard"},
		{"dashboard without queued runs", "monitoring.tf",
			"    [\"Queued runs, by pipeline\", [\"max by (pipeline) (cmmsflow_runs_queued)\"]],\n", "",
			"dashboard: no chart of cmmsflow_runs_queued"},
		{"dashboard without run durations", "monitoring.tf",
			"rate(cmmsflow_runs_duration_seconds_bucket[1h])", "rate(cmmsflow_runs_duration_bucket[1h])",
			"dashboard: no chart of cmmsflow_runs_duration_seconds"},
	})
}

// TestTerraformAlerting spells out what the check derives for a deployment
// with two alert recipients: five enabled PromQL policies, each notifying
// both email channels.
func TestTerraformAlerting(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, controlVars())
	c := &checker{exp: expect(t), root: ev}
	var emails []string
	for _, in := range instances(ev, "google_monitoring_notification_channel") {
		typ, _ := str(attrOf(in.Value, "type"))
		email, _ := str(field(attrOf(in.Value, "labels"), "email_address"))
		emails = append(emails, typ+":"+email)
	}
	if want := []string{"email:oncall@acme.example", "email:ops@acme.example"}; !slices.Equal(emails, want) {
		t.Errorf("notification channels %q, want %q", emails, want)
	}
	policies := instances(ev, "google_monitoring_alert_policy")
	if len(policies) != len(c.exp.Alerts) {
		t.Errorf("%d alert policies, want %d", len(policies), len(c.exp.Alerts))
	}
	for _, in := range policies {
		p := c.policy(in)
		if len(p.queries) != 1 || !p.enabled || len(p.channels) != 2 {
			t.Errorf("%s: queries %q, enabled %v, channels %q", in.addr(), p.queries, p.enabled, p.channels)
		}
		// A counter's alert must see a series born within the window (a
		// fresh Cloud Run instance): increase() alone does not.
		if q := strings.Join(p.queries, ""); strings.Contains(q, "_total") && !strings.Contains(q, "offset 10m") {
			t.Errorf("%s: %q counts with increase() only", in.addr(), q)
		}
	}
	c.monitoring()
	if len(c.problems) > 0 {
		t.Errorf("problems: %q", c.problems)
	}
}

// TestTerraformPrometheusSidecar: every service runs the Managed Service
// for Prometheus sidecar, after the service's own container, and may write
// metrics; managed_prometheus = false removes both.
func TestTerraformPrometheusSidecar(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	const image = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
	for _, on := range []bool{true, false} {
		vars := controlVars()
		vars["managed_prometheus"] = cty.BoolVal(on)
		ev := Evaluate(m, vars)
		for _, name := range expect(t).Services {
			svc := ev.Children[name]
			run := instances(svc, "google_cloud_run_v2_service")[0]
			got := sidecarImages(t, svc, run, "prometheus")
			writers := 0
			for _, in := range instances(svc, "google_project_iam_member") {
				if role, _ := str(attrOf(in.Value, "role")); role == "roles/monitoring.metricWriter" {
					writers++
				}
			}
			want, wantWriters := []string{image}, 1
			if !on {
				want, wantWriters = nil, 0
			}
			if !slices.Equal(got, want) || writers != wantWriters {
				t.Errorf("managed_prometheus=%v, %s: sidecars %q (want %q), metricWriter grants %d (want %d)",
					on, name, got, want, writers, wantWriters)
			}
		}
	}
}

// sidecarImages expands the service's dynamic "containers" blocks and
// returns the images of those named name, each checked to start after the
// service's own container.
func sidecarImages(t *testing.T, ev *Eval, run *Instance, name string) []string {
	t.Helper()
	var images []string
	ctx := ev.ctx(run)
	for _, tmpl := range run.Block.Body.Blocks {
		if tmpl.Type != "template" {
			continue
		}
		for _, b := range tmpl.Body.Blocks {
			if b.Type != "dynamic" || b.Labels[0] != "containers" {
				continue
			}
			each, diags := b.Body.Attributes["for_each"].Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			content := b.Body.Blocks[0].Body
			for it := each.ElementIterator(); it.Next(); {
				k, v := it.Element()
				vars := maps.Clone(ctx.Variables)
				vars["containers"] = cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})
				c := &hcl.EvalContext{Variables: vars, Functions: ctx.Functions}
				if n, _ := content.Attributes["name"].Expr.Value(c); n.AsString() != name {
					continue
				}
				img, _ := content.Attributes["image"].Expr.Value(c)
				deps, _ := content.Attributes["depends_on"].Expr.Value(c)
				svc, _ := str(ev.Vars["name"])
				if deps.LengthInt() != 1 || deps.Index(cty.NumberIntVal(0)).AsString() != svc {
					t.Errorf("%s: sidecar %s depends on %#v, want [%q]", svc, name, deps, svc)
				}
				images = append(images, img.AsString())
			}
		}
	}
	return images
}
