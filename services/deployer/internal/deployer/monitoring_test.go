package deployer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/testmodel"
)

// profile stores version's training profile, made from rows (their inputs
// and the model's scores), and registers it as the trainer does.
func (f *fixture) profile(t testing.TB, version string, rows []features.Row) {
	t.Helper()
	m := f.models[version]
	X := make([][]float64, len(rows))
	for i, r := range rows {
		var err error
		if X[i], err = m.Vector(r); err != nil {
			t.Fatal(err)
		}
	}
	scores, err := m.PredictAll(X)
	if err != nil {
		t.Fatal(err)
	}
	p, err := monitor.NewProfile(version, m.Features, X, scores, monitor.DefaultBins)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := "models/" + version + "/profile.json"
	if err := f.store.Put(ctx, name, "application/json", data); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE models SET profile_name = $2 WHERE version = $1`, version, name); err != nil {
		t.Fatal(err)
	}
}

// shadow registers a new model as the shadow.
func (f *fixture) shadow(t testing.TB, version string, seed uint64) {
	t.Helper()
	f.train(t, version, seed, false)
	if _, err := f.pool.Exec(context.Background(), `UPDATE models SET shadow = true WHERE version = $1`, version); err != nil {
		t.Fatal(err)
	}
}

// dated is the fixture's scoring rows at snapshot; shift adds to every
// asset's age.
func (f *fixture) dated(snapshot string, shift int32) []features.Row {
	out := make([]features.Row, len(f.rows))
	for i, r := range f.rows {
		r.SnapshotDate = snapshot
		r.AssetAgeDays += shift
		out[i] = r
	}
	return out
}

// monitorMessage is featurejob's output for a model_monitoring run scoring
// rows.
func (f *fixture) monitorMessage(t testing.TB, runID string, rows []features.Row) eventing.Message {
	t.Helper()
	name := testmodel.PutScoring(t, f.store, runID, rows)
	return eventingtest.Event(t, events.FeaturesBuilt, runID, events.ModelMonitoring, &eventsv1.FeaturesBuilt{
		SnapshotDate: rows[0].SnapshotDate, Engine: "local", Scoring: &eventsv1.StoredObject{Name: name},
	}).Message()
}

// reissue is a copy of msg under a new id: the step performed again.
func reissue(t testing.TB, msg eventing.Message) eventing.Message {
	t.Helper()
	ev, err := eventing.FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ev.Reissue("")
	if err != nil {
		t.Fatal(err)
	}
	return again.Message()
}

type scoringRow struct {
	pipeline, version, snapshot, drift string
	scored                             int
	bands                              monitor.RiskBands
	levels                             map[string]int32
	psi                                map[string]float64
	maxPSI                             *float64
	scores                             map[int64]float64
}

// scoring reads the scoring of (runID, role) and its scores; ok false when
// there is none.
func (f *fixture) scoring(t testing.TB, runID, role string) (s scoringRow, ok bool) {
	t.Helper()
	ctx := context.Background()
	var id int64
	var bands []byte
	err := f.pool.QueryRow(ctx, `SELECT id, pipeline, model_version, snapshot_date::text, drift, scored_assets, risk_bands, risk_levels, psi, max_psi
		FROM model_scorings WHERE run_id = $1 AND role = $2`, runID, role).
		Scan(&id, &s.pipeline, &s.version, &s.snapshot, &s.drift, &s.scored, &bands, &s.levels, &s.psi, &s.maxPSI)
	if err != nil {
		return s, false
	}
	if err := json.Unmarshal(bands, &s.bands); err != nil {
		t.Fatal(err)
	}
	s.scores = map[int64]float64{}
	rows, err := f.pool.Query(ctx, `SELECT asset_id, failure_probability FROM model_scores WHERE scoring_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a int64
		var p float64
		if err := rows.Scan(&a, &p); err != nil {
			t.Fatal(err)
		}
		s.scores[a] = p
	}
	return s, true
}

// checkScoring asserts the scoring of (runID, role) by version: its scores
// are the model's, its levels counted with the fixture's bands, which it
// records.
func (f *fixture) checkScoring(t testing.TB, runID, role, version, pipeline string, rows []features.Row) scoringRow {
	t.Helper()
	s, ok := f.scoring(t, runID, role)
	if !ok {
		t.Fatalf("no %s scoring of %s", role, runID)
	}
	if s.pipeline != pipeline || s.version != version || s.snapshot != rows[0].SnapshotDate || s.scored != len(rows) || len(s.scores) != len(rows) {
		t.Errorf("%s scoring of %s: %s %s %s, %d assets, %d scores", role, runID, s.pipeline, s.version, s.snapshot, s.scored, len(s.scores))
	}
	if !reflect.DeepEqual(s.bands, f.mon.Bands) {
		t.Errorf("%s scoring of %s recorded bands %+v, want %+v", role, runID, s.bands, f.mon.Bands)
	}
	levels := map[string]int32{monitor.Low: 0, monitor.Medium: 0, monitor.High: 0, monitor.Critical: 0}
	for _, r := range rows {
		want, _ := f.models[version].PredictRow(r)
		if math.Abs(s.scores[r.AssetID]-want) > 1e-12 {
			t.Errorf("%s score of asset %d: %v, want %v", role, r.AssetID, s.scores[r.AssetID], want)
		}
		levels[f.mon.Bands.Level(want, r.VehicleType)]++
	}
	if !reflect.DeepEqual(s.levels, levels) {
		t.Errorf("%s scoring of %s: levels %v, want %v", role, runID, s.levels, levels)
	}
	return s
}

func (f *fixture) driftEvents(t testing.TB, runID string) []*eventsv1.DriftDetected {
	return eventingtest.Emitted(t, f.pool, events.DriftDetected, runID, func() *eventsv1.DriftDetected { return &eventsv1.DriftDetected{} })
}

func (f *fixture) monitored(t testing.TB) *eventsv1.ModelMonitored {
	t.Helper()
	var p eventsv1.ModelMonitored
	if !eventingtest.Last(t, f.pool, events.ModelMonitored, &p) {
		t.Fatal("no model.monitored")
	}
	return &p
}

// The ETL step levels each asset by its vehicle type's bands and records
// the bands; it measures PSI against the model's profile (≈0 for the data
// profiled), scores the shadow locally, and on a shifted feature emits one
// model.drift_detected, not repeated when the step is performed again.
func TestETLScoringBandsDriftAndShadow(t *testing.T) {
	ctx := context.Background()
	f := setup(t, engine.Local)
	f.train(t, "v1", 1, true)
	f.profile(t, "v1", f.rows)
	f.shadow(t, "sh", 3)
	f.process(t, message(t, trained("v1", true, "")), eventing.Handled)
	f.checkScored(t, "v1")

	cars := 0
	for _, r := range f.rows {
		p, _ := f.models["v1"].PredictRow(r)
		if r.VehicleType == "car" && f.mon.Bands.Level(p, "car") != f.mon.Bands.Level(p, "") {
			cars++
		}
	}
	if cars == 0 {
		t.Fatal("no car in the fixture leveled apart by its bands: the test cannot tell the bands apart")
	}

	c := f.checkScoring(t, "run-1", "champion", "v1", events.ETLMLTraining, f.rows)
	if c.drift != monitor.LevelOK || c.maxPSI == nil || *c.maxPSI > 1e-9 || len(c.psi) != len(f.models["v1"].Features)+1 {
		t.Errorf("unshifted data: drift %s, max PSI %v, psi %v", c.drift, c.maxPSI, c.psi)
	}
	sh := f.checkScoring(t, "run-1", "shadow", "sh", events.ETLMLTraining, f.rows)
	if sh.drift != monitor.LevelNone || len(sh.psi) != 0 || sh.maxPSI != nil {
		t.Errorf("shadow without a profile: drift %s, psi %v, max %v", sh.drift, sh.psi, sh.maxPSI)
	}
	d := f.deployed(t)[0]
	if d.GetShadowVersion() != "sh" || !reflect.DeepEqual(d.GetPsi(), c.psi) {
		t.Errorf("model.deployed shadow %q psi %v, want sh and %v", d.GetShadowVersion(), d.GetPsi(), c.psi)
	}
	if n := len(f.driftEvents(t, "")); n != 0 {
		t.Errorf("%d model.drift_detected on unshifted data", n)
	}

	shifted := f.dated("2026-11-01", 20000)
	testmodel.PutScoring(t, f.store, "run-2", shifted)
	p := trained("v1", true, "")
	p.Scoring.Name = "runs/run-2/features/scoring.parquet"
	msg := messageOf(t, "run-2", p)
	f.process(t, msg, eventing.Handled)
	c = f.checkScoring(t, "run-2", "champion", "v1", events.ETLMLTraining, shifted)
	if c.drift != monitor.LevelAlert || c.psi["asset_age_days"] <= 0.25 {
		t.Fatalf("shifted ages: drift %s, psi %v", c.drift, c.psi)
	}
	f.process(t, msg, eventing.Duplicate)
	f.process(t, reissue(t, msg), eventing.Handled)
	evs := f.driftEvents(t, "run-2")
	if len(evs) != 1 {
		t.Fatalf("%d model.drift_detected for run-2, want 1", len(evs))
	}
	e := evs[0]
	if e.GetModelVersion() != "v1" || e.GetSnapshotDate() != "2026-11-01" || e.GetThreshold() != 0.25 ||
		!reflect.DeepEqual(e.GetPsi(), monitor.DefaultThresholds.Alerting(c.psi)) || e.GetPsi()["asset_age_days"] != c.psi["asset_age_days"] {
		t.Errorf("model.drift_detected %v; psi %v", e, c.psi)
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM model_scorings WHERE run_id = 'run-2'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d scorings of run-2 after it was performed again (%v), want 2", n, err)
	}
}

func TestMonitorNeedsADeployment(t *testing.T) {
	f := setup(t, engine.Local)
	f.train(t, "v1", 1, true)
	msg := f.monitorMessage(t, "mon-1", f.dated("2026-11-02", 0))
	f.process(t, msg, eventing.DeadLettered)
	var reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT reason FROM dead_letters`).Scan(&reason); err != nil ||
		!strings.Contains(reason, "no model is deployed on the local engine yet") {
		t.Errorf("dead letter %q (%v)", reason, err)
	}
}

// deployV1 registers v1 as champion with a profile of the fixture's rows
// and deploys it (ETL run-1).
func (f *fixture) deployV1(t testing.TB) {
	t.Helper()
	f.train(t, "v1", 1, true)
	f.profile(t, "v1", f.rows)
	f.process(t, message(t, trained("v1", true, "")), eventing.Handled)
}

func (f *fixture) retrains(t testing.TB) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT retrain_run_id || ' ' || monitor_run_id || ' ' || model_version || ': ' || reason FROM model_retrains ORDER BY triggered_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Monitoring refreshes the fleet's predictions with the champion, records
// its scoring with drift, emits model.drift_detected once and triggers one
// retrain within the cooldown.
func TestMonitorDriftTriggersOneRetrain(t *testing.T) {
	f := setupWith(t, engine.Local, map[string]string{"AUTO_RETRAIN": "true"})
	f.deployV1(t)
	day1 := f.dated("2026-11-02", 20000)
	msg := f.monitorMessage(t, "mon-1", day1)
	f.process(t, msg, eventing.Handled)
	f.checkScoredBy(t, "v1", "mon-1", day1)
	c := f.checkScoring(t, "mon-1", "champion", "v1", events.ModelMonitoring, day1)
	out := f.monitored(t)
	if out.GetModelVersion() != "v1" || out.GetSnapshotDate() != "2026-11-02" || out.GetScoredAssets() != activeAssets || out.GetDrift() != monitor.LevelAlert ||
		!reflect.DeepEqual(out.GetPsi(), c.psi) || !reflect.DeepEqual(out.GetRiskLevels(), c.levels) || len(out.GetRealized()) != 0 ||
		!out.GetRetrainTriggered() || !strings.Contains(out.GetRetrainReason(), "drift: PSI") || out.GetShadowVersion() != "" {
		t.Errorf("model.monitored %v", out)
	}
	if fig := f.lastFigures(t); fig["retrain_triggered"] != 1 || fig["max_psi"] != *c.maxPSI || fig["scored_assets"] != activeAssets {
		t.Errorf("figures %v", fig)
	}
	f.process(t, reissue(t, msg), eventing.Handled) // performed again: nothing emitted twice

	if r := f.retrains(t); len(r) != 1 || !strings.HasPrefix(r[0], "retrain__2026-11-02 mon-1 v1: drift") {
		t.Fatalf("retrains %q", r)
	}
	trig := eventingtest.Events(t, f.pool, events.PipelineTriggered, "")
	if len(trig) != 1 {
		t.Fatalf("%d pipeline.triggered, want 1", len(trig))
	}
	var p eventsv1.PipelineTriggered
	if err := trig[0].Decode(&p); err != nil {
		t.Fatal(err)
	}
	if trig[0].RunID != "retrain__2026-11-02" || trig[0].Pipeline != events.ETLMLTraining || p.GetSource() != "monitoring" ||
		p.GetConf()["snapshot_date"] != "2026-11-02" || !p.GetLogicalDate().AsTime().Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("pipeline.triggered %s %s %v", trig[0].RunID, trig[0].Pipeline, &p)
	}
	if n := len(f.driftEvents(t, "mon-1")); n != 1 {
		t.Errorf("%d model.drift_detected for mon-1, want 1", n)
	}

	// The next day drifts still, within the cooldown: no second retrain.
	f.process(t, f.monitorMessage(t, "mon-2", f.dated("2026-11-03", 20000)), eventing.Handled)
	if out := f.monitored(t); out.GetRetrainTriggered() || !strings.Contains(out.GetRetrainReason(), "cooldown") {
		t.Errorf("second run: triggered %v, reason %q", out.GetRetrainTriggered(), out.GetRetrainReason())
	}
	if r := f.retrains(t); len(r) != 1 || eventingtest.Count(t, f.pool, events.PipelineTriggered, "") != 1 {
		t.Errorf("retrains %q after a run within the cooldown", r)
	}
}

// Without a cooldown each snapshot date may retrain once: a second run of
// the same date does not, the next date does.
func TestRetrainOncePerDate(t *testing.T) {
	f := setupWith(t, engine.Local, map[string]string{"AUTO_RETRAIN": "true", "RETRAIN_COOLDOWN_DAYS": "0"})
	f.deployV1(t)
	for _, c := range []struct {
		runID, date string
		triggered   bool
	}{{"mon-1", "2026-11-02", true}, {"mon-1b", "2026-11-02", false}, {"mon-2", "2026-11-03", true}} {
		f.process(t, f.monitorMessage(t, c.runID, f.dated(c.date, 20000)), eventing.Handled)
		if out := f.monitored(t); out.GetRetrainTriggered() != c.triggered {
			t.Errorf("%s: triggered %v (%s), want %v", c.runID, out.GetRetrainTriggered(), out.GetRetrainReason(), c.triggered)
		}
	}
	if r := f.retrains(t); len(r) != 2 || eventingtest.Count(t, f.pool, events.PipelineTriggered, "") != 2 {
		t.Errorf("retrains %q", r)
	}
}

func TestMonitorWithoutAutoRetrain(t *testing.T) {
	f := setup(t, engine.Local)
	f.deployV1(t)
	f.process(t, f.monitorMessage(t, "mon-1", f.dated("2026-11-02", 20000)), eventing.Handled)
	out := f.monitored(t)
	if out.GetDrift() != monitor.LevelAlert || out.GetRetrainTriggered() || !strings.Contains(out.GetRetrainReason(), "drift") {
		t.Errorf("model.monitored %v", out)
	}
	if r := f.retrains(t); len(r) != 0 || eventingtest.Count(t, f.pool, events.PipelineTriggered, "") != 0 || len(f.driftEvents(t, "mon-1")) != 1 {
		t.Errorf("AUTO_RETRAIN off: retrains %q", r)
	}
}

// Two monitoring runs racing trigger one retrain.
func TestRacingMonitorsTriggerOneRetrain(t *testing.T) {
	f := setupWith(t, engine.Local, map[string]string{"AUTO_RETRAIN": "true"})
	f.deployV1(t)
	msgs := []eventing.Message{
		f.monitorMessage(t, "mon-a", f.dated("2026-11-02", 20000)),
		f.monitorMessage(t, "mon-b", f.dated("2026-11-03", 20000)),
	}
	for round := 0; len(msgs) > 0 && round < 5; round++ {
		var wg sync.WaitGroup
		retry := make([]bool, len(msgs))
		for i, m := range msgs {
			wg.Go(func() {
				out, err := f.router.Process(context.Background(), m)
				retry[i] = out != eventing.Handled
				if out != eventing.Handled && out != eventing.Retry && out != eventing.Leased {
					t.Errorf("outcome %s (%v)", out, err)
				}
			})
		}
		wg.Wait()
		var again []eventing.Message
		for i, m := range msgs {
			if retry[i] {
				again = append(again, m)
			}
		}
		msgs = again
	}
	if len(msgs) != 0 {
		t.Fatalf("%d runs not handled", len(msgs))
	}
	if r := f.retrains(t); len(r) != 1 || eventingtest.Count(t, f.pool, events.PipelineTriggered, "") != 1 {
		t.Errorf("racing runs: retrains %q", r)
	}
}

type pastScore struct {
	asset int64
	p     float64
	level string
}

// pastScoring records a scoring of a past run, as a step would have.
func (f *fixture) pastScoring(t testing.TB, runID, role, version, snapshot string, scores []pastScore) {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO model_scorings (run_id, pipeline, model_version, role, snapshot_date, scored_assets, risk_bands, risk_levels)
		VALUES ($1, 'model_monitoring', $2, $3, $4, $5, '{}', '{}') RETURNING id`, runID, version, role, snapshot, len(scores)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, s := range scores {
		if _, err := f.pool.Exec(ctx, `INSERT INTO model_scores VALUES ($1, $2, $3, $4)`, id, s.asset, s.p, s.level); err != nil {
			t.Fatal(err)
		}
	}
}

// workOrder records a work order created at when.
func (f *fixture) workOrder(t testing.TB, asset int64, typ, when string) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO work_orders (wo_number, asset_id, type, title, created_at)
		VALUES ($1, $2, $3, 'test', $4)`, fmt.Sprintf("WO-%d-%s", asset, when), asset, typ, when); err != nil {
		t.Fatal(err)
	}
}

// realizedFixture: champion v1 deployed, shadow v2, both scored on
// 2026-06-01 (run old) and v1 on 2026-05-01 (run older), with work orders
// over the 30-day label window of 2026-06-01, [06-01, 07-01) UTC:
//
//	asset  champion      shadow        work orders                  label
//	1      0.90 critical 0.95 critical CORRECTIVE 06-10             1
//	2      0.30 medium   0.85 critical CORRECTIVE 06-30 23:00       1
//	3      0.80 critical 0.10 low      CORRECTIVE 07-01 00:00 (out) 0
//	4      0.20 low      0.20 low      PREVENTIVE 06-15             0
//	5      0.40 medium   0.30 medium   CORRECTIVE 05-31 23:59 (out) 0
//	6      0.10 low      0.40 medium   none                         0
//
// By hand: champion ROC AUC = pairs (positive above negative) / 8: asset 1
// beats 3, 4, 5, 6 (4), asset 2 beats 4 and 6 (2): 6/8 = 0.75; critical
// precision 1 of {1, 3} = 0.5. Shadow: both positives above every negative,
// AUC 1, critical precision 2 of {1, 2} = 1.
func realizedFixture(t testing.TB, env map[string]string) *fixture {
	t.Helper()
	all := map[string]string{"LABEL_WINDOW_DAYS": "30"}
	for k, v := range env {
		all[k] = v
	}
	f := setupWith(t, engine.Local, all)
	f.train(t, "v1", 1, true)
	f.shadow(t, "v2", 2)
	f.process(t, message(t, trained("v1", true, "")), eventing.Handled)
	f.pastScoring(t, "old", "champion", "v1", "2026-06-01", []pastScore{
		{1, 0.9, "critical"}, {2, 0.3, "medium"}, {3, 0.8, "critical"}, {4, 0.2, "low"}, {5, 0.4, "medium"}, {6, 0.1, "low"}})
	f.pastScoring(t, "old", "shadow", "v2", "2026-06-01", []pastScore{
		{1, 0.95, "critical"}, {2, 0.85, "critical"}, {3, 0.1, "low"}, {4, 0.2, "low"}, {5, 0.3, "medium"}, {6, 0.4, "medium"}})
	f.pastScoring(t, "older", "champion", "v1", "2026-05-01", []pastScore{{1, 0.5, "high"}, {2, 0.5, "high"}})
	f.workOrder(t, 1, "CORRECTIVE", "2026-06-10T08:00:00Z")
	f.workOrder(t, 2, "CORRECTIVE", "2026-06-30T23:00:00Z")
	f.workOrder(t, 3, "CORRECTIVE", "2026-07-01T00:00:00Z")
	f.workOrder(t, 4, "PREVENTIVE", "2026-06-15T08:00:00Z")
	f.workOrder(t, 5, "CORRECTIVE", "2026-05-31T23:59:00Z")
	return f
}

type performanceRow struct {
	role, snapshot              string
	window, labelled, positives int
	auc, precision              *float64
}

func (f *fixture) performance(t testing.TB, runID, version string) performanceRow {
	t.Helper()
	var p performanceRow
	if err := f.pool.QueryRow(context.Background(), `SELECT role, snapshot_date::text, label_window_days, labelled, positives, roc_auc, critical_precision
		FROM model_performance WHERE run_id = $1 AND model_version = $2`, runID, version).
		Scan(&p.role, &p.snapshot, &p.window, &p.labelled, &p.positives, &p.auc, &p.precision); err != nil {
		t.Fatalf("performance of %s in %s: %v", version, runID, err)
	}
	return p
}

func near(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-12 }

// Realized performance against the work orders of the label window, worked
// out by hand (realizedFixture); too few labels for the default promotion
// rule; a decayed AUC triggers a retrain; the scores of the older scoring
// are pruned, the scoring kept.
func TestRealizedPerformance(t *testing.T) {
	ctx := context.Background()
	f := realizedFixture(t, map[string]string{"AUTO_RETRAIN": "true", "DECAY_AUC_BELOW": "0.8"})
	f.process(t, f.monitorMessage(t, "mon-1", f.dated("2026-11-02", 0)), eventing.Handled)

	c, s := f.performance(t, "mon-1", "v1"), f.performance(t, "mon-1", "v2")
	if c.role != "champion" || c.snapshot != "2026-06-01" || c.window != 30 || c.labelled != 6 || c.positives != 2 || !near(c.auc, 0.75) || !near(c.precision, 0.5) {
		t.Errorf("champion %+v (auc %v precision %v)", c, *c.auc, *c.precision)
	}
	if s.role != "shadow" || s.labelled != 6 || s.positives != 2 || !near(s.auc, 1) || !near(s.precision, 1) {
		t.Errorf("shadow %+v", s)
	}
	out := f.monitored(t)
	want := map[string]float64{"roc_auc": 0.75, "critical_precision": 0.5, "labelled": 6, "positives": 2, "critical": 2}
	if !reflect.DeepEqual(out.GetRealized(), want) || out.GetShadowRealized()["roc_auc"] != 1 || out.GetShadowVersion() != "v2" || out.GetPromotedVersion() != "" {
		t.Errorf("model.monitored %v", out)
	}
	if !out.GetRetrainTriggered() || !strings.Contains(out.GetRetrainReason(), "decay: realized ROC AUC 0.750 < 0.8") {
		t.Errorf("decay: triggered %v, reason %q", out.GetRetrainTriggered(), out.GetRetrainReason())
	}
	var champion string
	if err := f.pool.QueryRow(ctx, `SELECT version FROM models WHERE champion`).Scan(&champion); err != nil || champion != "v1" {
		t.Errorf("champion %q (%v) after too few labels to promote", champion, err)
	}
	f.checkScoring(t, "mon-1", "shadow", "v2", events.ModelMonitoring, f.dated("2026-11-02", 0))
	var older, old, scorings int
	if err := f.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM model_scores s JOIN model_scorings g ON g.id = s.scoring_id WHERE g.run_id = 'older'),
		(SELECT count(*) FROM model_scores s JOIN model_scorings g ON g.id = s.scoring_id WHERE g.run_id = 'old'),
		(SELECT count(*) FROM model_scorings WHERE run_id IN ('old', 'older'))`).Scan(&older, &old, &scorings); err != nil {
		t.Fatal(err)
	}
	if older != 0 || old != 12 || scorings != 3 {
		t.Errorf("after pruning: %d scores of the older scoring, %d of the evaluated ones, %d scorings", older, old, scorings)
	}
}

// With a rule the shadow meets, it is promoted: champion in models, deployed
// through the engine, scoring the fleet; performing the step again changes
// nothing.
func TestShadowPromotion(t *testing.T) {
	ctx := context.Background()
	f := realizedFixture(t, map[string]string{"SHADOW_MIN_LABELLED": "6", "SHADOW_MIN_POSITIVES": "2"})
	rows := f.dated("2026-11-02", 0)
	msg := f.monitorMessage(t, "mon-1", rows)
	f.process(t, msg, eventing.Handled)

	check := func() {
		t.Helper()
		var champion, shadows, active string
		var promotedAt *time.Time
		if err := f.pool.QueryRow(ctx, `SELECT (SELECT string_agg(version, ',') FROM models WHERE champion),
			(SELECT coalesce(string_agg(version, ','), '') FROM models WHERE shadow),
			(SELECT promoted_at FROM models WHERE version = 'v2'),
			(SELECT string_agg(model_version, ',') FROM model_deployments WHERE active)`).Scan(&champion, &shadows, &promotedAt, &active); err != nil {
			t.Fatal(err)
		}
		if champion != "v2" || shadows != "" || promotedAt == nil || active != "v2" || f.pred.Current().Version() != "v2" {
			t.Errorf("after promotion: champion %s, shadows %q, promoted at %v, active deployment %s, served %s", champion, shadows, promotedAt, active, f.pred.Current().Version())
		}
		f.checkScoredBy(t, "v2", "mon-1", rows)
		f.checkScoring(t, "mon-1", "champion", "v2", events.ModelMonitoring, rows)
		if _, ok := f.scoring(t, "mon-1", "shadow"); ok {
			t.Error("the promoted shadow was also scored as the shadow")
		}
	}
	check()
	out := f.monitored(t)
	if out.GetPromotedVersion() != "v2" || out.GetModelVersion() != "v2" || out.GetShadowVersion() != "" || out.GetRealized()["roc_auc"] != 0.75 {
		t.Errorf("model.monitored %v", out)
	}
	if fig := f.lastFigures(t); fig["promoted"] != 1 || fig["new_deployment"] != 1 {
		t.Errorf("figures %v", fig)
	}
	f.process(t, reissue(t, msg), eventing.Handled)
	check()
	var deployments int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM model_deployments`).Scan(&deployments); err != nil || deployments != 2 {
		t.Errorf("%d deployments (%v), want v1's and v2's", deployments, err)
	}
}
