// Command cron is the local stack's cron publisher: on every tick of the cron
// table (scheduler/crontab.yaml) it publishes the pipeline's kick to the
// Pub/Sub emulator, as Cloud Scheduler does on GCP.
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/scheduler/internal/cron"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg cron.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	s, err := cron.New(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
