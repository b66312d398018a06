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
	n, d := len(X), len(norm.Mean)
	k := d + 1 // intercept last
	// Standardised design matrix, row-major, with a trailing 1.
	Z := make([]float64, n*k)
	for i, x := range X {
		row := Z[i*k : (i+1)*k]
		for j := range d {
			row[j] = (x[j] - norm.Mean[j]) / norm.Std[j]
		}
		row[d] = 1
	}
	beta := make([]float64, k)
	// Start the intercept at the base rate's log-odds.
	pos := 0.0
	for _, v := range y {
		pos += v
	}
	beta[d] = math.Log(pos / (float64(n) - pos))

	workers := o.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n/5000))
	blocks := make([]newtonBlock, workers)
	for b := range blocks {
		blocks[b] = newtonBlock{lo: b * n / workers, hi: (b + 1) * n / workers,
			grad: make([]float64, k), hess: make([]float64, k*k)}
	}
	z := make([]float64, n)  // Z·beta
	dz := make([]float64, n) // Z·step
	penalty := func(b []float64) float64 {
		var s float64
		for j := range d {
			s += 0.5 * o.L2 * b[j] * b[j]
		}
		return s
	}
	mulZ := func(dst, v []float64) {
		parallel(blocks, func(blk *newtonBlock) {
			for i := blk.lo; i < blk.hi; i++ {
				dst[i] = dot(Z[i*k:(i+1)*k], v)
			}
		})
	}
	// loss is Σ log-loss(z − t·dz) + penalty(beta − t·step).
	loss := func(t float64, step []float64) float64 {
		parallel(blocks, func(blk *newtonBlock) {
			var f float64
			for i := blk.lo; i < blk.hi; i++ {
				f += logLoss(z[i]-t*dz[i], y[i])
			}
			blk.f = f
		})
		var f float64
		for b := range blocks {
			f += blocks[b].f
		}
		next := make([]float64, k)
		for a := range k {
			next[a] = beta[a] - t*step[a]
		}
		return f + penalty(next)
	}
	mulZ(z, beta)
	f := loss(0, make([]float64, k))
	grad := make([]float64, k)
	hess := make([]float64, k*k)
	steps := 0
	for steps < o.MaxNewtonSteps {
		steps++
		parallel(blocks, func(blk *newtonBlock) {
			clear(blk.grad)
			clear(blk.hess)
			for i := blk.lo; i < blk.hi; i++ {
				row := Z[i*k : (i+1)*k]
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
		clear(grad)
		clear(hess)
		for b := range blocks { // in block order: deterministic
			for a := range grad {
				grad[a] += blocks[b].grad[a]
			}
			for a := range hess {
				hess[a] += blocks[b].hess[a]
			}
		}
		for j := range d {
			grad[j] += o.L2 * beta[j]
			hess[j*k+j] += o.L2
		}
		for a := range k { // mirror the lower triangle
			for b := a + 1; b < k; b++ {
				hess[a*k+b] = hess[b*k+a]
			}
		}
		hess[d*k+d] += 1e-9
		step, err := solveSPD(hess, grad, k)
		if err != nil {
			return nil, fmt.Errorf("model: logistic newton step: %w", err)
		}
		// Backtracking line search on the objective, O(n) per trial.
		mulZ(dz, step)
		t := 1.0
		var fn float64
		for range 30 {
			if fn = loss(t, step); fn <= f {
				break
			}
			t /= 2
		}
		maxStep := 0.0
		for a := range k {
			beta[a] -= t * step[a]
			maxStep = math.Max(maxStep, math.Abs(t*step[a]))
		}
		for i := range z {
			z[i] -= t * dz[i]
		}
		// 1e-6 on standardised coefficients moves no probability by more than
		// about 1e-5: far below what any metric resolves.
		converged := maxStep < 1e-6 || f-fn <= 1e-12*math.Max(1, math.Abs(f))
		f = fn
		if converged {
			break
		}
	}
	return &LogisticParams{Intercept: beta[d], Weights: beta[:d:d], L2: o.L2, Steps: steps}, nil
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
