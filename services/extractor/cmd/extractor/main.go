// Command extractor runs the extractor service: it streams assets, work
// orders and maintenance plans from PostgreSQL to Parquet in the bucket
// (etl_ml_training, step 1).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extractor"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg extractor.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Extractor, cfg.Common, func(s *service.Service) error {
		store, err := s.Bucket(ctx)
		if err != nil {
			return err
		}
		h, err := extractor.New(s.Pool, store)
		if err != nil {
			return err
		}
		h.Register(s.Router)
		return nil
	})
}
