// Command deployer runs the deployer service: it registers and deploys the model and batch-scores the fleet (etl_ml_training, step 4).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

// Config is the deployer service's configuration, from the environment.
type Config struct {
	config.Common
}

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Deployer, cfg.Common, nil)
}
