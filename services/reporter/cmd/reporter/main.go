// Command reporter runs the reporter service: it computes the weekly KPIs and builds the HTML and PDF report (weekly_kpi_report, step 1).
package main

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter"
)

func main() { service.Main(run) }

func run(ctx context.Context) error {
	var cfg reporter.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	return service.Serve(ctx, events.Reporter, cfg.Common, func(s *service.Service) error {
		store, err := s.Bucket(ctx)
		if err != nil {
			return err
		}
		h, err := reporter.New(cfg, store)
		if err != nil {
			return err
		}
		h.Register(s.Router, s.Pool)
		return nil
	})
}
