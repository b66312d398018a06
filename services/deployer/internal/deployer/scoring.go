package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/predictor"
)

// Roles of a scoring (model_scorings.role).
const (
	roleChampion = "champion"
	roleShadow   = "shadow"
)

// fleet is what a step scores: the scoring features of one snapshot date and
// which rows it writes (keep: the first row of each asset still in the
// table), with the count of ACTIVE assets.
type fleet struct {
	snapshot string
	rows     []features.Row
	keep     []int
	active   int
}

// fleetOf checks that rows describe one snapshot date and finds the rows
// to write.
func (h *Handler) fleetOf(ctx context.Context, rows []features.Row) (fleet, error) {
	if len(rows) == 0 {
		return fleet{}, eventing.Permanent(errors.New("the scoring features hold no rows: no snapshot date to score"))
	}
	fl := fleet{snapshot: rows[0].SnapshotDate, rows: rows}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		if r.SnapshotDate != fl.snapshot {
			return fleet{}, eventing.Permanent(fmt.Errorf("scoring row %d (asset %d) is of %s, row 0 of %s: want one snapshot date", i, r.AssetID, r.SnapshotDate, fl.snapshot))
		}
		ids[i] = r.AssetID
	}
	var known []int64
	if err := h.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), (SELECT count(*) FROM assets WHERE status = 'ACTIVE')
		FROM assets WHERE id = ANY($1)`, ids).Scan(&known, &fl.active); err != nil {
		return fleet{}, fmt.Errorf("count assets: %w", err)
	}
	todo := make(map[int64]bool, len(known))
	for _, id := range known {
		todo[id] = true
	}
	for i, r := range rows {
		if todo[r.AssetID] {
			todo[r.AssetID] = false
			fl.keep = append(fl.keep, i)
		}
	}
	return fl, nil
}

// scoring is one model's scoring of a fleet: a probability and a risk level
// (by the row's vehicle type) per row, the count per level of the rows
// written, and the drift against the model's training profile.
type scoring struct {
	role, version string
	probs         []float64
	levels        []string
	counts        map[string]int32
	psi           map[string]float64
	drift         string
}

// served is a scoring of the fleet by the served model and, when there is
// one, the shadow: what the complete transaction records.
type served struct {
	d        engine.Deployment
	artifact string
	fleet    fleet
	champion scoring
	shadow   *scoring
}

// scorings are the champion's scoring and any shadow's.
func (s served) scorings() []scoring {
	if s.shadow == nil {
		return []scoring{s.champion}
	}
	return []scoring{s.champion, *s.shadow}
}

// serve deploys m through the engine (nothing is deployed when it is served
// already), scores the fleet with it and, locally, with the shadow model if
// there is one.
func (h *Handler) serve(ctx context.Context, m engine.Model, fl fleet) (served, error) {
	X, err := vectors(m.Model, fl.rows)
	if err != nil {
		return served{}, err
	}
	d, err := h.engine.Deploy(ctx, m)
	if err != nil {
		return served{}, fmt.Errorf("deploy %s (%s engine): %w", m.Version(), h.engine.Name(), err)
	}
	probs, err := h.engine.Predict(ctx, d, X)
	if err != nil {
		return served{}, fmt.Errorf("score %d assets with %s (%s engine): %w", len(X), m.Version(), h.engine.Name(), err)
	}
	if len(probs) != len(X) {
		return served{}, fmt.Errorf("score: %d probabilities for %d rows", len(probs), len(X))
	}
	s := served{d: d, artifact: m.ArtifactName, fleet: fl}
	if s.champion, err = h.score(ctx, fl, roleChampion, m.Model, X, probs); err != nil {
		return served{}, err
	}
	if s.shadow, err = h.scoreShadow(ctx, fl, m.Version()); err != nil {
		return served{}, err
	}
	return s, nil
}

// vectors are the rows as m's inputs; rows it cannot take (an input the row
// schema lacks) are permanent.
func vectors(m *model.Model, rows []features.Row) ([][]float64, error) {
	X, err := m.Vectors(rows)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("scoring rows for model %s: %w", m.Version, err))
	}
	return X, nil
}

// score levels the probabilities, counts the levels of the rows written and
// measures the drift.
func (h *Handler) score(ctx context.Context, fl fleet, role string, m *model.Model, X [][]float64, probs []float64) (scoring, error) {
	s := scoring{role: role, version: m.Version, probs: probs, levels: make([]string, len(probs)), counts: make(map[string]int32, len(monitor.Levels))}
	for i, p := range probs {
		s.levels[i] = h.mon.Bands.Level(p, fl.rows[i].VehicleType)
	}
	for _, l := range monitor.Levels {
		s.counts[l] = 0
	}
	for _, i := range fl.keep {
		s.counts[s.levels[i]]++
	}
	var err error
	s.psi, err = h.psi(ctx, m, X, probs)
	if err != nil {
		return scoring{}, err
	}
	s.drift = h.mon.Drift.Drift(s.psi)
	return s, nil
}

// psi is the PSI of each input and of the scores against m's training
// profile; empty when the model has none.
func (h *Handler) psi(ctx context.Context, m *model.Model, X [][]float64, probs []float64) (map[string]float64, error) {
	var name string
	err := h.pool.QueryRow(ctx, `SELECT profile_name FROM models WHERE version = $1`, m.Version).Scan(&name)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the profile of model %s: %w", m.Version, err)
	}
	if name == "" {
		return map[string]float64{}, nil
	}
	data, err := h.store.Get(ctx, name)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, eventing.Permanent(fmt.Errorf("profile %s of model %s: %w", h.store.URI(name), m.Version, err))
	}
	if err != nil {
		return nil, fmt.Errorf("read profile of model %s: %w", m.Version, err)
	}
	p, err := monitor.LoadProfile(data)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("profile %s of model %s: %w", h.store.URI(name), m.Version, err))
	}
	psi, err := p.PSI(m.Features, X, probs)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("PSI against profile %s of model %s: %w", h.store.URI(name), m.Version, err))
	}
	return psi, nil
}

// shadowModel is the registered shadow model, unless it is the served one
// (version ""when there is none).
func (h *Handler) shadowModel(ctx context.Context, servedVersion string) (version, artifact string, err error) {
	err = h.pool.QueryRow(ctx, `SELECT version, artifact_name FROM models WHERE shadow AND version <> $1`, servedVersion).Scan(&version, &artifact)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read the shadow model: %w", err)
	}
	return version, artifact, nil
}

// scoreShadow scores the fleet with the shadow model, in this process (the
// shadow is not deployed); nil when there is no shadow.
func (h *Handler) scoreShadow(ctx context.Context, fl fleet, servedVersion string) (*scoring, error) {
	version, artifact, err := h.shadowModel(ctx, servedVersion)
	if err != nil || version == "" {
		return nil, err
	}
	m, err := h.load(ctx, version, artifact)
	if err != nil {
		return nil, err
	}
	X, err := vectors(m.Model, fl.rows)
	if err != nil {
		return nil, err
	}
	probs, err := predictor.Score(m.Model, X)
	if err != nil {
		return nil, eventing.Permanent(fmt.Errorf("score with shadow model %s: %w", version, err))
	}
	s, err := h.score(ctx, fl, roleShadow, m.Model, X, probs)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// commit records the deployment, the champion's predictions and every
// scoring with its scores, and emits model.drift_detected when the
// champion's drift reaches the alert level. The fleet may have changed
// since it was scored (an asset deleted): then the counts the step reports
// would be wrong, and the step is retried.
func (h *Handler) commit(ctx context.Context, tx pgx.Tx, ev eventing.Event, s served) error {
	if err := recordDeployment(ctx, tx, s.d, s.artifact, ev.RunID); err != nil {
		return err
	}
	got, err := writePredictions(ctx, tx, s.fleet, s.champion, ev.RunID)
	if err != nil {
		return err
	}
	if !maps.Equal(got, s.champion.counts) {
		return fmt.Errorf("the fleet changed while it was scored: predictions per level %v, counted %v", got, s.champion.counts)
	}
	bands, err := json.Marshal(h.mon.Bands)
	if err != nil {
		return fmt.Errorf("risk bands: %w", err)
	}
	for _, sc := range s.scorings() {
		alerted, err := recordScoring(ctx, tx, ev, s.fleet, sc, bands)
		if err != nil {
			return err
		}
		if sc.role == roleChampion && sc.drift == monitor.LevelAlert && !alerted {
			if err := h.emitDrift(ctx, tx, ev, s.fleet.snapshot, sc); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordScoring upserts the scoring of (run, role) and replaces its scores,
// so that a redelivery rewrites rather than adds. alerted says whether the
// scoring was recorded before with drift at the alert level (its
// model.drift_detected already emitted).
func recordScoring(ctx context.Context, tx pgx.Tx, ev eventing.Event, fl fleet, s scoring, bands []byte) (alerted bool, err error) {
	var id int64
	err = tx.QueryRow(ctx, `
		WITH before AS (SELECT drift FROM model_scorings WHERE run_id = $1 AND role = $4)
		INSERT INTO model_scorings (run_id, pipeline, model_version, role, snapshot_date, scored_assets, risk_bands, risk_levels, psi, max_psi, drift)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (run_id, role) DO UPDATE SET pipeline = EXCLUDED.pipeline, model_version = EXCLUDED.model_version,
			snapshot_date = EXCLUDED.snapshot_date, scored_assets = EXCLUDED.scored_assets, risk_bands = EXCLUDED.risk_bands,
			risk_levels = EXCLUDED.risk_levels, psi = EXCLUDED.psi, max_psi = EXCLUDED.max_psi, drift = EXCLUDED.drift, scored_at = now()
		RETURNING id, coalesce((SELECT drift = $12 FROM before), false)`,
		ev.RunID, ev.Pipeline, s.version, s.role, fl.snapshot, len(fl.keep), bands, s.counts, s.psi, maxPSI(s.psi), s.drift, monitor.LevelAlert,
	).Scan(&id, &alerted)
	if err != nil {
		return false, fmt.Errorf("record the %s scoring by %s: %w", s.role, s.version, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM model_scores WHERE scoring_id = $1`, id); err != nil {
		return false, fmt.Errorf("replace the %s scores: %w", s.role, err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"model_scores"}, append([]string{"scoring_id"}, scoreColumns...), newScoreRows(fl, s, id))
	if err != nil {
		return false, fmt.Errorf("write the %s scores: %w", s.role, err)
	}
	return alerted, nil
}

// scoreColumns are the columns of a scoreRows row, after its leading values.
var scoreColumns = []string{"asset_id", "failure_probability", "risk_level"}

// scoreRows is a COPY source of the scores of the rows a step writes
// (fleet.keep): the leading values, then scoreColumns. It reuses one row
// of pointers into the fleet and the scoring, so that no row allocates
// (pgx encodes a row before it asks for the next).
type scoreRows struct {
	fl  fleet
	s   scoring
	k   int
	row []any
}

// newScoreRows is the COPY source of s's scores of fl, each row led by lead.
func newScoreRows(fl fleet, s scoring, lead ...any) *scoreRows {
	return &scoreRows{fl: fl, s: s, row: append(lead, nil, nil, nil)}
}

func (r *scoreRows) Next() bool {
	r.k++
	return r.k <= len(r.fl.keep)
}

func (r *scoreRows) Values() ([]any, error) {
	i, n := r.fl.keep[r.k-1], len(r.row)-len(scoreColumns)
	r.row[n], r.row[n+1], r.row[n+2] = &r.fl.rows[i].AssetID, &r.s.probs[i], &r.s.levels[i]
	return r.row, nil
}

func (r *scoreRows) Err() error { return nil }

// maxPSI is the highest PSI, or nil (SQL NULL) when there is none.
func maxPSI(psi map[string]float64) *float64 {
	if len(psi) == 0 {
		return nil
	}
	_, v := monitor.MaxPSI(psi)
	return &v
}

// emitDrift emits model.drift_detected for s through the outbox.
func (h *Handler) emitDrift(ctx context.Context, tx pgx.Tx, ev eventing.Event, snapshot string, s scoring) error {
	next, err := ev.Next(events.DriftDetected, events.Source(events.Deployer), &eventsv1.DriftDetected{
		ModelVersion: s.version, SnapshotDate: snapshot, Psi: h.mon.Drift.Alerting(s.psi), Threshold: h.mon.Drift.Alert,
	})
	if err != nil {
		return err
	}
	return eventing.Emit(ctx, tx, next)
}
