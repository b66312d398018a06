// Command deployer runs the deployer service: it deploys the champion model (local predictor or Vertex AI) and batch-scores the fleet (etl_ml_training, step 4).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg deployer.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if cfg.Vertex.Project == "" {
		cfg.Vertex.Project = cfg.ProjectID
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return service.Serve(ctx, events.Deployer, cfg.Common, func(s *service.Service) error {
		return deployer.Wire(ctx, s, cfg)
	})
}
