package vertex_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex/vertextest"
)

const image = "us-docker.pkg.dev/proj/cmmsflow/predictor:test"

type fixture struct {
	store    *objstore.Store
	fake     *vertextest.Server
	eng      *vertex.Engine
	endpoint string
}

// setup starts the fake with a container that is the real predictor, loading
// the model from the artifact URI as the predictor image does with
// AIP_STORAGE_URI.
func setup(t *testing.T, cfg vertex.Config) fixture {
	t.Helper()
	return setupWrapped(t, cfg, nil)
}

// setupWrapped is setup with the container of a model wrapped by wrap (nil:
// not wrapped).
func setupWrapped(t *testing.T, cfg vertex.Config, wrap func(m *aiplatformpb.Model, h http.Handler) http.Handler) fixture {
	t.Helper()
	ctx := context.Background()
	store := objstoretest.New(t)
	fake := vertextest.New(t, func(m *aiplatformpb.Model, id string) (http.Handler, error) {
		cs := m.GetContainerSpec()
		p := predictor.New(predictor.Options{PredictRoute: cs.GetPredictRoute(), HealthRoute: cs.GetHealthRoute()})
		md, err := predictor.Load(context.Background(), store, m.GetArtifactUri())
		if err != nil {
			return nil, err
		}
		p.Swap(md, id)
		if wrap != nil {
			return wrap(m, p), nil
		}
		return p, nil
	})
	endpoint := fake.AddEndpoint("proj", "europe-west1", "4242")
	cfg.Project, cfg.Location, cfg.Endpoint, cfg.Image = "proj", "europe-west1", "4242", image
	eng, err := vertex.New(ctx, cfg, nil, fake.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if eng.Endpoint() != endpoint {
		t.Fatalf("endpoint %q, want %q", eng.Endpoint(), endpoint)
	}
	return fixture{store: store, fake: fake, eng: eng, endpoint: endpoint}
}

func (f fixture) model(t *testing.T, version string, seed uint64) engine.Model {
	m := testmodel.Train(t, version, seed)
	name := testmodel.PutModel(t, f.store, m)
	return engine.Model{Model: m, ArtifactName: name, ArtifactURI: f.store.URI(name)}
}

func TestDeployUploadsDeploysAndUndeploysThePrevious(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{MachineType: "n1-standard-4", MinReplicas: 1, MaxReplicas: 3, ServiceAccount: "sa@proj.iam.gserviceaccount.com",
		RiskBands: "0.3,0.5,0.8;bus=0.2,0.4,0.6"})
	m1 := f.model(t, "v20261101-aaaa", 1)

	d1, err := f.eng.Deploy(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	if !d1.New || d1.Engine != engine.Vertex || d1.Endpoint != f.endpoint || d1.DeployedModelID != vertex.DeployedModelID(m1.Version()) ||
		d1.ModelResource != "projects/proj/locations/europe-west1/models/"+vertex.ModelID(m1.Version()) || len(d1.Undeployed) != 0 {
		t.Fatalf("first deployment %+v", d1)
	}
	ups := f.fake.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads", len(ups))
	}
	up := ups[0]
	cs := up.GetModel().GetContainerSpec()
	if up.GetParent() != "projects/proj/locations/europe-west1" || up.GetModelId() != "cmmsflow-v20261101-aaaa" ||
		up.GetModel().GetArtifactUri() != "gs://"+objstoretest.Bucket+"/models/v20261101-aaaa" ||
		cs.GetImageUri() != image || cs.GetPredictRoute() != "/predict" || cs.GetHealthRoute() != "/health" ||
		len(cs.GetPorts()) != 1 || cs.GetPorts()[0].GetContainerPort() != 8080 ||
		!strings.Contains(up.GetModel().GetDisplayName(), m1.Version()) {
		t.Errorf("upload request %v", up)
	}
	env := map[string]string{}
	for _, e := range cs.GetEnv() {
		env[e.GetName()] = e.GetValue()
	}
	if env["RISK_BANDS"] != "0.3,0.5,0.8;bus=0.2,0.4,0.6" || env["LOG_FORMAT"] != "json" {
		t.Errorf("container env %v: want the deployer's RISK_BANDS", env)
	}
	deps := f.fake.Deploys()
	if len(deps) != 1 {
		t.Fatalf("%d deploys", len(deps))
	}
	dep := deps[0]
	res := dep.GetDeployedModel().GetDedicatedResources()
	if dep.GetEndpoint() != f.endpoint || len(dep.GetTrafficSplit()) != 1 || dep.GetTrafficSplit()["0"] != 100 ||
		dep.GetDeployedModel().GetModel() != d1.ModelResource || dep.GetDeployedModel().GetId() != d1.DeployedModelID ||
		res.GetMachineSpec().GetMachineType() != "n1-standard-4" || res.GetMinReplicaCount() != 1 || res.GetMaxReplicaCount() != 3 ||
		dep.GetDeployedModel().GetServiceAccount() != "sa@proj.iam.gserviceaccount.com" {
		t.Errorf("deploy request %v", dep)
	}

	// A second model takes all the traffic and the first is undeployed.
	m2 := f.model(t, "v20261108-bbbb", 2)
	d2, err := f.eng.Deploy(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if !d2.New || len(d2.Undeployed) != 1 || d2.Undeployed[0] != d1.DeployedModelID {
		t.Fatalf("second deployment %+v", d2)
	}
	// Deployed beside the first without traffic; the undeploy of the first
	// switches the traffic.
	if deps := f.fake.Deploys(); len(deps) != 2 || len(deps[1].GetTrafficSplit()) != 2 ||
		deps[1].GetTrafficSplit()["0"] != 0 || deps[1].GetTrafficSplit()[d1.DeployedModelID] != 100 {
		t.Errorf("second deploy %v", deps)
	}
	und := f.fake.Undeploys()
	if len(und) != 1 || und[0].GetDeployedModelId() != d1.DeployedModelID || und[0].GetEndpoint() != f.endpoint ||
		len(und[0].GetTrafficSplit()) != 1 || und[0].GetTrafficSplit()[d2.DeployedModelID] != 100 {
		t.Errorf("undeploy requests %v", und)
	}
	ep := f.fake.Endpoint(f.endpoint)
	if len(ep.GetDeployedModels()) != 1 || ep.GetDeployedModels()[0].GetId() != d2.DeployedModelID || ep.GetTrafficSplit()[d2.DeployedModelID] != 100 {
		t.Errorf("endpoint after the second deployment %v", ep)
	}

	// Deploying the served model again (a redelivery, or the champion kept)
	// changes nothing.
	d3, err := f.eng.Deploy(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if d3.New || d3.DeployedModelID != d2.DeployedModelID || d3.ModelResource != d2.ModelResource {
		t.Errorf("redeploy %+v", d3)
	}
	if len(f.fake.Uploads()) != 2 || len(f.fake.Deploys()) != 2 || len(f.fake.Undeploys()) != 1 {
		t.Errorf("redeploy sent requests: %d uploads %d deploys %d undeploys", len(f.fake.Uploads()), len(f.fake.Deploys()), len(f.fake.Undeploys()))
	}
}

func TestRedeployAfterUploadFindsTheModel(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{})
	m1, m2 := f.model(t, "v1", 1), f.model(t, "v2", 2)
	if _, err := f.eng.Deploy(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Deploy(ctx, m2); err != nil {
		t.Fatal(err)
	}
	// Back to v1: already in the registry (ALREADY_EXISTS → GetModel), deployed again.
	d, err := f.eng.Deploy(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	if !d.New || d.ModelResource != "projects/proj/locations/europe-west1/models/cmmsflow-v1" {
		t.Errorf("deployment %+v", d)
	}
	if n := len(f.fake.Uploads()); n != 3 {
		t.Errorf("%d upload attempts, want 3", n)
	}
	ep := f.fake.Endpoint(f.endpoint)
	if len(ep.GetDeployedModels()) != 1 || ep.GetDeployedModels()[0].GetId() != vertex.DeployedModelID("v1") {
		t.Errorf("endpoint %v", ep)
	}
}

func TestDeployWaitsForOperations(t *testing.T) {
	f := setup(t, vertex.Config{})
	f.fake.SetPendingPolls(1)
	if _, err := f.eng.Deploy(context.Background(), f.model(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	if p := f.fake.Polls(); p < 2 {
		t.Errorf("%d operation polls, want one per pending operation (upload, deploy)", p)
	}
}

func TestDeployFailures(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{})
	// The container cannot load a model whose artifact is gone: the deploy
	// operation fails (transient: the artifact might appear, Vertex might recover).
	m := f.model(t, "v1", 1)
	m.ArtifactName, m.ArtifactURI = "models/gone/model.json", f.store.URI("models/gone/model.json")
	_, err := f.eng.Deploy(ctx, m)
	if err == nil || !strings.Contains(err.Error(), "container failed to start") {
		t.Fatalf("deploy with a missing artifact: %v", err)
	}
	// A missing endpoint is permanent.
	eng, err := vertex.New(ctx, vertex.Config{Project: "proj", Location: "europe-west1", Endpoint: "999", Image: image}, nil, f.fake.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.Deploy(ctx, f.model(t, "v2", 2)); !eventing.IsPermanent(err) {
		t.Fatalf("missing endpoint: %v, want permanent", err)
	}
}

// A deploy failing for good before the switch undeploys the new model: the
// previous one serves as before. (It used to get all the traffic at deploy
// time, so a rejected undeploy of the previous one left the failed model
// serving and the previous one deployed beside it without traffic.)
func TestFailedDeployRollsBack(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{})
	m1, m2 := f.model(t, "v1", 1), f.model(t, "v2", 2)
	if _, err := f.eng.Deploy(ctx, m1); err != nil {
		t.Fatal(err)
	}
	f.fake.FailNext("UndeployModel", status.Error(codes.InvalidArgument, "rejected"))
	_, err := f.eng.Deploy(ctx, m2)
	if !eventing.IsPermanent(err) || !strings.Contains(err.Error(), "rejected") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("deploy with the switch rejected: %v, want permanent, rolled back", err)
	}
	servesAlone(t, f, "v1")
	if d, err := f.eng.Deploy(ctx, m2); err != nil || !d.New {
		t.Fatalf("deploying v2 again: %+v, %v", d, err)
	}
	servesAlone(t, f, "v2")
}

// A rollback that fails is retried: the error is transient, and the
// previous model serves meanwhile.
func TestFailedRollbackIsTransient(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{})
	m1, m2 := f.model(t, "v1", 1), f.model(t, "v2", 2)
	if _, err := f.eng.Deploy(ctx, m1); err != nil {
		t.Fatal(err)
	}
	f.fake.FailNext("UndeployModel", status.Error(codes.InvalidArgument, "rejected"), status.Error(codes.Unavailable, "down"))
	_, err := f.eng.Deploy(ctx, m2)
	if err == nil || eventing.IsPermanent(err) || !strings.Contains(err.Error(), "rolling back") {
		t.Fatalf("deploy with the switch rejected and the rollback failing: %v, want transient", err)
	}
	ep := f.fake.Endpoint(f.endpoint)
	if ep.GetTrafficSplit()[vertex.DeployedModelID("v1")] != 100 || len(ep.GetDeployedModels()) != 2 {
		t.Fatalf("endpoint %v: want v1 serving, v2 beside it without traffic", ep)
	}
	// The redelivery finds v2 deployed and switches.
	if _, err := f.eng.Deploy(ctx, m2); err != nil {
		t.Fatal(err)
	}
	servesAlone(t, f, "v2")
}

// Once the new model has all the traffic, failing to undeploy another is
// transient (the redelivery finishes the cleanup), never a failed deploy.
func TestCleanupAfterTheSwitchIsTransient(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{})
	m1, m2, m3 := f.model(t, "v1", 1), f.model(t, "v2", 2), f.model(t, "v3", 3)
	if _, err := f.eng.Deploy(ctx, m1); err != nil {
		t.Fatal(err)
	}
	// v2's switch fails and its event is dead-lettered: v2 stays without traffic.
	f.fake.FailNext("UndeployModel", status.Error(codes.Unavailable, "down"))
	if _, err := f.eng.Deploy(ctx, m2); err == nil || eventing.IsPermanent(err) {
		t.Fatalf("v2: %v, want transient", err)
	}
	// v3: the switch (undeploying v1) passes, undeploying v2 is rejected.
	f.fake.FailNext("UndeployModel", nil, status.Error(codes.InvalidArgument, "rejected"))
	_, err := f.eng.Deploy(ctx, m3)
	if err == nil || eventing.IsPermanent(err) || !strings.Contains(err.Error(), "serves all the traffic") {
		t.Fatalf("v3 with the cleanup rejected: %v, want transient", err)
	}
	if ep := f.fake.Endpoint(f.endpoint); ep.GetTrafficSplit()[vertex.DeployedModelID("v3")] != 100 {
		t.Fatalf("endpoint %v: want v3 serving", ep)
	}
	d, err := f.eng.Deploy(ctx, m3)
	if err != nil || d.New || len(d.Undeployed) != 1 || d.Undeployed[0] != vertex.DeployedModelID("v2") {
		t.Fatalf("v3 redelivered: %+v, %v", d, err)
	}
	servesAlone(t, f, "v3")
}

// A redelivery while the first delivery's upload is still running (the
// model id taken, the model not found yet) is retried, not failed.
func TestRedeliveryDuringUploadIsTransient(t *testing.T) {
	f := setup(t, vertex.Config{})
	m := f.model(t, "v1", 1)
	f.fake.SetFaults(vertextest.Faults{Seed: 1, Stuck: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := f.eng.Deploy(ctx, m); err == nil || eventing.IsPermanent(err) {
		t.Fatalf("deploy with the upload still running at the deadline: %v, want transient", err)
	}
	f.fake.SetFaults(vertextest.Faults{})
	_, err := f.eng.Deploy(context.Background(), m)
	if err == nil || eventing.IsPermanent(err) || !strings.Contains(err.Error(), "still in progress") {
		t.Fatalf("redelivery during the upload: %v, want transient, in progress", err)
	}
	f.fake.Advance()
	if _, err := f.eng.Deploy(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	servesAlone(t, f, "v1")
	if n := len(f.fake.Models()); n != 1 {
		t.Errorf("%d registry models, want 1", n)
	}
}

// servesAlone checks that version is the endpoint's only deployed model,
// with all the traffic.
func servesAlone(t *testing.T, f fixture, version string) {
	t.Helper()
	ep := f.fake.Endpoint(f.endpoint)
	id := vertex.DeployedModelID(version)
	if len(ep.GetDeployedModels()) != 1 || ep.GetDeployedModels()[0].GetId() != id || ep.GetTrafficSplit()[id] != 100 {
		t.Errorf("endpoint %v: want %s (%s) alone with all the traffic", ep, version, id)
	}
}

func TestPredictInBatches(t *testing.T) {
	ctx := context.Background()
	f := setup(t, vertex.Config{PredictBatch: 3})
	m := f.model(t, "v1", 1)
	d, err := f.eng.Deploy(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	rows := testmodel.Rows(9, []int64{1, 2, 3, 4, 5, 6, 7})
	X := make([][]float64, len(rows))
	for i, r := range rows {
		X[i], _ = m.Model.Vector(r)
	}
	X[6][2] = math.NaN() // sent as null, imputed by the model
	got, err := f.eng.Predict(ctx, d, X)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Model.PredictAll(X)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("row %d: %v, want %v", i, got[i], want[i])
		}
	}
	reqs := f.fake.Predicts()
	if len(reqs) != 3 || len(reqs[0].GetInstances()) != 3 || len(reqs[2].GetInstances()) != 1 || reqs[0].GetEndpoint() != f.endpoint {
		t.Errorf("predict requests: %d", len(reqs))
	}
	if v := reqs[2].GetInstances()[0].GetListValue().GetValues()[2]; v.GetNullValue() != 0 || v.GetKind() == nil {
		t.Errorf("NaN sent as %v, want null", v)
	}
	// Scoring with a deployment no longer on the endpoint is refused.
	stale := d
	stale.DeployedModelID = "1"
	if _, err := f.eng.Predict(ctx, stale, X[:1]); err == nil || !strings.Contains(err.Error(), "answered with deployed model") {
		t.Errorf("stale deployment: %v", err)
	}
}

func TestIDsAndConfig(t *testing.T) {
	if id := vertex.ModelID("V2026.11/01"); id != "cmmsflow-v2026-11-01" {
		t.Errorf("ModelID = %q", id)
	}
	long := vertex.ModelID(strings.Repeat("x", 100))
	if len(long) != 63 || long == vertex.ModelID(strings.Repeat("x", 99)) {
		t.Errorf("long ModelID %q", long)
	}
	id := vertex.DeployedModelID("v1")
	if len(id) != 10 || strings.Trim(id, "0123456789") != "" || id == vertex.DeployedModelID("v2") || id != vertex.DeployedModelID("v1") {
		t.Errorf("DeployedModelID = %q", id)
	}
	for _, c := range []vertex.Config{
		{Endpoint: "1", Image: "i"},
		{Project: "p", Image: "i"},
		{Project: "p", Endpoint: "a/b", Image: "i"},
		{Project: "p", Endpoint: "1"},
		{Project: "p", Endpoint: "1", Image: "i", MinReplicas: 2, MaxReplicas: 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	if err := (vertex.Config{Project: "p", Endpoint: "projects/p/locations/l/endpoints/1", Image: "i"}).Validate(); err != nil {
		t.Error(err)
	}
}
