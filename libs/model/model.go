// Package model is cmmsflow's failure-risk classifier: the versioned JSON
// artifact the trainer writes and the deployer loads, the two learners that
// produce it (L2-regularised logistic regression fitted by Newton's method on
// standardised inputs, and gradient-boosted trees grown on quantile
// histograms), and the holdout metrics (ROC AUC, PR AUC, Brier score,
// calibration). Pure Go, no SDKs, deterministic: the same rows and options
// give the same model.
package model

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// FormatVersion is the artifact format this package writes. Load accepts it
// and refuses newer ones.
const FormatVersion = 1

// Kind names a learner.
type Kind string

// The learners.
const (
	Logistic Kind = "logistic" // L2 logistic regression on standardised inputs
	GBT      Kind = "gbt"      // gradient-boosted trees, histogram splits
)

// Model is the artifact: everything needed to score a feature vector, plus
// where it came from and how well it did.
type Model struct {
	FormatVersion int       `json:"format_version"`
	Kind          Kind      `json:"kind"`
	Version       string    `json:"version"`
	RunID         string    `json:"run_id"`
	CreatedAt     time.Time `json:"created_at"`
	// Features are the input names, in the order Predict expects them.
	Features []string `json:"features"`
	// Normalization holds the training mean and standard deviation of every
	// input. Predict replaces a missing (NaN or infinite) input with its mean;
	// the logistic model also standardises with them.
	Normalization Normalization   `json:"normalization"`
	LogisticModel *LogisticParams `json:"logistic,omitempty"`
	GBTModel      *GBTParams      `json:"gbt,omitempty"`
	// Metrics are the holdout figures (roc_auc, pr_auc, brier, ece, ...).
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	Calibration []CalibrationBin   `json:"calibration,omitempty"`
	Training    TrainingData       `json:"training"`
}

// Normalization is the per-input training mean and standard deviation.
type Normalization struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// TrainingData describes the data a model was fitted on.
type TrainingData struct {
	// Fingerprint is "sha256:<hex>" of the training object's bytes.
	Fingerprint string `json:"fingerprint"`
	Object      string `json:"object,omitempty"` // gs:// address of the training data
	Rows        int    `json:"rows"`
	Positives   int    `json:"positives"`
	// TrainDates and HoldoutDates are the snapshot dates on each side of the
	// time-based split.
	TrainDates   []string `json:"train_dates,omitempty"`
	HoldoutDates []string `json:"holdout_dates,omitempty"`
	HoldoutRows  int      `json:"holdout_rows"`
}

// Marshal encodes the artifact as indented JSON.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, "", "  ")
}

// Load decodes and validates an artifact.
func Load(data []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("model: decode artifact: %w", err)
	}
	if m.FormatVersion < 1 || m.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("model: unsupported artifact format version %d (this build reads 1..%d)", m.FormatVersion, FormatVersion)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Model) validate() error {
	n := len(m.Features)
	if n == 0 {
		return errors.New("model: artifact has no features")
	}
	if len(m.Normalization.Mean) != n || len(m.Normalization.Std) != n {
		return fmt.Errorf("model: normalization has %d means and %d stds for %d features",
			len(m.Normalization.Mean), len(m.Normalization.Std), n)
	}
	switch m.Kind {
	case Logistic:
		if m.LogisticModel == nil || len(m.LogisticModel.Weights) != n {
			return fmt.Errorf("model: logistic artifact needs %d weights", n)
		}
		for _, s := range m.Normalization.Std {
			if !(s > 0) {
				return errors.New("model: logistic artifact has a non-positive std")
			}
		}
	case GBT:
		if m.GBTModel == nil {
			return errors.New("model: gbt artifact has no trees")
		}
		for i, t := range m.GBTModel.Trees {
			if err := t.validate(n); err != nil {
				return fmt.Errorf("model: tree %d: %w", i, err)
			}
		}
	default:
		return fmt.Errorf("model: unknown kind %q", m.Kind)
	}
	return nil
}

// Predict returns the failure probability for x, whose values follow
// Features. A NaN or infinite value counts as missing and takes the training
// mean.
func (m *Model) Predict(x []float64) (float64, error) {
	if len(x) != len(m.Features) {
		return 0, fmt.Errorf("model: got %d inputs, want %d (%v)", len(x), len(m.Features), m.Features)
	}
	switch m.Kind {
	case Logistic:
		z := m.LogisticModel.Intercept
		for j, v := range x {
			v = m.impute(j, v)
			z += m.LogisticModel.Weights[j] * (v - m.Normalization.Mean[j]) / m.Normalization.Std[j]
		}
		return sigmoid(z), nil
	case GBT:
		z := m.GBTModel.BaseScore
		for i := range m.GBTModel.Trees {
			z += m.GBTModel.Trees[i].eval(func(j int) float64 { return m.impute(j, x[j]) })
		}
		return sigmoid(z), nil
	}
	return 0, fmt.Errorf("model: unknown kind %q", m.Kind)
}

// PredictAll scores every row of X.
func (m *Model) PredictAll(X [][]float64) ([]float64, error) {
	out := make([]float64, len(X))
	for i, x := range X {
		p, err := m.Predict(x)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

func (m *Model) impute(j int, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return m.Normalization.Mean[j]
	}
	return v
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Options configure Train. Zero values take the defaults.
type Options struct {
	Kind Kind // default GBT
	// Logistic: L2 penalty on the standardised weights (default 1.0, as
	// scikit-learn's C=1 with the penalty scaled to the row count).
	L2 float64
	// GBT.
	Rounds         int     // boosting rounds, default 150
	LearningRate   float64 // default 0.08
	MaxDepth       int     // default 4
	MinLeafRows    int     // default 20
	Lambda         float64 // L2 on leaf values, default 1
	MaxBins        int     // histogram bins per input, default 64 (at most 255)
	MinSplitGain   float64 // default 0
	Parallelism    int     // goroutines for histogram building; default GOMAXPROCS
	MaxNewtonSteps int     // logistic: default 50
}

func (o Options) withDefaults() Options {
	o.Kind = cmp.Or(o.Kind, GBT)
	o.L2 = cmp.Or(o.L2, 1)
	o.Rounds = cmp.Or(o.Rounds, 150)
	o.LearningRate = cmp.Or(o.LearningRate, 0.08)
	o.MaxDepth = cmp.Or(o.MaxDepth, 4)
	o.MinLeafRows = cmp.Or(o.MinLeafRows, 20)
	o.Lambda = cmp.Or(o.Lambda, 1)
	o.MaxBins = cmp.Or(o.MaxBins, 64)
	o.MaxBins = min(o.MaxBins, 255)
	o.MaxNewtonSteps = cmp.Or(o.MaxNewtonSteps, 50)
	return o
}

// ErrSingleClass is returned by Train when every label is the same.
var ErrSingleClass = errors.New("model: the training labels contain a single class")

// Train fits a model of o.Kind to the rows X (each in the order of features)
// and 0/1 labels y. The result has Features, Normalization and the learned
// parameters set; the caller fills Version, RunID, CreatedAt, Metrics and
// Training.
func Train(features []string, X [][]float64, y []float64, o Options) (*Model, error) {
	o = o.withDefaults()
	if len(features) == 0 {
		return nil, errors.New("model: no features")
	}
	if len(X) == 0 {
		return nil, errors.New("model: no training rows")
	}
	if len(X) != len(y) {
		return nil, fmt.Errorf("model: %d rows but %d labels", len(X), len(y))
	}
	pos := 0
	for i, x := range X {
		if len(x) != len(features) {
			return nil, fmt.Errorf("model: row %d has %d values, want %d", i, len(x), len(features))
		}
		switch y[i] {
		case 0:
		case 1:
			pos++
		default:
			return nil, fmt.Errorf("model: label of row %d is %v, want 0 or 1", i, y[i])
		}
	}
	if pos == 0 || pos == len(y) {
		return nil, ErrSingleClass
	}
	norm := normalization(X, len(features))
	Xi := imputed(X, norm)
	m := &Model{
		FormatVersion: FormatVersion,
		Kind:          o.Kind,
		Features:      append([]string(nil), features...),
		Normalization: norm,
	}
	switch o.Kind {
	case Logistic:
		p, err := trainLogistic(Xi, y, norm, o)
		if err != nil {
			return nil, err
		}
		m.LogisticModel = p
	case GBT:
		m.GBTModel = trainGBT(Xi, y, o)
	default:
		return nil, fmt.Errorf("model: unknown kind %q", o.Kind)
	}
	return m, nil
}

// normalization computes per-column mean and standard deviation over the
// finite values; a constant column gets std 1.
func normalization(X [][]float64, n int) Normalization {
	mean := make([]float64, n)
	std := make([]float64, n)
	for j := range n {
		var sum, sq float64
		cnt := 0
		for _, x := range X {
			v := x[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			sum += v
			cnt++
		}
		if cnt > 0 {
			mean[j] = sum / float64(cnt)
		}
		for _, x := range X {
			v := x[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			d := v - mean[j]
			sq += d * d
		}
		std[j] = 1
		if cnt > 1 {
			if s := math.Sqrt(sq / float64(cnt)); s > 1e-12 {
				std[j] = s
			}
		}
	}
	return Normalization{Mean: mean, Std: std}
}

// imputed returns X with non-finite values replaced by the column mean,
// copying only when needed.
func imputed(X [][]float64, norm Normalization) [][]float64 {
	out := X
	copied := false
	for i, x := range X {
		for j, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				if !copied {
					out = append([][]float64(nil), X...)
					copied = true
				}
				if &out[i][0] == &X[i][0] {
					out[i] = append([]float64(nil), x...)
				}
				out[i][j] = norm.Mean[j]
			}
		}
	}
	return out
}
