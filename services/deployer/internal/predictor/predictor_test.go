package predictor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
)

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %d %q: %v", method, path, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, out
}

func served(t *testing.T) (*predictor.Predictor, *model.Model) {
	t.Helper()
	m := testmodel.Train(t, "v20261101-aaaa", 1)
	p := predictor.New(predictor.Options{PredictRoute: "/v1/predict", HealthRoute: "/v1/health"})
	p.Swap(m, "")
	return p, m
}

func TestHealthBeforeAndAfterLoad(t *testing.T) {
	p := predictor.New(predictor.Options{})
	if p.PredictRoute() != "/predict" || p.HealthRoute() != "/health" {
		t.Fatalf("default routes %q %q", p.PredictRoute(), p.HealthRoute())
	}
	code, body := do(t, p, http.MethodGet, "/health", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body["error"].(string), "no model") {
		t.Fatalf("health without a model: %d %v", code, body)
	}
	code, _ = do(t, p, http.MethodPost, "/predict", `{"instances":[[1]]}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("predict without a model: %d", code)
	}
	m := testmodel.Train(t, "v1", 1)
	if prev := p.Swap(m, "123"); prev != nil {
		t.Fatalf("first swap returned %v", prev)
	}
	code, body = do(t, p, http.MethodGet, "/health", "")
	if code != http.StatusOK || body["model_version"] != "v1" || body["deployedModelId"] != "123" {
		t.Fatalf("health: %d %v", code, body)
	}
	m2 := testmodel.Train(t, "v2", 2)
	if prev := p.Swap(m2, ""); prev == nil || prev.Version() != "v1" {
		t.Fatalf("swap returned %v, want v1", prev)
	}
	if cur := p.Current(); cur.Version() != "v2" || cur.DeployedModelID != "v2" {
		t.Fatalf("current %+v", cur)
	}
}

func TestPredictArrayAndObjectInstances(t *testing.T) {
	_, m := served(t)
	rows := testmodel.Rows(5, []int64{11, 12})
	x0, err := m.Vector(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	want0, _ := m.Predict(x0)
	want1, _ := m.PredictRow(rows[1])
	// Bands of rows[1]'s vehicle type that make it critical; the array
	// instance, of no vehicle type, takes the default bands.
	if monitor.DefaultBands.Level(want1) == monitor.Critical {
		t.Fatalf("probability %v is critical by the default bands: the test cannot tell the bands apart", want1)
	}
	bands, err := monitor.ParseRiskBands(fmt.Sprintf("%s=%g,%g,%g", rows[1].VehicleType, want1/4, want1/2, want1*0.99))
	if err != nil {
		t.Fatal(err)
	}
	p := predictor.New(predictor.Options{PredictRoute: "/v1/predict", Bands: bands})
	p.Swap(m, "")

	arr, _ := json.Marshal(x0)
	rowJSON, _ := json.Marshal(rows[1]) // a feature row as-is: vehicle_type string, asset_id and label ignored
	code, body := do(t, p, http.MethodPost, "/v1/predict", `{"instances":[`+string(arr)+`,`+string(rowJSON)+`]}`)
	if code != http.StatusOK {
		t.Fatalf("predict: %d %v", code, body)
	}
	if body["deployedModelId"] != m.Version || body["model_version"] != m.Version {
		t.Errorf("ids: %v", body)
	}
	preds := body["predictions"].([]any)
	if len(preds) != 2 {
		t.Fatalf("predictions %v", preds)
	}
	levels := []string{monitor.DefaultBands.Level(want0), monitor.Critical}
	for i, want := range []float64{want0, want1} {
		got := preds[i].(map[string]any)
		if pr := got["probability"].(float64); math.Abs(pr-want) > 1e-12 {
			t.Errorf("prediction %d: probability %v, want %v", i, pr, want)
		}
		if got["risk_level"] != levels[i] {
			t.Errorf("prediction %d: risk level %v, want %v", i, got["risk_level"], levels[i])
		}
	}

	// Named inputs including one-hot columns, and null for a missing value
	// (the model imputes the training mean).
	obj := map[string]any{}
	for j, f := range m.Features {
		obj[f] = x0[j]
	}
	obj[m.Features[0]] = nil
	b, _ := json.Marshal(map[string]any{"instances": []any{obj}, "parameters": map[string]any{"x": 1}})
	code, body = do(t, p, http.MethodPost, "/v1/predict", string(b))
	if code != http.StatusOK {
		t.Fatalf("object with null: %d %v", code, body)
	}
	x0[0] = math.NaN()
	want, _ := m.Predict(x0)
	if got := body["predictions"].([]any)[0].(map[string]any)["probability"].(float64); math.Abs(got-want) > 1e-12 {
		t.Errorf("null input: probability %v, want %v (mean imputed)", got, want)
	}
}

func TestPredictBadRequests(t *testing.T) {
	p, m := served(t)
	n := len(m.Features)
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"not json", http.MethodPost, "/v1/predict", `instances`, 400, "invalid request body"},
		{"no instances", http.MethodPost, "/v1/predict", `{"instances":[]}`, 400, "no instances"},
		{"missing instances", http.MethodPost, "/v1/predict", `{}`, 400, "no instances"},
		{"trailing", http.MethodPost, "/v1/predict", `{"instances":[[1]]} {}`, 400, "trailing"},
		{"short array", http.MethodPost, "/v1/predict", `{"instances":[[1,2,3]]}`, 400, "instance 0: array of 3 values, want"},
		{"string value", http.MethodPost, "/v1/predict", `{"instances":[[` + strings.Repeat(`1,`, n-1) + `"x"]]}`, 400, "want a number or null"},
		{"scalar instance", http.MethodPost, "/v1/predict", `{"instances":[42]}`, 400, "instance 0: want an array"},
		{"unknown feature", http.MethodPost, "/v1/predict", `{"instances":[{"wheels":4}]}`, 400, `unknown feature(s) wheels`},
		{"missing feature", http.MethodPost, "/v1/predict", `{"instances":[{"asset_age_days":4}]}`, 400, "missing feature(s) days_since_last_maintenance"},
		{"bad vehicle type", http.MethodPost, "/v1/predict", `{"instances":[{"vehicle_type":3}]}`, 400, "vehicle_type"},
		{"second instance bad", http.MethodPost, "/v1/predict", `{"instances":[[` + strings.Repeat(`1,`, n-1) + `1],[1]]}`, 400, "instance 1:"},
		{"get predict", http.MethodGet, "/v1/predict", ``, 405, "method not allowed"},
		{"post health", http.MethodPost, "/v1/health", ``, 405, "method not allowed"},
		{"other path", http.MethodGet, "/predict", ``, 404, "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, p, c.method, c.path, c.body)
			msg, _ := body["error"].(string)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("%d %q, want %d containing %q", code, msg, c.code, c.msg)
			}
		})
	}
}

func TestBodyAndInstanceLimits(t *testing.T) {
	m := testmodel.Train(t, "v1", 1)
	p := predictor.New(predictor.Options{MaxBody: 100, MaxInstances: 2})
	p.Swap(m, "")
	code, body := do(t, p, http.MethodPost, "/predict", `{"instances":[`+strings.Repeat(`[1],`, 50)+`[1]]}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d %v", code, body)
	}
	code, body = do(t, p, http.MethodPost, "/predict", `{"instances":[[1],[1],[1]]}`)
	if code != http.StatusBadRequest || !strings.Contains(body["error"].(string), "at most 2") {
		t.Errorf("too many instances: %d %v", code, body)
	}
}

func TestLoadFromStorageURI(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.New(t)
	m := testmodel.Train(t, "v20261101-bbbb", 3)
	name := testmodel.PutModel(t, store, m)
	folder := predictor.FolderURI(store.Bucket(), name)
	if folder != "gs://"+objstoretest.Bucket+"/models/v20261101-bbbb" {
		t.Fatalf("folder %q", folder)
	}
	for _, uri := range []string{folder, folder + "/", store.URI(name)} {
		got, err := predictor.Load(ctx, store, uri)
		if err != nil || got.Version != m.Version {
			t.Fatalf("Load(%q) = %v, %v", uri, got, err)
		}
	}
	if _, err := predictor.Load(ctx, store, "gs://"+objstoretest.Bucket+"/models/nope"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if err := store.Put(ctx, "models/bad/model.json", "application/json", []byte(`{"format_version":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := predictor.Load(ctx, store, "gs://"+objstoretest.Bucket+"/models/bad"); !errors.Is(err, predictor.ErrInvalidArtifact) {
		t.Errorf("invalid: %v", err)
	}
	for _, uri := range []string{"s3://x/y", "gs:///y", "gs://other-bucket/models/v"} {
		if _, err := predictor.Load(ctx, store, uri); err == nil {
			t.Errorf("Load(%q) succeeded", uri)
		}
	}
}
