package monitor

import (
	"fmt"
	"math"
	"slices"
)

// DefaultBins is the number of quantile bins of a profile histogram.
const DefaultBins = 10

// epsilon is the floor of a bin's share in PSI: an empty bin counts as
// holding epsilon of the values, so that ln(a/e) stays finite.
const epsilon = 1e-4

// Histogram is the distribution of one variable over quantile bins. Edges are
// the inner cut points, ascending; there are len(Edges)+1 bins, each
// including its upper edge: (-inf,e0], (e0,e1], …, (e_last,+inf). Fractions
// is the share of values per bin, summing to 1.
//
// A missing value — NaN or ±Inf, which the model imputes — is no value of the
// distribution: NewHistogram and Distribution skip it, so PSI compares the
// present values only.
type Histogram struct {
	Edges     []float64 `json:"edges"`
	Fractions []float64 `json:"fractions"`
}

// NewHistogram cuts values at their own quantiles into at most bins bins
// (bins < 1 counts as 1): edge k is the smallest value with at least k/bins
// of the values at or below it. Equal edges collapse into one and an edge at
// the maximum is dropped (its upper bin would be empty), so ties make fewer
// bins and a constant variable has a single bin. Values with no present
// value make a single bin too.
func NewHistogram(values []float64, bins int) Histogram {
	present := presentValues(values)
	slices.Sort(present)
	h := Histogram{Edges: quantileEdges(present, bins)}
	h.Fractions = h.Distribution(present)
	if len(present) == 0 {
		h.Fractions[0] = 1
	}
	return h
}

func presentValues(values []float64) []float64 {
	out := make([]float64, 0, len(values))
	for _, v := range values {
		if !missing(v) {
			out = append(out, v)
		}
	}
	return out
}

func missing(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// quantileEdges returns the distinct inner quantile cut points of the sorted
// values, below their maximum.
func quantileEdges(sorted []float64, bins int) []float64 {
	n := len(sorted)
	edges := []float64{}
	for k := 1; k < bins && n > 0; k++ {
		e := sorted[(k*n+bins-1)/bins-1] // the ⌈k·n/bins⌉-th smallest value
		if e == sorted[n-1] {
			break
		}
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	return edges
}

// bin is the index of the bin of h holding v: the first edge ≥ v, or the
// top bin. A linear scan: with the few edges of a profile it beats a binary
// search.
func (h Histogram) bin(v float64) int {
	for i, e := range h.Edges {
		if v <= e {
			return i
		}
	}
	return len(h.Edges)
}

// tally counts the present values falling in each bin of a histogram.
type tally struct {
	h      Histogram
	counts []float64
	n      int
}

func newTally(h Histogram) *tally { return &tally{h: h, counts: make([]float64, len(h.Edges)+1)} }

func (t *tally) add(v float64) {
	if missing(v) {
		return
	}
	t.counts[t.h.bin(v)]++
	t.n++
}

// shares returns the share of the counted values per bin (all zeros when
// none was counted).
func (t *tally) shares() []float64 {
	if t.n > 0 {
		for i := range t.counts {
			t.counts[i] /= float64(t.n)
		}
	}
	return t.counts
}

// Distribution returns the share of the present values per bin of h (all
// zeros when no value is present).
func (h Histogram) Distribution(values []float64) []float64 {
	t := newTally(h)
	for _, v := range values {
		t.add(v)
	}
	return t.shares()
}

// PSI is the population stability index of values against h:
// Σ (a−e)·ln(a/e) over the bins, e the expected share (h.Fractions) and a the
// actual one (Distribution), each floored at epsilon (1e-4) so that an empty bin
// contributes a large but finite term. Values outside the training range
// fall in the outer bins. Values with no present value have an actual share
// of zero everywhere, which scores as strong drift.
func (h Histogram) PSI(values []float64) float64 {
	return psi(h.Fractions, h.Distribution(values))
}

func psi(expected, actual []float64) float64 {
	var s float64
	for i, e := range expected {
		e, a := max(e, epsilon), max(actual[i], epsilon)
		s += (a - e) * math.Log(a/e)
	}
	return s
}

// validate checks what Histogram documents: finite ascending edges and one
// fraction per bin, each in [0, 1], summing to 1.
func (h Histogram) validate() error {
	for i, e := range h.Edges {
		if missing(e) {
			return fmt.Errorf("edge %d is %v", i, e)
		}
		if i > 0 && e <= h.Edges[i-1] {
			return fmt.Errorf("edges not ascending: %v after %v", e, h.Edges[i-1])
		}
	}
	if len(h.Fractions) != len(h.Edges)+1 {
		return fmt.Errorf("%d fractions for %d edges, want %d", len(h.Fractions), len(h.Edges), len(h.Edges)+1)
	}
	var sum float64
	for i, f := range h.Fractions {
		if !(f >= 0 && f <= 1) {
			return fmt.Errorf("fraction %d is %v, want within [0, 1]", i, f)
		}
		sum += f
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("fractions sum to %v, want 1", sum)
	}
	return nil
}
