// Package featurejob is the featurejob service's step of the etl_ml_training
// pipeline: on raw.extracted it builds the run's features with the
// configured engine (FEATURE_ENGINE: local, dataproc on GCP, or auto, which
// picks one of the two per run by its size), emits features.built for the
// trainer and reports rows and bytes with the step.
package featurejob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
)

// Config is the featurejob service's configuration, from the environment.
type Config struct {
	config.Common
	// Engine builds the features: local (Go, in this process), dataproc,
	// or auto (local up to AutoMaxWorkOrders work orders, dataproc above).
	Engine string `env:"FEATURE_ENGINE, default=local"`
	// AutoMaxWorkOrders is the largest run (work orders in raw.extracted)
	// FEATURE_ENGINE=auto builds locally. The default, 10M, is the largest
	// fleet the local engine was measured at (docs/dataproc-crossover.md):
	// 41 s on 2 shared vCPUs, 13x inside the 540 s a delivery may take
	// (HANDLER_TIMEOUT, under Pub/Sub's 600 s ack deadline: the local engine
	// cannot resume on redelivery), and about 1.2 GiB of RSS and
	// FEATURE_TMPDIR together (on Cloud Run the file system is memory), 1.7x
	// inside the deployment's 2 GiB. Memory binds first: raise it with the
	// instance's.
	AutoMaxWorkOrders int64 `env:"FEATURE_AUTO_MAX_WORK_ORDERS, default=10000000"`
	// LookbackDays is the window the count features look back over.
	LookbackDays int `env:"LOOKBACK_DAYS, default=365"`
	// LabelWindowDays is the window after a snapshot the label looks at.
	LabelWindowDays int `env:"LABEL_WINDOW_DAYS, default=90"`
	// TmpDir holds the local engine's inputs during a build ("" = the system's).
	TmpDir string `env:"FEATURE_TMPDIR"`
	// Dataproc configures FEATURE_ENGINE=dataproc (DATAPROC_* variables).
	Dataproc dataproc.Config
}

// Factory builds an engine from the configuration.
type Factory func(ctx context.Context, cfg Config, store *objstore.Store) (engine.Engine, error)

// Engines are the FEATURE_ENGINE values and their constructors.
var Engines = map[string]Factory{
	local.Name: func(_ context.Context, cfg Config, store *objstore.Store) (engine.Engine, error) {
		return local.New(store, cfg.TmpDir), nil
	},
	DataprocName: newDataproc,
	AutoName: func(ctx context.Context, cfg Config, store *objstore.Store) (engine.Engine, error) {
		return NewAuto(ctx, cfg, store)
	},
}

// NewEngine returns the engine cfg.Engine names.
func NewEngine(ctx context.Context, cfg Config, store *objstore.Store) (engine.Engine, error) {
	f, ok := Engines[cfg.Engine]
	if !ok {
		return nil, unknownEngine(cfg.Engine)
	}
	e, err := f(ctx, cfg, store)
	if err != nil {
		return nil, fmt.Errorf("featurejob: %s engine: %w", cfg.Engine, err)
	}
	return e, nil
}

func unknownEngine(name string) error {
	return fmt.Errorf("featurejob: FEATURE_ENGINE %q: want one of %s", name, strings.Join(slices.Sorted(maps.Keys(Engines)), ", "))
}

// Handler runs the step.
type Handler struct {
	engine   engine.Engine
	name     string
	lookback int
	window   int
}

// Validate implements service.Config: dataproc and auto need valid Dataproc
// settings (auto builds there above AutoMaxWorkOrders).
func (c *Config) Validate() error {
	if c.LookbackDays < 1 || c.LabelWindowDays < 1 {
		return fmt.Errorf("featurejob: LOOKBACK_DAYS (%d) and LABEL_WINDOW_DAYS (%d) must be at least 1", c.LookbackDays, c.LabelWindowDays)
	}
	if _, ok := Engines[c.Engine]; !ok {
		return unknownEngine(c.Engine)
	}
	if c.Engine == AutoName && c.AutoMaxWorkOrders < 0 {
		return fmt.Errorf("featurejob: FEATURE_AUTO_MAX_WORK_ORDERS %d is negative", c.AutoMaxWorkOrders)
	}
	if c.Engine == local.Name {
		return nil
	}
	dc := c.Dataproc
	dc.Project = cmp.Or(dc.Project, c.ProjectID)
	if err := dc.ValidateSettings(); err != nil {
		why := ""
		if c.Engine == AutoName {
			why = fmt.Sprintf(" (it builds runs of more than FEATURE_AUTO_MAX_WORK_ORDERS=%d work orders on Dataproc)", c.AutoMaxWorkOrders)
		}
		return fmt.Errorf("featurejob: FEATURE_ENGINE=%s needs valid Dataproc settings%s: DATAPROC_* variables, project from DATAPROC_PROJECT or GOOGLE_CLOUD_PROJECT: %w", c.Engine, why, err)
	}
	return nil
}

// Register wires the step into s: the configured engine, writing to s's
// bucket.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	store, err := s.Bucket(ctx)
	if err != nil {
		return err
	}
	eng, err := NewEngine(ctx, cfg, store)
	if err != nil {
		return err
	}
	h, err := New(cfg, eng)
	if err != nil {
		return err
	}
	h.Register(s.Router)
	return nil
}

// New returns the handler building with eng (named cfg.Engine).
func New(cfg Config, eng engine.Engine) (*Handler, error) {
	if eng == nil {
		return nil, errors.New("featurejob: no engine")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{engine: eng, name: cfg.Engine, lookback: cfg.LookbackDays, window: cfg.LabelWindowDays}, nil
}

// Register adds the step to the service's router: raw-extracted in,
// features-built out. The engine's work (a Dataproc batch or cluster job,
// which may take minutes) runs with no transaction open.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStep(events.RawExtracted, events.FeaturesBuilt, h.Step)
}

// Step builds the features; its output is the features.built payload.
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.RawExtracted
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	started := time.Now()
	out, err := h.engine.Build(ctx, engine.Inputs{
		RunID: ev.RunID, SnapshotDate: p.GetSnapshotDate(), Raw: p.GetObjects(),
		OutPrefix: engine.OutPrefix(ev.RunID), LookbackDays: h.lookback, LabelWindowDays: h.window,
	})
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("%s engine: %w", h.name, err)
	}
	if out.Training == nil || out.Scoring == nil {
		return eventing.StepResult{}, fmt.Errorf("%s engine returned no training or scoring object", h.name)
	}
	took, name := time.Since(started), cmp.Or(out.Engine, h.name)
	figures := map[string]float64{
		"training_rows":  float64(out.Training.GetRows()),
		"training_bytes": float64(out.Training.GetBytes()),
		"scoring_rows":   float64(out.Scoring.GetRows()),
		"scoring_bytes":  float64(out.Scoring.GetBytes()),
		"seconds":        took.Seconds(),
	}
	maps.Copy(figures, out.Figures)
	summary := fmt.Sprintf("%s engine: %d training rows", name, out.Training.GetRows())
	if out.Choice != "" {
		summary = fmt.Sprintf("%s engine (%s: %s): %d training rows", name, h.name, out.Choice, out.Training.GetRows())
	}
	if n, ok := out.Figures["snapshots"]; ok {
		summary += fmt.Sprintf(" over %d monthly snapshots", int(n))
	}
	if r, ok := out.Figures["positive_rate"]; ok {
		summary += fmt.Sprintf(" (%.1f%% with a failure in the next %d days)", 100*r, h.window)
	}
	summary += fmt.Sprintf(", %d active assets to score as of %s, in %s.", out.Scoring.GetRows(), p.GetSnapshotDate(), took.Round(time.Millisecond))
	built := &eventsv1.FeaturesBuilt{
		SnapshotDate: p.GetSnapshotDate(), Engine: name, Training: out.Training, Scoring: out.Scoring,
	}
	return eventing.StepResult{Output: built, Figures: figures, Summary: summary}, nil
}
