// Command featurejob runs the featurejob service: it computes per-asset
// features from the extracted Parquet, locally or on Dataproc
// (etl_ml_training, step 2).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg featurejob.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Featurejob, cfg.Common, func(s *service.Service) error {
		store, err := s.Bucket(ctx)
		if err != nil {
			return err
		}
		eng, err := featurejob.NewEngine(ctx, cfg, store)
		if err != nil {
			return err
		}
		h, err := featurejob.New(cfg, eng)
		if err != nil {
			return err
		}
		h.Register(s.Router)
		return nil
	})
}
