package cron

import "time"

// Config is the local cron publisher's configuration, from the environment.
type Config struct {
	// Port serves GET /healthz, so the local stack can wait for the publisher.
	Port      int    `env:"PORT, default=8090"`
	Host      string `env:"HOST"` // listen address; empty: every interface
	ProjectID string `env:"GOOGLE_CLOUD_PROJECT, default=cmmsflow-local"`
	// EmulatorHost is the Pub/Sub emulator kicks go to. Required: this is the
	// local stack's publisher; on GCP, Cloud Scheduler publishes the kicks.
	EmulatorHost string `env:"PUBSUB_EMULATOR_HOST, required"`
	// TimeZone overrides the cron table's time zone (an IANA name).
	TimeZone string `env:"CRON_TIME_ZONE"`
	// Only limits the kicks to these pipeline ids (comma separated); empty
	// kicks every pipeline of the table.
	Only           []string      `env:"CRON_ONLY"`
	PublishTimeout time.Duration `env:"CRON_PUBLISH_TIMEOUT, default=30s"`
	LogFormat      string        `env:"LOG_FORMAT, default=json"`
	LogLevel       string        `env:"LOG_LEVEL, default=info"`
	ShutdownGrace  time.Duration `env:"SHUTDOWN_GRACE, default=9s"`
}
