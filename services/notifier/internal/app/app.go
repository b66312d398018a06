// Package app wires the notifier service: configuration, the email sender
// (local outbox or SendGrid), webhooks, PagerDuty, the alert rules, and the
// notify handlers.
package app

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/notifier"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// Email modes.
const (
	ModeOutbox   = "outbox"
	ModeSendGrid = "sendgrid"
)

// Config is the notifier service's configuration, from the environment.
type Config struct {
	config.Common
	// EmailMode is outbox (write .eml files to EmailOutboxDir) or sendgrid.
	EmailMode      string `env:"EMAIL_MODE, default=outbox"`
	EmailOutboxDir string `env:"EMAIL_OUTBOX_DIR, default=.local/outbox"`
	// SendGridAPIKey is required in sendgrid mode.
	SendGridAPIKey  string `env:"SENDGRID_API_KEY"`
	SendGridBaseURL string `env:"SENDGRID_BASE_URL, default=https://api.sendgrid.com"`
	EmailFrom       string `env:"EMAIL_FROM, default=cmmsflow@localhost"`
	// AdminEmails receive run summaries and failure alerts (comma list).
	AdminEmails string `env:"ADMIN_EMAILS, default=admin@localhost"`
	// WebhookURLs is a comma list of kind=url (slack, teams, json).
	WebhookURLs string `env:"NOTIFY_WEBHOOK_URLS"`
	// MaxAttempts per delivery before a temporary failure is final.
	MaxAttempts int `env:"NOTIFY_MAX_ATTEMPTS, default=5"`
	// SendTimeout bounds one SendGrid or webhook request.
	SendTimeout time.Duration `env:"NOTIFY_SEND_TIMEOUT, default=30s"`
	// ReportRecipients receive the weekly KPI report (comma list); empty
	// means AdminEmails.
	ReportRecipients string `env:"REPORT_RECIPIENTS"`
	// ReportPublicBaseURL, when set, is the public URL of the bucket's
	// objects (e.g. https://storage.googleapis.com/<bucket>), used to link a
	// report too large to attach; otherwise the link is its gs:// URI.
	ReportPublicBaseURL string `env:"REPORT_PUBLIC_BASE_URL"`
	// AlertReconcileInterval is how often failed runs without an alert are
	// looked for and alerted (0: never); AlertReconcileAfter is how long
	// after a run failed its own step-failed event is waited for first.
	AlertReconcileInterval time.Duration `env:"ALERT_RECONCILE_INTERVAL, default=1m"`
	AlertReconcileAfter    time.Duration `env:"ALERT_RECONCILE_AFTER, default=2m"`
	// PagerDutyRoutingKey is the Events API v2 integration key of the
	// PagerDuty service alerted (a secret, never logged nor stored); empty:
	// no PagerDuty.
	PagerDutyRoutingKey string `env:"PAGERDUTY_ROUTING_KEY"`
	// PagerDutyEventsURL is where events are sent (tests: a fake).
	PagerDutyEventsURL string `env:"PAGERDUTY_EVENTS_URL, default=https://events.pagerduty.com/v2/enqueue"`
	// AlertRulesFile is the alert rule file (YAML); empty: the default
	// rules, services/notifier/alerts.yaml.
	AlertRulesFile string `env:"ALERT_RULES_FILE"`
}

// App is the notifier's dependencies, built from the configuration before
// the service connects to anything.
type App struct {
	Sender email.Sender
	Poster *webhook.Poster
	Notify notify.Config
	// ReconcileInterval and ReconcileAfter drive the alert reconciler.
	ReconcileInterval, ReconcileAfter time.Duration
	// Close releases the bucket client.
	Close func() error
}

// settings are the parsed addresses, webhooks and recipients of a Config.
type settings struct {
	from    *mail.Address
	admins  []mail.Address
	hooks   []webhook.Target
	reports []mail.Address
	rules   []rules.Rule
}

// Validate implements service.Config: it names the first setting that does
// not parse or is out of range.
func (c *Config) Validate() error {
	_, err := c.parse()
	return err
}

func (c *Config) parse() (settings, error) {
	var st settings
	var err error
	if st.from, err = mail.ParseAddress(c.EmailFrom); err != nil {
		return st, fmt.Errorf("EMAIL_FROM %q: %w", c.EmailFrom, err)
	}
	if st.admins, err = email.ParseAddressList(c.AdminEmails); err != nil {
		return st, fmt.Errorf("ADMIN_EMAILS: %w", err)
	}
	if st.hooks, err = webhook.ParseTargets(c.WebhookURLs); err != nil {
		return st, fmt.Errorf("NOTIFY_WEBHOOK_URLS: %w", err)
	}
	st.reports = st.admins
	if strings.TrimSpace(c.ReportRecipients) != "" {
		if st.reports, err = email.ParseAddressList(c.ReportRecipients); err != nil {
			return st, fmt.Errorf("REPORT_RECIPIENTS: %w", err)
		}
	}
	if b := c.ReportPublicBaseURL; b != "" {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return st, fmt.Errorf("REPORT_PUBLIC_BASE_URL %q: want an http(s) URL", b)
		}
	}
	if c.AlertReconcileInterval < 0 || c.AlertReconcileAfter < 0 {
		return st, fmt.Errorf("ALERT_RECONCILE_INTERVAL and ALERT_RECONCILE_AFTER must not be negative")
	}
	if c.MaxAttempts < 1 {
		return st, fmt.Errorf("NOTIFY_MAX_ATTEMPTS must be at least 1, got %d", c.MaxAttempts)
	}
	if err := pagerduty.CheckURL(c.PagerDutyEventsURL); err != nil {
		return st, fmt.Errorf("PAGERDUTY_EVENTS_URL: %w", err)
	}
	st.rules, err = c.alertRules()
	return st, err
}

// alertRules parses ALERT_RULES_FILE, or the default rules.
func (c *Config) alertRules() ([]rules.Rule, error) {
	data, name := notifier.DefaultAlertRules, "default alert rules"
	if c.AlertRulesFile != "" {
		b, err := os.ReadFile(c.AlertRulesFile)
		if err != nil {
			return nil, fmt.Errorf("ALERT_RULES_FILE: %w", err)
		}
		data, name = b, "ALERT_RULES_FILE "+c.AlertRulesFile
	}
	rs, err := rules.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rs, nil
}

// Register is the notifier's service shape: New, then the App's Register;
// the bucket client is closed when s stops.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	a, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	s.OnStop(func() { _ = a.Close() })
	return a.Register(s)
}

// New validates cfg and builds the sender, webhooks, PagerDuty (when
// PAGERDUTY_ROUTING_KEY is set), the alert rules and the bucket client
// (reports are read from BUCKET). A missing SENDGRID_API_KEY in sendgrid
// mode, an unknown mode, or a malformed address, webhook or URL is an error.
func New(ctx context.Context, cfg Config) (*App, error) {
	st, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	from, admins, hooks, reports := st.from, st.admins, st.hooks, st.reports
	client := &http.Client{Timeout: cfg.SendTimeout}
	var sender email.Sender
	switch strings.ToLower(strings.TrimSpace(cfg.EmailMode)) {
	case ModeOutbox:
		if sender, err = email.NewOutbox(cfg.EmailOutboxDir); err != nil {
			return nil, fmt.Errorf("EMAIL_OUTBOX_DIR: %w", err)
		}
	case ModeSendGrid:
		if strings.TrimSpace(cfg.SendGridAPIKey) == "" {
			return nil, fmt.Errorf("EMAIL_MODE=sendgrid requires SENDGRID_API_KEY")
		}
		if sender, err = email.NewSendGrid(email.SendGridConfig{
			APIKey: cfg.SendGridAPIKey, BaseURL: cfg.SendGridBaseURL, HTTPClient: client,
		}); err != nil {
			return nil, fmt.Errorf("SENDGRID_BASE_URL: %w", err)
		}
	default:
		return nil, fmt.Errorf("EMAIL_MODE %q: want %s or %s", cfg.EmailMode, ModeOutbox, ModeSendGrid)
	}
	poster := webhook.NewPoster(client)
	var pd *pagerduty.Client
	if cfg.PagerDutyRoutingKey != "" {
		if pd, err = pagerduty.New(cfg.PagerDutyEventsURL, cfg.PagerDutyRoutingKey, poster); err != nil {
			return nil, fmt.Errorf("PAGERDUTY_EVENTS_URL: %w", err)
		}
	}
	store, closeStore, err := objstore.Connect(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("BUCKET: %w", err)
	}
	return &App{
		Sender: sender,
		Poster: poster,
		Notify: notify.Config{
			From: *from, Admins: admins, Webhooks: hooks, MaxAttempts: cfg.MaxAttempts, SendTimeout: cfg.SendTimeout,
			Reports: reports, ReportLinkBase: cfg.ReportPublicBaseURL, Bucket: store,
			PagerDuty: pd, Rules: st.rules,
		},
		ReconcileInterval: cfg.AlertReconcileInterval, ReconcileAfter: cfg.AlertReconcileAfter,
		Close: closeStore,
	}, nil
}

// Register adds the notify handlers to the service's router and, unless
// its interval is 0, starts the alert reconciler until the service stops.
func (a *App) Register(s *service.Service) error {
	if a.Notify.PagerDuty == nil {
		for _, r := range a.Notify.Rules {
			if slices.Contains(r.Channels, rules.ChannelPagerDuty) {
				s.Log.Warn("alert rule names the pagerduty channel but PAGERDUTY_ROUTING_KEY is not set: its alerts skip PagerDuty", "rule", r.Name)
			}
		}
	}
	n := notify.New(s.Pool, a.Sender, a.Poster, a.Notify, s.Log)
	n.Register(s.Router)
	if a.ReconcileInterval > 0 {
		s.Background(func(ctx context.Context) { n.RunAlertReconciler(ctx, a.ReconcileInterval, a.ReconcileAfter) })
	}
	return nil
}
