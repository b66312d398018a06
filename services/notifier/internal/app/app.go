// Package app wires the notifier service: configuration, the email sender
// (local outbox or SendGrid), webhooks, and the notify handlers.
package app

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
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

// New validates cfg and builds the sender, webhooks and the bucket client
// (reports are read from BUCKET). A missing SENDGRID_API_KEY in sendgrid
// mode, an unknown mode, or a malformed address, webhook or URL is an error.
func New(ctx context.Context, cfg Config) (*App, error) {
	from, err := mail.ParseAddress(cfg.EmailFrom)
	if err != nil {
		return nil, fmt.Errorf("EMAIL_FROM %q: %w", cfg.EmailFrom, err)
	}
	admins, err := email.ParseAddressList(cfg.AdminEmails)
	if err != nil {
		return nil, fmt.Errorf("ADMIN_EMAILS: %w", err)
	}
	hooks, err := webhook.ParseTargets(cfg.WebhookURLs)
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_WEBHOOK_URLS: %w", err)
	}
	reports := admins
	if strings.TrimSpace(cfg.ReportRecipients) != "" {
		if reports, err = email.ParseAddressList(cfg.ReportRecipients); err != nil {
			return nil, fmt.Errorf("REPORT_RECIPIENTS: %w", err)
		}
	}
	if b := cfg.ReportPublicBaseURL; b != "" {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("REPORT_PUBLIC_BASE_URL %q: want an http(s) URL", b)
		}
	}
	if cfg.AlertReconcileInterval < 0 || cfg.AlertReconcileAfter < 0 {
		return nil, fmt.Errorf("ALERT_RECONCILE_INTERVAL and ALERT_RECONCILE_AFTER must not be negative")
	}
	if cfg.MaxAttempts < 1 {
		return nil, fmt.Errorf("NOTIFY_MAX_ATTEMPTS must be at least 1, got %d", cfg.MaxAttempts)
	}
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
	store, closeStore, err := objstore.Connect(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("BUCKET: %w", err)
	}
	return &App{
		Sender: sender,
		Poster: webhook.NewPoster(client),
		Notify: notify.Config{
			From: *from, Admins: admins, Webhooks: hooks, MaxAttempts: cfg.MaxAttempts, SendTimeout: cfg.SendTimeout,
			Reports: reports, ReportLinkBase: cfg.ReportPublicBaseURL, Bucket: store,
		},
		ReconcileInterval: cfg.AlertReconcileInterval, ReconcileAfter: cfg.AlertReconcileAfter,
		Close: closeStore,
	}, nil
}

// Register adds the notify handlers to the service's router and, unless
// its interval is 0, starts the alert reconciler until the service stops.
func (a *App) Register(s *service.Service) error {
	n := notify.New(s.Pool, a.Sender, a.Poster, a.Notify, s.Log)
	n.Register(s.Router)
	if a.ReconcileInterval > 0 {
		s.Background(func(ctx context.Context) { n.RunAlertReconciler(ctx, a.ReconcileInterval, a.ReconcileAfter) })
	}
	return nil
}
