package deployer

import (
	"fmt"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
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

	// RiskBandSpec is RISK_BANDS: the lower bounds of the medium, high and
	// critical risk levels, then optionally per vehicle type
	// ("0.25,0.5,0.75;bus=0.3,0.5,0.8"; monitor.ParseRiskBands). Unset:
	// monitor.DefaultBands for every vehicle type.
	RiskBandSpec string `env:"RISK_BANDS"`
	// DriftWarn and DriftAlert are the PSI thresholds of drift warn and
	// alert (monitor.DefaultThresholds).
	DriftWarn  float64 `env:"DRIFT_WARN, default=0.1"`
	DriftAlert float64 `env:"DRIFT_ALERT, default=0.25"`
	// LabelWindowDays is how long after a scoring its assets' corrective work
	// orders count as its labels (featurejob's LABEL_WINDOW_DAYS).
	LabelWindowDays int `env:"LABEL_WINDOW_DAYS, default=90"`
	// The shadow promotion rule (monitor.PromotionRule): the margin of realized
	// ROC AUC the shadow must beat the champion by, on at least that many
	// labelled assets and positives.
	ShadowMargin       float64 `env:"SHADOW_MARGIN, default=0.02"`
	ShadowMinLabelled  int     `env:"SHADOW_MIN_LABELLED, default=50"`
	ShadowMinPositives int     `env:"SHADOW_MIN_POSITIVES, default=5"`
	// AutoRetrain turns on retraining (an etl_ml_training run) when the
	// monitoring finds drift at the alert level or the champion's realized
	// ROC AUC below DecayAUCBelow, at most once per RetrainCooldownDays.
	AutoRetrain         bool    `env:"AUTO_RETRAIN, default=false"`
	RetrainCooldownDays int     `env:"RETRAIN_COOLDOWN_DAYS, default=7"`
	DecayAUCBelow       float64 `env:"DECAY_AUC_BELOW, default=0.6"`

	bands monitor.RiskBands // RiskBandSpec, parsed by Validate

	// FaultFile turns on fault injection, for tests only: the deploy of
	// every run listed in this file (one run id a line, read at each
	// deploy) fails for good. Unset (the default), nothing is injected.
	FaultFile string `env:"DEPLOY_FAULT_FILE"`
}

// Validate sets the defaults (the Vertex project is the service's), parses
// the risk bands and names the first invalid setting.
func (c *Config) Validate() error {
	if c.Vertex.Project == "" {
		c.Vertex.Project = c.ProjectID
	}
	c.Vertex.RiskBands = c.RiskBandSpec
	if err := c.validateMonitoring(); err != nil {
		return err
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

// validateMonitoring parses and checks the scoring and monitoring settings.
func (c *Config) validateMonitoring() error {
	bands, err := monitor.ParseRiskBands(c.RiskBandSpec)
	if err != nil {
		return fmt.Errorf("deployer: RISK_BANDS %q: %w", c.RiskBandSpec, err)
	}
	c.bands = bands
	m := c.Monitoring()
	if err := m.Drift.Validate(); err != nil {
		return fmt.Errorf("deployer: DRIFT_WARN %v, DRIFT_ALERT %v: %w", c.DriftWarn, c.DriftAlert, err)
	}
	switch {
	case c.LabelWindowDays < 1:
		return fmt.Errorf("deployer: LABEL_WINDOW_DAYS %d: want at least 1", c.LabelWindowDays)
	case c.ShadowMargin < 0 || c.ShadowMinLabelled < 0 || c.ShadowMinPositives < 0:
		return fmt.Errorf("deployer: SHADOW_MARGIN %v, SHADOW_MIN_LABELLED %d, SHADOW_MIN_POSITIVES %d: want no negative value",
			c.ShadowMargin, c.ShadowMinLabelled, c.ShadowMinPositives)
	case c.RetrainCooldownDays < 0:
		return fmt.Errorf("deployer: RETRAIN_COOLDOWN_DAYS %d: want 0 or more", c.RetrainCooldownDays)
	case c.DecayAUCBelow < 0 || c.DecayAUCBelow > 1:
		return fmt.Errorf("deployer: DECAY_AUC_BELOW %v: want a ROC AUC in [0, 1]", c.DecayAUCBelow)
	}
	return nil
}

// Monitoring is the configured scoring and monitoring settings (the risk
// bands once Validate has parsed them).
func (c *Config) Monitoring() Monitoring {
	return Monitoring{
		Bands:           c.bands,
		Drift:           monitor.Thresholds{Warn: c.DriftWarn, Alert: c.DriftAlert},
		LabelWindowDays: c.LabelWindowDays,
		Promotion:       monitor.PromotionRule{Margin: c.ShadowMargin, MinLabelled: c.ShadowMinLabelled, MinPositives: c.ShadowMinPositives},
		Retrain:         Retrain{Auto: c.AutoRetrain, CooldownDays: c.RetrainCooldownDays, DecayAUCBelow: c.DecayAUCBelow},
	}
}
