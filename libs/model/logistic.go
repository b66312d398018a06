package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// LogisticParams are a logistic regression's coefficients on standardised
// inputs: p = σ(intercept + Σ weight_j · (x_j − mean_j) / std_j).
type LogisticParams struct {
	Intercept float64   `json:"intercept"`
	Weights   []float64 `json:"weights"`
	L2        float64   `json:"l2"`
	Steps     int       `json:"newton_steps"`
}

// trainLogistic minimises Σ log-loss + ½·L2·‖w‖² (the intercept is not
// penalised; scikit-learn's objective with C = 1/L2) by Newton's method with
// a backtracking line search. The problem is strictly convex, so it converges
// in a handful of steps.
func trainLogistic(X [][]float64, y []float64, norm Normalization, o Options) (*LogisticParams, error) {
	lp := newLogisticProblem(X, y, norm, o)
	d := lp.d
	lp.mulZ(lp.z, lp.beta)
	f := lp.loss(0, make([]float64, lp.k))
	steps := 0
	for steps < o.MaxNewtonSteps {
		steps++
		lp.gradHess()
		step, err := solveSPD(lp.hess, lp.grad, lp.k)
		if err != nil {
			return nil, fmt.Errorf("model: logistic newton step: %w", err)
		}
		fn, maxStep := lp.lineSearch(step, f)
		// 1e-6 on standardised coefficients moves no probability by more than
		// about 1e-5: far below what any metric resolves.
		converged := maxStep < 1e-6 || f-fn <= 1e-12*math.Max(1, math.Abs(f))
		f = fn
		if converged {
			break
		}
	}
	return &LogisticParams{Intercept: lp.beta[d], Weights: lp.beta[:d:d], L2: o.L2, Steps: steps}, nil
}

// logisticProblem is trainLogistic's data and Newton iterate.
type logisticProblem struct {
	d, k       int       // inputs, coefficients (d+1: intercept last)
	Z          []float64 // standardised design matrix, row-major, with a trailing 1
	y          []float64
	l2         float64
	blocks     []newtonBlock
	beta       []float64 // coefficients
	z, dz      []float64 // Z·beta, Z·step
	grad, hess []float64 // the objective's at beta
}

func newLogisticProblem(X [][]float64, y []float64, norm Normalization, o Options) *logisticProblem {
	n, d := len(X), len(norm.Mean)
	k := d + 1
	beta := make([]float64, k)
	// Start the intercept at the base rate's log-odds.
	pos := 0.0
	for _, v := range y {
		pos += v
	}
	beta[d] = math.Log(pos / (float64(n) - pos))
	return &logisticProblem{
		d: d, k: k, Z: standardise(X, norm), y: y, l2: o.L2,
		blocks: newtonBlocks(n, k, o.Parallelism), beta: beta,
		z: make([]float64, n), dz: make([]float64, n),
		grad: make([]float64, k), hess: make([]float64, k*k),
	}
}

// standardise is X's design matrix on standardised inputs, row-major, with
// a trailing 1 on each row.
func standardise(X [][]float64, norm Normalization) []float64 {
	n, d := len(X), len(norm.Mean)
	k := d + 1
	Z := make([]float64, n*k)
	for i, x := range X {
		row := Z[i*k : (i+1)*k]
		for j := range d {
			row[j] = (x[j] - norm.Mean[j]) / norm.Std[j]
		}
		row[d] = 1
	}
	return Z
}

// newtonBlocks splits n rows among the goroutines: parallelism of them
// (GOMAXPROCS if not positive), at most one per 5000 rows, at least one.
func newtonBlocks(n, k, parallelism int) []newtonBlock {
	workers := parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n/5000))
	blocks := make([]newtonBlock, workers)
	for b := range blocks {
		blocks[b] = newtonBlock{lo: b * n / workers, hi: (b + 1) * n / workers,
			grad: make([]float64, k), hess: make([]float64, k*k)}
	}
	return blocks
}

func (lp *logisticProblem) penalty(b []float64) float64 {
	var s float64
	for j := range lp.d {
		s += 0.5 * lp.l2 * b[j] * b[j]
	}
	return s
}

// mulZ sets dst to Z·v.
func (lp *logisticProblem) mulZ(dst, v []float64) {
	k := lp.k
	parallel(lp.blocks, func(blk *newtonBlock) {
		for i := blk.lo; i < blk.hi; i++ {
			dst[i] = dot(lp.Z[i*k:(i+1)*k], v)
		}
	})
}

// loss is Σ log-loss(z − t·dz) + penalty(beta − t·step).
func (lp *logisticProblem) loss(t float64, step []float64) float64 {
	z, dz, y := lp.z, lp.dz, lp.y
	parallel(lp.blocks, func(blk *newtonBlock) {
		var f float64
		for i := blk.lo; i < blk.hi; i++ {
			f += logLoss(z[i]-t*dz[i], y[i])
		}
		blk.f = f
	})
	var f float64
	for b := range lp.blocks {
		f += lp.blocks[b].f
	}
	next := make([]float64, lp.k)
	for a := range lp.k {
		next[a] = lp.beta[a] - t*step[a]
	}
	return f + lp.penalty(next)
}

// gradHess sets grad and hess to the objective's gradient and Hessian at
// beta (the Hessian with 1e-9 added on the intercept's diagonal).
func (lp *logisticProblem) gradHess() {
	lp.blockGradHess()
	grad, hess, k, d := lp.grad, lp.hess, lp.k, lp.d
	clear(grad)
	clear(hess)
	for b := range lp.blocks { // in block order: deterministic
		for a := range grad {
			grad[a] += lp.blocks[b].grad[a]
		}
		for a := range hess {
			hess[a] += lp.blocks[b].hess[a]
		}
	}
	for j := range d {
		grad[j] += lp.l2 * lp.beta[j]
		hess[j*k+j] += lp.l2
	}
	for a := range k { // mirror the lower triangle
		for b := a + 1; b < k; b++ {
			hess[a*k+b] = hess[b*k+a]
		}
	}
	hess[d*k+d] += 1e-9
}

// blockGradHess sets each block's grad and the lower triangle of its hess
// to the log-loss's over its rows.
func (lp *logisticProblem) blockGradHess() {
	k, z, y := lp.k, lp.z, lp.y
	parallel(lp.blocks, func(blk *newtonBlock) {
		clear(blk.grad)
		clear(blk.hess)
		for i := blk.lo; i < blk.hi; i++ {
			row := lp.Z[i*k : (i+1)*k]
			p := sigmoid(z[i])
			r := p - y[i]
			w := p * (1 - p)
			for a, va := range row {
				blk.grad[a] += r * va
				wa := w * va
				h := blk.hess[a*k : a*k+a+1]
				for b, vb := range row[:a+1] {
					h[b] += wa * vb
				}
			}
		}
	})
}

// lineSearch moves beta by −t·step, t the first of 1, ½, ¼, … (30 at most)
// that does not raise the objective from f, updates z to match, and returns
// the new objective and the largest coefficient change.
func (lp *logisticProblem) lineSearch(step []float64, f float64) (fn, maxStep float64) {
	// Backtracking line search on the objective, O(n) per trial.
	lp.mulZ(lp.dz, step)
	t := 1.0
	for range 30 {
		if fn = lp.loss(t, step); fn <= f {
			break
		}
		t /= 2
	}
	for a := range lp.k {
		lp.beta[a] -= t * step[a]
		maxStep = math.Max(maxStep, math.Abs(t*step[a]))
	}
	for i := range lp.z {
		lp.z[i] -= t * lp.dz[i]
	}
	return fn, maxStep
}

// logLoss is −[y log σ(z) + (1−y) log(1−σ(z))], computed stably.
func logLoss(z, y float64) float64 {
	// log(1+e^z) − y·z
	var softplus float64
	if z > 0 {
		softplus = z + math.Log1p(math.Exp(-z))
	} else {
		softplus = math.Log1p(math.Exp(z))
	}
	return softplus - y*z
}

// newtonBlock is one goroutine's rows and partial sums.
type newtonBlock struct {
	lo, hi     int
	grad, hess []float64
	f          float64
}

// parallel runs fn on every block, each in its own goroutine.
func parallel(blocks []newtonBlock, fn func(*newtonBlock)) {
	if len(blocks) == 1 {
		fn(&blocks[0])
		return
	}
	var wg sync.WaitGroup
	for b := range blocks {
		wg.Go(func() { fn(&blocks[b]) })
	}
	wg.Wait()
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// solveSPD solves A x = b for a symmetric positive definite k×k A by
// Cholesky decomposition.
func solveSPD(A, b []float64, k int) ([]float64, error) {
	L := make([]float64, k*k)
	for i := range k {
		for j := 0; j <= i; j++ {
			s := A[i*k+j]
			for p := range j {
				s -= L[i*k+p] * L[j*k+p]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("matrix is not positive definite")
				}
				L[i*k+i] = math.Sqrt(s)
			} else {
				L[i*k+j] = s / L[j*k+j]
			}
		}
	}
	x := make([]float64, k)
	for i := range k { // L z = b
		s := b[i]
		for p := range i {
			s -= L[i*k+p] * x[p]
		}
		x[i] = s / L[i*k+i]
	}
	for i := k - 1; i >= 0; i-- { // Lᵀ x = z
		s := x[i]
		for p := i + 1; p < k; p++ {
			s -= L[p*k+i] * x[p]
		}
		x[i] = s / L[i*k+i]
	}
	return x, nil
}
