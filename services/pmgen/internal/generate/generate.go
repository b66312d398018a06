// Package generate turns due maintenance plans into work orders, set-based,
// inside the caller's transaction: one query selects the candidate plans with
// their assets, read through a cursor a chunk at a time; the due rules
// (libs/schedule) decide each one in Go, and the outcome is COPied into a
// temporary table chunk by chunk, so that a run's memory does not grow with
// the number of due plans. Then one UPDATE of that table (occurrences that
// already have a work order, numbers already taken), and one statement that
// INSERTs … SELECTs … ON CONFLICT (plan_id, due_date) DO NOTHING the work
// orders and UPDATEs … FROM the temporary table their plans.
// No statement runs per plan.
//
// Exactly once per (plan, due occurrence): the work order's business key is
// the unique index work_orders (plan_id, due_date), and a plan advances in the
// same statement as its work order is inserted, so a plan is never advanced
// without its work order, nor twice for one occurrence. A rerun on the same
// day finds the plans advanced (nothing due) or their work orders open
// (skipped). Runs are serialised by a transaction-level advisory lock and the
// candidate plans are locked FOR NO KEY UPDATE, so concurrent runs, and edits
// of a plan in the middle of a run, cannot interleave with it.
//
// Floating plans are re-anchored here on their latest COMPLETED work order
// when it was completed after the plan's last_completed_date (see package
// due): the completion date is taken in the pipeline's time zone, and the
// meter at completion is the asset's reading at the run (the work order does
// not record one; runs are daily, so it is at most a day's use late). A
// backend that records completions on the plan itself (last_completed_date)
// is not overridden.
//
// The system of record: by default (the source is cmmsflow's own tables) Run
// inserts the work orders and advances the plans as above, in the caller's
// transaction. In backend mode they are POSTed to an existing CMMS backend,
// with an idempotency key per occurrence, instead of being inserted, and no
// transaction stays open while they are (see Plan, Planned.Post and
// Planned.Commit): the plans are read and decided in a short transaction,
// the work orders POSTed, and then the plans of the accepted ones advance in
// the caller's transaction, under the advisory lock, once the plans are
// found not to have moved since they were read. When the source is a mapped, read-only CMMS
// (Request.Ledger), backend mode is required and nothing is written to the
// source: the candidate query reads a plan's schedule from
// cmmsflow.plan_ledger once the plan has a row there (else the source's
// next_due_date is the starting point), occurrences that already have a
// work order (in cmmsflow.plan_occurrences or in the source) are sorted out
// before any POST, and one statement records the accepted occurrences in
// plan_occurrences, whose unique key (plan_id, due_date) plays the part of
// work_orders (plan_id, due_date), and writes their plans' next schedule to
// the ledger. The idempotency key covers a crash between the POST and the
// commit, and two runs that POST at once; the advisory lock serialises the
// commits (the source's plans cannot be locked through a read-only login).
// The due rules and the work orders are the same in every mode; only the
// statements that read and write the schedules differ (store).
package generate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// Request is one generation run.
type Request struct {
	// AsOf is "today": the day plans are evaluated for, in Location.
	AsOf schedule.Date
	// Location is the pipeline's time zone; completion times of floating
	// plans' work orders become dates in it. Its name must be an IANA zone
	// PostgreSQL knows.
	Location *time.Location
	// RunID tags the created work orders.
	RunID string
	// Backend, when set, receives the work orders instead of the
	// work_orders table (backend mode).
	Backend Backend
	// BackendConcurrency bounds the POSTs in flight (default 8).
	BackendConcurrency int
	// Ledger says the source is read-only (a mapped CMMS): its plans are
	// not advanced, their schedules are kept in cmmsflow.plan_ledger and
	// the occurrences created in cmmsflow.plan_occurrences. It needs a
	// Backend.
	Ledger bool
}

// Backend creates work orders in an existing CMMS backend.
type Backend interface {
	// CreateWorkOrder creates wo, at most once per idempotencyKey. It returns
	// an error wrapping ErrRefused when the backend rejected the work order
	// for good; any other error is a failure that outlived the client's
	// retries.
	CreateWorkOrder(ctx context.Context, idempotencyKey string, wo WorkOrder) error
}

// ErrRefused marks a work order the backend rejected (a 4xx answer).
var ErrRefused = errors.New("refused by the backend")

// WorkOrder is a preventive work order to create.
type WorkOrder struct {
	Number             string
	AssetID            int64
	AssetTag           string
	VehicleType        string
	PlanID             int64
	PlanCode           string
	DueDate            schedule.Date
	Type               string // PREVENTIVE
	Status             string // OPEN
	Priority           string
	Title              string
	Description        string
	TechnicianID       *int64
	SkippedOccurrences int
	RunID              string
}

// Number is a preventive work order's number: "PM-<plan id>-<YYYYMMDD of the
// due date>". It is a function of the business key (plan, due date), so it is
// deterministic (a retried run numbers the same occurrence the same way) and
// unique among pmgen's work orders; the fixed-width date keeps numbers of
// different plans apart.
func Number(planID int64, dueDate schedule.Date) string {
	return fmt.Sprintf("PM-%d-%04d%02d%02d", planID, dueDate.Year, dueDate.Month, dueDate.Day)
}

// IdempotencyKey is the backend idempotency key of an occurrence: the plan id
// and the due date.
func IdempotencyKey(planID int64, dueDate schedule.Date) string {
	return fmt.Sprintf("pmgen-plan-%d-%s", planID, dueDate)
}

// Result is what a run did.
type Result struct {
	AsOf schedule.Date
	// Evaluated counts the candidate plans the due rules looked at.
	Evaluated int
	// Created counts the work orders created (accepted, in backend mode).
	Created int
	// SkippedOpen counts due plans skipped because a work order of theirs
	// is still open.
	SkippedOpen int
	// MissedOccurrences sums the missed occurrences folded into the created
	// work orders.
	MissedOccurrences int
	// Failed counts due plans that got no work order: refused by the
	// backend, the number taken by another work order, a malformed plan.
	// Their plans do not advance; the next run tries again.
	Failed int
	// AlreadyGenerated counts due occurrences that already had their work
	// order (closed) from elsewhere; their plans advance past them.
	AlreadyGenerated int
	// Reanchored counts floating plans moved to their latest completion.
	Reanchored int
	// CreatedByVehicleType splits Created by the assets' vehicle type.
	CreatedByVehicleType map[string]int
	// Failures describes the failures of the lowest plan ids (at most
	// maxFailures), in plan order.
	Failures []Failure
}

// Failure is a due plan that got no work order.
type Failure struct {
	PlanID   int64
	PlanCode string
	Reason   string
}

const maxFailures = 20

func (r *Result) fail(planID int64, code, reason string) {
	r.Failed++
	i, _ := slices.BinarySearchFunc(r.Failures, planID, func(f Failure, id int64) int { return cmp.Compare(f.PlanID, id) })
	if i < maxFailures {
		r.Failures = slices.Insert(r.Failures, i, Failure{PlanID: planID, PlanCode: code, Reason: reason})
		r.Failures = r.Failures[:min(len(r.Failures), maxFailures)]
	}
}

// lockKey serialises generation runs (pg_advisory_xact_lock).
const lockKey = 0x706d67656e // "pmgen"

// Run evaluates every candidate plan as of req.AsOf and writes the work
// orders and the plans' schedules in tx (cmmsflow's own tables, no
// Backend). On error the caller must roll tx back.
func Run(ctx context.Context, tx pgx.Tx, req Request) (Result, error) {
	if err := req.check(); err != nil {
		return Result{}, err
	}
	if req.Backend != nil {
		return Result{}, errors.New("generate: Run writes the work orders to the database; a backend run is planned (Plan), posted and committed")
	}
	if err := begin(ctx, tx); err != nil {
		return Result{}, err
	}
	if err := newBatch(ctx, tx); err != nil {
		return Result{}, err
	}
	// The candidates are decided and put in the batch a chunk at a time, so
	// a run holds one chunk, whatever the number of due plans.
	res := newResult(req, 0)
	err := eachCandidateChunk(ctx, tx, storeFor(false).candidates, req, func(cands []candidate) error {
		res.Evaluated += len(cands)
		gen, reanchor := decide(cands, req, &res)
		return appendBatch(ctx, tx, slices.Concat(gen, reanchor), initialState)
	})
	if err != nil {
		return Result{}, err
	}
	if err := writeDB(ctx, tx, req, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

func newResult(req Request, evaluated int) Result {
	return Result{AsOf: req.AsOf, Evaluated: evaluated, CreatedByVehicleType: map[string]int{}}
}

// begin takes the run lock and turns JIT off in tx. These statements join
// many rows once; when the planner's estimates run high (stale statistics
// on work_orders) JIT compilation was measured to cost about 0.35 s and save
// nothing.
func begin(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
		return fmt.Errorf("generate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

func (req Request) check() error {
	switch {
	case req.AsOf.IsZero():
		return errors.New("generate: no as-of date")
	case req.Location == nil:
		return errors.New("generate: no time zone")
	case req.Ledger && req.Backend == nil:
		return errors.New("generate: a read-only source (ledger) needs a backend to create the work orders")
	}
	return nil
}

// decide applies the due rules to the candidates: the work orders to create
// and the plans only re-anchored.
func decide(cands []candidate, req Request, res *Result) (gen, reanchor []item) {
	for _, c := range cands {
		p, reanchored := c.plan, false
		if p.Mode == schedule.Floating && c.lastDone.After(p.LastCompletedDate) {
			p = schedule.Complete(p, c.lastDone, c.asset.Reading(p.Meter.Unit))
			reanchored = true
		}
		dec := schedule.Evaluate(p, c.asset, req.AsOf)
		switch dec.Outcome {
		case schedule.Generate:
			gen = append(gen, newItem(c, p, dec, req.RunID))
			continue
		case schedule.SkippedOpen:
			res.SkippedOpen++
		case schedule.Invalid:
			res.fail(c.id, c.code, dec.Err.Error())
		}
		if reanchored {
			reanchor = append(reanchor, item{cand: c, generate: false, sched: p.Schedule(), plan: p})
		}
	}
	return gen, reanchor
}

// item is a plan with something to write: a work order to create and the
// schedule after it, or (generate false) only a re-anchored schedule.
type item struct {
	cand     candidate
	plan     schedule.Plan // after any re-anchoring
	generate bool
	wo       WorkOrder
	sched    schedule.Schedule
}

func newItem(c candidate, p schedule.Plan, dec schedule.Decision, runID string) item {
	sched := dec.Next
	// Keep the state of a dimension the plan does not have.
	if p.Calendar.IsZero() {
		sched.NextDueDate, sched.AnchorDay = p.NextDueDate, 0
	}
	if p.Meter.IsZero() {
		sched.NextDueMeter = p.NextDueMeter
	}
	return item{cand: c, plan: p, generate: true, sched: sched, wo: WorkOrder{
		Number:             Number(c.id, dec.DueDate),
		AssetID:            c.assetID,
		AssetTag:           c.assetTag,
		VehicleType:        c.vehicleType,
		PlanID:             c.id,
		PlanCode:           c.code,
		DueDate:            dec.DueDate,
		Type:               "PREVENTIVE",
		Status:             "OPEN",
		Priority:           c.priority,
		Title:              c.name + " (" + c.assetTag + ")",
		Description:        describe(c, p, dec),
		TechnicianID:       c.technicianID,
		SkippedOccurrences: dec.Missed,
		RunID:              runID,
	}}
}

func describe(c candidate, p schedule.Plan, dec schedule.Decision) string {
	var b strings.Builder
	b.WriteString(c.description)
	note := func(s string) {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(s)
	}
	if dec.Trigger == schedule.ByMeter {
		note(fmt.Sprintf("Due by meter: %s %s reached.", trimFloat(c.asset.Reading(p.Meter.Unit)), p.Meter.Unit))
	}
	if dec.Missed > 0 {
		note(fmt.Sprintf("Covers %d earlier occurrence(s) of this plan that were missed.", dec.Missed))
	}
	return b.String()
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// batchColumns are the columns of the temporary table pmgen_batch, in COPY
// order.
var batchColumns = []string{
	"plan_id", "asset_id", "vehicle_type", "state", "wo_number", "due_date", "priority", "title", "description",
	"technician_id", "missed", "next_due_date", "next_due_meter", "anchor_day", "last_completed_date", "last_completed_meter",
}

const createBatch = `
CREATE TEMP TABLE pmgen_batch (
	plan_id              bigint NOT NULL,
	asset_id             bigint NOT NULL,
	vehicle_type         text NOT NULL,
	state                text NOT NULL, -- create | reanchor; mark: exists | taken; backend: failed
	wo_number            text,
	due_date             date,
	priority             text,
	title                text,
	description          text,
	technician_id        bigint,
	missed               integer NOT NULL,
	next_due_date        date,
	next_due_meter       numeric(12, 1),
	anchor_day           smallint,
	last_completed_date  date,
	last_completed_meter numeric(12, 1)
) ON COMMIT DROP`

// copyBatch (re)creates pmgen_batch and COPYs items into it, each in the
// state state gives it.
func copyBatch(ctx context.Context, tx pgx.Tx, items []item, state func(item) string) error {
	if err := newBatch(ctx, tx); err != nil {
		return err
	}
	return appendBatch(ctx, tx, items, state)
}

// newBatch (re)creates pmgen_batch, empty.
func newBatch(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS pg_temp.pmgen_batch`); err != nil {
		return fmt.Errorf("generate: batch table: %w", err)
	}
	if _, err := tx.Exec(ctx, createBatch); err != nil {
		return fmt.Errorf("generate: batch table: %w", err)
	}
	return nil
}

// appendBatch COPYs items into pmgen_batch, each in the state state gives
// it.
func appendBatch(ctx context.Context, tx pgx.Tx, items []item, state func(item) string) error {
	if len(items) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "pmgen_batch"}, batchColumns, pgx.CopyFromSlice(len(items), func(i int) ([]any, error) {
		it := items[i]
		row := []any{it.cand.id, it.cand.assetID, it.cand.vehicleType, state(it), nil, nil, nil, nil, nil,
			nil, 0, dateOrNil(it.sched.NextDueDate), it.sched.NextDueMeter, anchorOrNil(it.sched.AnchorDay),
			dateOrNil(it.plan.LastCompletedDate), it.plan.LastCompletedMeter}
		if it.generate {
			w := it.wo
			row[4], row[5], row[6], row[7], row[8] = w.Number, w.DueDate.Time(), w.Priority, w.Title, w.Description
			row[9], row[10] = w.TechnicianID, w.SkippedOccurrences
		}
		return row, nil
	}))
	if err != nil {
		return fmt.Errorf("generate: copy batch: %w", err)
	}
	return nil
}

// initialState is an item's batch state before any check: create or
// reanchor.
func initialState(it item) string {
	if it.generate {
		return "create"
	}
	return "reanchor"
}

func dateOrNil(d schedule.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.Time()
}

func anchorOrNil(day int) any {
	if day == 0 {
		return nil
	}
	return int16(day)
}

// advanceSet is the SET list that moves a plan to its batch row's schedule.
const advanceSet = `
	next_due_date        = b.next_due_date,
	next_due_meter       = b.next_due_meter,
	schedule_anchor_day  = b.anchor_day,
	last_completed_date  = b.last_completed_date,
	last_completed_meter = b.last_completed_meter,
	updated_at           = now()`

// markSQL runs before the insert and sorts out, among the work orders to
// create, those whose occurrence already has a work order (closed, made
// elsewhere: the plan moves past it) and those whose number another work
// order has taken (failed: the plan stays). It is a statement of its own so
// that the insert never reads the table it is filling: a plan that probes
// work_orders while the same statement inserts into it can turn quadratic.
const markSQL = `
UPDATE pmgen_batch b
SET state = CASE WHEN EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = b.plan_id AND w.due_date = b.due_date)
                 THEN 'exists' ELSE 'taken' END
WHERE b.state = 'create'
  AND (   EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = b.plan_id AND w.due_date = b.due_date)
       OR EXISTS (SELECT 1 FROM work_orders w WHERE w.wo_number = b.wo_number))`

// writeSQL inserts the work orders and advances their plans in one
// statement: a plan advances when its work order was inserted, when its
// occurrence already had one, or when it was only re-anchored. ON CONFLICT
// covers a work order inserted since markSQL by someone else: not inserted,
// the plan stays, the next run moves it past it.
const writeSQL = `
WITH ins AS (
	INSERT INTO work_orders (wo_number, asset_id, plan_id, due_date, type, status, priority, title, description,
	                         assigned_technician_id, skipped_occurrences, run_id)
	SELECT b.wo_number, b.asset_id, b.plan_id, b.due_date, 'PREVENTIVE', 'OPEN', b.priority, b.title, b.description,
	       b.technician_id, b.missed, $1
	FROM pmgen_batch b
	WHERE b.state = 'create'
	ON CONFLICT (plan_id, due_date) WHERE plan_id IS NOT NULL DO NOTHING
	RETURNING plan_id
), adv AS (
	UPDATE maintenance_plans p SET` + advanceSet + `
	FROM pmgen_batch b LEFT JOIN ins ON ins.plan_id = b.plan_id
	WHERE p.id = b.plan_id AND (ins.plan_id IS NOT NULL OR b.state IN ('exists', 'reanchor'))
	RETURNING p.id
)
SELECT b.vehicle_type, b.state, ins.plan_id IS NOT NULL, count(*)::int, coalesce(sum(b.missed), 0)::int,
       (SELECT count(*) FROM adv)::int
FROM pmgen_batch b
LEFT JOIN ins ON ins.plan_id = b.plan_id
GROUP BY 1, 2, 3`

// writeDB writes the work orders and plans of pmgen_batch (filled in the
// states create and reanchor) and counts them in res.
func writeDB(ctx context.Context, tx pgx.Tx, req Request, res *Result) error {
	if _, err := tx.Exec(ctx, markSQL); err != nil {
		return fmt.Errorf("generate: check work orders: %w", err)
	}
	rows, err := tx.Query(ctx, writeSQL, req.RunID)
	if err != nil {
		return fmt.Errorf("generate: write work orders: %w", err)
	}
	var vtype, state string
	var inserted bool
	var n, missed, advanced, wantAdvanced int
	_, err = pgx.ForEachRow(rows, []any{&vtype, &state, &inserted, &n, &missed, &advanced}, func() error {
		switch {
		case inserted:
			res.Created += n
			res.MissedOccurrences += missed
			res.CreatedByVehicleType[vtype] += n
			wantAdvanced += n
		case state == "exists":
			res.AlreadyGenerated += n
			wantAdvanced += n
		case state == "reanchor":
			res.Reanchored += n
			wantAdvanced += n
		case state == "create":
			// Inserted by someone else since markSQL: the occurrence has its
			// work order; the next run moves the plan past it.
			res.AlreadyGenerated += n
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate: write work orders: %w", err)
	}
	if advanced != wantAdvanced {
		return fmt.Errorf("generate: advanced %d plans, want %d", advanced, wantAdvanced)
	}
	// Name the plans whose work order number was taken.
	rows, err = tx.Query(ctx, `SELECT b.plan_id, p.code, b.wo_number FROM pmgen_batch b
		JOIN maintenance_plans p ON p.id = b.plan_id WHERE b.state = 'taken' ORDER BY b.plan_id`)
	if err != nil {
		return fmt.Errorf("generate: failed plans: %w", err)
	}
	var id int64
	var code, number string
	_, err = pgx.ForEachRow(rows, []any{&id, &code, &number}, func() error {
		res.fail(id, code, fmt.Sprintf("work order number %s is taken by another work order", number))
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate: failed plans: %w", err)
	}
	return nil
}
