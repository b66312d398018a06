// Command trainer runs the trainer service: it trains, evaluates and gates the failure-risk model (etl_ml_training, step 3).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

// Config is the trainer service's configuration, from the environment.
type Config struct {
	config.Common
}

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Trainer, cfg.Common, nil)
}
