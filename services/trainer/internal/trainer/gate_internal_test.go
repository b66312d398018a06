package trainer

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// The gate runs with no transaction open: a model gated against one
// champion is not registered if another became champion meanwhile; the
// step fails transiently and is retried against the new champion.
func TestRegisterRefusesAChampionThatChanged(t *testing.T) {
	ctx := context.Background()
	pool, store := pgtest.New(t), objstoretest.New(t)
	if _, err := pool.Exec(ctx, `INSERT INTO models (version, run_id, kind, artifact_name, artifact_uri, training_fingerprint, metrics, promoted, gate_reason, champion)
		VALUES ('v-other', 'r0', 'logistic', 'a', 'gs://b/a', 'f', '{}', true, 'first', true)`); err != nil {
		t.Fatal(err)
	}
	m := &model.Model{Version: "v-new", RunID: "r1", Kind: model.Logistic, Metrics: map[string]float64{"roc_auc": 0.9}}
	register := func(g gateResult) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return registerIfChampionHeld(ctx, tx, m, store, g) })
	}
	// Gated when there was no champion yet: refused.
	if err := register(gateResult{promoted: true, reason: "no champion yet"}); !errors.Is(err, errChampionChanged) {
		t.Fatalf("%v, want errChampionChanged", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM models WHERE version = 'v-new'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("registered anyway: %d %v", n, err)
	}
	// Gated against the champion that still is: registered and promoted.
	if err := register(gateResult{promoted: true, championVersion: "v-other", reason: "better"}); err != nil {
		t.Fatal(err)
	}
	var champion string
	if err := pool.QueryRow(ctx, `SELECT version FROM models WHERE champion`).Scan(&champion); err != nil || champion != "v-new" {
		t.Fatalf("champion %q %v", champion, err)
	}
}
