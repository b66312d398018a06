// Package trainer is the trainer service's step of the etl_ml_training
// pipeline: on features.built it reads runs/<run_id>/features/training.parquet,
// splits it by time (the latest snapshot dates are the holdout), fits the
// failure-risk model (libs/model), evaluates it on the holdout, writes the
// artifact to models/<version>/model.json and runs/<run_id>/model/model.json
// and its training profile (libs/monitor) to models/<version>/profile.json,
// gates it against the current champion scored on the same holdout, registers
// it in the models table as the champion, the shadow challenger (see
// Config.Shadow) or neither, then emits model.trained for the deployer.
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
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
	// Shadow keeps a new model as the shadow challenger, which the deployer
	// scores beside the champion and promotes when its realized performance
	// beats the champion's: off (default) never; rejected: a model the gate
	// rejects; all: every new model, which the gate then never promotes (its
	// decision is still recorded), unless it has no champion to challenge
	// (none, itself, or one that cannot be loaded or score the features). At
	// most one model is the shadow: a new one replaces it.
	Shadow string `env:"SHADOW, default=off"`
}

// The values of Config.Shadow.
const (
	ShadowOff      = "off"
	ShadowRejected = "rejected"
	ShadowAll      = "all"
)

// Handler runs the step.
type Handler struct {
	cfg   Config
	pool  *pgxpool.Pool // reads the champion
	store *objstore.Store
	log   *slog.Logger
	opts  model.Options
	now   func() time.Time
}

// New validates cfg and returns the handler writing to store and reading
// the champion through pool.
func New(cfg Config, pool *pgxpool.Pool, store *objstore.Store, log *slog.Logger) (*Handler, error) {
	if store == nil || pool == nil {
		return nil, errors.New("trainer: a database pool and an object store are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, pool: pool, store: store, log: log, opts: model.Options{Kind: model.Kind(cfg.ModelKind)}, now: time.Now}, nil
}

// Validate implements service.Config.
func (c *Config) Validate() error {
	if kind := model.Kind(c.ModelKind); kind != model.GBT && kind != model.Logistic {
		return fmt.Errorf("trainer: MODEL_KIND %q: want %s or %s", c.ModelKind, model.GBT, model.Logistic)
	}
	if !(c.HoldoutFraction > 0 && c.HoldoutFraction < 1) {
		return fmt.Errorf("trainer: HOLDOUT_FRACTION %v: want a fraction between 0 and 1", c.HoldoutFraction)
	}
	if c.GateMargin < 0 || c.GateMargin >= 1 || math.IsNaN(c.GateMargin) {
		return fmt.Errorf("trainer: GATE_MARGIN %v: want an AUC difference in [0, 1)", c.GateMargin)
	}
	if c.LabelEmbargoDays < 0 {
		return fmt.Errorf("trainer: LABEL_EMBARGO_DAYS %d is negative", c.LabelEmbargoDays)
	}
	if c.Shadow != ShadowOff && c.Shadow != ShadowRejected && c.Shadow != ShadowAll {
		return fmt.Errorf("trainer: SHADOW %q: want %s, %s or %s", c.Shadow, ShadowOff, ShadowRejected, ShadowAll)
	}
	return nil
}

// Register wires the step into s: it reads the champion through s's pool
// and writes artifacts to s's bucket.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	store, err := s.Bucket(ctx)
	if err != nil {
		return err
	}
	h, err := New(cfg, s.Pool, store, s.Log)
	if err != nil {
		return err
	}
	h.Register(s.Router)
	return nil
}

// Register adds the step to the service's router: features-built in,
// model-trained out.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStep(events.FeaturesBuilt, events.ModelTrained, h.Step)
}

// Object names in the bucket.
func ArtifactName(version string) string  { return "models/" + version + "/model.json" }
func RunArtifactName(runID string) string { return "runs/" + runID + "/model/model.json" }
func ProfileName(version string) string   { return "models/" + version + "/profile.json" }

const jsonType = "application/json"

// Step trains and evaluates a model on the run's features, writes its
// artifact and gates it against the current champion on the same holdout,
// with no transaction open; the complete transaction registers it (see
// registerIfChampionHeld). Its output is the model.trained payload.
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.FeaturesBuilt
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	in, err := h.readTraining(ctx, &p)
	if err != nil {
		return eventing.StepResult{}, err
	}
	version, err := h.version(p.GetSnapshotDate(), in.ds, in.fingerprint)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(err)
	}
	m, eval, yh, err := h.fit(in, version, ev.RunID)
	if err != nil {
		return eventing.StepResult{}, err
	}
	artifact, err := h.storeArtifact(ctx, m, ev.RunID)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := h.storeProfile(ctx, m, in.ds.Train); err != nil {
		return eventing.StepResult{}, err
	}
	g, err := h.gate(ctx, m, in.ds.Holdout, yh)
	if err != nil {
		return eventing.StepResult{}, err
	}
	g = h.shadowPolicy(g)
	logging.FromOr(ctx, h.log).InfoContext(ctx, "model trained", "version", version, "kind", m.Kind, "roc_auc", eval.ROCAUC,
		"champion", g.championVersion, "champion_roc_auc", g.championAUC, "promoted", g.promoted, "shadow", g.shadow, "reason", g.reason)
	res := h.result(&p, m, eval, g, len(artifact), len(in.ds.Holdout))
	res.Commit = func(ctx context.Context, tx pgx.Tx) error { return registerIfChampionHeld(ctx, tx, m, h.store, g) }
	return res, nil
}

// training is a run's training features, read and split.
type training struct {
	name        string
	data        []byte
	fingerprint string
	ds          Dataset
}

// readTraining reads and splits the training features p names.
func (h *Handler) readTraining(ctx context.Context, p *eventsv1.FeaturesBuilt) (training, error) {
	name := p.GetTraining().GetName()
	if name == "" {
		return training{}, eventing.Permanent(errors.New("features.built names no training object"))
	}
	data, err := h.store.Get(ctx, name)
	if errors.Is(err, objstore.ErrNotExist) {
		return training{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	if err != nil {
		return training{}, fmt.Errorf("read training features: %w", err)
	}
	rows, err := ReadRows(data)
	if err != nil {
		return training{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	ds, err := Split(rows, h.cfg.HoldoutFraction, h.cfg.LabelEmbargoDays)
	if err != nil {
		return training{}, eventing.Permanent(fmt.Errorf("training features %s: %w", h.store.URI(name), err))
	}
	sum := sha256.Sum256(data)
	return training{name: name, data: data, fingerprint: "sha256:" + hex.EncodeToString(sum[:]), ds: ds}, nil
}

// fit trains the model on in's training rows and evaluates it on the
// holdout; it returns the model (with its metrics and provenance), the
// evaluation and the holdout labels.
func (h *Handler) fit(in training, version, runID string) (*model.Model, model.Evaluation, []float64, error) {
	ds := in.ds
	X, y := Matrix(ds.Train)
	started := time.Now()
	m, err := model.Train(model.InputNames(), X, y, h.opts)
	trainSeconds := time.Since(started).Seconds()
	if errors.Is(err, model.ErrSingleClass) {
		return nil, model.Evaluation{}, nil, eventing.Permanent(fmt.Errorf(
			"cannot train: all %d training rows (snapshots %s…%s) have label %d",
			len(ds.Train), ds.TrainDates[0], ds.TrainDates[len(ds.TrainDates)-1], ds.Train[0].Label))
	}
	if err != nil {
		return nil, model.Evaluation{}, nil, eventing.Permanent(fmt.Errorf("train: %w", err))
	}
	Xh, yh := Matrix(ds.Holdout)
	ph, err := m.PredictAll(Xh)
	if err != nil {
		return nil, model.Evaluation{}, nil, fmt.Errorf("score holdout: %w", err)
	}
	eval, err := model.Evaluate(yh, ph)
	if errors.Is(err, model.ErrUndefined) {
		return nil, model.Evaluation{}, nil, eventing.Permanent(fmt.Errorf(
			"cannot evaluate: all %d holdout rows (snapshots %s) have label %d",
			len(ds.Holdout), strings.Join(ds.HoldoutDates, ", "), ds.Holdout[0].Label))
	}
	if err != nil {
		return nil, model.Evaluation{}, nil, eventing.Permanent(fmt.Errorf("evaluate: %w", err))
	}
	metrics := eval.Metrics()
	metrics["rows_train"] = float64(len(ds.Train))
	metrics["rows_holdout"] = float64(len(ds.Holdout))
	metrics["train_positives"] = float64(Positives(ds.Train))
	metrics["train_seconds"] = trainSeconds
	m.Version, m.RunID, m.CreatedAt = version, runID, h.now().UTC().Truncate(time.Millisecond)
	m.Metrics, m.Calibration = metrics, eval.Calibration
	m.Training = model.TrainingData{
		Fingerprint: in.fingerprint, Object: h.store.URI(in.name),
		Rows: len(ds.Train), Positives: Positives(ds.Train),
		TrainDates: ds.TrainDates, HoldoutDates: ds.HoldoutDates, HoldoutRows: len(ds.Holdout),
	}
	return m, eval, yh, nil
}

// storeArtifact writes the model's artifact: the run's copy first, the
// versioned one second; a redelivery (same data, same version) rewrites
// both.
func (h *Handler) storeArtifact(ctx context.Context, m *model.Model, runID string) ([]byte, error) {
	artifact, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode artifact: %w", err)
	}
	if err := h.store.Put(ctx, RunArtifactName(runID), jsonType, artifact); err != nil {
		return nil, err
	}
	if err := h.store.Put(ctx, ArtifactName(m.Version), jsonType, artifact); err != nil {
		return nil, err
	}
	return artifact, nil
}

// storeProfile writes m's training profile beside its artifact: the
// distribution of every input over the training rows, as the deployer
// builds the inputs at scoring (Model.Vector, before normalization), and of
// m's scores on them. The same model gives the same profile, so a redelivery
// rewrites it unchanged.
func (h *Handler) storeProfile(ctx context.Context, m *model.Model, train []features.Row) error {
	X, err := m.Vectors(train)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("profile: training rows: %w", err))
	}
	scores, err := m.PredictAll(X)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("profile: score training rows: %w", err))
	}
	p, err := monitor.NewProfile(m.Version, m.Features, X, scores, monitor.DefaultBins)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("profile: %w", err))
	}
	data, err := p.Marshal()
	if err != nil {
		return eventing.Permanent(err)
	}
	return h.store.Put(ctx, ProfileName(m.Version), jsonType, data)
}

// result is the step's output (model.trained), figures and summary.
func (h *Handler) result(p *eventsv1.FeaturesBuilt, m *model.Model, eval model.Evaluation, g gateResult, size, holdout int) eventing.StepResult {
	out := &eventsv1.ModelTrained{
		ModelVersion: m.Version,
		Artifact: &eventsv1.StoredObject{
			Name: ArtifactName(m.Version), Uri: h.store.URI(ArtifactName(m.Version)),
			Bytes: int64(size), ContentType: jsonType,
		},
		Metrics:         m.Metrics,
		Promoted:        g.promoted,
		ChampionVersion: g.championVersion,
		ChampionMetrics: g.championMetrics,
		GateReason:      g.reason,
		Scoring:         p.GetScoring(),
	}
	figures := map[string]float64{
		"roc_auc": eval.ROCAUC, "pr_auc": eval.PRAUC, "brier": eval.Brier, "ece": eval.ECE,
		"rows_train": m.Metrics["rows_train"], "rows_holdout": float64(holdout),
		"promoted": b2f(g.promoted), "shadow": b2f(g.shadow), "train_seconds": m.Metrics["train_seconds"],
	}
	if g.championVersion != "" && g.championMetrics != nil {
		figures["champion_roc_auc"] = g.championAUC
	}
	decision := "not promoted"
	switch {
	case g.promoted:
		decision = "promoted"
	case g.shadow:
		decision = "the shadow challenger"
	}
	return eventing.StepResult{
		Output:  out,
		Figures: figures,
		Summary: fmt.Sprintf("model %s (%s): holdout ROC AUC %.4f on %d rows; %s: %s",
			m.Version, m.Kind, eval.ROCAUC, holdout, decision, g.reason),
	}
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
