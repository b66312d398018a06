// Command deployer runs the deployer service: it deploys the champion model (local predictor or Vertex AI) and batch-scores the fleet (etl_ml_training, step 4).
package main

import (
	"context"
	"fmt"
	"net"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/local"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
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
		store, err := s.Bucket(ctx)
		if err != nil {
			return err
		}
		var eng engine.Engine
		switch cfg.Engine {
		case engine.Vertex:
			v, err := vertex.New(ctx, cfg.Vertex, s.Log)
			if err != nil {
				return err
			}
			s.OnStop(func() { _ = v.Close() })
			eng = v
		default:
			pred := predictor.New(predictor.Options{PredictRoute: cfg.PredictRoute, HealthRoute: cfg.HealthRoute})
			local.Mount(s.Mux, pred)
			url := cfg.PredictURL
			if url == "" {
				addr, err := s.Listen()
				if err != nil {
					return err
				}
				url = predictURL(addr, cfg.PredictRoute)
			}
			eng = local.New(pred, url)
		}
		h, err := deployer.New(store, eng, s.Log)
		if err != nil {
			return err
		}
		if v, err := h.Restore(ctx, s.Pool); err != nil {
			s.Log.Warn("could not restore the served model; it is served again after the next deployment", "error", err)
		} else if v != "" {
			s.Log.Info("serving model", "version", v, "engine", eng.Name())
		}
		h.Register(s.Router)
		return nil
	})
}

// predictURL is the local predictor's address as seen from this machine.
func predictURL(addr net.Addr, route string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return route
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s%s", net.JoinHostPort(host, port), route)
}
