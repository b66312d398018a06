package monitor

import (
	"math"
	"slices"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestNewHistogram(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name      string
		values    []float64
		bins      int
		edges     []float64
		fractions []float64
	}{
		// n=10, 5 bins: edge k is the ⌈2k⌉-th smallest value: 2, 4, 6, 8.
		{"quantiles", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5, []float64{2, 4, 6, 8}, []float64{.2, .2, .2, .2, .2}},
		// Edges 0 ×8, 1: the eight zeros collapse into the bin (-inf,0].
		{"ties collapse", []float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 2}, 10, []float64{0, 1}, []float64{.8, .1, .1}},
		{"constant feature", []float64{3, 3, 3, 3}, 10, []float64{}, []float64{1}},
		// The missing values are skipped: 1,2,3,4 in 2 bins cut at 2.
		{"missing values skipped", []float64{nan, 1, 2, 3, 4, inf, math.Inf(-1)}, 2, []float64{2}, []float64{.5, .5}},
		{"no present value", []float64{nan, nan}, 10, []float64{}, []float64{1}},
		{"one bin", []float64{1, 2, 3}, 0, []float64{}, []float64{1}},
		// Fewer values than bins: every distinct value but the maximum is an edge.
		{"fewer values than bins", []float64{1, 2, 3}, 10, []float64{1, 2}, []float64{1. / 3, 1. / 3, 1. / 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram(tt.values, tt.bins)
			if !slices.Equal(h.Edges, tt.edges) {
				t.Errorf("edges %v, want %v", h.Edges, tt.edges)
			}
			if !slices.EqualFunc(h.Fractions, tt.fractions, near) {
				t.Errorf("fractions %v, want %v", h.Fractions, tt.fractions)
			}
			if err := h.validate(); err != nil {
				t.Errorf("invalid histogram: %v", err)
			}
		})
	}
}

func TestDistributionOutsideTrainingRange(t *testing.T) {
	h := Histogram{Edges: []float64{2, 4, 6, 8}, Fractions: []float64{.2, .2, .2, .2, .2}}
	// Below the first edge and above the last: the outer bins. An edge value
	// belongs to the bin it closes (upper edge included).
	got := h.Distribution([]float64{-100, 100, 2, 8.0001, math.NaN()})
	want := []float64{.5, 0, 0, 0, .5}
	if !slices.EqualFunc(got, want, near) {
		t.Errorf("distribution %v, want %v", got, want)
	}
	if got := h.Distribution([]float64{math.NaN()}); !slices.Equal(got, []float64{0, 0, 0, 0, 0}) {
		t.Errorf("distribution of no present value %v, want all zeros", got)
	}
}

func TestPSIByHand(t *testing.T) {
	h := Histogram{Edges: []float64{1, 2}, Fractions: []float64{.1, .1, .8}}
	tests := []struct {
		name   string
		values []float64
		want   float64
	}{
		// Expected 10/10/80, actual 20/20/60:
		// (.2−.1)·ln(.2/.1) + (.2−.1)·ln(.2/.1) + (.6−.8)·ln(.6/.8)
		// = .1·0.693147 + .1·0.693147 + (−.2)·(−0.287682)
		// = 0.069315 + 0.069315 + 0.057536 = 0.196166.
		{"shifted", []float64{0, 1, 1.5, 2, 3, 3, 3, 3, 3, 3}, 0.2*math.Log(2) - 0.2*math.Log(0.75)},
		// Expected 10/10/80, actual 10/10/80: every term is 0.
		{"same distribution", []float64{0, 1.5, 3, 3, 3, 3, 3, 3, 3, 3}, 0},
		// Expected 10/10/80, actual 100/0/0; the empty bins count as 1e-4:
		// (1−.1)·ln(1/.1) + (1e-4−.1)·ln(1e-4/.1) + (1e-4−.8)·ln(1e-4/.8)
		// = .9·2.302585 + (−.0999)·(−6.907755) + (−.7999)·(−8.987197)
		// = 2.072327 + 0.690085 + 7.188859 ≈ 9.95127.
		{"all in one bin", []float64{0, 0}, .9*math.Log(10) + (1e-4-.1)*math.Log(1e-4/.1) + (1e-4-.8)*math.Log(1e-4/.8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.PSI(tt.values); !near(got, tt.want) {
				t.Errorf("PSI %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPSIOfTrainingDataIsZero(t *testing.T) {
	values := []float64{5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}
	h := NewHistogram(values, DefaultBins)
	if got := h.PSI(values); got != 0 {
		t.Errorf("PSI of the training values %v, want 0", got)
	}
}
