// Package config loads a service's typed configuration from the environment,
// once, in main. Libraries receive values, never read the environment.
package config

import (
	"context"
	"fmt"
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

// Common is the configuration every service has. Services embed it.
type Common struct {
	Host           string        `env:"HOST"` // listen address; empty: every interface (Cloud Run)
	Port           int           `env:"PORT, default=8080"`
	ProjectID      string        `env:"GOOGLE_CLOUD_PROJECT, default=cmmsflow-local"`
	DatabaseURL    string        `env:"DATABASE_URL, required"`
	LogFormat      string        `env:"LOG_FORMAT, default=json"`
	LogLevel       string        `env:"LOG_LEVEL, default=info"`
	HandlerTimeout time.Duration `env:"HANDLER_TIMEOUT, default=9m"`
	OutboxInterval time.Duration `env:"OUTBOX_POLL_INTERVAL, default=2s"`
	ShutdownGrace  time.Duration `env:"SHUTDOWN_GRACE, default=9s"`
	Bucket         string        `env:"BUCKET, default=cmmsflow-local"`
}
