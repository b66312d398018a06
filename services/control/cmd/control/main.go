// Command control runs the control service: it accepts pipeline triggers,
// projects step events into runs and steps, and serves the control API
// (gRPC and HTTP/JSON on one port) and the admin page.
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg app.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Control, cfg.Common, func(s *service.Service) error {
		_, err := app.Register(ctx, s, cfg)
		return err
	})
}
