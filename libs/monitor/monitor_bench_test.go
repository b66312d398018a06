package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/benchpair"
)

const benchAssets, benchFeatures = 100_000, 15

// benchRows returns n rows of benchFeatures features (one with a missing
// value in every tenth row), their scores, outcomes and risk levels.
func benchRows(n int, seed uint64) (names []string, X [][]float64, scores []float64, labels []bool, levels []string) {
	rng := rand.New(rand.NewPCG(seed, 1))
	names = make([]string, benchFeatures)
	for j := range names {
		names[j] = fmt.Sprintf("f%d", j)
	}
	X = make([][]float64, n)
	scores = make([]float64, n)
	labels = make([]bool, n)
	levels = make([]string, n)
	for i := range X {
		X[i] = make([]float64, benchFeatures)
		for j := range X[i] {
			X[i][j] = rng.NormFloat64()*float64(j+1) + float64(j)
		}
		if i%10 == 0 {
			X[i][3] = math.NaN()
		}
		scores[i] = rng.Float64()
		labels[i] = rng.Float64() < scores[i]*scores[i]
		levels[i] = DefaultBands.Level(scores[i])
	}
	return names, X, scores, labels, levels
}

// BenchmarkMonitor100k is the monitoring over the scores of 100,000 assets:
// the PSI of 15 features and the score against a training profile, and the
// realized performance over 100,000 labels; beside it, in interleaved pairs
// (libs/benchpair), its baseline: sorting the 100,000 scores once, the
// floor of any ROC AUC. Each side repeats to take about a second (the
// figures are per run).
//
//	go test -run '^$' -bench Monitor100k -benchtime 1x -count 5 ./libs/monitor/
func BenchmarkMonitor100k(b *testing.B) {
	names, trainX, trainScores, _, _ := benchRows(benchAssets, 1)
	profile, err := NewProfile("bench", names, trainX, trainScores, DefaultBins)
	if err != nil {
		b.Fatal(err)
	}
	_, X, scores, labels, levels := benchRows(benchAssets, 2)
	buf := make([]float64, len(scores))
	pair := &benchpair.Pair{
		Ours: benchpair.Side{Reps: 5, Run: func(b *testing.B) {
			if _, err := profile.PSI(names, X, scores); err != nil {
				b.Fatal(err)
			}
			if _, err := Realized(labels, scores, levels); err != nil {
				b.Fatal(err)
			}
		}},
		Base: benchpair.Side{Reps: 40, Run: func(*testing.B) {
			copy(buf, scores)
			slices.Sort(buf)
		}},
	}
	b.Run("monitor_vs_sort", pair.Run)
}
