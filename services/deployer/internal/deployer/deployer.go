// Package deployer is the deployer service's step of the etl_ml_training
// pipeline. On model.trained it serves the champion through the configured
// engine — the new model when the gate promoted it, otherwise the current
// champion, which stays deployed as it was — records the deployment in
// model_deployments, scores every asset of the run's scoring features
// (runs/<run_id>/features/scoring.parquet, one row per ACTIVE asset) through
// the engine, writes ml_predictions and emits model.deployed.
package deployer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// Handler runs the step.
type Handler struct {
	pool   *pgxpool.Pool // reads models and assets
	store  *objstore.Store
	engine engine.Engine
	log    *slog.Logger
	// faultFile lists the runs whose deploy fails (fault injection; "": off).
	faultFile string
}

// InjectFaults makes the deploy of every run listed in the file at path (one
// run id a line, read at each deploy) fail for good, as a broken deployment
// would: the event is dead-lettered and the step and its run fail. It is for
// tests of what follows a failed deploy (a retry of the run); the file may
// come and go while the service runs. "" turns it off.
func (h *Handler) InjectFaults(path string) { h.faultFile = path }

// injectedFault is the fault injected into runID's deploy, if any.
func (h *Handler) injectedFault(runID string) error {
	if h.faultFile == "" {
		return nil
	}
	b, err := os.ReadFile(h.faultFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read DEPLOY_FAULT_FILE: %w", err)
	}
	if slices.Contains(strings.Fields(string(b)), runID) {
		return eventing.Permanent(fmt.Errorf("injected fault: run %s is listed in DEPLOY_FAULT_FILE %s", runID, h.faultFile))
	}
	return nil
}

// New returns the handler reading through pool and from store and serving
// through eng.
func New(pool *pgxpool.Pool, store *objstore.Store, eng engine.Engine, log *slog.Logger) (*Handler, error) {
	if store == nil || pool == nil {
		return nil, errors.New("deployer: a database pool and an object store are required")
	}
	if eng == nil {
		return nil, errors.New("deployer: no engine")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{pool: pool, store: store, engine: eng, log: log}, nil
}

// Register adds the step to the service's router: model-trained in,
// model-deployed out. The deploy (Vertex AI may take minutes) and the
// scoring run with no transaction open.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStep(events.ModelTrained, events.ModelDeployed, h.Step)
}

// ArtifactName is the trainer's artifact object of a model version.
func ArtifactName(version string) string { return "models/" + version + "/model.json" }

// Step deploys (or keeps) the champion and scores the fleet, with no
// transaction open; the complete transaction records the deployment and the
// predictions (see commit). Its output is the model.deployed payload.
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.ModelTrained
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	m, rows, X, err := h.prepare(ctx, &p)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := h.injectedFault(ev.RunID); err != nil {
		return eventing.StepResult{}, err
	}
	d, err := h.engine.Deploy(ctx, m)
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("deploy %s (%s engine): %w", m.Version(), h.engine.Name(), err)
	}
	probs, err := h.engine.Predict(ctx, d, X)
	if err != nil {
		return eventing.StepResult{}, fmt.Errorf("score %d assets with %s (%s engine): %w", len(X), m.Version(), h.engine.Name(), err)
	}
	if len(probs) != len(rows) {
		return eventing.StepResult{}, fmt.Errorf("score: %d probabilities for %d rows", len(probs), len(rows))
	}
	sc, err := h.scores(ctx, rows, probs)
	if err != nil {
		return eventing.StepResult{}, err
	}
	logging.FromOr(ctx, h.log).InfoContext(ctx, "fleet scored", "model_version", m.Version(), "trained_version", p.GetModelVersion(), "promoted", p.GetPromoted(),
		"engine", d.Engine, "endpoint", d.Endpoint, "new_deployment", d.New, "scored_assets", sc.scored, "risk_levels", sc.levels)
	res := h.result(&p, d, sc)
	res.Commit = func(ctx context.Context, tx pgx.Tx) error {
		return commit(ctx, tx, d, m.ArtifactName, ev.RunID, rows, probs, sc.levels)
	}
	return res, nil
}

// prepare loads the model to serve (the trained one if promoted, else the
// champion it was compared with) and the scoring rows, as vectors.
func (h *Handler) prepare(ctx context.Context, p *eventsv1.ModelTrained) (engine.Model, []features.Row, [][]float64, error) {
	if p.GetModelVersion() == "" {
		return engine.Model{}, nil, nil, eventing.Permanent(errors.New("model.trained names no model_version"))
	}
	version, artifact := p.GetModelVersion(), p.GetArtifact().GetName()
	if !p.GetPromoted() {
		version = p.GetChampionVersion()
		if version == "" {
			return engine.Model{}, nil, nil, eventing.Permanent(fmt.Errorf("model %s was not promoted and names no champion to keep", p.GetModelVersion()))
		}
		var err error
		if artifact, err = h.registeredArtifact(ctx, version); err != nil {
			return engine.Model{}, nil, nil, err
		}
	}
	if artifact == "" {
		artifact = ArtifactName(version)
	}
	m, err := h.load(ctx, version, artifact)
	if err != nil {
		return engine.Model{}, nil, nil, err
	}
	rows, err := h.scoringRows(ctx, p.GetScoring())
	if err != nil {
		return engine.Model{}, nil, nil, err
	}
	X := make([][]float64, len(rows))
	for i, r := range rows {
		if X[i], err = m.Model.Vector(r); err != nil {
			return engine.Model{}, nil, nil, eventing.Permanent(fmt.Errorf("scoring row %d (asset %d): %w", i, r.AssetID, err))
		}
	}
	return m, rows, X, nil
}

// scored is what scoring the fleet gave: the predictions per risk level of
// the assets still in the table (one per asset), their count, and the
// active assets.
type scored struct {
	levels         map[string]int32
	scored, active int
}

// scores counts the predictions per risk level as writePredictions will
// write them: one per asset, for the assets still in the table.
func (h *Handler) scores(ctx context.Context, rows []features.Row, probs []float64) (scored, error) {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.AssetID
	}
	var known []int64
	var sc scored
	if err := h.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), (SELECT count(*) FROM assets WHERE status = 'ACTIVE')
		FROM assets WHERE id = ANY($1)`, ids).Scan(&known, &sc.active); err != nil {
		return scored{}, fmt.Errorf("count assets: %w", err)
	}
	sc.levels = make(map[string]int32, len(predictor.Levels))
	for _, l := range predictor.Levels {
		sc.levels[l] = 0
	}
	seen := make(map[int64]bool, len(known))
	for _, id := range known {
		seen[id] = false
	}
	for i, r := range rows {
		if done, ok := seen[r.AssetID]; ok && !done {
			seen[r.AssetID] = true
			sc.levels[predictor.RiskLevel(probs[i])]++
			sc.scored++
		}
	}
	return sc, nil
}

// commit records the deployment and the predictions. The fleet may have
// changed since it was scored (an asset deleted): then the counts the step
// reports would be wrong, and the step is retried.
func commit(ctx context.Context, tx pgx.Tx, d engine.Deployment, artifact, runID string, rows []features.Row, probs []float64, want map[string]int32) error {
	if err := recordDeployment(ctx, tx, d, artifact, runID); err != nil {
		return err
	}
	got, err := writePredictions(ctx, tx, rows, probs, d.ModelVersion, runID)
	if err != nil {
		return err
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("the fleet changed while it was scored: predictions per level %v, counted %v", got, want)
	}
	return nil
}

// result is the step's output (model.deployed), figures and summary.
func (h *Handler) result(p *eventsv1.ModelTrained, d engine.Deployment, sc scored) eventing.StepResult {
	metrics := maps.Clone(p.GetMetrics())
	if metrics == nil {
		metrics = map[string]float64{}
	}
	for k, v := range p.GetChampionMetrics() {
		metrics["champion_"+k] = v
	}
	out := &eventsv1.ModelDeployed{
		ModelVersion: d.ModelVersion, Promoted: p.GetPromoted(), Endpoint: d.Endpoint,
		ScoredAssets: int32(sc.scored), RiskLevels: sc.levels, Metrics: metrics, GateReason: p.GetGateReason(),
	}
	figures := map[string]float64{
		"scored_assets":  float64(sc.scored),
		"active_assets":  float64(sc.active),
		"promoted":       b2f(p.GetPromoted()),
		"new_deployment": b2f(d.New),
	}
	for _, l := range predictor.Levels {
		figures["risk_"+l] = float64(sc.levels[l])
	}
	version := d.ModelVersion
	what := fmt.Sprintf("kept champion %s (%s not promoted: %s)", version, p.GetModelVersion(), p.GetGateReason())
	if p.GetPromoted() {
		what = fmt.Sprintf("deployed %s", version)
		if !d.New {
			what = fmt.Sprintf("%s already deployed", version)
		}
	}
	levels := sc.levels
	return eventing.StepResult{
		Output:  out,
		Figures: figures,
		Summary: fmt.Sprintf("%s on %s (%s); scored %d of %d active assets: %d low, %d medium, %d high, %d critical",
			what, h.engine.Name(), d.Endpoint, sc.scored, sc.active,
			levels[predictor.Low], levels[predictor.Medium], levels[predictor.High], levels[predictor.Critical]),
	}
}

// registeredArtifact is the artifact object of a registered model version.
func (h *Handler) registeredArtifact(ctx context.Context, version string) (string, error) {
	var name string
	err := h.pool.QueryRow(ctx, `SELECT artifact_name FROM models WHERE version = $1`, version).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil // not registered: the trainer's naming convention
	}
	if err != nil {
		return "", fmt.Errorf("read model %s: %w", version, err)
	}
	return name, nil
}

// load reads the artifact of version; a missing or invalid one is permanent.
func (h *Handler) load(ctx context.Context, version, name string) (engine.Model, error) {
	m, err := predictor.LoadObject(ctx, h.store, name)
	if errors.Is(err, objstore.ErrNotExist) || errors.Is(err, predictor.ErrInvalidArtifact) {
		return engine.Model{}, eventing.Permanent(fmt.Errorf("model %s: %w", version, err))
	}
	if err != nil {
		return engine.Model{}, err
	}
	if m.Version == "" {
		m.Version = version
	}
	if m.Version != version {
		return engine.Model{}, eventing.Permanent(fmt.Errorf("artifact %s holds model %s, not %s", h.store.URI(name), m.Version, version))
	}
	return engine.Model{Model: m, ArtifactName: name, ArtifactURI: h.store.URI(name)}, nil
}

// scoringRows reads the scoring features; a missing or unreadable file is
// permanent.
func (h *Handler) scoringRows(ctx context.Context, obj *eventsv1.StoredObject) ([]features.Row, error) {
	name := obj.GetName()
	if name == "" {
		return nil, eventing.Permanent(errors.New("model.trained names no scoring features"))
	}
	data, err := h.store.Get(ctx, name)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, eventing.Permanent(fmt.Errorf("scoring features %s: %w", h.store.URI(name), err))
	}
	if err != nil {
		return nil, fmt.Errorf("read scoring features: %w", err)
	}
	rows, err := ReadRows(data)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("scoring features %s: %w", h.store.URI(name), err))
	}
	return rows, nil
}

// ReadRows decodes a feature Parquet file.
func ReadRows(data []byte) (rows []features.Row, err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some corrupt files
			rows, err = nil, fmt.Errorf("corrupt parquet: %v", p)
		}
	}()
	rows, err = parquet.Read[features.Row](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("decode parquet: %w", err)
	}
	return rows, nil
}

// recordDeployment marks d as the engine's active deployment.
func recordDeployment(ctx context.Context, tx pgx.Tx, d engine.Deployment, artifact, runID string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE model_deployments SET active = false, undeployed_at = now(), updated_at = now()
		WHERE engine = $1 AND active AND model_version <> $2`, d.Engine, d.ModelVersion); err != nil {
		return fmt.Errorf("retire deployments: %w", err)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO model_deployments (engine, model_version, artifact_name, endpoint, deployed_model_id, model_resource, run_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (engine, model_version) DO UPDATE SET
			artifact_name = EXCLUDED.artifact_name, endpoint = EXCLUDED.endpoint,
			deployed_model_id = EXCLUDED.deployed_model_id,
			model_resource = coalesce(nullif(EXCLUDED.model_resource, ''), model_deployments.model_resource),
			run_id = CASE WHEN model_deployments.active THEN model_deployments.run_id ELSE EXCLUDED.run_id END,
			deployed_at = CASE WHEN model_deployments.active THEN model_deployments.deployed_at ELSE now() END,
			active = true, undeployed_at = NULL, updated_at = now()`,
		d.Engine, d.ModelVersion, artifact, d.Endpoint, d.DeployedModelID, d.ModelResource, runID)
	if err != nil {
		return fmt.Errorf("record deployment of %s: %w", d.ModelVersion, err)
	}
	return nil
}

// writePredictions upserts one prediction per scored asset, set-based: COPY
// into a temporary table, then one INSERT … ON CONFLICT, so a redelivery
// rewrites the rows rather than adding. Rows of assets no longer in the
// table are skipped. It returns the count per risk level.
func writePredictions(ctx context.Context, tx pgx.Tx, rows []features.Row, probs []float64, version, runID string) (map[string]int32, error) {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE deployer_scores (
		asset_id bigint NOT NULL, failure_probability double precision NOT NULL, risk_level text NOT NULL
	) ON COMMIT DROP`); err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"deployer_scores"}, []string{"asset_id", "failure_probability", "risk_level"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			return []any{rows[i].AssetID, probs[i], predictor.RiskLevel(probs[i])}, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("predictions: copy: %w", err)
	}
	res, err := tx.Query(ctx, `
		INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level, run_id, predicted_at)
		SELECT DISTINCT ON (s.asset_id) s.asset_id, $1, s.failure_probability, s.risk_level, $2, now()
		FROM deployer_scores s JOIN assets a ON a.id = s.asset_id
		ORDER BY s.asset_id
		ON CONFLICT (asset_id, model_version) DO UPDATE SET
			failure_probability = EXCLUDED.failure_probability, risk_level = EXCLUDED.risk_level,
			run_id = EXCLUDED.run_id, predicted_at = EXCLUDED.predicted_at
		RETURNING risk_level`, version, runID)
	if err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	levels := make(map[string]int32, len(predictor.Levels))
	for _, l := range predictor.Levels {
		levels[l] = 0
	}
	var level string
	if _, err := pgx.ForEachRow(res, []any{&level}, func() error { levels[level]++; return nil }); err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	return levels, nil
}

// Restorer is an engine that must be told, after a restart, which model it
// served (the local engine's predictor lives in this process).
type Restorer interface {
	Restore(ctx context.Context, m engine.Model) error
}

// Restore makes a Restorer engine serve its active deployment again. It
// returns the version restored, or "" when there is none.
func (h *Handler) Restore(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (string, error) {
	r, ok := h.engine.(Restorer)
	if !ok {
		return "", nil
	}
	var version, artifact string
	err := q.QueryRow(ctx, `SELECT model_version, artifact_name FROM model_deployments WHERE engine = $1 AND active`,
		h.engine.Name()).Scan(&version, &artifact)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("deployer: active deployment: %w", err)
	}
	m, err := h.load(ctx, version, artifact)
	if err != nil {
		return "", fmt.Errorf("deployer: restore %s: %w", version, err)
	}
	return version, r.Restore(ctx, m)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
