// Package testmodel builds the deployer's test fixtures: a small model
// trained with libs/model on synthetic feature rows, its artifact in a
// bucket, and a scoring Parquet file.
package testmodel

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// Rows returns n synthetic feature rows for assets ids[0..n), unlabelled.
// Higher critical and corrective counts and ages mean more risk.
func Rows(seed uint64, ids []int64) []features.Row {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]features.Row, len(ids))
	for i, id := range ids {
		total := int32(r.IntN(20))
		completed := int32(r.IntN(int(total) + 1))
		high := int32(r.IntN(int(total) + 1))
		crit := int32(r.IntN(int(high) + 1))
		row := features.Row{
			AssetID: id, VehicleType: features.VehicleTypes[r.IntN(len(features.VehicleTypes))], SnapshotDate: "2026-11-01",
			AssetAgeDays: int32(100 + r.IntN(4000)), DaysSinceLastMaintenance: int32(r.IntN(400)),
			TotalWorkOrders: total, CompletedWorkOrders: completed, HighPriorityWorkOrders: high, CriticalWorkOrders: crit,
			CorrectiveWorkOrders: int32(r.IntN(int(total) + 1)), MissedMaintenance: int32(r.IntN(4)),
			AvgRepairHours: r.Float64() * 8, MeterReading: r.Float64() * 300000, EngineHours: r.Float64() * 9000,
			Label: features.Unlabelled,
		}
		if total > 0 {
			row.WorkOrderCompletionRate = float64(completed) / float64(total)
			row.HighPriorityRatio = float64(high) / float64(total)
		}
		out[i] = row
	}
	return out
}

// Train fits a logistic model on 400 synthetic labelled rows (seed varies
// the data, so two seeds give two different models) and names it version.
func Train(t testing.TB, version string, seed uint64) *model.Model {
	t.Helper()
	ids := make([]int64, 400)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	rows := Rows(seed, ids)
	r := rand.New(rand.NewPCG(seed+1, 7))
	X := make([][]float64, len(rows))
	y := make([]float64, len(rows))
	for i, row := range rows {
		X[i] = model.Inputs(row)
		z := -3 + 0.6*float64(row.CriticalWorkOrders) + 0.15*float64(row.CorrectiveWorkOrders) + float64(row.AssetAgeDays)/2000
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
	}
	m, err := model.Train(model.InputNames(), X, y, model.Options{Kind: model.Logistic})
	if err != nil {
		t.Fatalf("testmodel: train: %v", err)
	}
	m.Version, m.RunID, m.CreatedAt = version, "run-"+version, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m.Metrics = map[string]float64{"roc_auc": 0.8, "pr_auc": 0.5, "brier": 0.15}
	return m
}

// PutModel writes m's artifact to models/<version>/model.json and returns
// the object name.
func PutModel(t testing.TB, store *objstore.Store, m *model.Model) string {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatalf("testmodel: %v", err)
	}
	name := "models/" + m.Version + "/model.json"
	if err := store.Put(context.Background(), name, "application/json", data); err != nil {
		t.Fatalf("testmodel: %v", err)
	}
	return name
}

// PutScoring writes rows to runs/<runID>/features/scoring.parquet and
// returns the object name.
func PutScoring(t testing.TB, store *objstore.Store, runID string, rows []features.Row) string {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatalf("testmodel: parquet: %v", err)
	}
	name := "runs/" + runID + "/features/" + features.ScoringObject
	if err := store.Put(context.Background(), name, "application/vnd.apache.parquet", buf.Bytes()); err != nil {
		t.Fatalf("testmodel: %v", err)
	}
	return name
}
