// Command notifier runs the notifier service: it sends technician notifications, summaries, reports and alerts (last step of every pipeline).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/app"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg app.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return service.Serve(ctx, events.Notifier, cfg.Common, a.Register)
}
