package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/app"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

func load(t *testing.T, env map[string]string) app.Config {
	t.Helper()
	env["DATABASE_URL"] = "postgres://unused"
	// The bucket client honours the emulator variable, as in the local
	// stack; nothing is read from the bucket here.
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
	var cfg app.Config
	if err := config.LoadFrom(context.Background(), &cfg, env); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := load(t, map[string]string{})
	if cfg.EmailMode != "outbox" || cfg.EmailOutboxDir != ".local/outbox" || cfg.SendGridBaseURL != "https://api.sendgrid.com" ||
		cfg.EmailFrom != "cmmsflow@localhost" || cfg.AdminEmails != "admin@localhost" || cfg.WebhookURLs != "" ||
		cfg.SendGridAPIKey != "" || cfg.MaxAttempts != 5 || cfg.SendTimeout != 30*time.Second {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg.EmailOutboxDir = filepath.Join(t.TempDir(), "outbox")
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Sender.(*email.Outbox); !ok {
		t.Fatalf("sender %T, want the outbox", a.Sender)
	}
	if st, err := os.Stat(cfg.EmailOutboxDir); err != nil || !st.IsDir() {
		t.Fatalf("outbox folder not created: %v", err)
	}
	if a.Notify.From.Address != "cmmsflow@localhost" || len(a.Notify.Admins) != 1 || a.Notify.Admins[0].Address != "admin@localhost" ||
		len(a.Notify.Webhooks) != 0 || a.Notify.MaxAttempts != 5 {
		t.Fatalf("notify config %+v", a.Notify)
	}
}

func TestSendGridMode(t *testing.T) {
	cfg := load(t, map[string]string{
		"EMAIL_MODE": "sendgrid", "SENDGRID_API_KEY": "SG.x", "SENDGRID_BASE_URL": "http://127.0.0.1:9",
		"EMAIL_FROM": "Fleet <fleet@example.test>", "ADMIN_EMAILS": "Ops <ops@example.test>, chief@example.test",
		"NOTIFY_WEBHOOK_URLS": "slack=https://hooks.example.test/T/B/x,teams=https://teams.example.test/w",
	})
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Sender.(*email.SendGrid); !ok {
		t.Fatalf("sender %T, want SendGrid", a.Sender)
	}
	if a.Notify.From.Name != "Fleet" || len(a.Notify.Admins) != 2 || a.Notify.Admins[1].Address != "chief@example.test" {
		t.Fatalf("addresses %+v", a.Notify)
	}
	if len(a.Notify.Webhooks) != 2 || a.Notify.Webhooks[0].Kind != webhook.Slack || a.Notify.Webhooks[1].Kind != webhook.Teams {
		t.Fatalf("webhooks %+v", a.Notify.Webhooks)
	}
}

func TestStartUpErrors(t *testing.T) {
	for name, tt := range map[string]struct {
		env  map[string]string
		want string
	}{
		"sendgrid without key":  {map[string]string{"EMAIL_MODE": "sendgrid"}, "requires SENDGRID_API_KEY"},
		"unknown mode":          {map[string]string{"EMAIL_MODE": "smtp"}, `EMAIL_MODE "smtp"`},
		"bad from":              {map[string]string{"EMAIL_FROM": "nobody"}, "EMAIL_FROM"},
		"bad admins":            {map[string]string{"ADMIN_EMAILS": "a@b.test, not an address"}, "ADMIN_EMAILS"},
		"bad webhook":           {map[string]string{"NOTIFY_WEBHOOK_URLS": "irc=https://x.test"}, "NOTIFY_WEBHOOK_URLS"},
		"bad sendgrid url":      {map[string]string{"EMAIL_MODE": "sendgrid", "SENDGRID_API_KEY": "k", "SENDGRID_BASE_URL": "api.sendgrid.com"}, "SENDGRID_BASE_URL"},
		"zero attempts":         {map[string]string{"NOTIFY_MAX_ATTEMPTS": "0"}, "NOTIFY_MAX_ATTEMPTS"},
		"bad report recipients": {map[string]string{"REPORT_RECIPIENTS": "nobody at all"}, "REPORT_RECIPIENTS"},
		"bad public base url":   {map[string]string{"REPORT_PUBLIC_BASE_URL": "storage.example.test"}, "REPORT_PUBLIC_BASE_URL"},
		"bad pagerduty url":     {map[string]string{"PAGERDUTY_EVENTS_URL": "events.pagerduty.com"}, "PAGERDUTY_EVENTS_URL"},
		"missing rule file":     {map[string]string{"ALERT_RULES_FILE": "/nonexistent/alerts.yaml"}, "ALERT_RULES_FILE"},
		"bad rule file": {map[string]string{"ALERT_RULES_FILE": "{dir}/alerts.yaml"},
			`ALERT_RULES_FILE {dir}/alerts.yaml: rules: rule 1 ("x"): metric: unknown metric "kpi.nope"`},
	} {
		t.Run(name, func(t *testing.T) {
			tt.env["EMAIL_OUTBOX_DIR"] = t.TempDir()
			dir := t.TempDir()
			bad := "rules:\n  - {name: x, metric: kpi.nope, comparator: '>', threshold: 1, severity: info, channels: [email]}\n"
			if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				tt.env[k] = strings.ReplaceAll(v, "{dir}", dir)
			}
			tt.want = strings.ReplaceAll(tt.want, "{dir}", dir)
			_, err := app.New(context.Background(), load(t, tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReportRecipients(t *testing.T) {
	cfg := load(t, map[string]string{"ADMIN_EMAILS": "ops@example.test", "EMAIL_OUTBOX_DIR": t.TempDir()})
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Notify.Reports) != 1 || a.Notify.Reports[0].Address != "ops@example.test" || a.Notify.Bucket == nil || a.Notify.ReportLinkBase != "" {
		t.Fatalf("default report recipients %+v", a.Notify)
	}
	cfg = load(t, map[string]string{"REPORT_RECIPIENTS": "Board <board@example.test>, cfo@example.test",
		"REPORT_PUBLIC_BASE_URL": "https://storage.example.test/bucket", "EMAIL_OUTBOX_DIR": t.TempDir()})
	b, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Notify.Reports) != 2 || b.Notify.Reports[1].Address != "cfo@example.test" || b.Notify.ReportLinkBase != "https://storage.example.test/bucket" {
		t.Fatalf("report recipients %+v", b.Notify)
	}
}

// PagerDuty is on when a routing key is set; the rules are the default
// file's unless ALERT_RULES_FILE names another.
func TestPagerDutyAndAlertRules(t *testing.T) {
	a, err := app.New(context.Background(), load(t, map[string]string{"EMAIL_OUTBOX_DIR": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Notify.PagerDuty != nil || len(a.Notify.Rules) == 0 {
		t.Fatalf("defaults: PagerDuty %v, %d rules; want none and the default rules", a.Notify.PagerDuty, len(a.Notify.Rules))
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	rules := "rules:\n  - {name: overdue, metric: kpi.work_orders_overdue, comparator: '>', threshold: 3, severity: error, channels: [pagerduty]}\n"
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := app.New(context.Background(), load(t, map[string]string{"EMAIL_OUTBOX_DIR": t.TempDir(),
		"PAGERDUTY_ROUTING_KEY": "secret-routing-key", "PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2/enqueue", "ALERT_RULES_FILE": file}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Notify.PagerDuty == nil || strings.Contains(b.Notify.PagerDuty.Redacted(), "secret") ||
		!strings.HasPrefix(b.Notify.PagerDuty.Redacted(), "pagerduty http://127.0.0.1:9/… key sha256:") {
		t.Fatalf("PagerDuty %v", b.Notify.PagerDuty)
	}
	if len(b.Notify.Rules) != 1 || b.Notify.Rules[0].Name != "overdue" || b.Notify.Rules[0].Threshold != 3 {
		t.Fatalf("rules %+v", b.Notify.Rules)
	}
}
