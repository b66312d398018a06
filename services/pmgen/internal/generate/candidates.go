package generate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// candidate is a plan that may be due, with what the rules and the work
// order need.
type candidate struct {
	id           int64
	code         string
	name         string
	description  string
	priority     string
	technicianID *int64
	assetID      int64
	assetTag     string
	vehicleType  string
	plan         schedule.Plan
	asset        schedule.Asset
	// lastDone is the completion date (in the pipeline's zone) of the
	// plan's latest completed work order; floating plans only.
	lastDone schedule.Date
}

// candidatesSQL selects, in one query, the active plans of ACTIVE assets that
// may have something to do today ($1): a calendar occurrence inside its lead
// window, a meter threshold reached, or (floating plans) a work order
// completed after the plan's last recorded completion. It is a superset of
// what the due rules generate; they decide. $2 is the time zone completion
// times are read in. It is a template (see store): %[1]s is a WITH clause or
// nothing, %[2]s the relation of plans (with their schedule), %[3]s the
// locking clause.
const candidatesSQL = `%[1]s
SELECT p.id, p.code, p.name, p.description, p.priority, p.assigned_technician_id,
       a.id, a.asset_tag, a.vehicle_type, a.status, a.meter_reading::float8, a.engine_hours::float8,
       p.interval_value, p.interval_unit, p.meter_interval::float8, p.meter_unit, p.lead_days, p.schedule_mode,
       p.active, p.end_date, p.next_due_date, p.schedule_anchor_day, p.next_due_meter::float8,
       p.last_completed_date, p.last_completed_meter::float8,
       EXISTS (SELECT 1 FROM work_orders w
               WHERE w.plan_id = p.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD')),
       CASE WHEN p.schedule_mode = 'floating' THEN
           (SELECT (max(w.completed_at) AT TIME ZONE $2)::date FROM work_orders w
            WHERE w.plan_id = p.id AND w.status = 'COMPLETED')
       END
FROM %[2]s p
JOIN assets a ON a.id = p.asset_id
WHERE p.active
  AND a.status = 'ACTIVE'
  AND (p.end_date IS NULL OR p.end_date >= $1)
  AND (   (p.interval_value IS NOT NULL
           AND (p.next_due_date IS NULL OR p.next_due_date - p.lead_days <= $1))
       OR (p.meter_interval IS NOT NULL
           AND coalesce(p.next_due_meter, p.last_completed_meter + p.meter_interval, p.meter_interval)
               <= CASE p.meter_unit WHEN 'hours' THEN a.engine_hours ELSE a.meter_reading END)
       OR (p.schedule_mode = 'floating'
           AND EXISTS (SELECT 1 FROM work_orders w
                       WHERE w.plan_id = p.id AND w.status = 'COMPLETED'
                         AND (p.last_completed_date IS NULL
                              OR w.completed_at >= ((p.last_completed_date + 1)::timestamp AT TIME ZONE $2)))))
%[3]s`

// candidateChunk is how many candidates a run reads and decides at a time
// (a FETCH of its cursor): what it holds in memory, whatever the number of
// due plans.
const candidateChunk = 20_000

// eachCandidateChunk runs query (see candidatesSQL) in tx through a cursor
// and calls fn with each chunk of at most candidateChunk candidates, in the
// order the query returns them. The chunk's slice is reused: fn must not
// keep it. fn may run statements in tx (the chunk is read in full first).
func eachCandidateChunk(ctx context.Context, tx pgx.Tx, query string, req Request, fn func([]candidate) error) error {
	// A cursor is planned for its first rows unless told that all of them
	// are read.
	if _, err := tx.Exec(ctx, `SET LOCAL cursor_tuple_fraction = 1`); err != nil {
		return fmt.Errorf("generate: select plans: %w", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE pmgen_candidates NO SCROLL CURSOR FOR `+query, req.AsOf.Time(), req.Location.String()); err != nil {
		return fmt.Errorf("generate: select plans: %w", err)
	}
	fetch := fmt.Sprintf(`FETCH %d FROM pmgen_candidates`, candidateChunk)
	var chunk []candidate
	for {
		rows, err := tx.Query(ctx, fetch)
		if err != nil {
			return fmt.Errorf("generate: select plans: %w", err)
		}
		if chunk, err = scanCandidates(rows, chunk[:0]); err != nil {
			return err
		}
		if len(chunk) > 0 {
			if err := fn(chunk); err != nil {
				return err
			}
		}
		if len(chunk) < candidateChunk {
			break
		}
	}
	if _, err := tx.Exec(ctx, `CLOSE pmgen_candidates`); err != nil {
		return fmt.Errorf("generate: select plans: %w", err)
	}
	return nil
}

// selectCandidates reads every candidate of query in tx, in plan order.
func selectCandidates(ctx context.Context, tx pgx.Tx, query string, req Request) ([]candidate, error) {
	var out []candidate
	err := eachCandidateChunk(ctx, tx, query, req, func(chunk []candidate) error {
		out = append(out, chunk...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// In plan order (cheaper here than an ORDER BY that spills to disk).
	slices.SortFunc(out, func(a, b candidate) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// scanCandidates appends the candidates of rows (of candidatesSQL's
// columns) to out.
func scanCandidates(rows pgx.Rows, out []candidate) ([]candidate, error) {
	var (
		c                                      candidate
		assetStatus, mode                      string
		meterReading, engineHours              float64
		intervalValue                          *int32
		intervalUnit, meterUnit                *string
		meterInterval, nextMeter, lastMeter    *float64
		leadDays                               int32
		active, open                           bool
		endDate, nextDate, lastDate, completed *time.Time
		anchor                                 *int16
	)
	_, err := pgx.ForEachRow(rows, []any{
		&c.id, &c.code, &c.name, &c.description, &c.priority, &c.technicianID,
		&c.assetID, &c.assetTag, &c.vehicleType, &assetStatus, &meterReading, &engineHours,
		&intervalValue, &intervalUnit, &meterInterval, &meterUnit, &leadDays, &mode,
		&active, &endDate, &nextDate, &anchor, &nextMeter,
		&lastDate, &lastMeter,
		&open, &completed,
	}, func() error {
		p := schedule.Plan{
			LeadDays:           int(leadDays),
			Mode:               schedule.Mode(mode),
			Active:             active,
			EndDate:            dateOf(endDate),
			NextDueDate:        dateOf(nextDate),
			NextDueMeter:       copyFloat(nextMeter),
			LastCompletedDate:  dateOf(lastDate),
			LastCompletedMeter: copyFloat(lastMeter),
			OpenWorkOrder:      open,
		}
		if intervalValue != nil && intervalUnit != nil {
			p.Calendar = schedule.Interval{Value: int(*intervalValue), Unit: schedule.Unit(*intervalUnit)}
		}
		if meterInterval != nil && meterUnit != nil {
			p.Meter = schedule.MeterInterval{Value: *meterInterval, Unit: schedule.MeterUnit(*meterUnit)}
		}
		if anchor != nil {
			p.AnchorDay = int(*anchor)
		}
		c.plan = p
		c.asset = schedule.Asset{Status: assetStatus, MeterReading: meterReading, EngineHours: engineHours}
		c.lastDone = dateOf(completed)
		out = append(out, c)
		c.technicianID = nil // pgx reuses a non-nil pointer: the next row gets its own
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("generate: select plans: %w", err)
	}
	return out, nil
}

// dateOf reads a PostgreSQL date (midnight UTC) as a civil date.
func dateOf(t *time.Time) schedule.Date {
	if t == nil {
		return schedule.Date{}
	}
	return schedule.DateOf(t.UTC())
}

func copyFloat(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
