// Command predictor serves the failure-risk model with the Vertex AI
// custom-container contract: it loads model.json from the folder
// AIP_STORAGE_URI names (through Cloud Storage; STORAGE_EMULATOR_HOST
// locally) and answers AIP_PREDICT_ROUTE and AIP_HEALTH_ROUTE on
// AIP_HTTP_PORT. It is the image the deployer's vertex engine registers.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// Config is set by Vertex AI on the container.
type Config struct {
	Port            int    `env:"AIP_HTTP_PORT, default=8080"`
	PredictRoute    string `env:"AIP_PREDICT_ROUTE, default=/predict"`
	HealthRoute     string `env:"AIP_HEALTH_ROUTE, default=/health"`
	StorageURI      string `env:"AIP_STORAGE_URI, required"`
	DeployedModelID string `env:"AIP_DEPLOYED_MODEL_ID"`
	// RiskBands level the probabilities (the deployer's RISK_BANDS, which its
	// vertex engine sets on the container; monitor.DefaultBands when unset).
	RiskBands string `env:"RISK_BANDS"`
	LogFormat string `env:"LOG_FORMAT, default=json"`
	LogLevel  string `env:"LOG_LEVEL, default=info"`
}

func main() { service.Main(run) }

func run(ctx context.Context) (err error) {
	var cfg Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	log := logging.New(os.Stdout, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel}).With("service", "predictor")
	bands, err := monitor.ParseRiskBands(cfg.RiskBands)
	if err != nil {
		return fmt.Errorf("predictor: RISK_BANDS %q: %w", cfg.RiskBands, err)
	}
	bucket, _, err := predictor.ParseStorageURI(cfg.StorageURI)
	if err != nil {
		return err
	}
	store, closeStore, err := objstore.Connect(ctx, bucket)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeStore()) }()
	m, err := predictor.Load(ctx, store, cfg.StorageURI)
	if err != nil {
		return err
	}
	p := predictor.New(predictor.Options{PredictRoute: cfg.PredictRoute, HealthRoute: cfg.HealthRoute, Bands: bands})
	p.Swap(m, cfg.DeployedModelID)
	l, err := service.Listen("", cfg.Port)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", l.Addr().String(), "model_version", m.Version, "predict_route", cfg.PredictRoute,
		"health_route", cfg.HealthRoute, "storage_uri", cfg.StorageURI)
	return service.ServeHTTP(ctx, l, p, 9*time.Second)
}
