package generate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// A backend run keeps no transaction open while it calls the backend. It
// goes in three parts:
//
//   - Plan reads the candidate plans and decides in a short transaction of
//     its own (rolled back: it writes nothing but its temporary table), and
//     sorts out, with a ledger, the occurrences that already have a work
//     order;
//   - Post POSTs the work orders, with no transaction open, each under its
//     occurrence's idempotency key;
//   - Commit, in the caller's transaction, takes the run lock, checks that
//     the plans it posted for were not advanced since (else it fails, and the
//     retried run plans again: the keys make the POSTs that are repeated
//     harmless), then advances the plans of the accepted, already generated
//     and re-anchored items through the store.
//
// Runs do not hold the run lock while they POST: two runs at once may POST
// the same occurrence (created once, by its key); the second to commit
// finds its plans changed and is retried.

// Beginner begins a transaction: a pool (or a transaction, for a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Planned is a backend run between Plan and Commit.
type Planned struct {
	req Request
	st  store
	// gen are the work orders decided, reanchor the plans only re-anchored,
	// as Commit checks them again.
	gen, reanchor []item
	// state is the batch state of each plan of gen: create until Post
	// (failed for a work order not accepted), exists or taken when a work
	// order already has the occurrence or the number.
	state  map[int64]string
	posted bool
	res    Result
}

// Plan evaluates every candidate plan as of req.AsOf, reading through db in
// a short transaction that it rolls back. req needs a Backend.
func Plan(ctx context.Context, db Beginner, req Request) (*Planned, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if req.Backend == nil {
		return nil, errors.New("generate: a planned run needs a backend; without one, Run writes the work orders")
	}
	p := &Planned{req: req, st: storeFor(req.Ledger), state: map[int64]string{}}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		cands, err := selectCandidates(ctx, tx, p.st.candidates, req)
		if err != nil {
			return err
		}
		p.res = newResult(req, len(cands))
		p.gen, p.reanchor = decide(cands, req, &p.res)
		for _, it := range p.gen {
			p.state[it.cand.id] = "create"
		}
		return p.sortOut(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	p.res.Reanchored = len(p.reanchor)
	return p, nil
}

// sortOut runs the store's mark on the work orders to create: those whose
// occurrence has a work order count as already generated (their plans
// advance), those whose number is taken fail.
func (p *Planned) sortOut(ctx context.Context, tx pgx.Tx) error {
	if p.st.mark == "" || len(p.gen) == 0 {
		return nil
	}
	if err := copyBatch(ctx, tx, p.gen, initialState); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, p.st.mark); err != nil {
		return fmt.Errorf("generate: check work orders: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT plan_id, state FROM pmgen_batch WHERE state IN ('exists', 'taken')`)
	if err != nil {
		return fmt.Errorf("generate: check work orders: %w", err)
	}
	var id int64
	var state string
	_, err = pgx.ForEachRow(rows, []any{&id, &state}, func() error {
		p.state[id] = state
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate: check work orders: %w", err)
	}
	for _, it := range p.gen {
		switch p.state[it.cand.id] {
		case "exists":
			p.res.AlreadyGenerated++
		case "taken":
			p.res.fail(it.cand.id, it.cand.code, fmt.Sprintf("work order number %s is taken by another work order", it.wo.Number))
		}
	}
	return nil
}

// Result is what the run did: planned, then posted.
func (p *Planned) Result() Result { return p.res }

// Post POSTs the work orders still to create concurrently and counts the
// outcome: a work order not accepted fails, and its plan stays. It returns
// an error when every POST failed transiently, so that the run is retried.
func (p *Planned) Post(ctx context.Context) error {
	var todo []item
	for _, it := range p.gen {
		if p.state[it.cand.id] == "create" {
			todo = append(todo, it)
		}
	}
	errs := postAll(ctx, p.req, todo)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("generate: backend: %w", err)
	}
	var transient []error
	for i, it := range todo {
		switch err := errs[i]; {
		case err == nil:
			p.res.Created++
			p.res.MissedOccurrences += it.wo.SkippedOccurrences
			p.res.CreatedByVehicleType[it.cand.vehicleType]++
			continue
		case !errors.Is(err, ErrRefused):
			transient = append(transient, err)
		}
		p.state[it.cand.id] = "failed"
		p.res.fail(it.cand.id, it.cand.code, errs[i].Error())
	}
	if len(transient) > 0 && len(transient) == len(todo) {
		return fmt.Errorf("generate: backend unavailable, every work order failed: %w", errors.Join(transient[:min(3, len(transient))]...))
	}
	p.posted = true
	return nil
}

// postAll POSTs the items' work orders, at most req.BackendConcurrency (8)
// at a time, and returns their errors.
func postAll(ctx context.Context, req Request, items []item) []error {
	errs := make([]error, len(items))
	workers := req.BackendConcurrency
	if workers <= 0 {
		workers = 8
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			wo := items[i].wo
			errs[i] = req.Backend.CreateWorkOrder(ctx, IdempotencyKey(wo.PlanID, wo.DueDate), wo)
		}()
	}
	wg.Wait()
	return errs
}

// ErrPlansChanged is the error of a Commit whose plans changed since Plan
// (another run advanced them, or the source was edited): transient, the
// retried run plans again.
var ErrPlansChanged = errors.New("generate: the plans changed while the work orders were posted")

// Commit writes the outcome of the posted run in tx: it advances the plans
// of the accepted, already generated and re-anchored items (with a ledger:
// records the occurrences created and writes the schedules to the ledger).
// It has the signature of an eventing.TxFunc. On error the caller must roll
// tx back.
func (p *Planned) Commit(ctx context.Context, tx pgx.Tx) error {
	if !p.posted {
		return errors.New("generate: commit before post")
	}
	if len(p.gen)+len(p.reanchor) == 0 {
		return nil
	}
	if err := begin(ctx, tx); err != nil {
		return err
	}
	if err := p.check(ctx, tx); err != nil {
		return err
	}
	items := slices.Concat(p.gen, p.reanchor)
	if err := copyBatch(ctx, tx, items, p.batchState); err != nil {
		return err
	}
	var advanced int
	if err := tx.QueryRow(ctx, p.st.advance, pgx.NamedArgs{"run_id": p.req.RunID}).Scan(&advanced); err != nil {
		return fmt.Errorf("generate: advance plans: %w", err)
	}
	if want := p.res.Created + p.res.AlreadyGenerated + len(p.reanchor); advanced != want {
		return fmt.Errorf("generate: advanced %d plans, want %d", advanced, want)
	}
	return nil
}

func (p *Planned) batchState(it item) string {
	if s, ok := p.state[it.cand.id]; ok && it.generate {
		return s
	}
	return initialState(it)
}

// check selects the candidates again, under the run lock (and, on cmmsflow's
// own tables, their row locks), and fails with ErrPlansChanged unless every
// planned plan is still a candidate with the schedule and settings it was
// decided from: another run advanced it, or the source was edited, since
// Plan. The work orders are left out of the comparison: the ones the run
// POSTed may show in the source as the plans' open work orders. Plans that
// became due since are left to the next run.
func (p *Planned) check(ctx context.Context, tx pgx.Tx) error {
	cands, err := selectCandidates(ctx, tx, p.st.candidates, p.req)
	if err != nil {
		return err
	}
	now := map[int64]schedule.Plan{}
	for _, c := range cands {
		now[c.id] = c.plan
	}
	for _, it := range slices.Concat(p.gen, p.reanchor) {
		if again, ok := now[it.cand.id]; !ok || !sameSchedule(again, it.cand.plan) {
			return fmt.Errorf("%w (plan %s)", ErrPlansChanged, it.cand.code)
		}
	}
	return nil
}

// sameSchedule compares two readings of a plan, but for its open work
// order.
func sameSchedule(a, b schedule.Plan) bool {
	a.OpenWorkOrder, b.OpenWorkOrder = false, false
	return reflect.DeepEqual(a, b)
}
