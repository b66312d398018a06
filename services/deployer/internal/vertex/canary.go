package vertex

import (
	"context"
	"fmt"
	"maps"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
)

// canaryAnswers is how many predictions of a canary must be checked before
// it gets all the traffic.
const canaryAnswers = 3

// deploySplit is the traffic split a new model ("0") is deployed with beside
// the models of ep: on an empty endpoint all of it; else CanaryPercent of it,
// taken from the model with the most (none without a canary, or when that
// model has less).
func (e *Engine) deploySplit(ep *aiplatformpb.Endpoint) map[string]int32 {
	if len(ep.GetDeployedModels()) == 0 {
		return map[string]int32{"0": 100}
	}
	split := maps.Clone(ep.GetTrafficSplit())
	if split == nil {
		split = map[string]int32{}
	}
	split["0"] = 0
	if from := mostTraffic(split, "0"); from != "" && split[from] >= e.cfg.CanaryPercent {
		split[from] -= e.cfg.CanaryPercent
		split["0"] = e.cfg.CanaryPercent
	}
	return split
}

// mostTraffic is the id of split with the largest share but except, the
// lowest id among equals; "" when none has traffic.
func mostTraffic(split map[string]int32, except string) string {
	best := ""
	for id, pct := range split {
		if id != except && pct > 0 && (best == "" || pct > split[best] || pct == split[best] && id < best) {
			best = id
		}
	}
	return best
}

// canary checks d while it has part of the traffic (a canary deployment),
// before it gets all of it: one-instance predictions of the model's
// training means go through the endpoint until canaryAnswers came from d.
// A failed prediction, or an invalid one from d, rolls the canary back.
// Nothing is checked when d has no share of the traffic or all of it.
func (e *Engine) canary(ctx context.Context, m engine.Model, d engine.Deployment, ep *aiplatformpb.Endpoint) error {
	pct := ep.GetTrafficSplit()[d.DeployedModelID]
	if pct == 0 || pct == 100 {
		return nil
	}
	probe, err := probeInstance(m.Model.Normalization.Mean)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("vertex: canary of %s: %w", d.ModelVersion, err))
	}
	answers, tries := 0, 2*canaryAnswers*int((100+pct-1)/pct) // twice what the split routes to d
	for i := 0; i < tries && answers < canaryAnswers; i++ {
		resp, err := e.prediction.Predict(ctx, &aiplatformpb.PredictRequest{Endpoint: e.cfg.Endpoint, Instances: []*structpb.Value{probe}})
		if err == nil && resp.GetDeployedModelId() == d.DeployedModelID {
			answers++
			err = checkAnswer(resp)
		}
		if err != nil {
			return e.rollbackCanary(ctx, d, ep, fmt.Errorf("vertex: canary of %s with %d%% of the traffic of %s: prediction %d: %w", d.ModelVersion, pct, e.cfg.Endpoint, i, err))
		}
	}
	if answers < canaryAnswers {
		return fmt.Errorf("vertex: canary of %s answered %d of %d predictions with %d%% of the traffic (retrying)", d.ModelVersion, answers, tries, pct)
	}
	logging.FromOr(ctx, e.log).InfoContext(ctx, "vertex: canary checked", "version", d.ModelVersion, "traffic_percent", pct, "predictions", answers)
	return nil
}

// probeInstance is the instance of the inputs x.
func probeInstance(x []float64) (*structpb.Value, error) {
	if len(x) == 0 {
		return nil, fmt.Errorf("the model has no training means to probe it with")
	}
	vals := make([]*structpb.Value, len(x))
	for j, v := range x {
		vals[j] = structpb.NewNumberValue(v)
	}
	return structpb.NewListValue(&structpb.ListValue{Values: vals}), nil
}

// checkAnswer checks the one prediction of a canary's answer.
func checkAnswer(resp *aiplatformpb.PredictResponse) error {
	if n := len(resp.GetPredictions()); n != 1 {
		return fmt.Errorf("%d predictions for 1 instance", n)
	}
	_, err := probability(resp.GetPredictions()[0])
	return err
}

// rollbackCanary undeploys the canary d, giving its traffic back to the
// model with the most of the rest, and fails the deploy for good with
// cause; the context ending first, or a failed rollback, is transient (the
// redelivery checks the canary again).
func (e *Engine) rollbackCanary(ctx context.Context, d engine.Deployment, ep *aiplatformpb.Endpoint, cause error) error {
	if ctx.Err() != nil {
		return cause
	}
	back := maps.Clone(ep.GetTrafficSplit())
	pct := back[d.DeployedModelID]
	delete(back, d.DeployedModelID)
	back[mostTraffic(back, "")] += pct
	op, err := e.endpoints.UndeployModel(ctx, &aiplatformpb.UndeployModelRequest{Endpoint: e.cfg.Endpoint, DeployedModelId: d.DeployedModelID, TrafficSplit: back})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("%v; rolling back: undeploy %s from %s (retrying): %w", cause, d.DeployedModelID, e.cfg.Endpoint, err)
	}
	logging.FromOr(ctx, e.log).WarnContext(ctx, "vertex: canary failed, rolled back; the previous model serves", "version", d.ModelVersion,
		"deployed_model_id", d.DeployedModelID, "traffic", back, "error", cause)
	return eventing.Permanent(fmt.Errorf("%w (rolled back: %s undeployed from %s, traffic %v)", cause, d.DeployedModelID, e.cfg.Endpoint, back))
}
