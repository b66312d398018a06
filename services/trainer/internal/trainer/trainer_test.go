package trainer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainertest"
)

var asOf = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// The features of a seeded synthetic fleet, built once: its breakdown hazard
// grows with age and neglected maintenance, so the label is learnable.
var (
	fleetOnce     sync.Once
	fleetTraining []features.Row
	fleetScoring  []features.Row
)

func fleetFeatures(t *testing.T) ([]features.Row, []features.Row) {
	t.Helper()
	fleetOnce.Do(func() {
		pool := pgtest.New(t)
		ctx := context.Background()
		if _, err := fleet.Seed(ctx, pool, fleet.SeedOptions{Seed: 7, Now: asOf, Assets: 500, Years: 2}); err != nil {
			t.Fatal(err)
		}
		var err error
		fleetTraining, fleetScoring, err = trainertest.Build(ctx, pool, trainertest.Options{AsOf: asOf, Snapshots: 16})
		if err != nil {
			t.Fatal(err)
		}
	})
	if len(fleetTraining) == 0 {
		t.Fatal("no fleet features (the first test to build them failed)")
	}
	return fleetTraining, fleetScoring
}

type env struct {
	pool   *pgxpool.Pool
	store  *objstore.Store
	router *eventing.Router
}

func newEnv(t *testing.T, cfg trainer.Config) env {
	t.Helper()
	pool := pgtest.New(t)
	store := objstoretest.New(t)
	h, err := trainer.New(cfg, pool, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Trainer, Pool: pool,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r)
	return env{pool: pool, store: store, router: r}
}

func defaultConfig(t *testing.T, env map[string]string) trainer.Config {
	t.Helper()
	var cfg trainer.Config
	if env == nil {
		env = map[string]string{}
	}
	env["DATABASE_URL"] = "postgres://unused"
	if err := config.LoadFrom(context.Background(), &cfg, env); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// put stores rows as runs/<run>/features/training.parquet and a scoring file
// beside it, and returns the features.built message pointing at them.
func (e env) put(t *testing.T, runID string, training, scoring []features.Row) eventing.Message {
	t.Helper()
	ctx := context.Background()
	p := &eventsv1.FeaturesBuilt{SnapshotDate: asOf.Format(features.DateLayout), Engine: "local"}
	for _, f := range []struct {
		obj  string
		rows []features.Row
		dst  **eventsv1.StoredObject
	}{{features.TrainingObject, training, &p.Training}, {features.ScoringObject, scoring, &p.Scoring}} {
		data, err := trainertest.Parquet(f.rows)
		if err != nil {
			t.Fatal(err)
		}
		name := "runs/" + runID + "/features/" + f.obj
		if err := e.store.Put(ctx, name, "application/vnd.apache.parquet", data); err != nil {
			t.Fatal(err)
		}
		*f.dst = &eventsv1.StoredObject{Name: name, Uri: e.store.URI(name), Rows: int64(len(f.rows)), Bytes: int64(len(data))}
	}
	return built(t, runID, p)
}

// built is featurejob's output for a run of the ETL pipeline.
func built(t *testing.T, runID string, p *eventsv1.FeaturesBuilt) eventing.Message {
	return eventingtest.Event(t, events.FeaturesBuilt, runID, events.ETLMLTraining, p).Message()
}

func trained(t *testing.T, pool *pgxpool.Pool) []*eventsv1.ModelTrained {
	return eventingtest.Emitted(t, pool, events.ModelTrained, "", func() *eventsv1.ModelTrained { return &eventsv1.ModelTrained{} })
}

type registryRow struct {
	version, runID, kind, uri, reason, profileName string
	champion, promoted, shadow                     bool
	metrics                                        map[string]float64
	comparedWith                                   *string
}

func registry(t *testing.T, pool *pgxpool.Pool) []registryRow {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT version, run_id, kind, artifact_uri, gate_reason, profile_name, champion, promoted, shadow, metrics, compared_with
		 FROM models ORDER BY created_at, version`)
	if err != nil {
		t.Fatal(err)
	}
	var out []registryRow
	var r registryRow
	if _, err := pgx.ForEachRow(rows, []any{&r.version, &r.runID, &r.kind, &r.uri, &r.reason, &r.profileName, &r.champion, &r.promoted, &r.shadow, &r.metrics, &r.comparedWith},
		func() error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// shuffledLabels returns rows with the labels of the snapshots before
// holdoutFrom permuted by a generator seeded with seed: a model trained on
// them has no signal, while the holdout keeps its true labels.
func shuffledLabels(rows []features.Row, holdoutFrom string, seed uint64) []features.Row {
	out := append([]features.Row(nil), rows...)
	var idx []int
	for i, r := range out {
		if r.SnapshotDate < holdoutFrom {
			idx = append(idx, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for k := len(idx) - 1; k > 0; k-- {
		j := rng.IntN(k + 1)
		out[idx[k]].Label, out[idx[j]].Label = out[idx[j]].Label, out[idx[k]].Label
	}
	return out
}

func stepSucceeded(t *testing.T, pool *pgxpool.Pool) []*eventsv1.StepSucceeded {
	return eventingtest.Emitted(t, pool, events.StepSucceeded, "", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} })
}

func TestTrainGatePromoteAndKeepChampion(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, nil))
	ctx := context.Background()

	// First model: no champion, promoted.
	first := e.put(t, "run-1", training, scoring)
	eventingtest.Deliver(t, e.router, first, eventing.Handled)
	evs := trained(t, e.pool)
	if len(evs) != 1 {
		t.Fatalf("%d model.trained events, want 1", len(evs))
	}
	mt := evs[0]
	if !mt.Promoted || mt.ChampionVersion != "" || !strings.Contains(mt.GateReason, "first model") {
		t.Errorf("first gate: promoted=%v champion=%q reason=%q", mt.Promoted, mt.ChampionVersion, mt.GateReason)
	}
	if !strings.HasPrefix(mt.ModelVersion, "v20260301-") {
		t.Errorf("version %q, want v20260301-<hash>", mt.ModelVersion)
	}
	if mt.Scoring.GetName() != "runs/run-1/features/scoring.parquet" {
		t.Errorf("scoring not passed through: %v", mt.Scoring)
	}
	auc := mt.Metrics["roc_auc"]
	t.Logf("first model %s: %v", mt.ModelVersion, mt.Metrics)
	if auc < 0.6 || auc > 0.95 {
		t.Errorf("holdout ROC AUC %.4f: the fleet's hazard signal should give 0.6–0.95", auc)
	}
	for _, k := range []string{"pr_auc", "brier", "ece", "rows_train", "rows_holdout"} {
		if _, ok := mt.Metrics[k]; !ok {
			t.Errorf("metrics lack %s: %v", k, mt.Metrics)
		}
	}
	// The artifact, under both names, loads and predicts.
	for _, name := range []string{trainer.ArtifactName(mt.ModelVersion), trainer.RunArtifactName("run-1")} {
		data, err := e.store.Get(ctx, name)
		if err != nil {
			t.Fatalf("artifact %s: %v", name, err)
		}
		m, err := model.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != mt.ModelVersion || m.RunID != "run-1" || !strings.HasPrefix(m.Training.Fingerprint, "sha256:") ||
			m.Metrics["roc_auc"] != auc || len(m.Training.HoldoutDates) == 0 {
			t.Errorf("artifact %s: version %s run %s fingerprint %s metrics %v", name, m.Version, m.RunID, m.Training.Fingerprint, m.Metrics)
		}
		if _, err := m.PredictRow(scoring[0]); err != nil {
			t.Error(err)
		}
	}
	if mt.Artifact.GetUri() != "gs://"+objstoretest.Bucket+"/"+trainer.ArtifactName(mt.ModelVersion) || mt.Artifact.GetBytes() == 0 {
		t.Errorf("artifact object %v", mt.Artifact)
	}
	reg := registry(t, e.pool)
	if len(reg) != 1 || !reg[0].champion || !reg[0].promoted || reg[0].shadow || reg[0].version != mt.ModelVersion || reg[0].metrics["roc_auc"] != auc {
		t.Fatalf("registry after first: %+v", reg)
	}
	steps := stepSucceeded(t, e.pool)
	if len(steps) != 1 || steps[0].Figures["promoted"] != 1 || steps[0].Figures["roc_auc"] != auc || steps[0].Figures["rows_train"] == 0 {
		t.Errorf("step figures: %v", steps)
	}

	// Second model trained on labels without signal, evaluated on the same
	// true holdout: worse than the champion, not promoted.
	first0, _ := model.Load(mustGet(t, e.store, trainer.ArtifactName(mt.ModelVersion)))
	second := e.put(t, "run-2", shuffledLabels(training, first0.Training.HoldoutDates[0], 1), scoring)
	eventingtest.Deliver(t, e.router, second, eventing.Handled)
	evs = trained(t, e.pool)
	mt2 := evs[1]
	t.Logf("second model %s: AUC %.4f; gate: %s", mt2.ModelVersion, mt2.Metrics["roc_auc"], mt2.GateReason)
	if mt2.Promoted || mt2.ChampionVersion != mt.ModelVersion || mt2.ModelVersion == mt.ModelVersion {
		t.Errorf("second gate: promoted=%v champion=%q version=%q reason=%q", mt2.Promoted, mt2.ChampionVersion, mt2.ModelVersion, mt2.GateReason)
	}
	// The champion was scored on the second run's holdout, which has the same rows and labels.
	if got := mt2.ChampionMetrics["roc_auc"]; got != auc {
		t.Errorf("champion's AUC on the same holdout %.6f, want %.6f", got, auc)
	}
	if mt2.Metrics["roc_auc"] >= auc {
		t.Errorf("shuffled-label model AUC %.4f not below champion's %.4f", mt2.Metrics["roc_auc"], auc)
	}
	reg = registry(t, e.pool)
	if len(reg) != 2 {
		t.Fatalf("registry: %+v", reg)
	}
	for _, r := range reg {
		wantChamp := r.version == mt.ModelVersion
		if r.champion != wantChamp || r.shadow {
			t.Errorf("registry %s champion=%v shadow=%v, want %v and no shadow (SHADOW=off)", r.version, r.champion, r.shadow, wantChamp)
		}
		if r.version == mt2.ModelVersion && (r.promoted || r.comparedWith == nil || *r.comparedWith != mt.ModelVersion || !strings.Contains(r.reason, "<")) {
			t.Errorf("second row: %+v", r)
		}
	}
	steps = stepSucceeded(t, e.pool)
	if f := steps[1].Figures; f["promoted"] != 0 || f["champion_roc_auc"] != auc {
		t.Errorf("second step figures %v", f)
	}
}

func mustGet(t *testing.T, s *objstore.Store, name string) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGateMarginPromotesWithinMargin(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, map[string]string{"GATE_MARGIN": "0.5"}))
	eventingtest.Deliver(t, e.router, e.put(t, "run-1", training, scoring), eventing.Handled)
	first := trained(t, e.pool)[0]
	m, _ := model.Load(mustGet(t, e.store, trainer.ArtifactName(first.ModelVersion)))
	eventingtest.Deliver(t, e.router, e.put(t, "run-2", shuffledLabels(training, m.Training.HoldoutDates[0], 1), scoring), eventing.Handled)
	second := trained(t, e.pool)[1]
	if !second.Promoted || !strings.Contains(second.GateReason, "margin 0.5000") {
		t.Errorf("with margin 0.5 a worse model is promoted: promoted=%v reason=%q", second.Promoted, second.GateReason)
	}
	var champ string
	if err := e.pool.QueryRow(context.Background(), `SELECT version FROM models WHERE champion`).Scan(&champ); err != nil || champ != second.ModelVersion {
		t.Errorf("champion %q (%v), want %q", champ, err, second.ModelVersion)
	}
}

func TestRedeliveryIsIdempotent(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, nil))
	msg := e.put(t, "run-1", training, scoring)
	eventingtest.Deliver(t, e.router, msg, eventing.Handled)
	profile := mustGet(t, e.store, trainer.ProfileName(trained(t, e.pool)[0].ModelVersion))
	// The same delivery again: deduplicated on the event id.
	eventingtest.Deliver(t, e.router, msg, eventing.Duplicate)
	// The same features re-emitted under a new event id (featurejob
	// redelivered): the same version, rewritten, still one registry row and
	// still the champion.
	again := e.put(t, "run-1", training, scoring)
	eventingtest.Deliver(t, e.router, again, eventing.Handled)
	evs := trained(t, e.pool)
	if len(evs) != 2 || evs[0].ModelVersion != evs[1].ModelVersion {
		t.Fatalf("events: %v", evs)
	}
	if !evs[1].Promoted || !strings.Contains(evs[1].GateReason, "already the champion") {
		t.Errorf("re-emitted gate: promoted=%v reason=%q", evs[1].Promoted, evs[1].GateReason)
	}
	if evs[0].Metrics["roc_auc"] != evs[1].Metrics["roc_auc"] {
		t.Errorf("retraining the same data changed the AUC: %v → %v", evs[0].Metrics["roc_auc"], evs[1].Metrics["roc_auc"])
	}
	reg := registry(t, e.pool)
	if len(reg) != 1 || !reg[0].champion {
		t.Errorf("registry: %+v", reg)
	}
	objs, err := e.store.List(context.Background(), "models/")
	if err != nil || len(objs) != 2 {
		t.Errorf("model objects %v (%v), want the artifact and the profile", objs, err)
	}
	if again := mustGet(t, e.store, trainer.ProfileName(evs[0].ModelVersion)); !bytes.Equal(again, profile) {
		t.Error("the redelivery rewrote the profile with other content")
	}
}

func TestBadInputIsDeadLettered(t *testing.T) {
	training, scoring := fleetFeatures(t)
	oneDate := func() []features.Row {
		var out []features.Row
		for _, r := range training {
			if r.SnapshotDate == training[len(training)-1].SnapshotDate {
				out = append(out, r)
			}
		}
		return out
	}
	allZero := func() []features.Row {
		out := append([]features.Row(nil), training...)
		for i := range out {
			out[i].Label = 0
		}
		return out
	}
	tests := []struct {
		name   string
		msg    func(t *testing.T, e env) eventing.Message
		reason string
	}{
		{"missing object", func(t *testing.T, e env) eventing.Message {
			return built(t, "run-x", &eventsv1.FeaturesBuilt{SnapshotDate: "2026-03-01",
				Training: &eventsv1.StoredObject{Name: "runs/run-x/features/training.parquet"}})
		}, "object does not exist"},
		{"no training object", func(t *testing.T, e env) eventing.Message {
			return built(t, "run-x", &eventsv1.FeaturesBuilt{SnapshotDate: "2026-03-01"})
		}, "names no training object"},
		{"empty file", func(t *testing.T, e env) eventing.Message {
			if err := e.store.Put(context.Background(), "runs/run-x/features/training.parquet", "x", nil); err != nil {
				t.Fatal(err)
			}
			return built(t, "run-x", &eventsv1.FeaturesBuilt{SnapshotDate: "2026-03-01",
				Training: &eventsv1.StoredObject{Name: "runs/run-x/features/training.parquet"}})
		}, "empty"},
		{"not parquet", func(t *testing.T, e env) eventing.Message {
			if err := e.store.Put(context.Background(), "runs/run-x/features/training.parquet", "x", []byte("asset_id,label\n1,0\n")); err != nil {
				t.Fatal(err)
			}
			return built(t, "run-x", &eventsv1.FeaturesBuilt{SnapshotDate: "2026-03-01",
				Training: &eventsv1.StoredObject{Name: "runs/run-x/features/training.parquet"}})
		}, "not a Parquet file"},
		{"no rows", func(t *testing.T, e env) eventing.Message { return e.put(t, "run-x", []features.Row{}, scoring) }, "no rows"},
		{"one snapshot date", func(t *testing.T, e env) eventing.Message { return e.put(t, "run-x", oneDate(), scoring) }, "at least two snapshot dates"},
		{"single class", func(t *testing.T, e env) eventing.Message { return e.put(t, "run-x", allZero(), scoring) }, "have label 0"},
		{"scoring file as training", func(t *testing.T, e env) eventing.Message {
			return e.put(t, "run-x", append(append([]features.Row(nil), training...), scoring...), scoring)
		}, "label -1 is not 0 or 1"},
		{"other pipeline", func(t *testing.T, e env) eventing.Message {
			return eventingtest.Event(t, events.FeaturesBuilt, "run-x", events.WeeklyKPIReport, &eventsv1.FeaturesBuilt{}).Message()
		}, "trainer takes cmmsflow.features.built.v1 only in etl_ml_training"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, defaultConfig(t, nil))
			eventingtest.Deliver(t, e.router, tt.msg(t, e), eventing.DeadLettered)
			var reason string
			if err := e.pool.QueryRow(context.Background(), `SELECT reason FROM dead_letters`).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", reason, tt.reason)
			}
			if n := len(trained(t, e.pool)); n != 0 {
				t.Errorf("%d model.trained events", n)
			}
			if tt.name == "other pipeline" {
				return
			}
			failed := eventingtest.Emitted(t, e.pool, events.StepFailed, "", func() *eventsv1.StepFailed { return &eventsv1.StepFailed{} })
			if len(failed) != 1 || failed[0].Step != events.Trainer || failed[0].Retrying {
				t.Errorf("step failed events: %v", failed)
			}
		})
	}
}

func TestGBTLearner(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, map[string]string{"MODEL_KIND": "gbt"}))
	eventingtest.Deliver(t, e.router, e.put(t, "run-1", training, scoring), eventing.Handled)
	mt := trained(t, e.pool)[0]
	m, err := model.Load(mustGet(t, e.store, mt.Artifact.GetName()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != model.GBT || mt.Metrics["roc_auc"] < 0.6 {
		t.Errorf("kind %s, AUC %.4f", m.Kind, mt.Metrics["roc_auc"])
	}
}

func TestConfig(t *testing.T) {
	cfg := defaultConfig(t, nil)
	if cfg.GateMargin != 0 || cfg.HoldoutFraction != 0.2 || cfg.ModelKind != "logistic" || cfg.LabelEmbargoDays != features.DefaultLabelWindowDays ||
		cfg.Shadow != trainer.ShadowOff {
		t.Errorf("defaults: %+v", cfg)
	}
	store, pool := objstoretest.New(t), pgtest.New(t)
	for _, env := range []map[string]string{
		{"MODEL_KIND": "forest"}, {"HOLDOUT_FRACTION": "1"}, {"GATE_MARGIN": "-0.1"}, {"LABEL_EMBARGO_DAYS": "-1"},
		{"SHADOW": "some"}, {"SHADOW": "ALL"},
	} {
		if _, err := trainer.New(defaultConfig(t, env), pool, store, nil); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
	if _, err := trainer.New(cfg, pool, nil, nil); err == nil {
		t.Error("no store accepted")
	}
	if _, err := trainer.New(cfg, nil, store, nil); err == nil {
		t.Error("no pool accepted")
	}
}

func TestMetricsAreJSONSafe(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, nil))
	eventingtest.Deliver(t, e.router, e.put(t, "run-1", training, scoring), eventing.Handled)
	var raw []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT metrics::text FROM models`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	if err := json.Unmarshal(raw, &m); err != nil || m["roc_auc"] == 0 {
		t.Errorf("metrics %s: %v", raw, err)
	}
}

// The step's declared edges are the registry's.
func TestRoutesMatchTheRegistry(t *testing.T) {
	eventingtest.CheckRoutes(t, newEnv(t, defaultConfig(t, nil)).router, events.Trainer)
}
