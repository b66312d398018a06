package trainertest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainertest"
)

// Synthetic: 22 monthly snapshots for a run on 2026-03-01, only assets in
// service, the same rows twice, about a third positive, and a logistic
// model trained on the earlier snapshots ranks the holdout's well.
func TestSynthetic(t *testing.T) {
	asOf := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	rows := slices.Collect(trainertest.Synthetic(2000, 100, asOf))
	if again := slices.Collect(trainertest.Synthetic(2000, 100, asOf)); !slices.Equal(rows, again) {
		t.Fatal("Synthetic gave other rows the second time")
	}
	dates := map[string]int{}
	positives := 0
	for _, r := range rows {
		dates[r.SnapshotDate]++
		positives += int(r.Label)
		if r.AssetAgeDays <= 0 || r.CompletedWorkOrders > r.TotalWorkOrders || r.CriticalWorkOrders > r.HighPriorityWorkOrders {
			t.Fatalf("row %+v: not a row featurejob could build", r)
		}
	}
	if len(dates) != 22 || dates["2024-03-01"] == 0 || dates["2025-12-01"] == 0 || dates["2025-12-01"] > 2000 {
		t.Fatalf("snapshots %v: want 2024-03-01 … 2025-12-01, at most 2,000 assets each", dates)
	}
	share := float64(positives) / float64(len(rows))
	if share < 0.2 || share > 0.5 {
		t.Fatalf("%.2f positive: want about a third", share)
	}
	t.Logf("%d rows, %.2f positive", len(rows), share)
	ds, err := trainer.Split(rows, 0.2, features.DefaultLabelWindowDays)
	if err != nil {
		t.Fatal(err)
	}
	X, y := trainer.Matrix(ds.Train)
	m, err := model.Train(model.InputNames(), X, y, model.Options{Kind: model.Logistic})
	if err != nil {
		t.Fatal(err)
	}
	Xh, yh := trainer.Matrix(ds.Holdout)
	p, err := m.PredictAll(Xh)
	if err != nil {
		t.Fatal(err)
	}
	e, err := model.Evaluate(yh, p)
	if err != nil || e.ROCAUC < 0.65 {
		t.Fatalf("holdout ROC AUC %.3f (%v): want a learnable label", e.ROCAUC, err)
	}
}
