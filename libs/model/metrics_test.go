package model

import (
	"errors"
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestROCAUC(t *testing.T) {
	tests := []struct {
		name string
		y, p []float64
		want float64
	}{
		// scikit-learn's roc_auc_score docstring example.
		{"sklearn example", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 0.75},
		{"perfect", []float64{0, 0, 1, 1}, []float64{0.1, 0.2, 0.3, 0.4}, 1},
		{"inverted", []float64{1, 1, 0, 0}, []float64{0.1, 0.2, 0.3, 0.4}, 0},
		{"all tied", []float64{0, 1, 0, 1}, []float64{0.5, 0.5, 0.5, 0.5}, 0.5},
		// pairs (pos, neg): (.5,.5) ½, (.5,.2) 1, (.9,.5) 1, (.9,.2) 1 → 3.5/4.
		{"ties count half", []float64{0, 1, 0, 1}, []float64{0.5, 0.5, 0.2, 0.9}, 0.875},
		// 2 pos × 3 neg; pos at .7 beats .1 and .3, ties .7 (½); pos at .3 beats .1, ties .3 (½).
		{"two tie groups", []float64{1, 0, 0, 1, 0}, []float64{0.7, 0.7, 0.3, 0.3, 0.1}, (2.5 + 1.5) / 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ROCAUC(tt.y, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tt.want) {
				t.Errorf("ROCAUC = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := ROCAUC([]float64{1, 1}, []float64{0.2, 0.3}); !errors.Is(err, ErrUndefined) {
		t.Errorf("single class: err = %v, want ErrUndefined", err)
	}
	if _, err := ROCAUC([]float64{1, 2}, []float64{0.2, 0.3}); err == nil {
		t.Error("label 2 accepted")
	}
	if _, err := ROCAUC([]float64{1}, []float64{0.2, 0.3}); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestPRAUC(t *testing.T) {
	tests := []struct {
		name string
		y, p []float64
		want float64
	}{
		// scikit-learn's average_precision_score docstring example: 0.8333.
		// From the top: .8 (+) R=.5 P=1; .4 (−); .35 (+) R=1 P=2/3; .1 (−).
		{"sklearn example", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 0.5*1 + 0.5*2.0/3},
		{"perfect", []float64{0, 1, 1}, []float64{0.1, 0.8, 0.9}, 1},
		// One group at .5 holding one positive of two rows: R=.5 P=.5;
		// then .2 (+): R=1 P=2/3.
		{"tied group", []float64{1, 0, 1}, []float64{0.5, 0.5, 0.2}, 0.5*0.5 + 0.5*2.0/3},
		{"all tied", []float64{1, 0, 0, 0}, []float64{0.3, 0.3, 0.3, 0.3}, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PRAUC(tt.y, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tt.want) {
				t.Errorf("PRAUC = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := PRAUC([]float64{0, 0}, []float64{0.2, 0.3}); !errors.Is(err, ErrUndefined) {
		t.Errorf("no positives: err = %v, want ErrUndefined", err)
	}
}

func TestBrier(t *testing.T) {
	// scikit-learn's brier_score_loss docstring example.
	got, err := Brier([]float64{0, 1, 1, 0}, []float64{0.1, 0.9, 0.8, 0.3})
	if err != nil {
		t.Fatal(err)
	}
	if !near(got, 0.0375) {
		t.Errorf("Brier = %v, want 0.0375", got)
	}
}

func TestCalibration(t *testing.T) {
	y := []float64{0, 0, 1, 1, 1}
	p := []float64{0.1, 0.3, 0.8, 0.9, 1.0}
	bins, ece, err := Calibration(y, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	// bin [0,.5): .1 .3 → mean .2, observed 0; bin [.5,1]: .8 .9 1 → mean .9, observed 1.
	want := []CalibrationBin{
		{Lower: 0, Upper: 0.5, Count: 2, MeanPredicted: 0.2, Observed: 0},
		{Lower: 0.5, Upper: 1, Count: 3, MeanPredicted: 0.9, Observed: 1},
	}
	for i := range want {
		g, w := bins[i], want[i]
		if g.Count != w.Count || !near(g.Lower, w.Lower) || !near(g.Upper, w.Upper) ||
			!near(g.MeanPredicted, w.MeanPredicted) || !near(g.Observed, w.Observed) {
			t.Errorf("bin %d = %+v, want %+v", i, g, w)
		}
	}
	if wantECE := 2.0/5*0.2 + 3.0/5*0.1; !near(ece, wantECE) {
		t.Errorf("ECE = %v, want %v", ece, wantECE)
	}
	// Ten bins, the default: empty bins do not count.
	bins, ece, err = Calibration([]float64{0, 1, 1, 0}, []float64{0.1, 0.9, 0.8, 0.3}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 10 || bins[1].Count != 1 || bins[3].Count != 1 || bins[8].Count != 1 || bins[9].Count != 1 {
		t.Errorf("bins = %+v", bins)
	}
	if !near(ece, 0.25*(0.1+0.3+0.2+0.1)) {
		t.Errorf("ECE = %v, want 0.175", ece)
	}
	if _, _, err := Calibration(y, p, 0); err == nil {
		t.Error("zero bins accepted")
	}
}

func TestEvaluate(t *testing.T) {
	e, err := Evaluate([]float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8})
	if err != nil {
		t.Fatal(err)
	}
	m := e.Metrics()
	if !near(m["roc_auc"], 0.75) || !near(m["pr_auc"], 0.5+1.0/3) || m["holdout_rows"] != 4 || m["holdout_positives"] != 2 {
		t.Errorf("metrics = %v", m)
	}
	if !near(m["brier"], (0.01+0.16+0.4225+0.04)/4) {
		t.Errorf("brier = %v", m["brier"])
	}
	if _, err := Evaluate([]float64{0, 0}, []float64{0.1, 0.4}); !errors.Is(err, ErrUndefined) {
		t.Errorf("single class: err = %v", err)
	}
}
