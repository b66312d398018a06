// Package deployer is the deployer service's steps.
//
// In the etl_ml_training pipeline, on model.trained it serves the champion
// through the configured engine — the new model when the gate promoted it,
// otherwise the current champion, which stays deployed as it was — records
// the deployment in model_deployments, scores every asset of the run's
// scoring features (runs/<run_id>/features/scoring.parquet, one row per
// ACTIVE asset) through the engine, writes ml_predictions and emits
// model.deployed.
//
// In the model_monitoring pipeline, on features.built it measures the
// realized performance of past scorings against the corrective work orders
// that followed them, may promote the shadow, scores the day's features
// with the served champion, may trigger retraining and emits
// model.monitored (Monitor).
//
// Both steps level the probabilities with the configured risk bands (by
// vehicle type), score the fleet with the shadow model too when there is
// one (locally: the shadow is not deployed), measure each scoring's drift
// (PSI against the model's training profile), record the scorings and
// their scores (model_scorings, model_scores) and emit model.drift_detected
// when the champion's drift reaches the alert threshold.
package deployer

import (
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

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/featurefile"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// Monitoring is how the steps level, measure and act on their scorings.
type Monitoring struct {
	Bands           monitor.RiskBands
	Drift           monitor.Thresholds
	LabelWindowDays int // how long after a scoring its labels are counted
	Promotion       monitor.PromotionRule
	Retrain         Retrain
}

// Retrain is when the monitoring triggers retraining: with Auto on, when the
// champion's drift reaches the alert level or its realized ROC AUC falls
// below DecayAUCBelow, at most once per CooldownDays.
type Retrain struct {
	Auto          bool
	CooldownDays  int
	DecayAUCBelow float64
}

// Handler runs the steps.
type Handler struct {
	pool   *pgxpool.Pool // reads models, assets, scorings and work orders
	store  *objstore.Store
	engine engine.Engine
	mon    Monitoring
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

// New returns the handler reading through pool and from store, serving
// through eng and monitoring as mon says.
func New(pool *pgxpool.Pool, store *objstore.Store, eng engine.Engine, mon Monitoring, log *slog.Logger) (*Handler, error) {
	if store == nil || pool == nil {
		return nil, errors.New("deployer: a database pool and an object store are required")
	}
	if eng == nil {
		return nil, errors.New("deployer: no engine")
	}
	if err := mon.Bands.Validate(); err != nil {
		return nil, fmt.Errorf("deployer: risk bands: %w", err)
	}
	if err := mon.Drift.Validate(); err != nil {
		return nil, fmt.Errorf("deployer: drift thresholds: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{pool: pool, store: store, engine: eng, mon: mon, log: log}, nil
}

// Register adds the steps to the service's router: model-trained in,
// model-deployed out (etl_ml_training); features-built in, model-monitored
// out (model_monitoring). Deploys (Vertex AI may take minutes) and scoring
// run with no transaction open.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStep(events.ModelTrained, events.ModelDeployed, h.Step)
	r.HandleStep(events.FeaturesBuilt, events.ModelMonitored, h.Monitor)
}

// ArtifactName is the trainer's artifact object of a model version.
func ArtifactName(version string) string { return "models/" + version + "/model.json" }

// Step deploys (or keeps) the champion and scores the fleet with it and any
// shadow, with no transaction open; the complete transaction records the
// deployment, the predictions and the scorings (see commit). Its output is
// the model.deployed payload.
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.ModelTrained
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	m, err := h.toServe(ctx, &p)
	if err != nil {
		return eventing.StepResult{}, err
	}
	rows, err := h.scoringRows(ctx, events.ModelTrained, p.GetScoring())
	if err != nil {
		return eventing.StepResult{}, err
	}
	fl, err := h.fleetOf(ctx, rows)
	if err != nil {
		return eventing.StepResult{}, err
	}
	if err := h.injectedFault(ev.RunID); err != nil {
		return eventing.StepResult{}, err
	}
	s, err := h.serve(ctx, m, fl)
	if err != nil {
		return eventing.StepResult{}, err
	}
	h.logScored(ctx, s, "trained_version", p.GetModelVersion(), "promoted", p.GetPromoted())
	res := h.result(&p, s)
	res.Commit = func(ctx context.Context, tx pgx.Tx) error { return h.commit(ctx, tx, ev, s) }
	return res, nil
}

// toServe loads the model to serve: the trained one if promoted, else the
// champion it was compared with.
func (h *Handler) toServe(ctx context.Context, p *eventsv1.ModelTrained) (engine.Model, error) {
	if p.GetModelVersion() == "" {
		return engine.Model{}, eventing.Permanent(errors.New("model.trained names no model_version"))
	}
	version, artifact := p.GetModelVersion(), p.GetArtifact().GetName()
	if !p.GetPromoted() {
		version = p.GetChampionVersion()
		if version == "" {
			return engine.Model{}, eventing.Permanent(fmt.Errorf("model %s was not promoted and names no champion to keep", p.GetModelVersion()))
		}
		var err error
		if artifact, err = h.registeredArtifact(ctx, version); err != nil {
			return engine.Model{}, err
		}
	}
	if artifact == "" {
		artifact = ArtifactName(version)
	}
	return h.load(ctx, version, artifact)
}

// logScored logs a step's scoring of the fleet.
func (h *Handler) logScored(ctx context.Context, s served, args ...any) {
	args = append(args, "model_version", s.d.ModelVersion, "engine", s.d.Engine, "endpoint", s.d.Endpoint, "new_deployment", s.d.New,
		"snapshot_date", s.fleet.snapshot, "scored_assets", len(s.fleet.keep), "risk_levels", s.champion.counts, "drift", s.champion.drift)
	if s.shadow != nil {
		args = append(args, "shadow_version", s.shadow.version, "shadow_risk_levels", s.shadow.counts)
	}
	logging.FromOr(ctx, h.log).InfoContext(ctx, "fleet scored", args...)
}

// scoredFigures are the figures of a scoring of the fleet, both steps'.
func scoredFigures(s served) map[string]float64 {
	figures := map[string]float64{
		"scored_assets":  float64(len(s.fleet.keep)),
		"active_assets":  float64(s.fleet.active),
		"new_deployment": b2f(s.d.New),
		"shadow_scored":  b2f(s.shadow != nil),
	}
	for _, l := range monitor.Levels {
		figures["risk_"+l] = float64(s.champion.counts[l])
	}
	if v := maxPSI(s.champion.psi); v != nil {
		figures["max_psi"] = *v
	}
	return figures
}

// scoredSummary describes a scoring of the fleet, both steps'.
func (h *Handler) scoredSummary(s served) string {
	c := s.champion.counts
	out := fmt.Sprintf("on %s (%s); scored %d of %d active assets: %d low, %d medium, %d high, %d critical; drift %s",
		h.engine.Name(), s.d.Endpoint, len(s.fleet.keep), s.fleet.active,
		c[monitor.Low], c[monitor.Medium], c[monitor.High], c[monitor.Critical], s.champion.drift)
	if name, v := monitor.MaxPSI(s.champion.psi); name != "" {
		out += fmt.Sprintf(" (max PSI %.3f, %s)", v, name)
	}
	if s.shadow != nil {
		out += fmt.Sprintf("; shadow %s scored", s.shadow.version)
	}
	return out
}

// result is the step's output (model.deployed), figures and summary.
func (h *Handler) result(p *eventsv1.ModelTrained, s served) eventing.StepResult {
	metrics := maps.Clone(p.GetMetrics())
	if metrics == nil {
		metrics = map[string]float64{}
	}
	for k, v := range p.GetChampionMetrics() {
		metrics["champion_"+k] = v
	}
	d := s.d
	out := &eventsv1.ModelDeployed{
		ModelVersion: d.ModelVersion, Promoted: p.GetPromoted(), Endpoint: d.Endpoint,
		ScoredAssets: int32(len(s.fleet.keep)), RiskLevels: s.champion.counts, Metrics: metrics, GateReason: p.GetGateReason(),
		Psi: s.champion.psi, ShadowVersion: shadowVersion(s),
	}
	figures := scoredFigures(s)
	figures["promoted"] = b2f(p.GetPromoted())
	what := fmt.Sprintf("kept champion %s (%s not promoted: %s)", d.ModelVersion, p.GetModelVersion(), p.GetGateReason())
	if p.GetPromoted() {
		what = fmt.Sprintf("deployed %s", d.ModelVersion)
		if !d.New {
			what = fmt.Sprintf("%s already deployed", d.ModelVersion)
		}
	}
	return eventing.StepResult{Output: out, Figures: figures, Summary: what + " " + h.scoredSummary(s)}
}

// shadowVersion is the version of the shadow scored, or "".
func shadowVersion(s served) string {
	if s.shadow == nil {
		return ""
	}
	return s.shadow.version
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

// scoringRows reads the scoring features named by an event of type
// eventType; a missing or unreadable file is permanent.
func (h *Handler) scoringRows(ctx context.Context, eventType string, obj *eventsv1.StoredObject) ([]features.Row, error) {
	name := obj.GetName()
	if name == "" {
		return nil, eventing.Permanent(fmt.Errorf("%s names no scoring features", eventType))
	}
	data, err := h.store.Get(ctx, name)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, eventing.Permanent(fmt.Errorf("scoring features %s: %w", h.store.URI(name), err))
	}
	if err != nil {
		return nil, fmt.Errorf("read scoring features: %w", err)
	}
	rows, err := featurefile.Read(data)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("scoring features %s: %w", h.store.URI(name), err))
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

// writePredictions upserts the champion's prediction of each asset written,
// set-based: COPY into a temporary table, then one statement that updates
// the assets' rows of the model and inserts the missing ones, so a
// redelivery rewrites the rows rather than adds. Updating the rows there
// costs less than INSERT … ON CONFLICT of every row, which probes the
// unique index before each update (docs/benchmarks.md); a row another
// transaction inserted meanwhile falls back on ON CONFLICT. Assets deleted
// since the fleet was read are skipped. It returns the count per risk level
// of the rows written, counted by the database.
func writePredictions(ctx context.Context, tx pgx.Tx, fl fleet, s scoring, runID string) (map[string]int32, error) {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE deployer_scores (
		asset_id bigint NOT NULL, failure_probability double precision NOT NULL, risk_level text NOT NULL
	) ON COMMIT DROP`); err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"deployer_scores"}, scoreColumns, newScoreRows(fl, s))
	if err != nil {
		return nil, fmt.Errorf("predictions: copy: %w", err)
	}
	rows, err := tx.Query(ctx, `
		WITH s AS (SELECT s.* FROM deployer_scores s JOIN assets a ON a.id = s.asset_id),
		updated AS (
			UPDATE ml_predictions m SET failure_probability = s.failure_probability, risk_level = s.risk_level,
				run_id = $2, predicted_at = now()
			FROM s WHERE m.asset_id = s.asset_id AND m.model_version = $1
			RETURNING m.risk_level),
		inserted AS (
			INSERT INTO ml_predictions (asset_id, model_version, failure_probability, risk_level, run_id, predicted_at)
			SELECT s.asset_id, $1, s.failure_probability, s.risk_level, $2, now() FROM s
			WHERE NOT EXISTS (SELECT 1 FROM ml_predictions m WHERE m.asset_id = s.asset_id AND m.model_version = $1)
			ON CONFLICT (asset_id, model_version) DO UPDATE SET
				failure_probability = EXCLUDED.failure_probability, risk_level = EXCLUDED.risk_level,
				run_id = EXCLUDED.run_id, predicted_at = EXCLUDED.predicted_at
			RETURNING risk_level)
		SELECT risk_level, count(*)::int FROM (SELECT * FROM updated UNION ALL SELECT * FROM inserted) w GROUP BY risk_level`, s.version, runID)
	if err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	levels := make(map[string]int32, len(monitor.Levels))
	for _, l := range monitor.Levels {
		levels[l] = 0
	}
	var level string
	var n int32
	if _, err := pgx.ForEachRow(rows, []any{&level, &n}, func() error { levels[level] = n; return nil }); err != nil {
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
