package deployer

import (
	"context"
	"fmt"
	"net"

	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/local"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
)

// Register builds the configured engine (the local predictor, mounted on the
// service's own port, or Vertex AI), restores the model being served and
// registers the steps on s.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
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
		pred := predictor.New(predictor.Options{PredictRoute: cfg.PredictRoute, HealthRoute: cfg.HealthRoute, Bands: cfg.Monitoring().Bands})
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
	h, err := New(s.Pool, store, eng, cfg.Monitoring(), s.Log)
	if err != nil {
		return err
	}
	if v, err := h.Restore(ctx, s.Pool); err != nil {
		s.Log.Warn("could not restore the served model; it is served again after the next deployment", "error", err)
	} else if v != "" {
		s.Log.Info("serving model", "version", v, "engine", eng.Name())
	}
	if cfg.FaultFile != "" {
		h.InjectFaults(cfg.FaultFile)
		s.Log.Warn("fault injection on: the deploys of the runs listed in DEPLOY_FAULT_FILE fail", "file", cfg.FaultFile)
	}
	h.Register(s.Router)
	return nil
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
