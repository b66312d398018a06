// Package local is the deployer's local engine: the predictor, mounted on
// the deployer's own HTTP server, serves the champion; deploying swaps the
// new model in atomically and scoring calls the same predictor in process.
package local

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// Engine is the local engine.
type Engine struct {
	pred     *predictor.Predictor
	endpoint string
}

// New returns an engine serving through pred; endpoint is the address
// reported for it (its predict URL, or its route when the address is not
// known).
func New(pred *predictor.Predictor, endpoint string) *Engine {
	if endpoint == "" {
		endpoint = pred.PredictRoute()
	}
	return &Engine{pred: pred, endpoint: endpoint}
}

// Mount registers the predictor's predict and health routes on mux.
func Mount(mux *http.ServeMux, pred *predictor.Predictor) {
	mux.Handle(pred.PredictRoute(), pred)
	mux.Handle(pred.HealthRoute(), pred)
}

// Name is engine.Local.
func (e *Engine) Name() string { return engine.Local }

// Predictor is the predictor the engine serves through.
func (e *Engine) Predictor() *predictor.Predictor { return e.pred }

// Deploy swaps m in as the served model.
func (e *Engine) Deploy(_ context.Context, m engine.Model) (engine.Deployment, error) {
	d := engine.Deployment{
		Engine: engine.Local, ModelVersion: m.Version(), Endpoint: e.endpoint, DeployedModelID: m.Version(),
	}
	if cur := e.pred.Current(); cur != nil && cur.Version() == m.Version() {
		return d, nil
	}
	prev := e.pred.Swap(m.Model, m.Version())
	d.New = true
	if prev != nil {
		d.Undeployed = []string{prev.DeployedModelID}
	}
	return d, nil
}

// Restore serves m after a restart without reporting a deployment.
func (e *Engine) Restore(ctx context.Context, m engine.Model) error {
	_, err := e.Deploy(ctx, m)
	return err
}

// Predict scores rows with the served model, which must be d's.
func (e *Engine) Predict(_ context.Context, d engine.Deployment, rows [][]float64) ([]float64, error) {
	cur := e.pred.Current()
	if cur == nil {
		return nil, predictor.ErrNoModel
	}
	if cur.Version() != d.ModelVersion {
		return nil, fmt.Errorf("local engine serves model %s, not %s (a concurrent deployment)", cur.Version(), d.ModelVersion)
	}
	return predictor.Score(cur.Model, rows)
}
