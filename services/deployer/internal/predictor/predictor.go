// Package predictor serves the failure-risk model over HTTP with the Vertex
// AI custom-container contract: POST {"instances": [...]} to the predict
// route answers {"predictions": [...]}, GET on the health route answers 200
// once a model is loaded. The same handler runs in the predictor image
// Vertex AI starts (cmd/predictor, configured by the AIP_* variables) and
// in the deployer itself, mounted on its mux, for the local engine.
//
// An instance is either an array of the model's inputs in the order of its
// feature list, or an object naming them: {"asset_age_days": 400, ...}. An
// object may give "vehicle_type": "truck" for the vehicle_type=* one-hot
// inputs, and may carry a feature row's identifying fields (asset_id,
// snapshot_date, label), which are ignored; so a feature row in its JSON
// form is a valid instance. Its vehicle type also picks the risk bands that
// level its probability (Options.Bands). A null value is a missing input: the model
// imputes the training mean. Anything else (wrong length, unknown or missing
// feature, non-numeric value) is a 400 naming the instance and the problem.
//
// The served model is swapped atomically (Swap): requests in flight finish
// on the model they started with.
package predictor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
)

// Defaults of Options.
const (
	DefaultPredictRoute = "/predict"
	DefaultHealthRoute  = "/health"
	DefaultMaxBody      = 8 << 20
	DefaultMaxInstances = 10_000
)

// Options configure a Predictor. Zero values take the defaults.
type Options struct {
	PredictRoute string // AIP_PREDICT_ROUTE
	HealthRoute  string // AIP_HEALTH_ROUTE
	MaxBody      int64  // request body limit in bytes
	MaxInstances int    // instances per request
	// Bands level the probabilities (monitor.DefaultBands when zero).
	Bands monitor.RiskBands
}

// Served is the model being served and the id it is deployed under.
type Served struct {
	Model           *model.Model
	DeployedModelID string
}

// Version is the served model's version.
func (s *Served) Version() string { return s.Model.Version }

// Predictor is the HTTP handler. The zero value is not usable; call New.
type Predictor struct {
	opts Options
	cur  atomic.Pointer[Served]
}

// New returns a predictor with no model: it answers 503 until Swap.
func New(o Options) *Predictor {
	if o.PredictRoute == "" {
		o.PredictRoute = DefaultPredictRoute
	}
	if o.HealthRoute == "" {
		o.HealthRoute = DefaultHealthRoute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances
	}
	if o.Bands.Default == (monitor.Bands{}) && len(o.Bands.ByVehicleType) == 0 {
		o.Bands = monitor.RiskBands{Default: monitor.DefaultBands}
	}
	return &Predictor{opts: o}
}

// PredictRoute and HealthRoute are the paths the predictor answers on.
func (p *Predictor) PredictRoute() string { return p.opts.PredictRoute }
func (p *Predictor) HealthRoute() string  { return p.opts.HealthRoute }

// Swap makes m the served model under deployedModelID (the model version
// when empty) and returns what was served before (nil at first).
func (p *Predictor) Swap(m *model.Model, deployedModelID string) *Served {
	if deployedModelID == "" {
		deployedModelID = m.Version
	}
	return p.cur.Swap(&Served{Model: m, DeployedModelID: deployedModelID})
}

// Current is the served model, or nil.
func (p *Predictor) Current() *Served { return p.cur.Load() }

// Prediction is one instance's result.
type Prediction struct {
	Probability float64 `json:"probability"`
	RiskLevel   string  `json:"risk_level"`
}

// Request is the body of a predict call.
type Request struct {
	Instances  []json.RawMessage `json:"instances"`
	Parameters json.RawMessage   `json:"parameters,omitempty"`
}

// Response is the body of a successful predict call. Vertex AI passes
// predictions through and sets deployedModelId itself; the local engine's
// callers read both fields from here.
type Response struct {
	Predictions     []Prediction `json:"predictions"`
	DeployedModelID string       `json:"deployedModelId"`
	ModelVersion    string       `json:"model_version"`
}

// ErrorResponse is the body of a failed call.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ErrNoModel is returned while no model is loaded.
var ErrNoModel = errors.New("predictor: no model loaded")

// ServeHTTP answers the predict and health routes.
func (p *Predictor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case p.opts.PredictRoute:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed: POST {\"instances\": [...]}")
			return
		}
		p.servePredict(w, r)
	case p.opts.HealthRoute:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		s := p.Current()
		if s == nil {
			writeError(w, http.StatusServiceUnavailable, ErrNoModel.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{
			"status": "ok", "model_version": s.Version(), "deployedModelId": s.DeployedModelID,
		})
	default:
		writeError(w, http.StatusNotFound, "not found: predict on "+p.opts.PredictRoute+", health on "+p.opts.HealthRoute)
	}
}

func (p *Predictor) servePredict(w http.ResponseWriter, r *http.Request) {
	s := p.Current()
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNoModel.Error())
		return
	}
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, p.opts.MaxBody))
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid request body: want {\"instances\": [...]}: "+err.Error())
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid request body: trailing data after the JSON object")
		return
	}
	if len(req.Instances) == 0 {
		writeError(w, http.StatusBadRequest, "no instances: want {\"instances\": [...]} with at least one instance")
		return
	}
	if len(req.Instances) > p.opts.MaxInstances {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%d instances: at most %d per request", len(req.Instances), p.opts.MaxInstances))
		return
	}
	X := make([][]float64, len(req.Instances))
	types := make([]string, len(req.Instances))
	for i, raw := range req.Instances {
		x, typ, err := Decode(s.Model, raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("instance %d: %v", i, err))
			return
		}
		X[i], types[i] = x, typ
	}
	probs, err := Score(s.Model, X)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	preds := make([]Prediction, len(probs))
	for i, pr := range probs {
		preds[i] = Prediction{Probability: pr, RiskLevel: p.opts.Bands.Level(pr, types[i])}
	}
	writeJSON(w, http.StatusOK, Response{Predictions: preds, DeployedModelID: s.DeployedModelID, ModelVersion: s.Version()})
}

// Score predicts the failure probability of every row of X (inputs in
// m.Features order).
func Score(m *model.Model, X [][]float64) ([]float64, error) {
	out := make([]float64, len(X))
	for i, x := range X {
		pr, err := m.Predict(x)
		if err != nil {
			return nil, fmt.Errorf("instance %d: %w", i, err)
		}
		out[i] = pr
	}
	return out, nil
}

// ignored are a feature row's fields that identify it rather than describe
// the asset.
var ignored = []string{"asset_id", "snapshot_date", "label"}

// Decode turns one JSON instance into m's input vector and the vehicle type
// it gives ("" for an array, or an object without one).
func Decode(m *model.Model, raw json.RawMessage) ([]float64, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, "", errors.New("empty instance")
	}
	switch raw[0] {
	case '[':
		x, err := decodeArray(m, raw)
		return x, "", err
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, "", fmt.Errorf("invalid object: %v", err)
		}
		return decodeObject(m, obj)
	default:
		return nil, "", errors.New("want an array of the model's inputs or an object of feature: value")
	}
}

func decodeArray(m *model.Model, raw json.RawMessage) ([]float64, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return nil, fmt.Errorf("invalid array: %v", err)
	}
	if len(vals) != len(m.Features) {
		return nil, fmt.Errorf("array of %d values, want %d in the order %s", len(vals), len(m.Features), strings.Join(m.Features, ", "))
	}
	x := make([]float64, len(vals))
	for j, v := range vals {
		f, err := number(v)
		if err != nil {
			return nil, fmt.Errorf("value %d (%s): %v", j, m.Features[j], err)
		}
		x[j] = f
	}
	return x, nil
}

// decodeObject decodes an object instance; the vehicle type is "" when it
// gives none (or null).
func decodeObject(m *model.Model, obj map[string]json.RawMessage) ([]float64, string, error) {
	x := make([]float64, len(m.Features))
	set := make([]bool, len(m.Features))
	index := make(map[string]int, len(m.Features))
	for j, f := range m.Features {
		index[f] = j
	}
	var unknown []string
	for k, v := range obj {
		if j, ok := index[k]; ok {
			f, err := number(v)
			if err != nil {
				return nil, "", fmt.Errorf("feature %q: %v", k, err)
			}
			x[j], set[j] = f, true
			continue
		}
		if k == "vehicle_type" || slices.Contains(ignored, k) {
			continue
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, "", fmt.Errorf("unknown feature(s) %s; the model's inputs are %s", strings.Join(unknown, ", "), strings.Join(m.Features, ", "))
	}
	var typ *string
	if v, ok := obj["vehicle_type"]; ok {
		if err := json.Unmarshal(v, &typ); err != nil {
			return nil, "", fmt.Errorf("feature \"vehicle_type\": want a string such as %q", features.VehicleTypes[0])
		}
		for j, f := range m.Features {
			cat, ok := strings.CutPrefix(f, model.VehicleTypePrefix)
			if !ok || set[j] {
				continue
			}
			switch {
			case typ == nil:
				x[j] = math.NaN()
			case *typ == cat:
				x[j] = 1
			}
			set[j] = true
		}
	}
	var missing []string
	for j, ok := range set {
		if !ok {
			missing = append(missing, m.Features[j])
		}
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("missing feature(s) %s (give null for an unknown value)", strings.Join(missing, ", "))
	}
	if typ == nil {
		return x, "", nil
	}
	return x, *typ, nil
}

// number decodes a JSON number; null is a missing value (NaN).
func number(v json.RawMessage) (float64, error) {
	var f *float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, fmt.Errorf("want a number or null, got %s", truncate(string(v), 40))
	}
	if f == nil {
		return math.NaN(), nil
	}
	return *f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}
