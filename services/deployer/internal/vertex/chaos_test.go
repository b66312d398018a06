package vertex_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex/vertextest"
)

// Chaos run bounds: Pub/Sub's delivery attempts before dead-lettering (as
// the Dataproc chaos test), and the time each delivery gets — the bound on
// the engine's waits for operations, as the router's handler timeout is.
const (
	chaosDeploys       = 30
	chaosDeliveries    = 10
	chaosDeliveryLimit = 500 * time.Millisecond
)

// The Vertex AI engine under random faults of the fake (seeded; the seed is
// logged, VERTEX_CHAOS_SEED replays it): RPC errors, rejected requests,
// lost responses, operations failing, and operations still running when the
// delivery's deadline passes, which finish between deliveries (or not yet).
// ~30 deploys — new models, the champion kept, an older model rolled back to,
// and models whose container cannot start — are each delivered again while
// Deploy returns a transient error, up to Pub/Sub's attempts. After each
// deploy, with its pending operations finished:
//
//   - succeeded: the model alone on the endpoint with all the traffic, deployed
//     under its DeployedModelID from its own registry model;
//   - failed permanently: because a request was rejected (no other cause is
//     permanent here), and the endpoint as the deploy found it — the previous
//     champion serving all the traffic, no model added to the endpoint;
//   - dead-lettered: one model serves all the traffic, the previous champion
//     or (its switch made by the last delivery) the new model; at most the
//     new model left beside it without traffic, which the next successful
//     deploy undeploys;
//
// and at any time every deployed model is one per version, from that
// version's registry model, and the registry holds one model per version.
func TestDeployUnderRandomFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("VERTEX_CHAOS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (replay with VERTEX_CHAOS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	f := setup(t, vertex.Config{})
	f.fake.SetFaults(vertextest.Faults{
		Seed: seed, RPC: 0.06, Rejected: 0.05, LostResponse: 0.06, OpError: 0.05, Stuck: 0.06, Cleanup: 0.08,
	})

	parent := "projects/proj/locations/europe-west1"
	versionOf := map[string]string{} // registry model name → version
	var (
		versions                          []string // good versions made so far
		champion                          string   // the version serving, "" before the first
		succeeded, failed, dead, delivers int
		standbys                          int // new models left without traffic by dead-lettered deploys
	)
	newModel := func(version string, broken bool) engine.Model {
		m := f.model(t, version, uint64(len(versionOf)+1))
		if broken { // the container cannot load it: its deploy operation fails, transiently
			m.ArtifactName, m.ArtifactURI = "models/gone/model.json", f.store.URI("models/gone/model.json")
		}
		versionOf[parent+"/models/"+vertex.ModelID(version)] = version
		return m
	}
	models := map[string]engine.Model{}

	for i := range chaosDeploys {
		var m engine.Model
		switch r := rng.IntN(100); {
		case r < 15 && champion != "": // not promoted: the champion is kept
			m = models[champion]
		case r < 25 && len(versions) > 1: // back to an older model
			m = models[versions[rng.IntN(len(versions))]]
		case r < 32:
			m = newModel(fmt.Sprintf("v%02d-broken", i), true)
		default:
			v := fmt.Sprintf("v%02d", i)
			m = newModel(v, false)
			models[v] = m
			versions = append(versions, v)
		}
		v := m.Version()
		id := vertex.DeployedModelID(v)
		before := f.fake.Endpoint(f.endpoint)

		var (
			d   engine.Deployment
			err error
			n   int
		)
		for n = 1; ; n++ {
			if n > 1 && rng.IntN(4) != 0 {
				f.fake.Advance() // Pub/Sub's backoff let the pending operations finish; not always
			}
			ctx, cancel := context.WithTimeout(t.Context(), chaosDeliveryLimit)
			d, err = f.eng.Deploy(ctx, m)
			cancel()
			if err == nil || eventing.IsPermanent(err) || n == chaosDeliveries {
				break
			}
		}
		delivers += n
		f.fake.Advance() // whatever is still running finishes
		ep := f.fake.Endpoint(f.endpoint)
		checkEndpoint(t, ep, versionOf)
		serving := servingID(ep)
		label := fmt.Sprintf("deploy %d of %s (%d deliveries)", i, v, n)

		switch {
		case err == nil:
			succeeded++
			if len(ep.GetDeployedModels()) != 1 || serving != id {
				t.Errorf("%s succeeded, but the endpoint is %v", label, ep)
			}
			if d.DeployedModelID != id || d.Endpoint != f.endpoint || d.ModelResource != parent+"/models/"+vertex.ModelID(v) ||
				slices.Contains(d.Undeployed, id) {
				t.Errorf("%s succeeded with deployment %+v", label, d)
			}
			champion = v
		case eventing.IsPermanent(err):
			failed++
			t.Logf("%s failed: %v", label, err)
			if !strings.Contains(err.Error(), "vertex: ") || !strings.Contains(err.Error(), "injected rejection") {
				t.Errorf("%s failed permanently for no rejected request: %v", label, err)
			}
			if added := deployedIDs(ep, before); len(added) > 0 {
				t.Errorf("%s failed, leaving deployed models %v on the endpoint: %v", label, added, ep)
			}
			if champion != "" && serving != vertex.DeployedModelID(champion) {
				t.Errorf("%s failed, and the champion %s no longer serves: %v", label, champion, ep)
			}
		default:
			dead++
			t.Logf("%s dead-lettered: %v", label, err)
			added := deployedIDs(ep, before)
			if len(added) > 1 || len(added) == 1 && added[0] != id {
				t.Errorf("%s dead-lettered, leaving deployed models %v on the endpoint: %v", label, added, ep)
			}
			switch {
			case champion == "" && serving == "":
			case champion != "" && serving == vertex.DeployedModelID(champion):
				if len(added) == 1 {
					standbys++
				}
			case serving == id && !strings.HasSuffix(v, "-broken"):
				champion = v // the switch was made; the next delivery would have found it done
			default:
				t.Errorf("%s dead-lettered, and neither the champion %q nor it serves: %v", label, champion, ep)
			}
		}
	}

	// The registry: one model per version, only for versions deployed.
	for name := range f.fake.Models() {
		if _, ok := versionOf[name]; !ok {
			t.Errorf("registry model %s belongs to no deploy", name)
		}
	}
	// The champion answers.
	f.fake.SetFaults(vertextest.Faults{})
	if champion != "" {
		m := models[champion]
		X, _ := m.Model.Vector(testmodel.Rows(1, []int64{1})[0])
		d := engine.Deployment{Engine: engine.Vertex, ModelVersion: champion, Endpoint: f.endpoint, DeployedModelID: vertex.DeployedModelID(champion)}
		if _, err := f.eng.Predict(t.Context(), d, [][]float64{X}); err != nil {
			t.Errorf("the champion %s does not answer: %v", champion, err)
		}
	}
	inj := f.fake.Injected()
	t.Logf("%d deploys in %d deliveries: %d succeeded, %d failed permanently, %d dead-lettered (%d standbys left); "+
		"faults %d: %d RPC errors, %d rejections, %d lost responses, %d failed operations, %d stuck operations",
		chaosDeploys, delivers, succeeded, failed, dead, standbys,
		inj.Total(), inj.RPC, inj.Rejected, inj.LostResponse, inj.OpError, inj.Stuck)
	if succeeded < chaosDeploys/2 || inj.Total() == 0 {
		t.Fatalf("only %d deploys succeeded, %d faults: the test exercised too little", succeeded, inj.Total())
	}
}

// servingID is the deployed model with all the endpoint's traffic, or "".
func servingID(ep *aiplatformpb.Endpoint) string {
	for id, pct := range ep.GetTrafficSplit() {
		if pct == 100 {
			return id
		}
	}
	return ""
}

// deployedIDs are the models deployed on ep that were not on before.
func deployedIDs(ep, before *aiplatformpb.Endpoint) []string {
	var added []string
	for _, dm := range ep.GetDeployedModels() {
		if !slices.ContainsFunc(before.GetDeployedModels(), func(o *aiplatformpb.DeployedModel) bool { return o.GetId() == dm.GetId() }) {
			added = append(added, dm.GetId())
		}
	}
	return added
}

// checkEndpoint checks that every deployed model is a known version's
// registry model under that version's DeployedModelID, and that the traffic
// goes to deployed models only, all of it.
func checkEndpoint(t *testing.T, ep *aiplatformpb.Endpoint, versionOf map[string]string) {
	t.Helper()
	for _, dm := range ep.GetDeployedModels() {
		v, ok := versionOf[dm.GetModel()]
		if !ok || dm.GetId() != vertex.DeployedModelID(v) {
			t.Errorf("deployed model %s of %s (version %q): not one of the deploys", dm.GetId(), dm.GetModel(), v)
		}
	}
	var sum int32
	for id, pct := range ep.GetTrafficSplit() {
		if find(ep, id) == nil {
			t.Errorf("traffic %d%% to %s, not deployed", pct, id)
		}
		sum += pct
	}
	if len(ep.GetDeployedModels()) > 0 && sum != 100 {
		t.Errorf("traffic split %v", ep.GetTrafficSplit())
	}
}

func find(ep *aiplatformpb.Endpoint, id string) *aiplatformpb.DeployedModel {
	for _, dm := range ep.GetDeployedModels() {
		if dm.GetId() == id {
			return dm
		}
	}
	return nil
}
