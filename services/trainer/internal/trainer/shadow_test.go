package trainer_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
)

// roles maps every registered version to "champion", "shadow" or "".
func roles(t *testing.T, e env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range registry(t, e.pool) {
		switch {
		case r.champion && r.shadow:
			t.Errorf("%s is both the champion and the shadow", r.version)
		case r.champion:
			out[r.version] = "champion"
		case r.shadow:
			out[r.version] = "shadow"
		default:
			out[r.version] = ""
		}
	}
	return out
}

// threeRuns delivers the fleet's features (run-1, a model with signal) and
// then two runs whose training labels are shuffled with different seeds
// (run-2, run-3: models without signal, each a new version), and returns the
// three model versions.
func threeRuns(t *testing.T, e env) [3]string {
	t.Helper()
	training, scoring := fleetFeatures(t)
	eventingtest.Deliver(t, e.router, e.put(t, "run-1", training, scoring), eventing.Handled)
	first := trained(t, e.pool)[0]
	m, err := model.Load(mustGet(t, e.store, trainer.ArtifactName(first.ModelVersion)))
	if err != nil {
		t.Fatal(err)
	}
	for i, run := range []string{"run-2", "run-3"} {
		rows := shuffledLabels(training, m.Training.HoldoutDates[0], uint64(i+1))
		eventingtest.Deliver(t, e.router, e.put(t, run, rows, scoring), eventing.Handled)
	}
	evs := trained(t, e.pool)
	if len(evs) != 3 || evs[1].ModelVersion == evs[2].ModelVersion {
		t.Fatalf("model.trained events %v, want three versions", evs)
	}
	return [3]string{evs[0].ModelVersion, evs[1].ModelVersion, evs[2].ModelVersion}
}

func TestShadowRejected(t *testing.T) {
	e := newEnv(t, defaultConfig(t, map[string]string{"SHADOW": "rejected"}))
	v := threeRuns(t, e)
	evs := trained(t, e.pool)
	for _, mt := range evs[1:] {
		if mt.Promoted || mt.ChampionVersion != v[0] || !strings.Contains(mt.GateReason, "< champion") ||
			!strings.HasSuffix(mt.GateReason, "kept as the shadow challenger (SHADOW=rejected)") {
			t.Errorf("%s: promoted=%v champion=%q reason=%q", mt.ModelVersion, mt.Promoted, mt.ChampionVersion, mt.GateReason)
		}
	}
	// run-3's rejected model replaced run-2's as the shadow.
	want := map[string]string{v[0]: "champion", v[1]: "", v[2]: "shadow"}
	if got := roles(t, e); !maps.Equal(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
	if f := stepSucceeded(t, e.pool)[2].Figures; f["shadow"] != 1 || f["promoted"] != 0 {
		t.Errorf("run-3 figures %v", f)
	}
	// A redelivery of run-3's features keeps the same single shadow.
	training, scoring := fleetFeatures(t)
	m, _ := model.Load(mustGet(t, e.store, trainer.ArtifactName(v[0])))
	eventingtest.Deliver(t, e.router, e.put(t, "run-3", shuffledLabels(training, m.Training.HoldoutDates[0], 2), scoring), eventing.Handled)
	if got := roles(t, e); !maps.Equal(got, want) {
		t.Errorf("after redelivery roles %v, want %v", got, want)
	}
}

func TestShadowAll(t *testing.T) {
	// With a margin of 0.5 the gate would promote the models without
	// signal; SHADOW=all keeps them as the shadow instead.
	e := newEnv(t, defaultConfig(t, map[string]string{"SHADOW": "all", "GATE_MARGIN": "0.5"}))
	v := threeRuns(t, e)
	evs := trained(t, e.pool)
	if !evs[0].Promoted || !strings.Contains(evs[0].GateReason, "first model") {
		t.Errorf("first model: promoted=%v reason=%q, want promoted (no champion)", evs[0].Promoted, evs[0].GateReason)
	}
	for _, mt := range evs[1:] {
		if mt.Promoted || mt.ChampionVersion != v[0] ||
			!strings.HasPrefix(mt.GateReason, "kept as the shadow challenger, promoted only on realized performance (SHADOW=all); the offline gate would promote it: holdout ROC AUC") ||
			!strings.Contains(mt.GateReason, "margin 0.5000") {
			t.Errorf("%s: promoted=%v champion=%q reason=%q", mt.ModelVersion, mt.Promoted, mt.ChampionVersion, mt.GateReason)
		}
	}
	want := map[string]string{v[0]: "champion", v[1]: "", v[2]: "shadow"}
	if got := roles(t, e); !maps.Equal(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
	var promoted bool
	var reason string
	if err := e.pool.QueryRow(context.Background(), `SELECT promoted, gate_reason FROM models WHERE version = $1`, v[2]).Scan(&promoted, &reason); err != nil {
		t.Fatal(err)
	}
	if promoted || !strings.Contains(reason, "the offline gate would promote it") {
		t.Errorf("registered shadow: promoted=%v reason=%q", promoted, reason)
	}
}

func TestShadowAllRecordsARejection(t *testing.T) {
	e := newEnv(t, defaultConfig(t, map[string]string{"SHADOW": "all"}))
	v := threeRuns(t, e)
	if mt := trained(t, e.pool)[2]; mt.Promoted || !strings.Contains(mt.GateReason, "the offline gate rejects it: holdout ROC AUC") {
		t.Errorf("run-3: promoted=%v reason=%q", mt.Promoted, mt.GateReason)
	}
	if got, want := roles(t, e), map[string]string{v[0]: "champion", v[1]: "", v[2]: "shadow"}; !maps.Equal(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
}
