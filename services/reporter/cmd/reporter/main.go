// Command reporter runs the reporter service: it computes the weekly KPIs and builds the HTML and PDF report (weekly_kpi_report, step 1).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

// Config is the reporter service's configuration, from the environment.
type Config struct {
	config.Common
}

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Reporter, cfg.Common, nil)
}
