package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// GBTParams are a boosted ensemble: p = σ(base_score + Σ tree(x)). Leaf
// values already include the learning rate.
type GBTParams struct {
	BaseScore    float64 `json:"base_score"`
	LearningRate float64 `json:"learning_rate"`
	MaxDepth     int     `json:"max_depth"`
	MinLeafRows  int     `json:"min_leaf_rows"`
	Lambda       float64 `json:"lambda"`
	MaxBins      int     `json:"max_bins"`
	Trees        []Tree  `json:"trees"`
}

// Tree is a binary regression tree, nodes[0] the root.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is a split (Feature ≥ 0: go to Left when x[Feature] ≤ Threshold,
// else Right) or a leaf (Feature = −1) with Value.
type Node struct {
	Feature   int     `json:"f"`
	Threshold float64 `json:"t,omitempty"`
	Left      int     `json:"l,omitempty"`
	Right     int     `json:"r,omitempty"`
	Value     float64 `json:"v,omitempty"`
}

func (t *Tree) eval(x func(int) float64) float64 {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Feature < 0 {
			return n.Value
		}
		if x(n.Feature) <= n.Threshold {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}

// validate checks that every reference is in range and points forward, so
// eval terminates.
func (t *Tree) validate(features int) error {
	if len(t.Nodes) == 0 {
		return errors.New("no nodes")
	}
	for i, n := range t.Nodes {
		if n.Feature < 0 {
			continue
		}
		if n.Feature >= features {
			return fmt.Errorf("node %d splits on input %d of %d", i, n.Feature, features)
		}
		if n.Left <= i || n.Right <= i || n.Left >= len(t.Nodes) || n.Right >= len(t.Nodes) {
			return fmt.Errorf("node %d has children %d, %d out of order", i, n.Left, n.Right)
		}
	}
	return nil
}

// binning maps each input to at most MaxBins quantile bins: bin(x) is the
// first i with x ≤ thresholds[i], or len(thresholds).
type binning struct {
	thresholds [][]float64
}

func newBinning(X [][]float64, maxBins int) binning {
	d := len(X[0])
	b := binning{thresholds: make([][]float64, d)}
	col := make([]float64, len(X))
	for j := range d {
		for i, x := range X {
			col[i] = x[j]
		}
		slices.Sort(col)
		uniq := slices.Compact(slices.Clone(col))
		var thr []float64
		if len(uniq) <= maxBins {
			for i := 0; i+1 < len(uniq); i++ {
				thr = append(thr, uniq[i]+(uniq[i+1]-uniq[i])/2)
			}
		} else {
			for q := 1; q < maxBins; q++ {
				v := col[q*len(col)/maxBins]
				// Cut halfway to the next larger value, so that the
				// threshold generalises between the observed values.
				k := sort.SearchFloat64s(uniq, v)
				if k+1 < len(uniq) {
					v += (uniq[k+1] - v) / 2
				}
				if len(thr) == 0 || v > thr[len(thr)-1] {
					thr = append(thr, v)
				}
			}
		}
		b.thresholds[j] = thr
	}
	return b
}

func (b binning) bin(j int, v float64) uint8 {
	return uint8(sort.SearchFloat64s(b.thresholds[j], v))
}

// histogram holds, per bin of every input, the sums of gradient and hessian
// and the row count.
type histogram []histBin

type histBin struct {
	g, h float64
	n    int64
}

func newHistogram(size int) histogram { return make(histogram, size) }

type gbtTrainer struct {
	o       Options
	bins    binning
	binned  []uint16 // row-major: binned[i*d+j] is row i's histogram slot for input j
	d       int
	offset  []int // start of each input's bins in a histogram
	nbins   int   // total bins over all inputs
	g, h    []float64
	idx     []int32
	workers int
}

// trainGBT boosts depth-limited trees on the log-loss gradient and hessian
// (the XGBoost objective with L2 on leaf values), finding splits on
// per-input quantile histograms; a child's histogram is its parent's minus
// its sibling's, and only the smaller child is counted.
func trainGBT(X [][]float64, y []float64, o Options) *GBTParams {
	n, d := len(X), len(X[0])
	t := &gbtTrainer{o: o, bins: newBinning(X, o.MaxBins)}
	t.d = d
	t.offset = make([]int, d)
	for j := range d {
		t.offset[j] = t.nbins
		t.nbins += len(t.bins.thresholds[j]) + 1
	}
	t.binned = make([]uint16, n*d)
	for i, x := range X {
		for j := range d {
			t.binned[i*d+j] = uint16(t.offset[j]) + uint16(t.bins.bin(j, x[j]))
		}
	}
	t.workers = o.Parallelism
	if t.workers <= 0 {
		t.workers = runtime.GOMAXPROCS(0)
	}
	pos := 0.0
	for _, v := range y {
		pos += v
	}
	base := math.Log(pos / (float64(n) - pos))
	F := make([]float64, n)
	for i := range F {
		F[i] = base
	}
	t.g, t.h = make([]float64, n), make([]float64, n)
	t.idx = make([]int32, n)
	params := &GBTParams{
		BaseScore: base, LearningRate: o.LearningRate, MaxDepth: o.MaxDepth,
		MinLeafRows: o.MinLeafRows, Lambda: o.Lambda, MaxBins: o.MaxBins,
	}
	for range o.Rounds {
		for i := range n {
			p := sigmoid(F[i])
			t.g[i] = p - y[i]
			t.h[i] = math.Max(p*(1-p), 1e-16)
			t.idx[i] = int32(i)
		}
		tree := Tree{}
		root := t.build(0, n)
		t.grow(&tree, root, 0, n, 0, F)
		params.Trees = append(params.Trees, tree)
	}
	return params
}

// build counts the histogram of rows idx[lo:hi], in row blocks in parallel
// when there is enough work; the blocks' sums are added in block order, so the
// result does not depend on scheduling.
func (t *gbtTrainer) build(lo, hi int) histogram {
	rows := t.idx[lo:hi]
	count := func(hist histogram, rows []int32) {
		d := t.d
		for _, i := range rows {
			g, h := t.g[i], t.h[i]
			for _, slot := range t.binned[int(i)*d : int(i)*d+d] {
				b := &hist[slot]
				b.g += g
				b.h += h
				b.n++
			}
		}
	}
	workers := min(t.workers, len(rows)/20_000)
	if workers <= 1 {
		hist := newHistogram(t.nbins)
		count(hist, rows)
		return hist
	}
	parts := make([]histogram, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			parts[w] = newHistogram(t.nbins)
			count(parts[w], rows[w*len(rows)/workers:(w+1)*len(rows)/workers])
		})
	}
	wg.Wait()
	hist := parts[0]
	for _, p := range parts[1:] {
		for b := range hist {
			hist[b].g += p[b].g
			hist[b].h += p[b].h
			hist[b].n += p[b].n
		}
	}
	return hist
}

func (t *gbtTrainer) subtract(parent, child histogram) histogram {
	out := newHistogram(t.nbins)
	for b := range parent {
		out[b] = histBin{g: parent[b].g - child[b].g, h: parent[b].h - child[b].h, n: parent[b].n - child[b].n}
	}
	return out
}

type split struct {
	feature int
	bin     int
	gain    float64
}

// bestSplit scans every input's cumulative histogram for the split with the
// largest gain that leaves at least MinLeafRows rows on each side.
func (t *gbtTrainer) bestSplit(hist histogram, G, H float64, N int) (split, bool) {
	lambda := t.o.Lambda
	parent := G * G / (H + lambda)
	best := split{feature: -1, gain: t.o.MinSplitGain}
	for j := range t.d {
		off, nb := t.offset[j], len(t.bins.thresholds[j])+1
		var gl, hl float64
		var nl int
		for b := 0; b < nb-1; b++ {
			gl += hist[off+b].g
			hl += hist[off+b].h
			nl += int(hist[off+b].n)
			if nl < t.o.MinLeafRows {
				continue
			}
			if N-nl < t.o.MinLeafRows {
				break
			}
			gr, hr := G-gl, H-hl
			gain := gl*gl/(hl+lambda) + gr*gr/(hr+lambda) - parent
			if gain > best.gain {
				best = split{feature: j, bin: b, gain: gain}
			}
		}
	}
	return best, best.feature >= 0
}

// grow adds the subtree over rows idx[lo:hi] to tree and returns its node
// index; leaves add their value to F.
func (t *gbtTrainer) grow(tree *Tree, hist histogram, lo, hi, depth int, F []float64) int {
	var G, H float64
	off0, nb0 := t.offset[0], len(t.bins.thresholds[0])+1
	for b := off0; b < off0+nb0; b++ {
		G += hist[b].g
		H += hist[b].h
	}
	N := hi - lo
	me := len(tree.Nodes)
	tree.Nodes = append(tree.Nodes, Node{Feature: -1})
	var s split
	ok := depth < t.o.MaxDepth && N >= 2*t.o.MinLeafRows
	if ok {
		s, ok = t.bestSplit(hist, G, H, N)
	}
	if !ok {
		v := -G / (H + t.o.Lambda) * t.o.LearningRate
		tree.Nodes[me].Value = v
		for _, i := range t.idx[lo:hi] {
			F[i] += v
		}
		return me
	}
	// Partition idx[lo:hi]: bin ≤ s.bin to the left.
	mid := lo
	limit := uint16(t.offset[s.feature] + s.bin)
	for k := lo; k < hi; k++ {
		if t.binned[int(t.idx[k])*t.d+s.feature] <= limit {
			t.idx[k], t.idx[mid] = t.idx[mid], t.idx[k]
			mid++
		}
	}
	var lh, rh histogram
	if mid-lo <= hi-mid {
		lh = t.build(lo, mid)
		rh = t.subtract(hist, lh)
	} else {
		rh = t.build(mid, hi)
		lh = t.subtract(hist, rh)
	}
	tree.Nodes[me].Feature = s.feature
	tree.Nodes[me].Threshold = t.bins.thresholds[s.feature][s.bin]
	l := t.grow(tree, lh, lo, mid, depth+1, F)
	r := t.grow(tree, rh, mid, hi, depth+1, F)
	tree.Nodes[me].Left, tree.Nodes[me].Right = l, r
	return me
}
