// Command extractor runs the extractor service: it streams assets and work orders from PostgreSQL to Parquet in the bucket (etl_ml_training, step 1).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

// Config is the extractor service's configuration, from the environment.
type Config struct {
	config.Common
}

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Extractor, cfg.Common, nil)
}
