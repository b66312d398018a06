package deployer

import (
	"fmt"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
)

// Config is the deployer service's configuration, from the environment.
type Config struct {
	config.Common
	// Engine serves the model: local (the predictor on this service's own
	// HTTP server) or vertex (a Vertex AI endpoint).
	Engine string `env:"DEPLOY_ENGINE, default=local"`
	// Routes of the local engine's predictor on this service's server.
	PredictRoute string `env:"PREDICT_ROUTE, default=/predict"`
	HealthRoute  string `env:"PREDICT_HEALTH_ROUTE, default=/predict/health"`
	// PredictURL is the local predictor's address reported in
	// model.deployed; default http://<listen address><PREDICT_ROUTE>.
	PredictURL string `env:"PREDICT_URL"`

	Vertex vertex.Config

	// FaultFile turns on fault injection, for tests only: the deploy of
	// every run listed in this file (one run id a line, read at each
	// deploy) fails for good. Unset (the default), nothing is injected.
	FaultFile string `env:"DEPLOY_FAULT_FILE"`
}

// Validate sets the defaults (the Vertex project is the service's) and
// names the first invalid setting.
func (c *Config) Validate() error {
	if c.Vertex.Project == "" {
		c.Vertex.Project = c.ProjectID
	}
	switch c.Engine {
	case engine.Local:
		if c.PredictRoute == "" || c.PredictRoute[0] != '/' || c.HealthRoute == "" || c.HealthRoute[0] != '/' || c.PredictRoute == c.HealthRoute {
			return fmt.Errorf("deployer: PREDICT_ROUTE %q and PREDICT_HEALTH_ROUTE %q: want two different paths", c.PredictRoute, c.HealthRoute)
		}
		return nil
	case engine.Vertex:
		return c.Vertex.Validate()
	}
	return fmt.Errorf("deployer: DEPLOY_ENGINE %q: want %s or %s", c.Engine, engine.Local, engine.Vertex)
}
