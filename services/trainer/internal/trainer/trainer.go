// Package trainer is the trainer service's step of the etl_ml_training
// pipeline: on features.built it reads runs/<run_id>/features/training.parquet,
// splits it by time (the latest snapshot dates are the holdout), fits the
// failure-risk model (libs/model), evaluates it on the holdout, writes the
// artifact to models/<version>/model.json and runs/<run_id>/model/model.json,
// registers it in the models table and gates it against the current champion
// scored on the same holdout, then emits model.trained for the deployer.
package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// Config is the trainer service's configuration, from the environment.
type Config struct {
	config.Common
	// GateMargin: a new model is promoted iff its holdout ROC AUC is at
	// least the champion's on the same holdout minus this margin.
	GateMargin float64 `env:"GATE_MARGIN, default=0"`
	// HoldoutFraction of the snapshot dates, the latest ones, is the holdout.
	HoldoutFraction float64 `env:"HOLDOUT_FRACTION, default=0.2"`
	// LabelEmbargoDays drops training rows whose label window reaches the
	// holdout period; the featurejob's label window (LABEL_WINDOW_DAYS).
	LabelEmbargoDays int `env:"LABEL_EMBARGO_DAYS, default=90"`
	// ModelKind is the learner: logistic (default: on the synthetic fleet it
	// matches or beats scikit-learn's LogisticRegression and
	// HistGradientBoostingClassifier, see bench/) or gbt (boosted trees).
	ModelKind string `env:"MODEL_KIND, default=logistic"`
}

// Handler runs the step.
type Handler struct {
	cfg   Config
	store *objstore.Store
	log   *slog.Logger
	opts  model.Options
	now   func() time.Time
}

// New validates cfg and returns the handler writing to store.
func New(cfg Config, store *objstore.Store, log *slog.Logger) (*Handler, error) {
	if store == nil {
		return nil, errors.New("trainer: no object store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind := model.Kind(cfg.ModelKind)
	if kind != model.GBT && kind != model.Logistic {
		return nil, fmt.Errorf("trainer: MODEL_KIND %q: want %s or %s", cfg.ModelKind, model.GBT, model.Logistic)
	}
	if !(cfg.HoldoutFraction > 0 && cfg.HoldoutFraction < 1) {
		return nil, fmt.Errorf("trainer: HOLDOUT_FRACTION %v: want a fraction between 0 and 1", cfg.HoldoutFraction)
	}
	if cfg.GateMargin < 0 || cfg.GateMargin >= 1 || math.IsNaN(cfg.GateMargin) {
		return nil, fmt.Errorf("trainer: GATE_MARGIN %v: want an AUC difference in [0, 1)", cfg.GateMargin)
	}
	if cfg.LabelEmbargoDays < 0 {
		return nil, fmt.Errorf("trainer: LABEL_EMBARGO_DAYS %d is negative", cfg.LabelEmbargoDays)
	}
	return &Handler{cfg: cfg, store: store, log: log, opts: model.Options{Kind: kind}, now: time.Now}, nil
}

// Register adds the step to the service's router.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStepTx(events.FeaturesBuilt, "", h.Step)
}

// Object names in the bucket.
func ArtifactName(version string) string  { return "models/" + version + "/model.json" }
func RunArtifactName(runID string) string { return "runs/" + runID + "/model/model.json" }

const jsonType = "application/json"

// Step trains, evaluates, stores, registers and gates a model, and emits
// model.trained in tx.
func (h *Handler) Step(ctx context.Context, tx pgx.Tx, ev eventing.Event) (eventing.StepResult, error) {
	if ev.Pipeline != events.ETLMLTraining {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("trainer runs the %s pipeline, not %q", events.ETLMLTraining, ev.Pipeline))
	}
	var p eventsv1.FeaturesBuilt
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	name := p.GetTraining().GetName()
	if name == "" {
		return eventing.StepResult{}, eventing.Permanent(errors.New("features.built names no training object"))
	}
	data, err := h.store.Get(ctx, name)
	if errors.Is(err, objstore.ErrNotExist) {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("read training features: %w", err)
	}
	rows, err := ReadRows(data)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	ds, err := Split(rows, h.cfg.HoldoutFraction, h.cfg.LabelEmbargoDays)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	sum := sha256.Sum256(data)
	fingerprint := "sha256:" + hex.EncodeToString(sum[:])
	version, err := h.version(p.GetSnapshotDate(), ds, fingerprint)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(err)
	}

	X, y := Matrix(ds.Train)
	started := time.Now()
	m, err := model.Train(model.InputNames(), X, y, h.opts)
	trainSeconds := time.Since(started).Seconds()
	if errors.Is(err, model.ErrSingleClass) {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf(
			"cannot train: all %d training rows (snapshots %s…%s) have label %d",
			len(ds.Train), ds.TrainDates[0], ds.TrainDates[len(ds.TrainDates)-1], ds.Train[0].Label))
	}
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("train: %w", err))
	}
	Xh, yh := Matrix(ds.Holdout)
	ph, err := m.PredictAll(Xh)
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("score holdout: %w", err)
	}
	eval, err := model.Evaluate(yh, ph)
	if errors.Is(err, model.ErrUndefined) {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf(
			"cannot evaluate: all %d holdout rows (snapshots %s) have label %d",
			len(ds.Holdout), strings.Join(ds.HoldoutDates, ", "), ds.Holdout[0].Label))
	}
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(fmt.Errorf("evaluate: %w", err))
	}
	metrics := eval.Metrics()
	metrics["rows_train"] = float64(len(ds.Train))
	metrics["rows_holdout"] = float64(len(ds.Holdout))
	metrics["train_positives"] = float64(Positives(ds.Train))
	metrics["train_seconds"] = trainSeconds

	m.Version, m.RunID, m.CreatedAt = version, ev.RunID, h.now().UTC().Truncate(time.Millisecond)
	m.Metrics, m.Calibration = metrics, eval.Calibration
	m.Training = model.TrainingData{
		Fingerprint: fingerprint, Object: h.store.URI(name),
		Rows: len(ds.Train), Positives: Positives(ds.Train),
		TrainDates: ds.TrainDates, HoldoutDates: ds.HoldoutDates, HoldoutRows: len(ds.Holdout),
	}
	artifact, err := m.Marshal()
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("encode artifact: %w", err)
	}
	// The run's copy first, the versioned one second: a redelivery (same
	// data, same version) rewrites both.
	if err := h.store.Put(ctx, RunArtifactName(ev.RunID), jsonType, artifact); err != nil {
		return eventing.StepResult{}, err
	}
	if err := h.store.Put(ctx, ArtifactName(version), jsonType, artifact); err != nil {
		return eventing.StepResult{}, err
	}

	g, err := h.gate(ctx, tx, m, ds.Holdout, yh)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := register(ctx, tx, m, h.store, g); err != nil {
		return eventing.StepResult{}, err
	}
	logging.FromOr(ctx, h.log).InfoContext(ctx, "model trained", "version", version, "kind", m.Kind, "roc_auc", eval.ROCAUC,
		"champion", g.championVersion, "champion_roc_auc", g.championAUC, "promoted", g.promoted, "reason", g.reason)

	out, err := ev.Next(events.ModelTrained, events.Source(events.Trainer), &eventsv1.ModelTrained{
		ModelVersion: version,
		Artifact: &eventsv1.StoredObject{
			Name: ArtifactName(version), Uri: h.store.URI(ArtifactName(version)),
			Bytes: int64(len(artifact)), ContentType: jsonType,
		},
		Metrics:         metrics,
		Promoted:        g.promoted,
		ChampionVersion: g.championVersion,
		ChampionMetrics: g.championMetrics,
		GateReason:      g.reason,
		Scoring:         p.GetScoring(),
	})
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := eventing.Emit(ctx, tx, out); err != nil {
		return eventing.StepResult{}, err
	}
	figures := map[string]float64{
		"roc_auc": eval.ROCAUC, "pr_auc": eval.PRAUC, "brier": eval.Brier, "ece": eval.ECE,
		"rows_train": float64(len(ds.Train)), "rows_holdout": float64(len(ds.Holdout)),
		"promoted": b2f(g.promoted), "train_seconds": trainSeconds,
	}
	if g.championVersion != "" && g.championMetrics != nil {
		figures["champion_roc_auc"] = g.championAUC
	}
	decision := "not promoted"
	if g.promoted {
		decision = "promoted"
	}
	return eventing.StepResult{
		Figures: figures,
		Summary: fmt.Sprintf("model %s (%s): holdout ROC AUC %.4f on %d rows; %s: %s",
			version, m.Kind, eval.ROCAUC, len(ds.Holdout), decision, g.reason),
	}, nil
}

// version is "v" + the run's snapshot date + a hash of the training data and
// the learner: the same data trains the same model under the same name, so a
// redelivery rewrites rather than adds.
func (h *Handler) version(snapshot string, ds Dataset, fingerprint string) (string, error) {
	if snapshot == "" {
		snapshot = ds.HoldoutDates[len(ds.HoldoutDates)-1]
	}
	d, err := time.Parse(features.DateLayout, snapshot)
	if err != nil {
		return "", fmt.Errorf("features.built snapshot_date %q is not YYYY-MM-DD", snapshot)
	}
	spec, err := json.Marshal(struct {
		Fingerprint string
		Options     model.Options
		Inputs      []string
		Holdout     float64
		Embargo     int
		Format      int
	}{fingerprint, h.opts, model.InputNames(), h.cfg.HoldoutFraction, h.cfg.LabelEmbargoDays, model.FormatVersion})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(spec)
	return "v" + d.Format("20060102") + "-" + hex.EncodeToString(sum[:])[:10], nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
