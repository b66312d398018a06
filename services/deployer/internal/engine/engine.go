// Package engine is the interface between the deployer's step and the two
// ways it serves the model: local (the predictor mounted on the deployer's
// own HTTP server) and vertex (a Vertex AI endpoint).
package engine

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/model"
)

// Names of the engines (DEPLOY_ENGINE).
const (
	Local  = "local"
	Vertex = "vertex"
)

// Model is a model to serve: its loaded artifact and where it is stored.
type Model struct {
	Model        *model.Model
	ArtifactName string // models/<version>/model.json in the bucket
	ArtifactURI  string // gs://bucket/models/<version>/model.json
}

// Version is the model's version.
func (m Model) Version() string { return m.Model.Version }

// Deployment is where a model is served.
type Deployment struct {
	Engine          string
	ModelVersion    string
	Endpoint        string // local: the predict URL or route; vertex: the endpoint resource name
	DeployedModelID string // vertex: the deployed model's id on the endpoint; local: the version
	ModelResource   string // vertex: the Model Registry resource name
	// New is false when the model was already being served (a redelivery,
	// or the champion kept by the gate) and nothing was deployed.
	New bool
	// Undeployed lists the deployed model ids taken off the endpoint.
	Undeployed []string
}

// Engine serves models and scores with them.
type Engine interface {
	// Name is the engine's name (Local or Vertex).
	Name() string
	// Deploy makes m the model the engine serves, taking every other model
	// out of service. It is idempotent: a model already served is left as
	// it is (Deployment.New false). Errors are transient unless wrapped
	// with eventing.Permanent.
	Deploy(ctx context.Context, m Model) (Deployment, error)
	// Predict scores rows (inputs in the deployed model's feature order)
	// with the deployment and returns one failure probability per row.
	Predict(ctx context.Context, d Deployment, rows [][]float64) ([]float64, error)
}
