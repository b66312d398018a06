package terraformcheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// copyTree copies deploy/terraform and the cron table into a temporary
// directory with the same layout (deploy/terraform reads
// ../../scheduler/crontab.yaml) and returns the copy's deploy/terraform.
func copyTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dst := filepath.Join(root, "deploy", "terraform")
	err := filepath.WalkDir(terraformDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(terraformDir, path)
		if d.IsDir() {
			if d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cron, err := os.ReadFile("../../../scheduler/crontab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "scheduler"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "scheduler", "crontab.yaml"), cron, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCheckCatchesMismatch breaks the real configuration one way at a time
// and expects the check to say so.
func TestCheckCatchesMismatch(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		want                 string
	}{
		{"push endpoint to another service", "pubsub.tf",
			`push_endpoint = "${local.service_urls[each.value.service]}/events"`,
			`push_endpoint = "${local.service_urls["control"]}/events"`,
			`subscription run-started--extractor: pushes to "https://control-`},
		{"service URL map crossed", "services.tf",
			`extractor  = module.extractor.url`, `extractor  = module.pmgen.url`,
			`subscription run-started--extractor: pushes to "https://pmgen-`},
		{"OIDC audience", "pubsub.tf",
			`audience              = local.service_urls[each.value.service]`, `audience              = "https://example.com"`,
			`subscription step-failed--notifier: OIDC audience "https://example.com"`},
		{"no dead-letter policy", "pubsub.tf",
			"  dead_letter_policy {\n    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id\n    max_delivery_attempts = local.delivery.max_delivery_attempts\n  }\n", "",
			"subscription pipeline-triggered--control: no dead_letter_policy"},
		{"dead-letter topic missing", "pubsub.tf",
			`for_each = { for id, s in local.subscriptions : s.dead_letter_topic => id }`,
			`for_each = { for id, s in local.subscriptions : s.dead_letter_topic => id if s.service != "pmgen" }`,
			"topic run-started--pmgen--dead-letter: no google_pubsub_topic"},
		{"no inspection subscription", "pubsub.tf",
			"  topic    = each.value.id\n\n  ack_deadline_seconds       = 60", "  topic    = google_pubsub_topic.event[\"step-failed\"].id\n\n  ack_deadline_seconds       = 60",
			"no pull subscription to inspect it"},
		{"filter dropped", "pubsub.tf",
			`filter   = each.value.filter == "" ? null : each.value.filter`, `filter   = null`,
			`subscription run-started--pmgen: filter "", want "attributes.pipeline = \"preventive_maintenance\""`},
		{"registry data edited by hand", "registry.tf",
			"ack_deadline_seconds  = 600", "ack_deadline_seconds  = 60",
			"ack_deadline_seconds 60, want 600"},
		{"retry policy", "pubsub.tf",
			`maximum_backoff = "${local.delivery.max_backoff_seconds}s"`, `maximum_backoff = "600s"`,
			`retry_policy.maximum_backoff "600s", want "60s"`},
		{"service missing", "services.tf",
			`name                    = "reporter"`, `name                    = "reporting"`,
			"service reporter: no Cloud Run service named reporter"},
		{"shared service account", "modules/service/main.tf",
			`account_id   = "${var.platform.name_prefix}-${var.name}"`, `account_id   = "${var.platform.name_prefix}-all"`,
			"shares service account"},
		{"not scaled to zero", "modules/service/main.tf",
			"min_instance_count = 0", "min_instance_count = 1",
			"service control (module.control): want template.scaling.min_instance_count = 0"},
		{"handler outlives the request", "modules/service/main.tf",
			`HANDLER_TIMEOUT      = "${var.handler_timeout_seconds}s"`, `HANDLER_TIMEOUT      = "${var.timeout_seconds}s"`,
			"HANDLER_TIMEOUT 10m0s must be below the Cloud Run timeout 10m0s"},
		{"push identity may not invoke", "modules/service/main.tf",
			`for_each = toset(var.invoker_members)`, `for_each = toset([])`,
			"may not invoke service trainer"},
		{"topic nobody publishes", "services.tf",
			`publish_topics  = concat(["raw-extracted"], local.step_topics)`, `publish_topics  = local.step_topics`,
			"topic raw-extracted: no service may publish to it"},
		{"scheduler schedule", "../../scheduler/crontab.yaml",
			`schedule: "0 2 * * 0"`, `schedule: "0 3 * * 0"`,
			`scheduler job for etl_ml_training: schedule "0 3 * * 0", want the cron table's "0 2 * * 0"`},
		{"scheduler attributes", "scheduler.tf",
			`attributes = local.kicks[each.key].attributes`, `attributes = merge(local.kicks[each.key].attributes, { "run_id" = "x" })`,
			"scheduler job for weekly_kpi_report: attributes"},
		{"scheduler data", "scheduler.tf",
			`data       = base64encode(local.kicks[each.key].data)`, `data       = base64encode("{}")`,
			"scheduler job for preventive_maintenance: data"},
		{"scheduler topic", "scheduler.tf",
			`topic_name = google_pubsub_topic.event[local.kick_topic].id`, `topic_name = google_pubsub_topic.event["run-started"].id`,
			`publishes to "run-started", want "pipeline-triggered"`},
		{"scheduler time zone", "scheduler.tf",
			`time_zone   = local.crontab.time_zone`, `time_zone   = "Europe/Paris"`,
			`time_zone "Europe/Paris", want the cron table's "UTC"`},
		{"scheduler job id with underscores", "scheduler.tf",
			`name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"`, `name        = "${var.name_prefix}-${each.key}"`,
			`scheduler job for etl_ml_training: name "cmmsflow-etl_ml_training", want "cmmsflow-etl-ml-training" (name_prefix "cmmsflow")`},
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
			problems, err := Check(dir, exp)
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

// TestCheckBrokenFixture runs the check on a small configuration that gets
// everything wrong once.
func TestCheckBrokenFixture(t *testing.T) {
	sub := events.Subscription{ID: "jobs--worker", Topic: "jobs", EventType: "x.jobs.v1", Service: "worker",
		Pipelines: []string{"p1"}, DeadLetterTopic: "jobs--worker--dead-letter"}
	exp := Expect{
		Services:      []string{"worker", "web"},
		EventTopics:   []string{"jobs"},
		Topics:        []string{"jobs", "jobs--worker--dead-letter"},
		Subscriptions: []events.Subscription{sub},
		Delivery:      Delivery{AckDeadlineSeconds: 600, MaxDeliveryAttempts: 10, MinBackoffSeconds: 1, MaxBackoffSeconds: 60},
		TimeZone:      "UTC",
		Schedules:     map[string]string{"p1": "0 6 * * *"},
		KickTopic:     "jobs",
		Kicks:         map[string]Kick{"p1": {Attributes: map[string]string{"pipeline": "p1", "ce-type": "x.jobs.v1"}, Data: `{"source":"scheduled"}`}},
		JobID:         func(prefix, p string) string { return prefix + "-" + p },
		Frontend:      "worker",
		PublicVar:     "worker_public",
		Alerts:        []Alert{{Name: "dead letter", Metric: "cmmsflow_events_dead_letters_total"}},
		Dashboard:     []string{"cmmsflow_events_dead_letters_total"},
	}
	problems, err := Check("testdata/broken", exp)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"service web: no Cloud Run service named web",
		`subscription jobs--worker: filter "", want "attributes.pipeline = \"p1\""`,
		"subscription jobs--worker: no dead_letter_policy",
		`subscription jobs--worker: pushes to "https://elsewhere.example/events", want worker's "https://worker-123.r.run.app/events"`,
		"topic jobs--worker--dead-letter: no google_pubsub_topic",
		"dead-letter topic jobs--worker--dead-letter: no pull subscription to inspect it",
		`scheduler job for p1: schedule "0 7 * * *", want the cron table's "0 6 * * *"`,
		`scheduler job for p1: name "acme-p1-job", want "acme-p1" (name_prefix "acme")`,
		"variable worker_public defaults to true: worker must be private by default",
		`service worker (module.worker): public by default (ingress ""); only worker_public = true may expose it`,
		"service worker (module.worker): private, but no serverless network endpoint group of it for a load balancer",
		"alert dead letter: no google_monitoring_alert_policy with a PromQL condition on cmmsflow_events_dead_letters_total",
		"dashboard: no google_monitoring_dashboard (with a known dashboard_json)",
	}
	for _, w := range want {
		found := false
		for _, p := range problems {
			found = found || p == w
		}
		if !found {
			t.Errorf("missing problem %q", w)
		}
	}
	if t.Failed() {
		t.Logf("problems:\n%s", strings.Join(problems, "\n"))
	}
}
