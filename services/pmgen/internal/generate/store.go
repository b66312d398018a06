package generate

import "fmt"

// store is where a run reads the plans' schedules from and advances them:
// the source's maintenance_plans (the default, cmmsflow's own tables), or,
// when the source is read-only (Request.Ledger), cmmsflow's plan ledger.
// The due rules, the work orders and the batch table are the same for both;
// only these statements differ. They are chosen in one place, storeFor.
type store struct {
	// candidates is the candidate query (see candidatesSQL).
	candidates string
	// mark, when set, sorts out before any POST the batch's occurrences
	// that already have a work order ('exists') and numbers taken by
	// another work order ('taken'), as markSQL does for the insert.
	mark string
	// advance moves the plans of the batch rows in state create, exists
	// or reanchor to their rows' schedule; @run_id is the run id. It returns
	// the number of plans advanced.
	advance string
}

func storeFor(ledger bool) store {
	if ledger {
		return store{candidates: candidatesLedger, mark: ledgerMarkSQL, advance: ledgerAdvanceSQL}
	}
	return store{candidates: candidatesOwn, advance: planAdvanceSQL}
}

var (
	// candidatesOwn reads the schedules from the source's plans and locks
	// them for the transaction.
	candidatesOwn = fmt.Sprintf(candidatesSQL, "", "maintenance_plans", "FOR NO KEY UPDATE OF p")
	// candidatesLedger reads a plan's schedule from the ledger when it has
	// a row there, else from the source (its starting point). Nothing of
	// the source is locked (a read-only login could not): the advisory
	// lock serialises runs, and the ledger is only written by them.
	candidatesLedger = fmt.Sprintf(candidatesSQL, ledgerPlans, "plans", "")
)

// ledgerPlans is the source's plans with the ledger's schedule, as the CTE
// plans.
const ledgerPlans = `
WITH plans AS (
	SELECT m.id, m.code, m.name, m.description, m.priority, m.assigned_technician_id, m.asset_id,
	       m.interval_value, m.interval_unit, m.meter_interval, m.meter_unit, m.lead_days, m.schedule_mode,
	       m.active, m.end_date,
	       CASE WHEN l.plan_id IS NULL THEN m.next_due_date ELSE l.next_due_date END AS next_due_date,
	       CASE WHEN l.plan_id IS NULL THEN m.schedule_anchor_day ELSE l.schedule_anchor_day END AS schedule_anchor_day,
	       CASE WHEN l.plan_id IS NULL THEN m.next_due_meter ELSE l.next_due_meter END AS next_due_meter,
	       CASE WHEN l.plan_id IS NULL THEN m.last_completed_date ELSE l.last_completed_date END AS last_completed_date,
	       CASE WHEN l.plan_id IS NULL THEN m.last_completed_meter ELSE l.last_completed_meter END AS last_completed_meter
	FROM maintenance_plans m
	LEFT JOIN cmmsflow.plan_ledger l ON l.plan_id = m.id
)`

// planAdvanceSQL advances the source's own plans.
const planAdvanceSQL = `
WITH adv AS (
	UPDATE maintenance_plans p SET` + advanceSet + `
	FROM pmgen_batch b
	WHERE p.id = b.plan_id AND b.state IN ('create', 'exists', 'reanchor')
	RETURNING p.id
)
SELECT count(*)::int FROM adv`

// occurrenceExists is true when the batch row's occurrence has a work order:
// one recorded by an earlier run, or one in the source (made by the CMMS, or
// ours, synchronised back).
const occurrenceExists = `(
	   EXISTS (SELECT 1 FROM cmmsflow.plan_occurrences o WHERE o.plan_id = b.plan_id AND o.due_date = b.due_date)
	OR EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = b.plan_id AND w.due_date = b.due_date))`

// ledgerMarkSQL is markSQL with the ledger's occurrences as well.
const ledgerMarkSQL = `
UPDATE pmgen_batch b
SET state = CASE WHEN ` + occurrenceExists + ` THEN 'exists' ELSE 'taken' END
WHERE b.state = 'create'
  AND (` + occurrenceExists + `
       OR EXISTS (SELECT 1 FROM work_orders w WHERE w.wo_number = b.wo_number))`

// ledgerAdvanceSQL records the created occurrences and writes the plans'
// schedules to the ledger, in one statement: a plan advances when its
// occurrence was recorded here (its unique key plays the part of
// work_orders (plan_id, due_date)), already had a work order, or was only
// re-anchored.
const ledgerAdvanceSQL = `
WITH occ AS (
	INSERT INTO cmmsflow.plan_occurrences (plan_id, due_date, wo_number, run_id)
	SELECT plan_id, due_date, wo_number, @run_id FROM pmgen_batch WHERE state = 'create'
	ON CONFLICT DO NOTHING
	RETURNING plan_id
), adv AS (
	INSERT INTO cmmsflow.plan_ledger (plan_id, next_due_date, next_due_meter, schedule_anchor_day,
	                                  last_completed_date, last_completed_meter, run_id)
	SELECT b.plan_id, b.next_due_date, b.next_due_meter, b.anchor_day, b.last_completed_date, b.last_completed_meter, @run_id
	FROM pmgen_batch b LEFT JOIN occ ON occ.plan_id = b.plan_id
	WHERE occ.plan_id IS NOT NULL OR b.state IN ('exists', 'reanchor')
	ON CONFLICT (plan_id) DO UPDATE SET
		next_due_date        = excluded.next_due_date,
		next_due_meter       = excluded.next_due_meter,
		schedule_anchor_day  = excluded.schedule_anchor_day,
		last_completed_date  = excluded.last_completed_date,
		last_completed_meter = excluded.last_completed_meter,
		run_id               = excluded.run_id,
		updated_at           = now()
	RETURNING plan_id
)
SELECT count(*)::int FROM adv`
