package deployer_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/local"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/vertex/vertextest"
)

const activeAssets = 8

type fixture struct {
	pool   *pgxpool.Pool // the test's (admin)
	svc    *pgxpool.Pool // the deployer's login: the handler's and router's
	mon    deployer.Monitoring
	store  *objstore.Store
	router *eventing.Router
	h      *deployer.Handler
	pred   *predictor.Predictor    // local engine
	fake   *vertextest.Server      // vertex engine
	rows   []features.Row          // the scoring rows
	models map[string]*model.Model // by version
}

// testBands are the fixture's RISK_BANDS: cars are leveled by bands of their
// own, so high that few cars are more than low.
const testBands = "0.2,0.45,0.7;car=0.97,0.98,0.99"

// setup makes a fleet of activeAssets ACTIVE assets (ids 1..8) plus a
// retired one, their scoring features for run-1 (cars and trucks), and a deployer on the
// given engine, configured by RISK_BANDS testBands and the defaults.
func setup(t testing.TB, engineName string) *fixture {
	return setupWith(t, engineName, nil)
}

// setupWith is setup with env added to the deployer's configuration.
func setupWith(t testing.TB, engineName string, env map[string]string) *fixture {
	t.Helper()
	ctx := context.Background()
	admin, dbURL := pgtest.NewWithURL(t)
	svc, err := db.Connect(ctx, pgtest.ServiceLogin(t, admin, dbURL, events.Deployer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	f := &fixture{pool: admin, svc: svc, mon: monitoring(t, env), store: objstoretest.New(t), models: map[string]*model.Model{}}
	for i := 1; i <= activeAssets+1; i++ {
		status := "ACTIVE"
		if i > activeAssets {
			status = "RETIRED"
		}
		if _, err := f.pool.Exec(ctx, `INSERT INTO assets (id, asset_tag, name, vehicle_type, status, commissioned_date)
			VALUES ($1, $2, $3, 'truck', $4, '2020-01-01')`, i, fmt.Sprintf("T-%03d", i), fmt.Sprintf("Truck %d", i), status); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]int64, activeAssets)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	f.rows = testmodel.Rows(42, ids)
	for i := range f.rows {
		f.rows[i].VehicleType = []string{"car", "truck"}[i%2] // half of them leveled by the cars' bands
	}
	testmodel.PutScoring(t, f.store, "run-1", f.rows)

	var eng engine.Engine
	switch engineName {
	case engine.Local:
		f.pred = predictor.New(predictor.Options{})
		eng = local.New(f.pred, "")
	case engine.Vertex:
		f.fake = vertextest.New(t, func(m *aiplatformpb.Model, id string) (http.Handler, error) {
			p := predictor.New(predictor.Options{PredictRoute: m.GetContainerSpec().GetPredictRoute(), HealthRoute: m.GetContainerSpec().GetHealthRoute()})
			md, err := predictor.Load(context.Background(), f.store, m.GetArtifactUri())
			if err != nil {
				return nil, err
			}
			p.Swap(md, id)
			return p, nil
		})
		f.fake.AddEndpoint("proj", "us-central1", "77")
		v, err := vertex.New(ctx, vertex.Config{Project: "proj", Endpoint: "77", Image: "predictor:test", PredictBatch: 3}, nil, f.fake.ClientOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		eng = v
	}
	h, err := deployer.New(f.svc, f.store, eng, f.mon, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.router = eventing.NewRouter(eventing.RouterConfig{Service: events.Deployer, Pool: f.svc, Log: slog.New(slog.DiscardHandler)})
	h.Register(f.router)
	return f
}

// monitoring is the deployer's settings from its configuration: RISK_BANDS
// testBands, env and the defaults.
func monitoring(t testing.TB, env map[string]string) deployer.Monitoring {
	t.Helper()
	all := map[string]string{"DATABASE_URL": "postgres://x", "RISK_BANDS": testBands}
	maps.Copy(all, env)
	var cfg deployer.Config
	if err := config.LoadFrom(context.Background(), &cfg, all); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg.Monitoring()
}

// train stores a model artifact and registers it as the trainer does.
func (f *fixture) train(t testing.TB, version string, seed uint64, champion bool) {
	t.Helper()
	m := testmodel.Train(t, version, seed)
	name := testmodel.PutModel(t, f.store, m)
	f.models[version] = m
	ctx := context.Background()
	if champion {
		if _, err := f.pool.Exec(ctx, `UPDATE models SET champion = false`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO models (version, run_id, kind, artifact_name, artifact_uri, training_fingerprint, metrics, champion, promoted)
		VALUES ($1, 'run-x', 'logistic', $2, $3, 'sha256:00', '{"roc_auc":0.8}', $4, $4)`, version, name, f.store.URI(name), champion); err != nil {
		t.Fatal(err)
	}
}

func trained(version string, promoted bool, champion string) *eventsv1.ModelTrained {
	return &eventsv1.ModelTrained{
		ModelVersion:    version,
		Artifact:        &eventsv1.StoredObject{Name: deployer.ArtifactName(version)},
		Metrics:         map[string]float64{"roc_auc": 0.81, "brier": 0.12},
		Promoted:        promoted,
		ChampionVersion: champion,
		ChampionMetrics: map[string]float64{"roc_auc": 0.83},
		GateReason:      "holdout ROC AUC compared",
		Scoring:         &eventsv1.StoredObject{Name: "runs/run-1/features/scoring.parquet"},
	}
}

// message is the trainer's output for run-1 of the ETL pipeline.
func message(t testing.TB, p *eventsv1.ModelTrained) eventing.Message {
	return messageOf(t, "run-1", p)
}

// messageOf is the trainer's output for a run of the ETL pipeline.
func messageOf(t testing.TB, runID string, p *eventsv1.ModelTrained) eventing.Message {
	return eventingtest.Event(t, events.ModelTrained, runID, events.ETLMLTraining, p).Message()
}

func (f *fixture) process(t testing.TB, msg eventing.Message, want eventing.Outcome) {
	t.Helper()
	out, err := f.router.Process(context.Background(), msg)
	if out != want {
		var reasons []string
		rows, _ := f.pool.Query(context.Background(), `SELECT reason FROM dead_letters`)
		for rows.Next() {
			var r string
			_ = rows.Scan(&r)
			reasons = append(reasons, r)
		}
		rows.Close()
		t.Fatalf("outcome %s (%v), want %s; dead letters %q", out, err, want, reasons)
	}
}

type prediction struct {
	version string
	p       float64
	level   string
	runID   string
}

func (f *fixture) predictions(t testing.TB) map[int64][]prediction {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT asset_id, model_version, failure_probability, risk_level, run_id FROM ml_predictions ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]prediction{}
	for rows.Next() {
		var id int64
		var p prediction
		if err := rows.Scan(&id, &p.version, &p.p, &p.level, &p.runID); err != nil {
			t.Fatal(err)
		}
		out[id] = append(out[id], p)
	}
	return out
}

func (f *fixture) deployed(t testing.TB) []*eventsv1.ModelDeployed {
	return eventingtest.Emitted(t, f.pool, events.ModelDeployed, "", func() *eventsv1.ModelDeployed { return &eventsv1.ModelDeployed{} })
}

// lastFigures is the figures of the last step.succeeded.
func (f *fixture) lastFigures(t testing.TB) map[string]float64 {
	t.Helper()
	var p eventsv1.StepSucceeded
	if !eventingtest.Last(t, f.pool, events.StepSucceeded, &p) {
		t.Fatal("no step.succeeded")
	}
	return p.GetFigures()
}

// checkScored asserts one prediction by version for every active asset of
// run-1, equal to the model's own probability, leveled by its vehicle
// type's bands.
func (f *fixture) checkScored(t testing.TB, version string) {
	t.Helper()
	f.checkScoredBy(t, version, "run-1", f.rows)
}

// checkScoredBy asserts one prediction by version for every asset of rows,
// written by runID.
func (f *fixture) checkScoredBy(t testing.TB, version, runID string, rows []features.Row) {
	t.Helper()
	m := f.models[version]
	got := f.predictions(t)
	for _, r := range rows {
		var found *prediction
		for i := range got[r.AssetID] {
			if got[r.AssetID][i].version == version {
				if found != nil {
					t.Fatalf("asset %d has two predictions by %s", r.AssetID, version)
				}
				found = &got[r.AssetID][i]
			}
		}
		if found == nil {
			t.Fatalf("asset %d has no prediction by %s: %v", r.AssetID, version, got[r.AssetID])
		}
		want, _ := m.PredictRow(r)
		level := f.mon.Bands.Level(want, r.VehicleType)
		if math.Abs(found.p-want) > 1e-12 || found.level != level || found.runID != runID {
			t.Errorf("asset %d: %+v, want p=%v level=%s run %s", r.AssetID, *found, want, level, runID)
		}
	}
	if len(got[activeAssets+1]) != 0 {
		t.Errorf("the retired asset, absent from the scoring file, was scored: %v", got[activeAssets+1])
	}
}

func TestPromotedModelIsDeployedAndScoresTheFleet(t *testing.T) {
	for _, name := range []string{engine.Local, engine.Vertex} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := setup(t, name)
			f.train(t, "v1", 1, true)
			msg := message(t, trained("v1", true, ""))
			f.process(t, msg, eventing.Handled)
			f.checkScored(t, "v1")

			evs := f.deployed(t)
			if len(evs) != 1 {
				t.Fatalf("%d model.deployed events", len(evs))
			}
			d := evs[0]
			var sum int32
			for _, l := range monitor.Levels {
				sum += d.GetRiskLevels()[l]
			}
			if d.GetModelVersion() != "v1" || !d.GetPromoted() || d.GetScoredAssets() != activeAssets || sum != activeAssets ||
				d.GetMetrics()["roc_auc"] != 0.81 || d.GetMetrics()["champion_roc_auc"] != 0.83 || d.GetGateReason() == "" || d.GetEndpoint() == "" {
				t.Errorf("model.deployed %v", d)
			}
			fig := f.lastFigures(t)
			if fig["scored_assets"] != activeAssets || fig["active_assets"] != activeAssets || fig["promoted"] != 1 || fig["new_deployment"] != 1 ||
				fig["risk_low"]+fig["risk_medium"]+fig["risk_high"]+fig["risk_critical"] != activeAssets {
				t.Errorf("figures %v", fig)
			}
			var engineName, version string
			var active bool
			if err := f.pool.QueryRow(ctx, `SELECT engine, model_version, active FROM model_deployments`).Scan(&engineName, &version, &active); err != nil {
				t.Fatal(err)
			}
			if engineName != name || version != "v1" || !active {
				t.Errorf("deployment row %s %s %v", engineName, version, active)
			}
			if f.pred != nil {
				if cur := f.pred.Current(); cur == nil || cur.Version() != "v1" {
					t.Errorf("local predictor serves %v", cur)
				}
			}

			// The same message again is a duplicate; a new event for the same
			// model (the trainer's step redelivered) rewrites the predictions.
			f.process(t, msg, eventing.Duplicate)
			f.process(t, message(t, trained("v1", true, "")), eventing.Handled)
			f.checkScored(t, "v1")
			var n int
			if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM ml_predictions`).Scan(&n); err != nil || n != activeAssets {
				t.Errorf("%d predictions after redelivery (%v), want %d", n, err, activeAssets)
			}
			if fig := f.lastFigures(t); fig["new_deployment"] != 0 {
				t.Errorf("redelivery deployed again: %v", fig)
			}
			if f.fake != nil && (len(f.fake.Uploads()) != 1 || len(f.fake.Deploys()) != 1) {
				t.Errorf("redelivery sent %d uploads, %d deploys", len(f.fake.Uploads()), len(f.fake.Deploys()))
			}

			// A better model replaces it; the previous deployment is retired.
			f.train(t, "v2", 2, true)
			f.process(t, message(t, trained("v2", true, "v1")), eventing.Handled)
			f.checkScored(t, "v2")
			f.checkScored(t, "v1") // history kept
			var activeVersion string
			var rows int
			if err := f.pool.QueryRow(ctx, `SELECT (SELECT model_version FROM model_deployments WHERE active), count(*) FROM model_deployments`).Scan(&activeVersion, &rows); err != nil {
				t.Fatal(err)
			}
			if activeVersion != "v2" || rows != 2 {
				t.Errorf("active deployment %s of %d rows", activeVersion, rows)
			}
			if f.fake != nil {
				if u := f.fake.Undeploys(); len(u) != 1 || u[0].GetDeployedModelId() != vertex.DeployedModelID("v1") {
					t.Errorf("undeploys %v", u)
				}
			}
		})
	}
}

func TestNotPromotedKeepsTheChampion(t *testing.T) {
	for _, name := range []string{engine.Local, engine.Vertex} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := setup(t, name)
			f.train(t, "champ", 1, true)
			f.process(t, message(t, trained("champ", true, "")), eventing.Handled)
			if _, err := f.pool.Exec(ctx, `DELETE FROM ml_predictions`); err != nil {
				t.Fatal(err)
			}

			f.train(t, "worse", 2, false)
			f.process(t, message(t, trained("worse", false, "champ")), eventing.Handled)
			f.checkScored(t, "champ")
			var n int
			if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM ml_predictions WHERE model_version = 'worse'`).Scan(&n); err != nil || n != 0 {
				t.Errorf("%d predictions by the rejected model (%v)", n, err)
			}
			evs := f.deployed(t)
			last := evs[len(evs)-1]
			if last.GetModelVersion() != "champ" || last.GetPromoted() || last.GetScoredAssets() != activeAssets {
				t.Errorf("model.deployed %v", last)
			}
			if fig := f.lastFigures(t); fig["promoted"] != 0 || fig["new_deployment"] != 0 {
				t.Errorf("figures %v", fig)
			}
			if f.pred != nil && f.pred.Current().Version() != "champ" {
				t.Errorf("local predictor serves %s", f.pred.Current().Version())
			}
			if f.fake != nil && (len(f.fake.Uploads()) != 1 || len(f.fake.Deploys()) != 1 || len(f.fake.Undeploys()) != 0) {
				t.Errorf("not promoted, yet %d uploads %d deploys %d undeploys", len(f.fake.Uploads()), len(f.fake.Deploys()), len(f.fake.Undeploys()))
			}
		})
	}
}

func TestLocalChampionRestoredAfterRestart(t *testing.T) {
	ctx := context.Background()
	f := setup(t, engine.Local)
	f.train(t, "champ", 1, true)
	f.process(t, message(t, trained("champ", true, "")), eventing.Handled)

	// A new process: an empty predictor, restored from model_deployments;
	// then a not-promoted run scores with it.
	pred := predictor.New(predictor.Options{})
	h, err := deployer.New(f.svc, f.store, local.New(pred, ""), f.mon, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.Restore(ctx, f.svc)
	if err != nil || v != "champ" || pred.Current() == nil || pred.Current().Version() != "champ" {
		t.Fatalf("restore: %q %v", v, err)
	}

	// Even without a restore, keeping the champion loads it.
	f2 := setup(t, engine.Local)
	f2.train(t, "champ", 1, true)
	f2.train(t, "worse", 2, false)
	f2.process(t, message(t, trained("worse", false, "champ")), eventing.Handled)
	f2.checkScored(t, "champ")
}

func TestPermanentFailures(t *testing.T) {
	ctx := context.Background()
	f := setup(t, engine.Local)
	f.train(t, "v1", 1, true)
	if err := f.store.Put(ctx, "runs/run-1/features/bad.parquet", "application/octet-stream", []byte("not parquet")); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Put(ctx, "models/broken/model.json", "application/json", []byte(`{"format_version": 1, "kind": "logistic"}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		p      *eventsv1.ModelTrained
		reason string
	}{
		{"missing scoring", func() *eventsv1.ModelTrained {
			p := trained("v1", true, "")
			p.Scoring.Name = "runs/run-1/features/nope.parquet"
			return p
		}(), "scoring features"},
		{"no scoring", func() *eventsv1.ModelTrained { p := trained("v1", true, ""); p.Scoring = nil; return p }(), "names no scoring"},
		{"unreadable scoring", func() *eventsv1.ModelTrained {
			p := trained("v1", true, "")
			p.Scoring.Name = "runs/run-1/features/bad.parquet"
			return p
		}(), "parquet"},
		{"missing model", trained("v9", true, ""), "object does not exist"},
		{"broken model", func() *eventsv1.ModelTrained {
			p := trained("broken", true, "")
			return p
		}(), "invalid model artifact"},
		{"no champion to keep", trained("v1", false, ""), "names no champion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := message(t, c.p)
			f.process(t, msg, eventing.DeadLettered)
			var reason string
			if err := f.pool.QueryRow(ctx, `SELECT reason FROM dead_letters WHERE event_id = $1`, msg.Attributes[eventing.AttrID]).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q, want %q", reason, c.reason)
			}
		})
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM ml_predictions`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d predictions after failures", n)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	base := map[string]string{"DATABASE_URL": "postgres://x"}
	var cfg deployer.Config
	if err := config.LoadFrom(ctx, &cfg, base); err != nil {
		t.Fatal(err)
	}
	if cfg.Engine != engine.Local || cfg.PredictRoute != "/predict" || cfg.HealthRoute != "/predict/health" || cfg.Vertex.Location != "us-central1" || cfg.Vertex.PredictBatch != 200 || cfg.Vertex.CanaryPercent != 0 {
		t.Errorf("defaults %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	env := map[string]string{"DATABASE_URL": "postgres://x", "DEPLOY_ENGINE": "vertex", "GOOGLE_CLOUD_PROJECT": "p"}
	var v deployer.Config
	if err := config.LoadFrom(ctx, &v, env); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(); err == nil || !strings.Contains(err.Error(), "VERTEX_ENDPOINT") {
		t.Errorf("vertex without an endpoint: %v", err)
	}
	env["VERTEX_ENDPOINT"], env["VERTEX_PREDICTOR_IMAGE"] = "123", "img"
	if err := config.LoadFrom(ctx, &v, env); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(); err != nil || v.Vertex.Project != "p" {
		t.Errorf("%v, Vertex project %q: want the service's project by default", err, v.Vertex.Project)
	}
	if err := (&deployer.Config{Engine: "sagemaker", DriftWarn: 0.1, DriftAlert: 0.25, LabelWindowDays: 1}).Validate(); err == nil {
		t.Error("unknown engine accepted")
	}
}

// The monitoring settings default to monitor's and featurejob's defaults,
// and each invalid one is named.
func TestMonitoringConfig(t *testing.T) {
	ctx := context.Background()
	var cfg deployer.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://x"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := cfg.Monitoring()
	want := deployer.Monitoring{
		Bands: monitor.RiskBands{Default: monitor.DefaultBands}, Drift: monitor.DefaultThresholds,
		LabelWindowDays: features.DefaultLabelWindowDays, Promotion: monitor.DefaultPromotionRule,
		Retrain: deployer.Retrain{Auto: false, CooldownDays: 7, DecayAUCBelow: 0.6},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("defaults %+v, want %+v", m, want)
	}
	if cfg.Vertex.RiskBands != "" {
		t.Errorf("the Vertex container is given RISK_BANDS %q by default", cfg.Vertex.RiskBands)
	}
	set := map[string]string{"RISK_BANDS": "0.3,0.5,0.8;bus=0.2,0.4,0.6", "DRIFT_WARN": "0.2", "DRIFT_ALERT": "0.4",
		"LABEL_WINDOW_DAYS": "30", "SHADOW_MARGIN": "0.05", "SHADOW_MIN_LABELLED": "10", "SHADOW_MIN_POSITIVES": "3",
		"AUTO_RETRAIN": "true", "RETRAIN_COOLDOWN_DAYS": "3", "DECAY_AUC_BELOW": "0.7"}
	m = monitoring(t, set)
	want = deployer.Monitoring{
		Bands: monitor.RiskBands{Default: monitor.Bands{Medium: 0.3, High: 0.5, Critical: 0.8},
			ByVehicleType: map[string]monitor.Bands{"bus": {Medium: 0.2, High: 0.4, Critical: 0.6}}},
		Drift: monitor.Thresholds{Warn: 0.2, Alert: 0.4}, LabelWindowDays: 30,
		Promotion: monitor.PromotionRule{Margin: 0.05, MinLabelled: 10, MinPositives: 3},
		Retrain:   deployer.Retrain{Auto: true, CooldownDays: 3, DecayAUCBelow: 0.7},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("set %+v, want %+v", m, want)
	}
	for name, bad := range map[string]string{
		"RISK_BANDS": "0.5,0.4,0.8", "DRIFT_ALERT": "0.05", "LABEL_WINDOW_DAYS": "0", "SHADOW_MIN_LABELLED": "-1",
		"RETRAIN_COOLDOWN_DAYS": "-2", "DECAY_AUC_BELOW": "1.5",
	} {
		var c deployer.Config
		if err := config.LoadFrom(ctx, &c, map[string]string{"DATABASE_URL": "postgres://x", name: bad}); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want an error naming it", name, bad, err)
		}
	}
}

// Fault injection (DEPLOY_FAULT_FILE): a listed run's deploy fails for good
// and nothing is deployed; once the run is off the list, a copy of its
// model.trained (a retry) deploys.
func TestInjectedFault(t *testing.T) {
	f := setup(t, engine.Local)
	f.train(t, "v1", 1, true)
	faults := filepath.Join(t.TempDir(), "deploy-faults")
	f.h.InjectFaults(faults)
	if err := os.WriteFile(faults, []byte("other-run\nrun-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := message(t, trained("v1", true, ""))
	f.process(t, msg, eventing.DeadLettered)
	var reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT reason FROM dead_letters`).Scan(&reason); err != nil ||
		!strings.Contains(reason, "injected fault: run run-1 is listed in DEPLOY_FAULT_FILE") {
		t.Fatalf("dead letter %q (%v)", reason, err)
	}
	if f.pred.Current() != nil || len(f.deployed(t)) != 0 {
		t.Fatal("a faulty deploy deployed")
	}
	if err := os.Remove(faults); err != nil {
		t.Fatal(err)
	}
	ev, err := eventing.FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ev.Reissue("")
	if err != nil {
		t.Fatal(err)
	}
	f.process(t, again.Message(), eventing.Handled)
	f.checkScored(t, "v1")
}

// The step's declared edges are the registry's.
func TestRoutesMatchTheRegistry(t *testing.T) {
	eventingtest.CheckRoutes(t, setup(t, "local").router, events.Deployer)
}
