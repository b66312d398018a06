// Package vertex is the deployer's Vertex AI engine. Deploying a model
// uploads it to the Vertex AI Model Registry with the predictor image as its
// custom container (the AIP_* contract of internal/predictor), deploys it to
// the configured endpoint beside the serving model without traffic, switches
// all the traffic to it in the call that undeploys the serving model, and
// undeploys every other model from that endpoint. Scoring calls the
// endpoint's Predict in batches.
//
// Deploy is idempotent, keyed by the model version: the registry model id
// (ModelID) and the deployed model id (DeployedModelID) are derived from the
// version, so a redelivered event finds the model already uploaded
// (ALREADY_EXISTS → GetModel) or already deployed (found on the endpoint) and
// does not add another. Long-running operations are waited for as the client
// library does (polling google.longrunning.Operations), bounded by the
// caller's context: if the handler's deadline passes first the error is
// transient, and the redelivery picks up where the last one stopped.
//
// A deploy that fails leaves the previous model serving: until the switch
// the new model has no traffic, and a permanent error before it undeploys
// the new model again (if that fails too, the error is transient, so the
// redelivery retries). Once the new model has all the traffic the deploy is
// done but for undeploying the others, and errors doing so are transient:
// the redelivery finishes the cleanup. Models stay in the registry (one per
// version), so deploying an earlier version again reuses its model.
//
// With a canary (CanaryPercent > 0) a new model is deployed beside the
// serving one with that share of the traffic instead of none, and checked
// with a few predictions through the endpoint before the switch: a failed or
// invalid prediction undeploys it again, its traffic back to the serving
// model, and the deploy fails for good.
package vertex

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// The predictor container's contract, set on every uploaded model. Vertex AI
// passes them to the container as AIP_HTTP_PORT, AIP_PREDICT_ROUTE and
// AIP_HEALTH_ROUTE, and the artifact folder as AIP_STORAGE_URI.
const (
	ContainerPort = 8080
	PredictRoute  = predictor.DefaultPredictRoute
	HealthRoute   = predictor.DefaultHealthRoute
)

// Config is the engine's configuration; the service embeds it in its own.
type Config struct {
	Project     string `env:"VERTEX_PROJECT"` // default (service wiring): GOOGLE_CLOUD_PROJECT
	Location    string `env:"VERTEX_LOCATION, default=us-central1"`
	APIEndpoint string `env:"VERTEX_API_ENDPOINT"` // default <location>-aiplatform.googleapis.com:443
	// Endpoint is the Vertex AI endpoint serving the champion: its id, or
	// its resource name projects/<p>/locations/<l>/endpoints/<id>.
	Endpoint       string `env:"VERTEX_ENDPOINT"`
	Image          string `env:"VERTEX_PREDICTOR_IMAGE"` // the predictor image (services/deployer/cmd/predictor)
	MachineType    string `env:"VERTEX_MACHINE_TYPE, default=n1-standard-2"`
	MinReplicas    int32  `env:"VERTEX_MIN_REPLICAS, default=1"`
	MaxReplicas    int32  `env:"VERTEX_MAX_REPLICAS, default=1"`
	ServiceAccount string `env:"VERTEX_SERVICE_ACCOUNT"` // the serving container's identity; empty: Vertex's default
	DisplayName    string `env:"VERTEX_MODEL_DISPLAY_NAME, default=cmmsflow-failure-risk"`
	PredictBatch   int    `env:"VERTEX_PREDICT_BATCH, default=200"` // instances per Predict call
	// CanaryPercent is the share of the traffic (0–99) a new model is
	// checked with before it gets all of it; 0 deploys it without traffic
	// and no check.
	CanaryPercent int32 `env:"VERTEX_CANARY_PERCENT, default=0"`
	// RiskBands is set on the serving container as its RISK_BANDS (set from
	// the deployer's RISK_BANDS); "" leaves the container's default bands.
	RiskBands string
}

func (c Config) withDefaults() Config {
	if c.Location == "" {
		c.Location = "us-central1"
	}
	if c.APIEndpoint == "" {
		c.APIEndpoint = c.Location + "-aiplatform.googleapis.com:443"
	}
	if c.MachineType == "" {
		c.MachineType = "n1-standard-2"
	}
	if c.MinReplicas == 0 {
		c.MinReplicas = 1
	}
	if c.MaxReplicas == 0 {
		c.MaxReplicas = c.MinReplicas
	}
	if c.DisplayName == "" {
		c.DisplayName = "cmmsflow-failure-risk"
	}
	if c.PredictBatch <= 0 {
		c.PredictBatch = 200
	}
	if c.Endpoint != "" && !strings.Contains(c.Endpoint, "/") {
		c.Endpoint = c.Parent() + "/endpoints/" + c.Endpoint
	}
	return c
}

// Parent is projects/<project>/locations/<location>.
func (c Config) Parent() string { return "projects/" + c.Project + "/locations/" + c.Location }

// Validate names the first missing or invalid setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Project == "":
		return errors.New("vertex: VERTEX_PROJECT (or GOOGLE_CLOUD_PROJECT) is required")
	case c.Endpoint == "":
		return errors.New("vertex: VERTEX_ENDPOINT is required (the endpoint id or resource name)")
	case !endpointName.MatchString(c.Endpoint):
		return fmt.Errorf("vertex: VERTEX_ENDPOINT %q: want an id or projects/<p>/locations/<l>/endpoints/<id>", c.Endpoint)
	case c.Image == "":
		return errors.New("vertex: VERTEX_PREDICTOR_IMAGE is required (the predictor image URI)")
	case c.MinReplicas < 1 || c.MaxReplicas < c.MinReplicas:
		return fmt.Errorf("vertex: replicas min %d max %d: want 1 ≤ min ≤ max", c.MinReplicas, c.MaxReplicas)
	case c.CanaryPercent < 0 || c.CanaryPercent > 99:
		return fmt.Errorf("vertex: VERTEX_CANARY_PERCENT %d: want 0 (off) to 99", c.CanaryPercent)
	}
	return nil
}

var endpointName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/endpoints/[^/]+$`)

// Engine is the Vertex AI engine.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	models     *aiplatform.ModelClient
	endpoints  *aiplatform.EndpointClient
	prediction *aiplatform.PredictionClient
}

// New validates cfg and opens the clients. opts come after the endpoint
// option: tests point the clients at a fake with option.WithEndpoint,
// option.WithoutAuthentication and an insecure gRPC dial option.
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...option.ClientOption) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = append([]option.ClientOption{option.WithEndpoint(cfg.APIEndpoint)}, opts...)
	e := &Engine{cfg: cfg, log: log}
	var err error
	if e.models, err = aiplatform.NewModelClient(ctx, opts...); err != nil {
		return nil, fmt.Errorf("vertex: model client: %w", err)
	}
	if e.endpoints, err = aiplatform.NewEndpointClient(ctx, opts...); err != nil {
		_ = e.models.Close()
		return nil, fmt.Errorf("vertex: endpoint client: %w", err)
	}
	if e.prediction, err = aiplatform.NewPredictionClient(ctx, opts...); err != nil {
		_ = e.models.Close()
		_ = e.endpoints.Close()
		return nil, fmt.Errorf("vertex: prediction client: %w", err)
	}
	return e, nil
}

// Close closes the clients.
func (e *Engine) Close() error {
	return errors.Join(e.models.Close(), e.endpoints.Close(), e.prediction.Close())
}

// Name is engine.Vertex.
func (e *Engine) Name() string { return engine.Vertex }

// Endpoint is the endpoint's resource name.
func (e *Engine) Endpoint() string { return e.cfg.Endpoint }

// ModelID is the Model Registry id of a model version: lower case,
// [a-z0-9_-], starting with a letter, at most 63 characters.
func ModelID(version string) string {
	var b strings.Builder
	b.WriteString("cmmsflow-")
	for _, r := range strings.ToLower(version) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 63 {
		h := fnv.New32a()
		h.Write([]byte(version))
		s = fmt.Sprintf("%s-%08x", s[:54], h.Sum32())
	}
	return s
}

// DeployedModelID is the id a model version is deployed under on the
// endpoint: ten digits (Vertex allows 1–10), derived from the version.
func DeployedModelID(version string) string {
	h := fnv.New64a()
	h.Write([]byte(version))
	return fmt.Sprintf("%d", 1_000_000_000+h.Sum64()%9_000_000_000)
}

// Deploy uploads m (unless already uploaded), deploys it to the endpoint
// without traffic or with the canary's share (unless already deployed),
// checks the canary, then gives it all the traffic while undeploying the
// model that had it, and undeploys every other model.
// When it fails the previous model keeps serving (see the package comment).
func (e *Engine) Deploy(ctx context.Context, m engine.Model) (engine.Deployment, error) {
	version := m.Version()
	d := engine.Deployment{
		Engine: engine.Vertex, ModelVersion: version, Endpoint: e.cfg.Endpoint, DeployedModelID: DeployedModelID(version),
	}
	ep, err := e.endpoints.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: e.cfg.Endpoint})
	if err != nil {
		return d, classify(fmt.Errorf("vertex: get endpoint %s: %w", e.cfg.Endpoint, err))
	}
	if dm := find(ep, d.DeployedModelID); dm != nil {
		d.ModelResource = dm.GetModel()
		if len(ep.GetDeployedModels()) == 1 && ep.GetTrafficSplit()[d.DeployedModelID] == 100 {
			return d, nil // already serving it alone
		}
	} else {
		if d.ModelResource, err = e.upload(ctx, m); err != nil {
			return d, err
		}
		if err := e.deploy(ctx, d, ep); err != nil {
			return d, e.rollback(ctx, d, err)
		}
		d.New = true
		logging.FromOr(ctx, e.log).InfoContext(ctx, "vertex: model deployed", "version", version, "model", d.ModelResource,
			"endpoint", e.cfg.Endpoint, "deployed_model_id", d.DeployedModelID)
		if ep, err = e.endpoints.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: e.cfg.Endpoint}); err != nil {
			return d, e.rollback(ctx, d, classify(fmt.Errorf("vertex: get endpoint %s: %w", e.cfg.Endpoint, err)))
		}
	}
	if err := e.canary(ctx, m, d, ep); err != nil {
		return d, err
	}
	if err := e.switchTo(ctx, &d, ep); err != nil {
		return d, e.rollback(ctx, d, err)
	}
	return d, nil
}

// switchTo undeploys every model of ep but d's: first those with traffic —
// the first of them in the call that gives d all the traffic, unless d has
// it already — then the others. Once d has all the traffic, errors are
// transient: d serves, and the redelivery undeploys what is left.
func (e *Engine) switchTo(ctx context.Context, d *engine.Deployment, ep *aiplatformpb.Endpoint) error {
	split := ep.GetTrafficSplit()
	serving := split[d.DeployedModelID] == 100
	var others []*aiplatformpb.DeployedModel
	for _, dm := range ep.GetDeployedModels() {
		if dm.GetId() != d.DeployedModelID {
			others = append(others, dm)
		}
	}
	slices.SortStableFunc(others, func(a, b *aiplatformpb.DeployedModel) int {
		return cmp.Compare(split[b.GetId()], split[a.GetId()]) // most traffic first
	})
	verify := false
	for _, old := range others {
		req := &aiplatformpb.UndeployModelRequest{Endpoint: e.cfg.Endpoint, DeployedModelId: old.GetId()}
		switching := !serving && split[old.GetId()] > 0
		if switching {
			req.TrafficSplit = map[string]int32{d.DeployedModelID: 100}
		}
		op, err := e.endpoints.UndeployModel(ctx, req)
		if err == nil {
			_, err = op.Wait(ctx)
		}
		if status.Code(err) == codes.NotFound {
			// Undeployed meanwhile: whether its traffic went to d is unknown.
			verify, switching, err = verify || switching, false, nil
		}
		if err != nil {
			what := fmt.Sprintf("undeploy %s (%s) from %s", old.GetId(), old.GetDisplayName(), e.cfg.Endpoint)
			if serving {
				return fmt.Errorf("vertex: %s serves all the traffic, but %s failed (retrying): %w", d.ModelVersion, what, err)
			}
			return classify(fmt.Errorf("vertex: %s: %w", what, err))
		}
		serving = serving || switching
		d.Undeployed = append(d.Undeployed, old.GetId())
		logging.FromOr(ctx, e.log).InfoContext(ctx, "vertex: previous model undeployed", "deployed_model_id", old.GetId(), "model", old.GetModel(),
			"traffic_to", d.DeployedModelID, "switch", switching)
	}
	if serving && !verify {
		return nil
	}
	ep, err := e.endpoints.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: e.cfg.Endpoint})
	if err != nil {
		return fmt.Errorf("vertex: get endpoint %s: %w", e.cfg.Endpoint, err)
	}
	if len(ep.GetDeployedModels()) != 1 || ep.GetTrafficSplit()[d.DeployedModelID] != 100 {
		return fmt.Errorf("vertex: %s does not serve all the traffic of %s yet (traffic %v)", d.ModelVersion, e.cfg.Endpoint, ep.GetTrafficSplit())
	}
	return nil
}

// rollback handles a failed deploy of d: when err is permanent and d is
// deployed without traffic (the switch not made), it undeploys d so the
// failure leaves the endpoint as the deploy found it. If that fails, or d
// already has traffic, the error is transient: the redelivery retries the
// deploy (and, failing again, the rollback).
func (e *Engine) rollback(ctx context.Context, d engine.Deployment, err error) error {
	if !eventing.IsPermanent(err) {
		return err
	}
	ep, gerr := e.endpoints.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: e.cfg.Endpoint})
	if gerr != nil {
		return fmt.Errorf("%v; rolling back: get endpoint %s (retrying): %w", err, e.cfg.Endpoint, gerr)
	}
	if find(ep, d.DeployedModelID) == nil {
		return err // nothing deployed
	}
	if pct := ep.GetTrafficSplit()[d.DeployedModelID]; pct > 0 {
		return fmt.Errorf("%v; %s already has %d%% of the traffic of %s (retrying)", err, d.ModelVersion, pct, e.cfg.Endpoint)
	}
	op, uerr := e.endpoints.UndeployModel(ctx, &aiplatformpb.UndeployModelRequest{Endpoint: e.cfg.Endpoint, DeployedModelId: d.DeployedModelID})
	if uerr == nil {
		_, uerr = op.Wait(ctx)
	}
	if uerr != nil && status.Code(uerr) != codes.NotFound {
		return fmt.Errorf("%v; rolling back: undeploy %s from %s (retrying): %w", err, d.DeployedModelID, e.cfg.Endpoint, uerr)
	}
	logging.FromOr(ctx, e.log).WarnContext(ctx, "vertex: deploy failed, new model undeployed; the previous model serves", "version", d.ModelVersion,
		"deployed_model_id", d.DeployedModelID, "error", err)
	return fmt.Errorf("%w (rolled back: %s undeployed from %s)", err, d.DeployedModelID, e.cfg.Endpoint)
}

func find(ep *aiplatformpb.Endpoint, id string) *aiplatformpb.DeployedModel {
	for _, dm := range ep.GetDeployedModels() {
		if dm.GetId() == id {
			return dm
		}
	}
	return nil
}

// upload registers m with the predictor container and returns the model's
// resource name.
func (e *Engine) upload(ctx context.Context, m engine.Model) (string, error) {
	version := m.Version()
	bucket, _, err := predictor.ParseStorageURI(m.ArtifactURI)
	if err != nil {
		return "", eventing.Permanent(err)
	}
	id := ModelID(version)
	req := &aiplatformpb.UploadModelRequest{
		Parent:  e.cfg.Parent(),
		ModelId: id,
		Model: &aiplatformpb.Model{
			DisplayName: e.cfg.DisplayName + "-" + version,
			Description: fmt.Sprintf("cmmsflow failure-risk model %s (%s), trained in run %s", version, m.Model.Kind, m.Model.RunID),
			Labels:      map[string]string{"app": "cmmsflow", "model_version": strings.TrimPrefix(id, "cmmsflow-")},
			ArtifactUri: predictor.FolderURI(bucket, m.ArtifactName),
			ContainerSpec: &aiplatformpb.ModelContainerSpec{
				ImageUri:     e.cfg.Image,
				Env:          e.containerEnv(),
				Ports:        []*aiplatformpb.Port{{ContainerPort: ContainerPort}},
				PredictRoute: PredictRoute,
				HealthRoute:  HealthRoute,
			},
		},
	}
	name := e.cfg.Parent() + "/models/" + id
	op, err := e.models.UploadModel(ctx, req)
	if err == nil {
		var resp *aiplatformpb.UploadModelResponse
		if resp, err = op.Wait(ctx); err == nil {
			logging.FromOr(ctx, e.log).InfoContext(ctx, "vertex: model uploaded", "version", version, "model", resp.GetModel())
			return resp.GetModel(), nil
		}
	}
	if status.Code(err) != codes.AlreadyExists {
		return "", classify(fmt.Errorf("vertex: upload model %s: %w", version, err))
	}
	got, err := e.models.GetModel(ctx, &aiplatformpb.GetModelRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		// ALREADY_EXISTS but not found: an earlier delivery's upload is
		// still running.
		return "", fmt.Errorf("vertex: upload of model %s is still in progress: %w", name, err)
	}
	if err != nil {
		return "", classify(fmt.Errorf("vertex: get model %s: %w", name, err))
	}
	return got.GetName(), nil
}

// deploy deploys the uploaded model under d.DeployedModelID ("0" in the
// traffic split) beside the models of ep, without traffic or with the
// canary's share (deploySplit): the serving model keeps serving until
// switchTo. On an empty endpoint it gets all the traffic.
func (e *Engine) deploy(ctx context.Context, d engine.Deployment, ep *aiplatformpb.Endpoint) error {
	split := e.deploySplit(ep)
	dm := &aiplatformpb.DeployedModel{
		Id:          d.DeployedModelID,
		Model:       d.ModelResource,
		DisplayName: e.cfg.DisplayName + "-" + d.ModelVersion,
		PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{DedicatedResources: &aiplatformpb.DedicatedResources{
			MachineSpec:     &aiplatformpb.MachineSpec{MachineType: e.cfg.MachineType},
			MinReplicaCount: e.cfg.MinReplicas,
			MaxReplicaCount: e.cfg.MaxReplicas,
		}},
		ServiceAccount: e.cfg.ServiceAccount,
	}
	op, err := e.endpoints.DeployModel(ctx, &aiplatformpb.DeployModelRequest{
		Endpoint:      e.cfg.Endpoint,
		DeployedModel: dm,
		TrafficSplit:  split,
	})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if status.Code(err) == codes.AlreadyExists {
		// Deployed, or being deployed, by an earlier delivery.
		ep, gerr := e.endpoints.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: e.cfg.Endpoint})
		if gerr == nil && find(ep, d.DeployedModelID) != nil {
			return nil
		}
		return fmt.Errorf("vertex: deployment %s of %s to %s is still in progress: %w", d.DeployedModelID, d.ModelVersion, e.cfg.Endpoint, err)
	}
	if err != nil {
		return classify(fmt.Errorf("vertex: deploy %s to %s: %w", d.ModelVersion, e.cfg.Endpoint, err))
	}
	return nil
}

// Predict scores rows through the endpoint, PredictBatch instances per call.
// Each instance is the array of the model's inputs; a missing value is null.
func (e *Engine) Predict(ctx context.Context, d engine.Deployment, rows [][]float64) ([]float64, error) {
	out := make([]float64, 0, len(rows))
	for start := 0; start < len(rows); start += e.cfg.PredictBatch {
		batch := rows[start:min(start+e.cfg.PredictBatch, len(rows))]
		instances := make([]*structpb.Value, len(batch))
		for i, x := range batch {
			vals := make([]*structpb.Value, len(x))
			for j, v := range x {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					vals[j] = structpb.NewNullValue()
				} else {
					vals[j] = structpb.NewNumberValue(v)
				}
			}
			instances[i] = structpb.NewListValue(&structpb.ListValue{Values: vals})
		}
		resp, err := e.prediction.Predict(ctx, &aiplatformpb.PredictRequest{Endpoint: d.Endpoint, Instances: instances})
		if err != nil {
			return nil, classify(fmt.Errorf("vertex: predict on %s (rows %d–%d): %w", d.Endpoint, start, start+len(batch)-1, err))
		}
		if id := resp.GetDeployedModelId(); id != "" && id != d.DeployedModelID {
			return nil, fmt.Errorf("vertex: endpoint %s answered with deployed model %s, want %s (%s)", d.Endpoint, id, d.DeployedModelID, d.ModelVersion)
		}
		if len(resp.GetPredictions()) != len(batch) {
			return nil, fmt.Errorf("vertex: endpoint %s returned %d predictions for %d instances", d.Endpoint, len(resp.GetPredictions()), len(batch))
		}
		for i, p := range resp.GetPredictions() {
			prob, err := probability(p)
			if err != nil {
				return nil, fmt.Errorf("vertex: prediction %d: %w", start+i, err)
			}
			out = append(out, prob)
		}
	}
	return out, nil
}

// probability reads {"probability": p, ...} (or a bare number).
func probability(v *structpb.Value) (float64, error) {
	var p float64
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		p = k.NumberValue
	case *structpb.Value_StructValue:
		f, ok := k.StructValue.GetFields()["probability"]
		if _, isNum := f.GetKind().(*structpb.Value_NumberValue); !ok || !isNum {
			return 0, fmt.Errorf("no numeric probability in %v", v)
		}
		p = f.GetNumberValue()
	default:
		return 0, fmt.Errorf("want an object with a probability, got %v", v)
	}
	if !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("probability %v is outside [0, 1]", p)
	}
	return p, nil
}

// classify makes errors no retry can fix permanent: a missing endpoint or
// model, an invalid request.
func classify(err error) error {
	switch status.Code(err) { // status.Code unwraps
	case codes.NotFound, codes.InvalidArgument:
		return eventing.Permanent(err)
	}
	return err
}

// containerEnv is the serving container's environment.
func (e *Engine) containerEnv() []*aiplatformpb.EnvVar {
	env := []*aiplatformpb.EnvVar{{Name: "LOG_FORMAT", Value: "json"}}
	if e.cfg.RiskBands != "" {
		env = append(env, &aiplatformpb.EnvVar{Name: "RISK_BANDS", Value: e.cfg.RiskBands})
	}
	return env
}
