package local_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/local"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
)

func TestDeploySwapsTheServedModel(t *testing.T) {
	ctx := context.Background()
	pred := predictor.New(predictor.Options{PredictRoute: "/predict", HealthRoute: "/predict/health"})
	mux := http.NewServeMux()
	local.Mount(mux, pred)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	eng := local.New(pred, srv.URL+"/predict")
	if eng.Name() != engine.Local || eng.Predictor() != pred {
		t.Fatal("engine identity")
	}
	if r, err := http.Get(srv.URL + "/predict/health"); err != nil || r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("health before deploy: %v %v", r, err)
	}

	m1 := engine.Model{Model: testmodel.Train(t, "v1", 1)}
	d1, err := eng.Deploy(ctx, m1)
	if err != nil || !d1.New || d1.Endpoint != srv.URL+"/predict" || d1.DeployedModelID != "v1" || len(d1.Undeployed) != 0 {
		t.Fatalf("deploy v1: %+v %v", d1, err)
	}
	m2 := engine.Model{Model: testmodel.Train(t, "v2", 2)}
	d2, err := eng.Deploy(ctx, m2)
	if err != nil || !d2.New || len(d2.Undeployed) != 1 || d2.Undeployed[0] != "v1" {
		t.Fatalf("deploy v2: %+v %v", d2, err)
	}
	if again, _ := eng.Deploy(ctx, m2); again.New {
		t.Error("deploying the served model again reported a new deployment")
	}

	// Served over HTTP on the mux, and in process.
	rows := testmodel.Rows(3, []int64{1})
	x, _ := m2.Model.Vector(rows[0])
	body, _ := json.Marshal(map[string]any{"instances": [][]float64{x}})
	resp, err := http.Post(srv.URL+"/predict", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out predictor.Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.ModelVersion != "v2" || len(out.Predictions) != 1 {
		t.Fatalf("HTTP predict: %d %+v %v", resp.StatusCode, out, err)
	}
	got, err := eng.Predict(ctx, d2, [][]float64{x})
	if err != nil || got[0] != out.Predictions[0].Probability {
		t.Fatalf("in-process predict %v %v, HTTP gave %v", got, err, out.Predictions[0].Probability)
	}
	if _, err := eng.Predict(ctx, d1, [][]float64{x}); err == nil {
		t.Error("predicting with a replaced deployment succeeded")
	}
	if err := eng.Restore(ctx, m1); err != nil || pred.Current().Version() != "v1" {
		t.Errorf("restore: %v", err)
	}
}
