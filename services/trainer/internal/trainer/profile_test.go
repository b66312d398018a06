package trainer_test

import (
	"slices"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
)

// inputs returns the input vectors of rows as the deployer builds them for
// m, and m's scores on them.
func inputs(t *testing.T, m *model.Model, rows []features.Row) ([][]float64, []float64) {
	t.Helper()
	X := make([][]float64, len(rows))
	for i, r := range rows {
		x, err := m.Vector(r)
		if err != nil {
			t.Fatal(err)
		}
		X[i] = x
	}
	scores, err := m.PredictAll(X)
	if err != nil {
		t.Fatal(err)
	}
	return X, scores
}

func TestTrainingProfile(t *testing.T) {
	training, scoring := fleetFeatures(t)
	e := newEnv(t, defaultConfig(t, nil))
	eventingtest.Deliver(t, e.router, e.put(t, "run-1", training, scoring), eventing.Handled)
	version := trained(t, e.pool)[0].ModelVersion
	m, err := model.Load(mustGet(t, e.store, trainer.ArtifactName(version)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := monitor.LoadProfile(mustGet(t, e.store, trainer.ProfileName(version)))
	if err != nil {
		t.Fatal(err)
	}
	if reg := registry(t, e.pool); len(reg) != 1 || reg[0].profileName != trainer.ProfileName(version) {
		t.Errorf("registry: %+v, want profile_name %s", reg, trainer.ProfileName(version))
	}
	if p.ModelVersion != version || p.Rows != m.Training.Rows || len(p.Features) != len(m.Features) {
		t.Errorf("profile of %s: %d rows, %d features; the model trained on %d rows of %d features",
			p.ModelVersion, p.Rows, len(p.Features), m.Training.Rows, len(m.Features))
	}
	// The training rows are those of the model's training dates (the
	// embargoed dates are not among them).
	var train []features.Row
	for _, r := range training {
		if slices.Contains(m.Training.TrainDates, r.SnapshotDate) {
			train = append(train, r)
		}
	}
	if len(train) != p.Rows {
		t.Fatalf("%d rows on the training dates, the profile has %d", len(train), p.Rows)
	}
	X, scores := inputs(t, m, train)
	psi, err := p.PSI(m.Features, X, scores)
	if err != nil {
		t.Fatal(err)
	}
	if len(psi) != len(m.Features)+1 {
		t.Errorf("PSI of %d entries, want every feature and the score: %v", len(psi), psi)
	}
	for name, v := range psi {
		if v > 1e-12 {
			t.Errorf("PSI of the training rows' %s against their own profile %v, want 0", name, v)
		}
	}
	// The scoring rows, a year and more later, have drifted: the assets aged.
	X, scores = inputs(t, m, scoring)
	if psi, err = p.PSI(m.Features, X, scores); err != nil {
		t.Fatal(err)
	}
	name, v := monitor.MaxPSI(psi)
	t.Logf("scoring rows against the profile: max PSI %s %.4f, asset age %.4f, score %.4f", name, v, psi["asset_age_days"], psi[monitor.Score])
	if psi["asset_age_days"] <= 0 {
		t.Errorf("asset age PSI of the scoring rows %v, want above 0", psi["asset_age_days"])
	}
}
