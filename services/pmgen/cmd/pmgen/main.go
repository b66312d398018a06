// Command pmgen runs the pmgen service: it turns due maintenance plans into work orders exactly once (preventive_maintenance, step 1).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/pmgen"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg pmgen.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	h, err := pmgen.New(cfg)
	if err != nil {
		return err
	}
	return service.Serve(ctx, events.Pmgen, cfg.Common, func(s *service.Service) error {
		h.Register(s.Router, s.Pool)
		return nil
	})
}
