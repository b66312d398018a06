package vertex_test

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
)

// brokenPredict makes the container of every model whose artifact is in a
// folder ending "-broken" answer its predict route with a 500; its health
// route answers, so the model deploys.
func brokenPredict(m *aiplatformpb.Model, h http.Handler) http.Handler {
	if !strings.HasSuffix(m.GetArtifactUri(), "-broken") {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == m.GetContainerSpec().GetPredictRoute() {
			http.Error(w, `{"error": "boom"}`, http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkServes asserts that the endpoint serves version alone.
func (f fixture) checkServes(t *testing.T, version string) {
	t.Helper()
	ep := f.fake.Endpoint(f.endpoint)
	id := vertex.DeployedModelID(version)
	if len(ep.GetDeployedModels()) != 1 || ep.GetDeployedModels()[0].GetId() != id || !maps.Equal(ep.GetTrafficSplit(), map[string]int32{id: 100}) {
		t.Errorf("endpoint serves %v with traffic %v, want %s (%s) alone", ep.GetDeployedModels(), ep.GetTrafficSplit(), version, id)
	}
}

// A canary gets its share of the traffic beside the serving model, answers
// the check, then all the traffic.
func TestCanaryPassesThenServesAlone(t *testing.T) {
	ctx := context.Background()
	f := setupWrapped(t, vertex.Config{CanaryPercent: 10}, brokenPredict)
	if _, err := f.eng.Deploy(ctx, f.model(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Predicts()); n != 0 {
		t.Errorf("the first model, alone on the endpoint, was checked with %d predictions", n)
	}
	d, err := f.eng.Deploy(ctx, f.model(t, "v2", 2))
	if err != nil {
		t.Fatal(err)
	}
	old, id := vertex.DeployedModelID("v1"), vertex.DeployedModelID("v2")
	deps := f.fake.Deploys()
	if len(deps) != 2 || !maps.Equal(deps[1].GetTrafficSplit(), map[string]int32{"0": 10, old: 90}) {
		t.Fatalf("the canary was deployed with traffic %v, want 10%% of v1's", deps[len(deps)-1].GetTrafficSplit())
	}
	// One request in ten goes to the canary: three answers take 30 at most.
	if n := len(f.fake.Predicts()); n < 3 || n > 30 {
		t.Errorf("%d canary predictions, want 3 to 30", n)
	}
	if un := f.fake.Undeploys(); len(un) != 1 || un[0].GetDeployedModelId() != old || !maps.Equal(un[0].GetTrafficSplit(), map[string]int32{id: 100}) {
		t.Errorf("undeploys %v, want v1's giving v2 all the traffic", un)
	}
	f.checkServes(t, "v2")
	if !d.New || len(d.Undeployed) != 1 || d.Undeployed[0] != old {
		t.Errorf("deployment %+v", d)
	}
	if _, err := f.eng.Predict(ctx, d, [][]float64{f.model(t, "v2", 2).Model.Normalization.Mean}); err != nil {
		t.Errorf("predict after the canary: %v", err)
	}
}

// A canary whose predictions fail is undeployed, its traffic back to the
// serving model, and the deploy fails for good.
func TestFailingCanaryRollsBack(t *testing.T) {
	ctx := context.Background()
	f := setupWrapped(t, vertex.Config{CanaryPercent: 25}, brokenPredict)
	d1, err := f.eng.Deploy(ctx, f.model(t, "v1", 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Deploy(ctx, f.model(t, "v2-broken", 2))
	if !eventing.IsPermanent(err) || !strings.Contains(err.Error(), "canary of v2-broken with 25% of the traffic") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("deploy of a failing canary: %v", err)
	}
	old, id := vertex.DeployedModelID("v1"), vertex.DeployedModelID("v2-broken")
	if un := f.fake.Undeploys(); len(un) != 1 || un[0].GetDeployedModelId() != id || !maps.Equal(un[0].GetTrafficSplit(), map[string]int32{old: 100}) {
		t.Errorf("undeploys %v, want the canary's giving v1 its traffic back", un)
	}
	f.checkServes(t, "v1")
	if _, err := f.eng.Predict(ctx, d1, [][]float64{f.model(t, "v1", 1).Model.Normalization.Mean}); err != nil {
		t.Errorf("v1 after the rollback: %v", err)
	}
}

// A deploy that stopped after the canary was deployed (the switch failed)
// checks it again on the redelivery, then switches.
func TestRedeliveredCanaryIsCheckedAgain(t *testing.T) {
	ctx := context.Background()
	f := setupWrapped(t, vertex.Config{CanaryPercent: 50}, brokenPredict)
	if _, err := f.eng.Deploy(ctx, f.model(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	f.fake.FailNext("UndeployModel", status.Error(codes.Unavailable, "down"))
	m2 := f.model(t, "v2", 2)
	if _, err := f.eng.Deploy(ctx, m2); err == nil || eventing.IsPermanent(err) {
		t.Fatalf("a failed switch: %v, want a transient error", err)
	}
	checked := len(f.fake.Predicts())
	if ep := f.fake.Endpoint(f.endpoint); ep.GetTrafficSplit()[vertex.DeployedModelID("v2")] != 50 {
		t.Fatalf("after the failed switch the canary has traffic %v, want 50%%", ep.GetTrafficSplit())
	}
	d, err := f.eng.Deploy(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Predicts()); checked < 3 || n < checked+3 {
		t.Errorf("%d canary predictions, then %d: want it checked on each delivery", checked, n-checked)
	}
	f.checkServes(t, "v2")
	if d.New || len(f.fake.Deploys()) != 2 {
		t.Errorf("the redelivery deployed again: %+v, %d deploys", d, len(f.fake.Deploys()))
	}
}

func TestCanaryPercentValidated(t *testing.T) {
	for _, pct := range []int32{-1, 100} {
		cfg := vertex.Config{Project: "p", Endpoint: "1", Image: "i", MinReplicas: 1, MaxReplicas: 1, CanaryPercent: pct}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "VERTEX_CANARY_PERCENT") {
			t.Errorf("canary %d%%: %v", pct, err)
		}
	}
}
