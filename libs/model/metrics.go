package model

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrUndefined is returned by a metric that needs both classes in y.
var ErrUndefined = errors.New("model: metric undefined: the labels contain a single class")

func checkLabels(y, p []float64) (pos, neg int, err error) {
	if len(y) != len(p) {
		return 0, 0, fmt.Errorf("model: %d labels but %d predictions", len(y), len(p))
	}
	if len(y) == 0 {
		return 0, 0, errors.New("model: no rows to evaluate")
	}
	for i, v := range y {
		switch v {
		case 0:
			neg++
		case 1:
			pos++
		default:
			return 0, 0, fmt.Errorf("model: label of row %d is %v, want 0 or 1", i, v)
		}
		if math.IsNaN(p[i]) {
			return 0, 0, fmt.Errorf("model: prediction of row %d is NaN", i)
		}
	}
	return pos, neg, nil
}

// order returns the row indices by descending score.
func order(p []float64) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	return idx
}

// ROCAUC is the area under the ROC curve: the probability that a random
// positive scores above a random negative, ties counting one half (the
// Mann–Whitney U statistic with mid-ranks).
func ROCAUC(y, p []float64) (float64, error) {
	pos, neg, err := checkLabels(y, p)
	if err != nil {
		return 0, err
	}
	if pos == 0 || neg == 0 {
		return 0, ErrUndefined
	}
	idx := order(p)
	// Walk groups of equal scores from the top; every negative in a group
	// beats the positives above it fully and ties half with those in it.
	var u float64
	posAbove := 0
	for i := 0; i < len(idx); {
		j := i
		gp, gn := 0, 0
		for ; j < len(idx) && p[idx[j]] == p[idx[i]]; j++ {
			if y[idx[j]] == 1 {
				gp++
			} else {
				gn++
			}
		}
		u += float64(gn) * (float64(posAbove) + 0.5*float64(gp))
		posAbove += gp
		i = j
	}
	return u / (float64(pos) * float64(neg)), nil
}

// PRAUC is the average precision, Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct
// score thresholds from the top (scikit-learn's average_precision_score):
// the area under the precision–recall step curve.
func PRAUC(y, p []float64) (float64, error) {
	pos, _, err := checkLabels(y, p)
	if err != nil {
		return 0, err
	}
	if pos == 0 {
		return 0, ErrUndefined
	}
	idx := order(p)
	var ap float64
	tp, seen := 0, 0
	prevRecall := 0.0
	for i := 0; i < len(idx); {
		j := i
		for ; j < len(idx) && p[idx[j]] == p[idx[i]]; j++ {
			if y[idx[j]] == 1 {
				tp++
			}
			seen++
		}
		recall := float64(tp) / float64(pos)
		precision := float64(tp) / float64(seen)
		ap += (recall - prevRecall) * precision
		prevRecall = recall
		i = j
	}
	return ap, nil
}

// Brier is the mean squared difference between probability and outcome.
func Brier(y, p []float64) (float64, error) {
	if _, _, err := checkLabels(y, p); err != nil {
		return 0, err
	}
	var s float64
	for i := range y {
		d := p[i] - y[i]
		s += d * d
	}
	return s / float64(len(y)), nil
}

// CalibrationBin is one equal-width probability bin: how many rows fell in
// it, their mean predicted probability and the observed positive rate.
type CalibrationBin struct {
	Lower         float64 `json:"lower"`
	Upper         float64 `json:"upper"`
	Count         int     `json:"count"`
	MeanPredicted float64 `json:"mean_predicted"`
	Observed      float64 `json:"observed"`
}

// Calibration sorts the predictions into bins equal-width bins over [0, 1]
// (the last bin includes 1) and returns them with the expected calibration
// error, ECE = Σ (count/N)·|mean predicted − observed|.
func Calibration(y, p []float64, bins int) ([]CalibrationBin, float64, error) {
	if _, _, err := checkLabels(y, p); err != nil {
		return nil, 0, err
	}
	if bins < 1 {
		return nil, 0, fmt.Errorf("model: calibration needs at least one bin, got %d", bins)
	}
	out := make([]CalibrationBin, bins)
	sumP := make([]float64, bins)
	sumY := make([]float64, bins)
	for b := range out {
		out[b].Lower = float64(b) / float64(bins)
		out[b].Upper = float64(b+1) / float64(bins)
	}
	for i := range y {
		b := int(math.Floor(p[i] * float64(bins)))
		b = max(0, min(b, bins-1))
		out[b].Count++
		sumP[b] += p[i]
		sumY[b] += y[i]
	}
	var ece float64
	for b := range out {
		if out[b].Count == 0 {
			continue
		}
		c := float64(out[b].Count)
		out[b].MeanPredicted = sumP[b] / c
		out[b].Observed = sumY[b] / c
		ece += c / float64(len(y)) * math.Abs(out[b].MeanPredicted-out[b].Observed)
	}
	return out, ece, nil
}

// Evaluation is the holdout report of a model.
type Evaluation struct {
	ROCAUC      float64
	PRAUC       float64
	Brier       float64
	ECE         float64
	Calibration []CalibrationBin
	Rows        int
	Positives   int
}

// Metrics returns the evaluation as the named figures the pipeline reports.
func (e Evaluation) Metrics() map[string]float64 {
	return map[string]float64{
		"roc_auc":           e.ROCAUC,
		"pr_auc":            e.PRAUC,
		"brier":             e.Brier,
		"ece":               e.ECE,
		"holdout_rows":      float64(e.Rows),
		"holdout_positives": float64(e.Positives),
	}
}

// CalibrationBins is the number of bins Evaluate uses.
const CalibrationBins = 10

// Evaluate computes every metric of predictions p against labels y; both
// classes must be present.
func Evaluate(y, p []float64) (Evaluation, error) {
	pos, _, err := checkLabels(y, p)
	if err != nil {
		return Evaluation{}, err
	}
	e := Evaluation{Rows: len(y), Positives: pos}
	if e.ROCAUC, err = ROCAUC(y, p); err != nil {
		return e, err
	}
	if e.PRAUC, err = PRAUC(y, p); err != nil {
		return e, err
	}
	if e.Brier, err = Brier(y, p); err != nil {
		return e, err
	}
	if e.Calibration, e.ECE, err = Calibration(y, p, CalibrationBins); err != nil {
		return e, err
	}
	return e, nil
}
