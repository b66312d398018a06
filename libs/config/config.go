// Package config loads a service's typed configuration from the environment,
// once, in main. Libraries receive values, never read the environment.
package config

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Load fills cfg (a pointer to a struct with `env` tags) from the process
// environment.
func Load(ctx context.Context, cfg any) error {
	if err := envconfig.Process(ctx, cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// LoadFrom fills cfg from the given variables only (tests, tools).
func LoadFrom(ctx context.Context, cfg any, env map[string]string) error {
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: cfg, Lookuper: envconfig.MapLookuper(env)}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// CommonConfig returns the common part of a service's configuration (a
// Config that embeds Common has it too).
func (c Common) CommonConfig() Common { return c }

// Common is the configuration every service has. Services embed it.
type Common struct {
	Host        string `env:"HOST"` // listen address; empty: every interface (Cloud Run)
	Port        int    `env:"PORT, default=8080"`
	ProjectID   string `env:"GOOGLE_CLOUD_PROJECT, default=cmmsflow-local"`
	DatabaseURL string `env:"DATABASE_URL, required"`
	// SourceSchema is the schema the CMMS relations are read from (libs/db):
	// cmmsflow's own tables by default.
	SourceSchema   string        `env:"SOURCE_SCHEMA, default=cmms"`
	LogFormat      string        `env:"LOG_FORMAT, default=json"`
	LogLevel       string        `env:"LOG_LEVEL, default=info"`
	HandlerTimeout time.Duration `env:"HANDLER_TIMEOUT, default=9m"`
	OutboxInterval time.Duration `env:"OUTBOX_POLL_INTERVAL, default=2s"`
	ShutdownGrace  time.Duration `env:"SHUTDOWN_GRACE, default=9s"`
	Bucket         string        `env:"BUCKET, default=cmmsflow-local"`

	// PushAuth on makes /events accept only pushes carrying a Google-signed
	// OIDC ID token (Pub/Sub push subscriptions with an OIDC token) whose
	// audience is PushAudience and whose email is one of
	// PushServiceAccounts; every other push gets 401. Off is refused on
	// Cloud Run (CloudRunService set) unless written off-insecure.
	PushAuth            PushAuth `env:"PUSH_AUTH, default=off"`
	PushAudience        string   `env:"PUSH_AUDIENCE"`
	PushServiceAccounts []string `env:"PUSH_SERVICE_ACCOUNTS"` // comma separated emails
	// PushJWKSURL is where the signing keys are fetched; empty: Google's.
	PushJWKSURL string `env:"PUSH_JWKS_URL"`
	// CloudRunService is the Cloud Run service's name, which Cloud Run sets
	// in K_SERVICE; empty elsewhere.
	CloudRunService string `env:"K_SERVICE"`

	// Telemetry (libs/telemetry). Traces are exported over OTLP when
	// OTEL_TRACES_EXPORTER is otlp, or is unset and an OTLP endpoint is set;
	// otherwise nothing is exported (a no-op tracer). The exporter reads the
	// other standard OTEL_* variables itself.
	TracesExporter     string `env:"OTEL_TRACES_EXPORTER"`
	OTLPEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTLPTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTLPProtocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL, default=http/protobuf"`
	// Metrics on serves GET /metrics (Prometheus text format, no auth).
	Metrics Switch `env:"METRICS, default=on"`
}

// Switch is a boolean setting written on or off (also true/false, 1/0,
// yes/no).
type Switch bool

// EnvDecode implements envconfig.Decoder.
func (s *Switch) EnvDecode(val string) error {
	switch strings.ToLower(strings.TrimSpace(val)) {
	case "on", "true", "1", "yes":
		*s = true
	case "off", "false", "0", "no", "":
		*s = false
	default:
		return fmt.Errorf("%q: want on or off", val)
	}
	return nil
}

// String returns on or off.
func (s Switch) String() string {
	if s {
		return "on"
	}
	return "off"
}

// PushAuth is PUSH_AUTH: on, off, or off-insecure (off, said knowingly: the
// only way to run with push auth off on Cloud Run). The zero value is off.
type PushAuth string

const (
	PushAuthOn          PushAuth = "on"
	PushAuthOff         PushAuth = "off"
	PushAuthOffInsecure PushAuth = "off-insecure"
)

// EnvDecode implements envconfig.Decoder: off-insecure, or any spelling of
// a Switch.
func (p *PushAuth) EnvDecode(val string) error {
	if strings.EqualFold(strings.TrimSpace(val), string(PushAuthOffInsecure)) {
		*p = PushAuthOffInsecure
		return nil
	}
	var on Switch
	if on.EnvDecode(val) != nil {
		return fmt.Errorf("%q: want on, off or off-insecure", val)
	}
	*p = PushAuthOff
	if on {
		*p = PushAuthOn
	}
	return nil
}

// On reports whether pushes are verified.
func (p PushAuth) On() bool { return p == PushAuthOn }
