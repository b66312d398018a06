package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

func TestLogisticKnownAnswer(t *testing.T) {
	// One binary input: x=0 has 1 positive in 4, x=1 has 3 in 4. The
	// unpenalised maximum-likelihood fit predicts exactly those rates.
	X := [][]float64{{0}, {0}, {0}, {0}, {1}, {1}, {1}, {1}}
	y := []float64{1, 0, 0, 0, 1, 1, 1, 0}
	m, err := Train([]string{"x"}, X, y, Options{Kind: Logistic, L2: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ x, want float64 }{{0, 0.25}, {1, 0.75}} {
		got, err := m.Predict([]float64{tc.x})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("Predict(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	// In raw units the slope is logit(.75) − logit(.25) = 2·ln 3; stored on
	// the standardised input (std .5) it is half that.
	if w := m.LogisticModel.Weights[0]; math.Abs(w-math.Log(3)) > 1e-5 {
		t.Errorf("weight = %v, want ln 3 = %v", w, math.Log(3))
	}
	// A strong penalty shrinks the weight towards zero, predictions to the base rate.
	m2, err := Train([]string{"x"}, X, y, Options{Kind: Logistic, L2: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m2.Predict([]float64{1}); math.Abs(p-0.5) > 1e-3 {
		t.Errorf("heavily penalised Predict(1) = %v, want ≈ 0.5", p)
	}
}

func TestGBTStumpKnownAnswer(t *testing.T) {
	// x = 0..99, y = x ≥ 50. One depth-1 tree with learning rate 1 from the
	// base score 0 (balanced): p = .5, g = .5 − y, h = .25. The split is at
	// 49.5; the left leaf has G = 50·.5, H = 50·.25, so its value is
	// −25/(12.5+λ), the right leaf +25/(12.5+λ).
	var X [][]float64
	var y []float64
	for i := range 100 {
		X = append(X, []float64{float64(i), float64(i % 7)})
		y = append(y, b2f(i >= 50))
	}
	m, err := Train([]string{"x", "noise"}, X, y, Options{Kind: GBT, Rounds: 1, MaxDepth: 1, LearningRate: 1, Lambda: 1, MaxBins: 255})
	if err != nil {
		t.Fatal(err)
	}
	tr := m.GBTModel.Trees[0]
	if len(tr.Nodes) != 3 || tr.Nodes[0].Feature != 0 || tr.Nodes[0].Threshold != 49.5 {
		t.Fatalf("tree = %+v, want one split on x at 49.5", tr)
	}
	want := 25 / 13.5
	if l, r := tr.Nodes[tr.Nodes[0].Left].Value, tr.Nodes[tr.Nodes[0].Right].Value; math.Abs(l+want) > 1e-12 || math.Abs(r-want) > 1e-12 {
		t.Errorf("leaves = %v, %v; want ∓%v", l, r, want)
	}
	if m.GBTModel.BaseScore != 0 {
		t.Errorf("base score = %v, want 0", m.GBTModel.BaseScore)
	}
	if p, _ := m.Predict([]float64{80, 3}); math.Abs(p-sigmoid(want)) > 1e-12 {
		t.Errorf("Predict = %v, want %v", p, sigmoid(want))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// synthetic draws rows whose true log-odds are −1 + 2·a − 1.5·b + 3·[c > .7]
// (an interaction-free signal with one step), plus an irrelevant input.
func synthetic(n int, seed uint64) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	X := make([][]float64, n)
	y := make([]float64, n)
	for i := range n {
		a, b, c, noise := rng.NormFloat64(), rng.NormFloat64(), rng.Float64(), rng.NormFloat64()*100
		z := -1 + 2*a - 1.5*b + 3*b2f(c > 0.7)
		X[i] = []float64{a, b, c, noise}
		y[i] = b2f(rng.Float64() < sigmoid(z))
	}
	return X, y
}

func TestLearnersRecoverSignal(t *testing.T) {
	X, y := synthetic(6000, 1)
	Xt, yt := synthetic(3000, 2)
	names := []string{"a", "b", "c", "noise"}
	// The Bayes-optimal AUC, scoring with the true log-odds.
	truth := make([]float64, len(Xt))
	for i, x := range Xt {
		truth[i] = -1 + 2*x[0] - 1.5*x[1] + 3*b2f(x[2] > 0.7)
	}
	best, _ := ROCAUC(yt, truth)
	for _, tc := range []struct {
		kind Kind
		gap  float64
	}{{Logistic, 0.03}, {GBT, 0.02}} {
		t.Run(string(tc.kind), func(t *testing.T) {
			m, err := Train(names, X, y, Options{Kind: tc.kind})
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.PredictAll(Xt)
			if err != nil {
				t.Fatal(err)
			}
			auc, _ := ROCAUC(yt, p)
			if auc < best-tc.gap {
				t.Errorf("AUC = %.4f, Bayes-optimal %.4f: more than %.2f below", auc, best, tc.gap)
			}
			// Deterministic: the same data gives the same model.
			m2, _ := Train(names, X, y, Options{Kind: tc.kind})
			a, _ := m.Marshal()
			b, _ := m2.Marshal()
			if string(a) != string(b) {
				t.Error("training twice on the same data gave different artifacts")
			}
		})
	}
}

func TestLogisticSigns(t *testing.T) {
	X, y := synthetic(4000, 3)
	m, err := Train([]string{"a", "b", "c", "noise"}, X, y, Options{Kind: Logistic})
	if err != nil {
		t.Fatal(err)
	}
	w := m.LogisticModel.Weights
	if w[0] <= 0 || w[1] >= 0 || w[2] <= 0 || math.Abs(w[3]) > 0.15 {
		t.Errorf("weights = %v, want a > 0, b < 0, c > 0, noise ≈ 0", w)
	}
}

func TestMarshalLoadRoundTrip(t *testing.T) {
	X, y := synthetic(1500, 4)
	for _, kind := range []Kind{Logistic, GBT} {
		t.Run(string(kind), func(t *testing.T) {
			m, err := Train([]string{"a", "b", "c", "noise"}, X, y, Options{Kind: kind, Rounds: 20})
			if err != nil {
				t.Fatal(err)
			}
			m.Version, m.RunID = "v20250101-abc", "run-1"
			m.CreatedAt = time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
			m.Metrics = map[string]float64{"roc_auc": 0.8}
			m.Training = TrainingData{Fingerprint: "sha256:00", Rows: len(X)}
			data, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Load(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != m.Version || got.Kind != kind || got.Metrics["roc_auc"] != 0.8 || !got.CreatedAt.Equal(m.CreatedAt) {
				t.Errorf("loaded %+v", got)
			}
			for _, x := range X[:50] {
				a, _ := m.Predict(x)
				b, _ := got.Predict(x)
				if a != b {
					t.Fatalf("prediction changed through JSON: %v → %v", a, b)
				}
			}
		})
	}
}

func TestPredictImputesMissing(t *testing.T) {
	X, y := synthetic(1000, 5)
	X[3][1] = math.NaN() // missing values in training are imputed too
	for _, kind := range []Kind{Logistic, GBT} {
		m, err := Train([]string{"a", "b", "c", "noise"}, X, y, Options{Kind: kind, Rounds: 10})
		if err != nil {
			t.Fatal(err)
		}
		mean := m.Normalization.Mean
		withNaN, err := m.Predict([]float64{math.NaN(), 1, math.Inf(1), 0})
		if err != nil {
			t.Fatal(err)
		}
		withMean, _ := m.Predict([]float64{mean[0], 1, mean[2], 0})
		if withNaN != withMean {
			t.Errorf("%s: NaN input → %v, mean input → %v", kind, withNaN, withMean)
		}
		if _, err := m.Predict([]float64{1, 2}); err == nil {
			t.Errorf("%s: short input accepted", kind)
		}
	}
}

func TestTrainRejects(t *testing.T) {
	names := []string{"x"}
	tests := []struct {
		name string
		X    [][]float64
		y    []float64
		is   error
		msg  string
	}{
		{"single class", [][]float64{{1}, {2}}, []float64{1, 1}, ErrSingleClass, ""},
		{"no rows", nil, nil, nil, "no training rows"},
		{"label", [][]float64{{1}, {2}}, []float64{1, 3}, nil, "want 0 or 1"},
		{"width", [][]float64{{1}, {2, 3}}, []float64{1, 0}, nil, "has 2 values"},
		{"lengths", [][]float64{{1}, {2}}, []float64{1}, nil, "2 rows but 1 labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Train(names, tt.X, tt.y, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
		})
	}
	if _, err := Train(names, [][]float64{{1}, {2}}, []float64{1, 0}, Options{Kind: "forest"}); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct{ name, json, msg string }{
		{"not json", `{`, "decode"},
		{"future format", `{"format_version": 99, "kind": "gbt"}`, "format version 99"},
		{"no features", `{"format_version": 1, "kind": "gbt", "gbt": {"trees": []}}`, "no features"},
		{"unknown kind", `{"format_version": 1, "kind": "svm", "features": ["a"], "normalization": {"mean": [0], "std": [1]}}`, "unknown kind"},
		{"weights", `{"format_version": 1, "kind": "logistic", "features": ["a"], "normalization": {"mean": [0], "std": [1]}, "logistic": {"weights": [1, 2]}}`, "needs 1 weights"},
		{"normalization", `{"format_version": 1, "kind": "logistic", "features": ["a"], "normalization": {"mean": [], "std": [1]}, "logistic": {"weights": [1]}}`, "normalization"},
		{"tree loop", `{"format_version": 1, "kind": "gbt", "features": ["a"], "normalization": {"mean": [0], "std": [1]},
			"gbt": {"trees": [{"nodes": [{"f": 0, "t": 1, "l": 0, "r": 0}]}]}}`, "out of order"},
		{"tree input", `{"format_version": 1, "kind": "gbt", "features": ["a"], "normalization": {"mean": [0], "std": [1]},
			"gbt": {"trees": [{"nodes": [{"f": 3, "t": 1, "l": 1, "r": 2}, {"f": -1}, {"f": -1}]}]}}`, "input 3 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestVectorByName(t *testing.T) {
	r := features.Row{AssetID: 1, VehicleType: "bus", AssetAgeDays: 400, MissedMaintenance: 2, HighPriorityRatio: 0.5}
	in := Inputs(r)
	names := InputNames()
	if len(in) != len(names) || len(names) != len(features.Numeric)+len(features.VehicleTypes) {
		t.Fatalf("%d inputs, %d names", len(in), len(names))
	}
	// A model with its own input order and a subset of the inputs.
	m := &Model{Version: "v1", Features: []string{"vehicle_type=bus", "missed_maintenance", "asset_age_days"}}
	got, err := m.Vector(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 2, 400}; !slices.Equal(got, want) {
		t.Errorf("Vector = %v, want %v", got, want)
	}
	m.Features = append(m.Features, "tyre_pressure")
	if _, err := m.Vector(r); err == nil || !strings.Contains(err.Error(), "tyre_pressure") {
		t.Errorf("unknown input: err = %v", err)
	}
}

// Vectors is Vector of each row, by name, in one allocation that no row's
// vector can grow into its neighbour's.
func TestVectorsByName(t *testing.T) {
	rows := []features.Row{
		{AssetID: 1, VehicleType: "bus", AssetAgeDays: 400, MissedMaintenance: 2},
		{AssetID: 2, VehicleType: "van", AssetAgeDays: 10, EngineHours: 7.5},
		{AssetID: 3, VehicleType: "unknown", AssetAgeDays: 3},
	}
	m := &Model{Version: "v1", Features: []string{"vehicle_type=bus", "engine_hours", "asset_age_days", "vehicle_type=van"}}
	X, err := m.Vectors(rows)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{1, 0, 400, 0}, {0, 7.5, 10, 1}, {0, 0, 3, 0}}
	for i := range rows {
		one, err := m.Vector(rows[i])
		if err != nil || !slices.Equal(X[i], want[i]) || !slices.Equal(one, want[i]) {
			t.Errorf("row %d: Vectors %v, Vector %v (%v), want %v", i, X[i], one, err, want[i])
		}
	}
	X[0] = append(X[0], 99)
	if X[1][0] != 0 {
		t.Errorf("appending to row 0 wrote row 1: %v", X[1])
	}
	m.Features = append(m.Features, "tyre_pressure")
	if _, err := m.Vectors(rows); err == nil || !strings.Contains(err.Error(), "tyre_pressure") {
		t.Errorf("unknown input: err = %v", err)
	}
}
