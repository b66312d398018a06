// Command notifier runs the notifier service: it sends technician notifications, summaries, reports and alerts (last step of every pipeline).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

// Config is the notifier service's configuration, from the environment.
type Config struct {
	config.Common
}

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Notifier, cfg.Common, nil)
}
