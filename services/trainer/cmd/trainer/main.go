// Command trainer runs the trainer service: it trains, evaluates and gates the failure-risk model (etl_ml_training, step 3).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg trainer.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Trainer, cfg.Common, func(s *service.Service) error {
		store, err := s.Bucket(ctx)
		if err != nil {
			return err
		}
		h, err := trainer.New(cfg, s.Pool, store, s.Log)
		if err != nil {
			return err
		}
		h.Register(s.Router)
		return nil
	})
}
